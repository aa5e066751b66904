import Outputs
/// TLS analyzer: the ClientHello and ServerHello of each flow, with JA3, JA3S and JA4.
///
/// One record per flow: the shared fields (`JSONWriter.beginRecord`), then `"client":{…},"server":{…}}`,
/// emitted as soon as both hellos are parsed, or at `close` with whichever was
/// seen (nothing if neither was). Version, cipher and group values are
/// decimal numbers as on the wire (JA3's convention), GREASE (RFC 8701)
/// removed; names (SNI, ALPN) are strings. "time" is the time of the data
/// that completed the record (or of `close`).
///
/// client: ip, port, sni?, alpn[], versions[] (supported_versions), legacy_version,
///         ciphers[], extensions[], groups[], ja3, ja3_hash, ja4
/// server: ip, port, version (supported_versions if sent, else legacy_version), version_name?
///         ("TLS 1.3"), cipher, cipher_name? (IANA's name), alpn?, extensions[], ja3s, ja3s_hash
/// A direction that failed adds "error" (a `TLSError.name`) to its object.
///
/// Limits: per direction, one record (≤ 2^14 + 2053 bytes) and one hello
/// (≤ 64 KiB) are buffered; after the hello nothing is. At most `maxFlows`
/// flows are tracked; more are counted in `counters.droppedFlows`.
public final class TLSAnalyzer {
    public typealias Endpoint = (ip: String, port: UInt16)

    public struct Counters: Sendable {
        public var clientHellos = 0
        public var serverHellos = 0
        /// Records emitted.
        public var records = 0
        /// Directions that stopped with an error, by `TLSError.rawValue`.
        public var byError = [Int](repeating: 0, count: TLSError.allCases.count)
        public var droppedFlows = 0
        public var errors: Int { byError.reduce(0, +) }
        public subscript(_ error: TLSError) -> Int { byError[Int(error.rawValue)] }
    }

    public private(set) var counters = Counters()
    public let maxFlows: Int

    private let emit: RecordLines
    private var writer = JSONWriter()

    private struct Flow {
        var client: Endpoint
        var server: Endpoint
        var vlan: Int?
        var record: RecordFlow?
        var fromClient = TLSHelloReader(expectedType: 1)
        var fromServer = TLSHelloReader(expectedType: 2)
        var clientHello: TLSClientHello? = nil
        var serverHello: TLSServerHello? = nil
        var emitted = false
    }

    private var flows: [UInt64: Flow] = [:]

    /// `lines` receives each record, its newline included, valid during the call.
    public init(maxFlows: Int = 65536, lines: @escaping RecordLines) {
        self.maxFlows = maxFlows
        self.emit = lines
    }

    /// Records as `String` lines (tests and tools); `lines:` hands the bytes without making a String.
    public convenience init(maxFlows: Int = 65536, emit: @escaping (String) -> Void) {
        self.init(maxFlows: maxFlows, lines: { emit(String(decoding: $0, as: UTF8.self)) })
    }


    /// `record`: the flow's shared record fields (`flow_id`, endpoints, Community ID), written in its record.
    public func open(flow: UInt64, client: Endpoint, server: Endpoint, vlan: Int?, time: Double, record: RecordFlow? = nil) {
        if flows[flow] == nil && flows.count >= maxFlows {
            counters.droppedFlows += 1
            return
        }
        flows[flow] = Flow(client: client, server: server, vlan: vlan, record: record)
    }

    public func data(flow id: UInt64, fromClient: Bool, bytes: UnsafeRawBufferPointer, time: Double) {
        // The flow is changed where it lies in the dictionary: taking it out and putting it back copied
        // every field (a retain and a release each) and hashed the key twice per segment.
        guard let index = flows.index(forKey: id) else { return }
        data(&flows.values[index], fromClient: fromClient, bytes: bytes, time: time)
    }

    private func data(_ flow: inout Flow, fromClient: Bool, bytes: UnsafeRawBufferPointer, time: Double) {
        guard !flow.emitted else { return }
        if fromClient {
            guard flow.fromClient.state == .reading else { return }
            // The closure writes a local: `flow` itself is being mutated by `feed`.
            var parsed: TLSClientHello? = nil
            flow.fromClient.feed(bytes) { body in
                parsed = TLSClientHello.parse(body)
                return parsed != nil
            }
            if parsed != nil { flow.clientHello = parsed }
            settle(flow.fromClient.state, client: true)
        } else {
            guard flow.fromServer.state == .reading else { return }
            var parsed: TLSServerHello? = nil
            flow.fromServer.feed(bytes) { body in
                parsed = TLSServerHello.parse(body)
                return parsed != nil
            }
            if parsed != nil { flow.serverHello = parsed }
            settle(flow.fromServer.state, client: false)
        }
        if flow.clientHello != nil && flow.serverHello != nil {
            write(flow, time: time)
            flow.emitted = true
        }
    }

    /// Counts the outcome of a direction once it leaves `.reading`.
    private func settle(_ state: TLSHelloReader.State, client: Bool) {
        switch state {
        case .reading: break
        case .done: if client { counters.clientHellos += 1 } else { counters.serverHellos += 1 }
        case .failed(let error): counters.byError[Int(error.rawValue)] += 1
        }
    }

    public func close(flow id: UInt64, time: Double = 0) {
        guard let flow = flows.removeValue(forKey: id) else { return }
        if !flow.emitted && (flow.clientHello != nil || flow.serverHello != nil) {
            write(flow, time: time)
        }
    }

    private func write(_ flow: Flow, time: Double) {
        writer.beginRecord("tls", time: time, flow: flow.record, vlan: flow.vlan)
        writer.beginEndpoint("client", ip: flow.client.ip, port: flow.client.port)
        if let hello = flow.clientHello { writer.clientHelloFields(hello) }
        if case .failed(let error) = flow.fromClient.state { writer.string("error", error.name) }
        writer.endObject()

        writer.beginEndpoint("server", ip: flow.server.ip, port: flow.server.port)
        if let hello = flow.serverHello { writer.serverHelloFields(hello) }
        if case .failed(let error) = flow.fromServer.state { writer.string("error", error.name) }
        writer.endObject()

        writer.endObject()
        counters.records += 1
        writer.withLine(emit)
    }
}
