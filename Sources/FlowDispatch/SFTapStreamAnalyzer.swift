import Outputs
import SFTapCodec
import FlowCore
import Analyzers
import Flows
import PacketCore
import RecordModel

/// One built-in analyzer reading an SF-TAP interface stream (`flowtap analyzer`): the events `flowtap
/// abstract` (or the original SF-TAP) serves on `home/tcp/<if>`, fed in any split, become the same JSON
/// records `flowtap analyze` writes for those flows.
///
/// - The socket's class is trusted: every TCP flow on it goes to the chosen analyzer, UDP datagrams too for
///   DNS (each DATA is one message) and QUIC (each DATA is one datagram of its flow; UDP has no CREATED or
///   DESTROYED, so a QUIC flow ends after `udpIdle` of stream time without datagrams, as the flow engine's
///   UDP timeout ends it, or at the end of the stream). Events of other transports are counted and ignored.
/// - CREATED starts a flow (DATA without CREATED, from a reader that connected mid-flow, starts one too);
///   DESTROYED closes it; a CREATED for a flow still open closes the old one first.
/// - The client is decided from a TCP flow's first bytes as `AnalyzeSink` decides it (the HTTP request line's
///   sender, the ClientHello's sender, for DNS the side not on port 53, for QUIC the first datagram's sender
///   unless it sends from port 443). First bytes that could still become a request line, status line or TLS
///   record are held with `AnalyzeSink.examineFirstBytes`, as `analyze` holds them (`firstBytesLimit` bytes
///   per direction, `HeldStream.maxEvents` chunks), and replayed in order with their own times once they
///   decide; a flow still undecided at those bounds or at its end is ignored and counted in
///   `undecidedFlows`. When a chunk's first bytes start nothing for this analyzer, SF-TAP's `match` decides
///   (`up` is the client), else for DNS the side not on port 53; a flow that two such chunks do not decide
///   is ignored (counted in `undecidedFlows`).
/// - Records go to `emit` as they are made; at the end of the stream, flows still open are closed.
/// - Bad stream input is counted and handed to `onStreamError` (see `SFTapEventReader`); nothing traps.
public final class SFTapStreamAnalyzer {
    public enum Kind: String, CaseIterable, Sendable {
        case http, dns, tls, quic
    }

    /// `flowtap analyzer quic` before a QUIC analyzer exists.
    public struct Unavailable: Error, CustomStringConvertible, Sendable {
        public var kind: Kind
        public var description: String {
            "the \(kind.rawValue) analyzer is not available in this build; the analyzers available are "
                + Kind.allCases.filter { SFTapStreamAnalyzer.isAvailable($0) }.map(\.rawValue).joined(separator: ", ")
        }
    }

    public struct Counters: Sendable {
        /// Whole events read.
        public var events: UInt64 = 0
        /// TCP flows handed to the analyzer.
        public var flows: UInt64 = 0
        /// UDP datagrams handed to the analyzer.
        public var datagrams: UInt64 = 0
        /// TCP flows whose client their first bytes did not tell: still undecided at the holding bounds or at
        /// their end, or after two chunks that start nothing for this analyzer and have no `match`.
        public var undecidedFlows: UInt64 = 0
        /// Events of a transport the analyzer does not read, and DATA without a direction.
        public var ignoredEvents: UInt64 = 0
        /// Defects in the stream itself.
        public var streamErrors: UInt64 = 0
        /// TCP flows not tracked because `maxFlows` were open.
        public var droppedFlows: UInt64 = 0
    }

    public static func isAvailable(_ kind: Kind) -> Bool { true }

    /// Stream time without a datagram after which a QUIC flow ends (the flow engine's UDP idle timeout).
    public static let udpIdle = Timestamp(seconds: 60, microseconds: 0)

    public let kind: Kind
    /// Open TCP flows tracked at most; a flow past it is counted in `droppedFlows` and ignored.
    public let maxFlows: Int
    public private(set) var counters = Counters()
    /// Called for each defect in the stream, as it is found.
    public var onStreamError: ((SFTapStreamError) -> Void)?

    let http: HTTPAnalyzer?
    let dns: DNSAnalyzer?
    let tls: TLSAnalyzer?
    let quic: QUICAnalyzer?
    private let records: RecordCount
    private var reader: SFTapEventReader

