import Outputs
/// DNS analyzer (RFC 1035): one JSON line per message, SF-TAP `dns/main.cpp` shape.
///
/// UDP: each datagram is one message (§4.2.1). TCP: each direction is a
/// stream of messages with a 2-byte length prefix (§4.2.2), fed in arbitrary
/// pieces. A message that cannot be decoded yields an error record
/// (`{"type":"dns",…,"error":"compression_loop"}`) and a per-code counter;
/// when the header and some entries decoded, the error record also carries
/// them (the header fields, then the sections up to the bad entry, arrays
/// ending early). Nothing here traps or loops on bad input.
///
/// Every record starts with the shared fields (`JSONWriter.beginRecord`), then
/// SF-TAP's "type", "time", "src" and "dst" (the message's sender and receiver).
/// Given the flow's `RecordFlow`, a response is paired with the latest query of
/// the same flow and message ID and carries "query_time" (the query's time) and
/// "rtt" (seconds from query to response, as Zeek's dns.log `rtt`).
///
/// Limits: a TCP direction buffers at most one message (2 + 65535 bytes),
/// because every complete message is decoded and dropped at once. At most
/// `maxFlows` TCP flows are tracked; data for further flows is counted in
/// `counters.droppedFlows` and ignored.
public final class DNSAnalyzer {
    public typealias Endpoint = (ip: String, port: UInt16)

    public struct Counters: Sendable {
        /// Records emitted for messages that decoded cleanly.
        public var messages = 0
        /// Messages that failed to decode (an error record was emitted for each).
        public var errors = 0
        /// `errors` by `DNSError.rawValue`.
        public var byError = [Int](repeating: 0, count: DNSError.allCases.count)
        /// TCP flows refused because `maxFlows` were open.
        public var droppedFlows = 0
        /// Responses paired with their query (they carry `query_time` and `rtt`).
        public var pairedResponses = 0
        /// Queries forgotten unanswered because `maxPendingQueries` were waiting.
        public var evictedQueries = 0
        public subscript(_ error: DNSError) -> Int { byError[Int(error.rawValue)] }
    }

    public private(set) var counters = Counters()
    public let maxFlows: Int

    private let emit: RecordLines
    private var writer = JSONWriter()
    private var scratch: [UInt8] = []

    private struct Direction {
        var buffer: [UInt8] = []
    }

    private struct Flow {
        var client: Endpoint
        var server: Endpoint
        var vlan: Int?
        var record: RecordFlow?
        var fromClient = Direction()
        var fromServer = Direction()
    }

    private var flows: [UInt64: Flow] = [:]

    /// A query awaiting its response: the flow and the message ID (a flow ID is never 0, so the zero key is
    /// no query's and marks an empty slot of `pendingOrder`).
    private struct PendingKey: Hashable {
        var flow: UInt64
        var id: UInt16
    }

    /// Queries waiting for their response: the query's time. At most `maxPendingQueries`; the oldest is
    /// forgotten first (`pendingOrder` is the ring of insertion order).
    private var pending: [PendingKey: Double] = [:]
    private var pendingOrder: [PendingKey]
    private var pendingNext = 0
    public let maxPendingQueries: Int

    /// `lines` receives each record, its newline included, valid during the call.
    public init(maxFlows: Int = 65536, maxPendingQueries: Int = 65536, lines: @escaping RecordLines) {
        self.maxFlows = maxFlows
        self.maxPendingQueries = max(1, maxPendingQueries)
        self.emit = lines
        scratch.reserveCapacity(256)
        pendingOrder = [PendingKey](repeating: PendingKey(flow: 0, id: 0), count: self.maxPendingQueries)
        pending.reserveCapacity(self.maxPendingQueries)
    }

    /// Records as `String` lines (tests and tools); `lines:` hands the bytes without making a String.
    public convenience init(maxFlows: Int = 65536, maxPendingQueries: Int = 65536, emit: @escaping (String) -> Void) {
        self.init(maxFlows: maxFlows, maxPendingQueries: maxPendingQueries, lines: { emit(String(decoding: $0, as: UTF8.self)) })
    }

    /// One UDP datagram (RFC 1035 §4.2.1): a whole message. With `record` (the flow's shared record
    /// fields), a response is paired with its query by flow and message ID.
    public func datagram(source: Endpoint, destination: Endpoint, vlan: Int?, bytes: UnsafeRawBufferPointer, time: Double,
                         record: RecordFlow? = nil) {
        message(source: source, destination: destination, vlan: vlan, record: record, bytes: bytes, time: time)
    }

    /// `record`: the flow's shared record fields (`flow_id`, endpoints, Community ID), written in each record.
    public func open(flow: UInt64, client: Endpoint, server: Endpoint, vlan: Int?, time: Double, record: RecordFlow? = nil) {
        if flows[flow] == nil && flows.count >= maxFlows {
            counters.droppedFlows += 1
            return
        }
        flows[flow] = Flow(client: client, server: server, vlan: vlan, record: record)
    }

    /// TCP payload of one direction, in order, in any split.
    public func data(flow id: UInt64, fromClient: Bool, bytes: UnsafeRawBufferPointer, time: Double) {
        // Changed where it lies in the dictionary, as the TLS and QUIC analyzers do.
        guard let index = flows.index(forKey: id) else { return }
        data(&flows.values[index], fromClient: fromClient, bytes: bytes, time: time)
    }

