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
        public subscript(_ error: DNSError) -> Int { byError[Int(error.rawValue)] }
    }

    public private(set) var counters = Counters()
    public let maxFlows: Int

    private let emit: (String) -> Void
    private var writer = JSONWriter()
    private var scratch: [UInt8] = []

    private struct Direction {
        var buffer: [UInt8] = []
    }

    private struct Flow {
        var client: Endpoint
        var server: Endpoint
        var vlan: Int?
        var fromClient = Direction()
        var fromServer = Direction()
    }

    private var flows: [UInt64: Flow] = [:]

    public init(maxFlows: Int = 65536, emit: @escaping (String) -> Void) {
        self.maxFlows = maxFlows
        self.emit = emit
        scratch.reserveCapacity(256)
    }

    /// One UDP datagram (RFC 1035 §4.2.1): a whole message.
    public func datagram(source: Endpoint, destination: Endpoint, vlan: Int?, bytes: UnsafeRawBufferPointer, time: Double) {
        message(source: source, destination: destination, vlan: vlan, bytes: bytes, time: time)
    }

    public func open(flow: UInt64, client: Endpoint, server: Endpoint, vlan: Int?, time: Double) {
        if flows[flow] == nil && flows.count >= maxFlows {
            counters.droppedFlows += 1
            return
        }
        flows[flow] = Flow(client: client, server: server, vlan: vlan)
    }

    /// TCP payload of one direction, in order, in any split.
    public func data(flow id: UInt64, fromClient: Bool, bytes: UnsafeRawBufferPointer, time: Double) {
        guard var flow = flows.removeValue(forKey: id) else { return }
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
                errorRecord(.badTCPLength, source: source, destination: destination, vlan: flow.vlan, time: time)
                buffer.removeAll(keepingCapacity: true)
            } else if buffer.count == 2 + length {
                buffer.withUnsafeBytes { raw in
                    message(source: source, destination: destination, vlan: flow.vlan,
                            bytes: UnsafeRawBufferPointer(rebasing: raw[2...]), time: time)
                }
                buffer.removeAll(keepingCapacity: true)
            }
        }
        if fromClient { flow.fromClient.buffer = buffer } else { flow.fromServer.buffer = buffer }
        flows[id] = flow
    }

    /// Forgets the flow; a partial message left in a buffer is dropped silently
    /// (the connection ended mid-message, as SF-TAP's analyzers do).
    public func close(flow: UInt64) {
        flows[flow] = nil
    }

    // MARK: - Records

    private func prefix(source: Endpoint, destination: Endpoint, vlan: Int?, time: Double) {
        writer.reset()
        writer.beginObject()
        writer.string("type", "dns")
        writer.number("time", time)
        writer.beginObject("src")
        writer.string("ip", source.ip)
        writer.number("port", Int(source.port))
        writer.endObject()
        writer.beginObject("dst")
        writer.string("ip", destination.ip)
        writer.number("port", Int(destination.port))
        writer.endObject()
        if let vlan { writer.number("vlan", vlan) }
    }

    private func message(source: Endpoint, destination: Endpoint, vlan: Int?, bytes: UnsafeRawBufferPointer, time: Double) {
        prefix(source: source, destination: destination, vlan: vlan, time: time)
        var decoder = DNSMessageWriter(bytes: bytes, scratch: scratch)
        scratch = []
        let error = decoder.write(into: &writer)
        scratch = decoder.scratch
        if let error {
            guard decoder.entries > 0 else {
                errorRecord(error, source: source, destination: destination, vlan: vlan, time: time)
                return
            }
            // Write again, up to the entry that failed, and mark the record.
            prefix(source: source, destination: destination, vlan: vlan, time: time)
            var partial = DNSMessageWriter(bytes: bytes, scratch: scratch, limit: decoder.entries)
            _ = partial.write(into: &writer)
            scratch = partial.scratch
            writer.string("error", error.name)
            writer.endObject()
            countError(error)
            emit(writer.line)
            return
        }
        writer.endObject()
        counters.messages += 1
        emit(writer.line)
    }

    private func errorRecord(_ error: DNSError, source: Endpoint, destination: Endpoint, vlan: Int?, time: Double) {
        prefix(source: source, destination: destination, vlan: vlan, time: time)
        writer.string("error", error.name)
        writer.endObject()
        countError(error)
        emit(writer.line)
    }

    private func countError(_ error: DNSError) {
        counters.errors += 1
        counters.byError[Int(error.rawValue)] += 1
    }
}