    private struct FlowState {
        var id: UInt64
        /// Set once the client is known; the analyzer's flow is open from then on.
        var clientIsFirst: Bool?
        var chunks = 0
        var ignored = false
        /// First bytes held until they decide the client (`AnalyzeSink.examineFirstBytes`).
        var held: HeldStream?
        var lastSeen = Timestamp.zero
        /// The flow's CREATED time (TCP) or first datagram's (UDP): with the key, its `flow_id`.
        var created = Timestamp.zero
        /// UDP: whether endpoint 1 sent the first datagram seen (the originator, as `analyze` decides).
        var firstSentFirst: Bool?
        /// The shared record fields, made once per flow.
        var record: RecordFlow?
    }

    private final class RecordCount { var value: UInt64 = 0 }

    private var flows: [FlowKey: FlowState] = [:]
    private var nextID: UInt64 = 1
    private var lastTime = Timestamp.zero
    private var nextIdleSweep = Timestamp.zero

    public init(kind: Kind, bodies: Bool = false, format: SFTapEventReader.Format? = nil, maxBody: Int = SFTapEventReader.defaultMaxBody,
                maxFlows: Int = 1_000_000, emit: @escaping (String) -> Void) throws(Unavailable) {
        guard Self.isAvailable(kind) else { throw Unavailable(kind: kind) }
        self.kind = kind
        self.maxFlows = maxFlows
        let records = RecordCount()
        self.records = records
        let counted: (String) -> Void = { line in
            records.value &+= 1
            emit(line)
        }
        http = kind == .http ? HTTPAnalyzer(options: .init(bodies: bodies), emit: counted) : nil
        dns = kind == .dns ? DNSAnalyzer(emit: counted) : nil
        tls = kind == .tls ? TLSAnalyzer(emit: counted) : nil
        quic = kind == .quic ? QUICAnalyzer(emit: counted) : nil
        reader = SFTapEventReader(format: format, maxBody: maxBody)
    }

    /// Records emitted so far.
    public var recordCount: UInt64 { records.value }

    /// Errors the analyzer itself reported in records (HTTP parse errors, undecodable DNS messages, TLS hellos that failed).
    public var analyzerErrors: Int {
        (http?.counters.parseErrors ?? 0) + (dns?.counters.errors ?? 0) + (tls?.counters.errors ?? 0) + (quic?.counters.errors ?? 0)
    }

    /// The stream's format, once known.
    public var format: SFTapEventReader.Format? { reader.format }

    /// Set when a binary header stopped reading (nothing after it is used).
    public var stopped: SFTapStreamError? { reader.stopped }

    /// Stream offset of the next byte.
    public var offset: UInt64 { reader.offset }

    /// The next bytes of the stream, in any split.
    public func feed(_ bytes: UnsafeRawBufferPointer) {
        reader.feed(bytes, event: { header, body in self.handle(header, body) }, error: { self.streamError($0) })
    }

    /// The stream ended: reports an unfinished event and closes every open flow.
    public func finish() {
        reader.finish(error: { self.streamError($0) })
        for (key, state) in flows.sorted(by: { $0.value.id < $1.value.id }) {
            close(key, state, time: lastTime)
        }
        flows.removeAll()
    }

    /// One line: `events N, flows N, records N, errors N (stream N, analyzer N)` and what was ignored.
    public var summary: String {
        let c = counters
        var text = "events \(c.events), flows \(c.flows)"
        if kind == .dns { text += ", datagrams \(c.datagrams)" }
        text += ", records \(recordCount), errors \(c.streamErrors + UInt64(analyzerErrors)) (stream \(c.streamErrors), analyzer \(analyzerErrors))"
        if c.undecidedFlows > 0 { text += ", flows without a known client \(c.undecidedFlows)" }
        if c.ignoredEvents > 0 { text += ", events ignored \(c.ignoredEvents)" }
        if c.droppedFlows > 0 { text += ", flows dropped at the \(maxFlows)-flow limit \(c.droppedFlows)" }
        return text
    }

    private func streamError(_ error: SFTapStreamError) {
        counters.streamErrors &+= 1
        onStreamError?(error)
    }

    // MARK: - Events to analyzer calls