    private func data(_ flow: inout Flow, fromClient: Bool, bytes: UnsafeRawBufferPointer, time: Double) {
        // Take the buffer out so appending does not copy it.
        var buffer = fromClient ? flow.fromClient.buffer : flow.fromServer.buffer
        if fromClient { flow.fromClient.buffer = [] } else { flow.fromServer.buffer = [] }
        let source = fromClient ? flow.client : flow.server
        let destination = fromClient ? flow.server : flow.client

        var input = bytes
        while !input.isEmpty {
            // Complete the 2-byte prefix, then the message it announces.
            let need: Int
            if buffer.count < 2 {
                need = 2 - buffer.count
            } else {
                need = 2 + (Int(buffer[0]) << 8 | Int(buffer[1])) - buffer.count
            }
            let take = min(need, input.count)
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[0 ..< take]))
            input = UnsafeRawBufferPointer(rebasing: input[take...])
            guard buffer.count >= 2 else { continue }
            let length = Int(buffer[0]) << 8 | Int(buffer[1])
            if length < 12 && buffer.count == 2 + length {
                // Framing stays intact, so report and carry on with the next prefix.
                errorRecord(.badTCPLength, source: source, destination: destination, vlan: flow.vlan, record: flow.record, time: time)
                buffer.removeAll(keepingCapacity: true)
            } else if buffer.count == 2 + length {
                buffer.withUnsafeBytes { raw in
                    message(source: source, destination: destination, vlan: flow.vlan, record: flow.record,
                            bytes: UnsafeRawBufferPointer(rebasing: raw[2...]), time: time)
                }
                buffer.removeAll(keepingCapacity: true)
            }
        }
        if fromClient { flow.fromClient.buffer = buffer } else { flow.fromServer.buffer = buffer }
    }

    /// Forgets the flow; a partial message left in a buffer is dropped silently
    /// (the connection ended mid-message, as SF-TAP's analyzers do).
    public func close(flow: UInt64) {
        flows[flow] = nil
    }

    // MARK: - Records

    private func prefix(source: Endpoint, destination: Endpoint, vlan: Int?, record: RecordFlow?, time: Double) {
        writer.beginRecord("dns", time: time, flow: record, vlan: vlan)
        writer.beginObject("src")
        writer.string("ip", source.ip)
        writer.number("port", Int(source.port))
        writer.endObject()
        writer.beginObject("dst")
        writer.string("ip", destination.ip)
        writer.number("port", Int(destination.port))
        writer.endObject()
    }


    /// Remembers a query's time, or gives a response its query's time (then forgotten).
    private func pair(_ record: RecordFlow?, bytes: UnsafeRawBufferPointer, time: Double) -> Double? {
        guard let record, bytes.count >= 12 else { return nil }
        let key = PendingKey(flow: record.flowID, id: bytes.beUInt16(at: 0))
        guard bytes[2] & 0x80 != 0 else {
            if pending.updateValue(time, forKey: key) == nil {
                let old = pendingOrder[pendingNext]
                if old.flow != 0, pending.removeValue(forKey: old) != nil { counters.evictedQueries += 1 }
                pendingOrder[pendingNext] = key
                pendingNext = pendingNext + 1 == pendingOrder.count ? 0 : pendingNext + 1
            }
            return nil
        }
        guard let queryTime = pending.removeValue(forKey: key) else { return nil }
        counters.pairedResponses += 1
        return queryTime
    }

    private func message(source: Endpoint, destination: Endpoint, vlan: Int?, record: RecordFlow?, bytes: UnsafeRawBufferPointer, time: Double) {
        let queryTime = pair(record, bytes: bytes, time: time)
        prefix(source: source, destination: destination, vlan: vlan, record: record, time: time)
        var decoder = DNSMessageWriter(bytes: bytes, scratch: scratch)
        scratch = []
        let error = decoder.write(into: &writer)
        scratch = decoder.scratch
        if let error {
            guard decoder.entries > 0 else {
                errorRecord(error, source: source, destination: destination, vlan: vlan, record: record, time: time)
                return
            }
            // Write again, up to the entry that failed, and mark the record.
            prefix(source: source, destination: destination, vlan: vlan, record: record, time: time)
            var partial = DNSMessageWriter(bytes: bytes, scratch: scratch, limit: decoder.entries)
            _ = partial.write(into: &writer)
            scratch = partial.scratch
            writer.string("error", error.name)
            writer.endObject()
            countError(error)
            writer.withLine(emit)
            return
        }
        if let queryTime {
            writer.number("query_time", queryTime)
            writer.number("rtt", Self.rounded(time - queryTime))
        }
        writer.endObject()
        counters.messages += 1
        writer.withLine(emit)
    }

    /// Seconds to the microsecond (the capture's resolution), without a binary fraction's tail.
    static func rounded(_ seconds: Double) -> Double { (seconds * 1e6).rounded() / 1e6 }

    private func errorRecord(_ error: DNSError, source: Endpoint, destination: Endpoint, vlan: Int?, record: RecordFlow?, time: Double) {
        prefix(source: source, destination: destination, vlan: vlan, record: record, time: time)
        writer.string("error", error.name)
        writer.endObject()
        countError(error)
        writer.withLine(emit)
    }

    private func countError(_ error: DNSError) {
        counters.errors += 1
        counters.byError[Int(error.rawValue)] += 1
    }
}