    private func handle(_ event: SFTapEvent, _ body: UnsafeRawBufferPointer) {
        counters.events &+= 1
        lastTime = event.time
        let key = FlowKey(address1: event.address1, port1: event.port1, address2: event.address2, port2: event.port2,
                          ipProtocol: event.transport, vlan: event.vlan, hop: event.hop)
        switch event.transport {
        case 6 where kind != .quic:
            switch event.kind {
            case .created:
                if let old = flows.removeValue(forKey: key) { close(key, old, time: event.time) }
                if var state = newFlow() {
                    state.created = event.time
                    flows[key] = state
                }
            case .data:
                guard let fromFirst = event.fromFirst else {
                    counters.ignoredEvents &+= 1
                    return
                }
                data(key, fromFirst: fromFirst, match: event.match, body, time: event.time)
            case .destroyed:
                if let state = flows.removeValue(forKey: key) { close(key, state, time: event.time) }
            }
        case 17 where kind == .quic && event.kind == .data:
            guard let fromFirst = event.fromFirst else {
                counters.ignoredEvents &+= 1
                return
            }
            datagram(key, fromFirst: fromFirst, body, time: event.time)
        case 17 where kind == .dns && event.kind == .data:
            guard let fromFirst = event.fromFirst, let dns else {
                counters.ignoredEvents &+= 1
                return
            }
            counters.datagrams &+= 1
            sweepIdle(event.time)
            var record: RecordFlow? = nil
            // A DNS flow is remembered (as QUIC's are, idle ones forgotten) for its flow ID and originator.
            if var state = flows[key] ?? newFlow() {
                if state.record == nil {
                    state.record = RecordFlow(key: key, originatorIsFirst: fromFirst, created: event.time)
                }
                state.lastSeen = event.time
                record = state.record
                flows[key] = state
            }
            let one = (ip: key.address1.description, port: key.port1), two = (ip: key.address2.description, port: key.port2)
            dns.datagram(source: fromFirst ? one : two, destination: fromFirst ? two : one, vlan: AnalyzeSink.vlan(key),
                         bytes: body, time: AnalyzeSink.seconds(event.time), record: record)
        default:
            counters.ignoredEvents &+= 1
        }
    }

    private func newFlow() -> FlowState? {
        guard flows.count < maxFlows else {
            counters.droppedFlows &+= 1
            return nil
        }
        nextID &+= 1
        return FlowState(id: nextID - 1)
    }

    /// One QUIC datagram; flows idle for `udpIdle` are closed first.
    private func datagram(_ key: FlowKey, fromFirst: Bool, _ bytes: UnsafeRawBufferPointer, time: Timestamp) {
        sweepIdle(time)
        guard var state = flows[key] ?? newFlow() else { return }
        let t = AnalyzeSink.seconds(time)
        state.lastSeen = time
        let clientIsFirst = state.clientIsFirst ?? (fromFirst == AnalyzeSink.quicSenderIsClient(key: key, fromFirst: fromFirst))
        if state.clientIsFirst == nil {
            state.clientIsFirst = clientIsFirst
            state.created = time
            state.firstSentFirst = fromFirst
            open(key, &state, time: t)
        }
        flows[key] = state
        quic?.datagram(flow: state.id, fromClient: fromFirst == clientIsFirst, bytes: bytes, time: t)
    }

    private func closeIdle(before limit: Timestamp) {
        let idle = flows.filter { $0.key.ipProtocol == 17 && $0.value.lastSeen < limit }
        for (key, state) in idle.sorted(by: { $0.value.id < $1.value.id }) {
            flows[key] = nil
            close(key, state, time: Timestamp(nanoseconds: state.lastSeen.nanoseconds &+ Self.udpIdle.nanoseconds))
        }
    }

    private func data(_ key: FlowKey, fromFirst: Bool, match: SFTapEvent.Match, _ bytes: UnsafeRawBufferPointer, time: Timestamp) {
        guard var state = flows[key] ?? newFlow() else { return }
        guard !state.ignored else { return }
        if state.clientIsFirst == nil {
            let decided: Bool?
            switch AnalyzeSink.examineFirstBytes(&state.held, key: key, fromFirst: fromFirst, bytes: bytes, time: time) {
            case .decided(let route, let senderIsClient) where route == self.route:
                decided = fromFirst == senderIsClient
            case .holding:
                flows[key] = state
                return
            case .overLimit:
                state.ignored = true
                counters.undecidedFlows &+= 1
                flows[key] = state
                return
            case .decided, .no:
                decided = client(key, fromFirst: fromFirst, match: match)
            }
            guard let clientIsFirst = decided else {
                AnalyzeSink.dropFirstBytes(&state.held, fromFirst: fromFirst)
                state.chunks += 1
                if state.chunks >= 2 {
                    state.ignored = true
                    state.held = nil
                    counters.undecidedFlows &+= 1
                }
                flows[key] = state
                return
            }
            state.clientIsFirst = clientIsFirst
            open(key, &state, time: AnalyzeSink.seconds(time))
            if let held = state.held {
                state.held = nil
                flows[key] = state
                held.replay(data: { fromFirst, bytes, time in
                    deliver(state.id, fromClient: fromFirst == clientIsFirst, bytes, time: time)
                }, gap: { _, _, _ in }) // the stream has no gaps, and none are held
                return
            }
        }
        flows[key] = state
        deliver(state.id, fromClient: fromFirst == state.clientIsFirst, bytes, time: time)
    }

    private func deliver(_ id: UInt64, fromClient: Bool, _ bytes: UnsafeRawBufferPointer, time: Timestamp) {
        let t = AnalyzeSink.seconds(time)
        http?.data(flow: id, fromClient: fromClient, bytes: bytes, time: t)
        tls?.data(flow: id, fromClient: fromClient, bytes: bytes, time: t)
        dns?.data(flow: id, fromClient: fromClient, bytes: bytes, time: t)
    }

    /// Whether endpoint 1 is the client when the first bytes do not tell it for this analyzer: SF-TAP's
    /// `match` (the sender is the client when it is `up`), else for DNS the side not on port 53; nil when neither
    /// tells.
    private func client(_ key: FlowKey, fromFirst: Bool, match: SFTapEvent.Match) -> Bool? {
        switch match {
        case .up: return fromFirst
        case .down: return !fromFirst
        case .none: break
        }
        if kind == .dns && (key.port1 == 53 || key.port2 == 53) { return key.port1 != 53 }
        return nil
    }

    private var route: AnalyzeSink.Route {
        switch kind {
        case .http: .http
        case .tls: .tls
        case .dns: .dns
        case .quic: .quic
        }
    }

    /// Opens the analyzer's flow once its client is known. The record's originator (`src`) is the first
    /// datagram's sender for UDP; for TCP, whose SYN the stream does not show, it is the client.
    private func open(_ key: FlowKey, _ state: inout FlowState, time: Double) {
        counters.flows &+= 1
        let id = state.id, clientIsFirst = state.clientIsFirst ?? true
        let one = (ip: key.address1.description, port: key.port1), two = (ip: key.address2.description, port: key.port2)
        let client = clientIsFirst ? one : two, server = clientIsFirst ? two : one
        let vlan = AnalyzeSink.vlan(key)
        let record = RecordFlow(key: key, originatorIsFirst: state.firstSentFirst ?? clientIsFirst,
                                created: state.created == .zero ? Timestamp(epochSeconds: time) : state.created)
        state.record = record
        http?.open(flow: id, client: HTTPEndpoint(ip: client.ip, port: client.port), server: HTTPEndpoint(ip: server.ip, port: server.port),
                   vlan: vlan, time: time, record: record)
        tls?.open(flow: id, client: client, server: server, vlan: vlan, time: time, record: record)
        dns?.open(flow: id, client: client, server: server, vlan: vlan, time: time, record: record)
        quic?.open(flow: id, client: client, server: server, vlan: vlan, time: time, record: record)
    }

    /// Forgets UDP flows idle for `udpIdle`, at most once a second of stream time.
    private func sweepIdle(_ time: Timestamp) {
        guard time >= nextIdleSweep else { return }
        closeIdle(before: Timestamp(nanoseconds: time.nanoseconds &- Self.udpIdle.nanoseconds))
        nextIdleSweep = Timestamp(nanoseconds: time.nanoseconds &+ 1_000_000_000)
    }

    private func close(_ key: FlowKey, _ state: FlowState, time: Timestamp) {
        guard state.clientIsFirst != nil else {
            // Ends with its first bytes still held, as `analyze` counts it.
            if state.held != nil { counters.undecidedFlows &+= 1 }
            return
        }
        let t = AnalyzeSink.seconds(time)
        http?.close(flow: state.id, time: t)
        tls?.close(flow: state.id, time: t)
        dns?.close(flow: state.id)
        quic?.close(flow: state.id, time: t)
    }
}
