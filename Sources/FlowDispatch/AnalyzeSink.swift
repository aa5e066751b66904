import Outputs
import FlowCore
import Analyzers
import Classify
import Flows
import PacketCore
import RecordModel
import SFTapConfig

/// Feeds the flow engine's streams to the built-in analyzers (`flowtap analyze`) and hands each JSON record
/// line to `emit`.
///
/// Routing without a config (the built-in default), decided from a flow's first bytes:
/// - TCP: an HTTP request line (or a response line, for a flow picked up mid-stream) → HTTP; a TLS handshake
///   record → TLS; port 53 → DNS over TCP. A request line is an RFC 9110 method token, a space, a
///   request-target and "HTTP/" on a complete first line; a registered method and a space are enough on
///   their own, and "GET /path" alone is HTTP/0.9 (FTP's "USER x" or SMTP's "EHLO host" are not HTTP). While a direction's first bytes could still
///   become one of these ("G", "CCM_PO", 0x16 0x03), they are held and examined again with the next chunk,
///   up to `firstBytesLimit` bytes or `HeldStream.maxEvents` chunks; past that the flow is ignored and
///   counted in `undecidedFlows`. Chunks that cannot start any of these are skipped (not analyzed); after
///   two of them the flow is ignored (`unroutedFlows`).
/// - The client is the side that sent the request or ClientHello; for DNS the side not on port 53.
/// - UDP on ports 53, 5353 and 5355 → DNS, one message per datagram.
/// - Other UDP: a flow on port 443, or whose datagram starts with a QUIC long header of a version the
///   QUIC analyzer decrypts → QUIC. The client is the sender of that first datagram, unless it sends from
///   port 443 to another port. Up to the first four datagrams are looked at.
///
/// Routing with an SF-TAP config (`init(settings:)`), classified as `flowtap abstract` classifies:
/// - TCP: a flow's bytes are held until the classifier answers, at the moments `Abstractor` asks
///   (`ClassifierHoldPolicy`: both directions have data, one holds more than 64 KiB, or the flow ends; a flow
///   no rule matches is given up past 128 KiB). The matched rule's interface name picks the analyzer
///   (`route(interface:)`), and the held chunks are replayed with their own times. The client is the side
///   whose first bytes say so (as above, when they agree with the class), else the `up` side of the rule,
///   else for DNS the side not on port 53, else the side that sent first.
/// - UDP: each datagram is classified alone; a DNS class makes it one DNS message, a QUIC class opens (the
///   client decided as above) or feeds the flow's QUIC analysis.
/// - Flows and datagrams whose interface has no analyzer are counted per rule (`unanalyzed`).
public final class AnalyzeSink: FlowEventSink {
    public struct Counters: Sendable {
        public var httpFlows: UInt64 = 0
        public var tlsFlows: UInt64 = 0
        public var dnsTCPFlows: UInt64 = 0
        public var dnsDatagrams: UInt64 = 0
        public var quicFlows: UInt64 = 0
        /// Built-in routing: flows whose first chunks start no known protocol.
        public var unroutedFlows: UInt64 = 0
        /// Built-in routing: flows still undecided at `firstBytesLimit` bytes or `HeldStream.maxEvents` chunks,
        /// or at their end.
        public var undecidedFlows: UInt64 = 0
        /// With a config: TCP flows no rule matched (no `tcp_default`), at their end.
        public var unclassifiedTCPFlows: UInt64 = 0
        /// With a config: TCP flows given up unclassified past `ClassifierHoldPolicy.giveUpThreshold` held bytes.
        public var givenUpTCPFlows: UInt64 = 0
        /// With a config: UDP datagrams no rule matched (no `udp_default`).
        public var unclassifiedDatagrams: UInt64 = 0
        /// HTTP CONNECT tunnels (not carrying plain HTTP) whose bytes were routed again by their first bytes.
        public var connectTunnels: UInt64 = 0
        /// SOCKS handshakes read; of them, those that opened a tunnel (then routed by its first bytes) and
        /// those refused or malformed.
        public var socksFlows: UInt64 = 0
        public var socksTunnels: UInt64 = 0
        public var socksFailed: UInt64 = 0
    }

    /// `socks`: a SOCKS handshake is being read; its tunnel is routed afterwards.
    enum Route: UInt8 { case undecided, http, tls, dns, quic, socks, none }

    /// What a direction's first bytes say.
    enum FirstBytes: Equatable {
        case decided(Route, senderIsClient: Bool)
        /// They could still start a request line, a response line or a TLS record.
        case needMore
        /// They start none of them.
        case no
    }

    struct FlowState {
        var id: UInt64 = 0
        /// Whether the flow's first packet was seen, and whether endpoint 1 of its key started the flow (as
        /// flow records decide: the SYN's sender, the SYN-ACK's receiver, else the first packet's sender).
        var started = false
        var originatorIsFirst = true
        /// The shared record fields and the endpoints' text, made once per flow when first needed.
        var record: RecordFlow?
        var endpoints: (one: (ip: String, port: UInt16), two: (ip: String, port: UInt16))?
        var route: Route = .undecided
        var clientIsFirst = true
        /// Built-in routing: chunks that started nothing known.
        var chunksSeen: UInt8 = 0
        /// Bytes held until the route is known.
        var held: HeldStream?
        /// The SOCKS handshake in front of the flow's tunnel.
        var socks: SOCKSHandshake?
        /// The flow's bytes now are a tunnel's (after CONNECT or SOCKS): routed by first bytes, whatever the config.
        var inTunnel = false
    }

    /// Community ID seed written in records (0 unless the user chose another, as every tool must agree on it).
    public var communityIDSeed: UInt16 = 0

    /// Built-in routing examines at most this many first bytes of a direction.
    public static let firstBytesLimit = 4096

    public let http: HTTPAnalyzer
    public let tls: TLSAnalyzer
    public let dns: DNSAnalyzer
    public let quic: QUICAnalyzer
    public internal(set) var counters = Counters()
    var flows: [FlowState] = []

    /// With a config: the classifier, and per rule its name, interface and analyzer.
    let classifier: Classifier?
    public let ruleNames: [String]
    public let ruleInterfaces: [String]
    let ruleRoutes: [Route]
    var unanalyzedFlows: [UInt64]
    var unanalyzedDatagrams: [UInt64]
    /// With a config: called with each TCP flow's rule name when it is classified (for tests and tools).
    public var onClassified: ((FlowKey, String) -> Void)?

    /// Built-in first-bytes routing.
    /// The DNS, TLS and QUIC analyzers each track at most this many flows at once by default.
    public static let defaultAnalyzerFlows = 65_536

    /// `lines` receives each record, its newline included, valid during the call (no String is made).
    public convenience init(bodies: Bool = false, analyzerFlows: Int = defaultAnalyzerFlows, lines: @escaping RecordLines) {
        self.init(bodies: bodies, analyzerFlows: analyzerFlows, classification: nil, classifier: nil, lines: lines)
    }

    /// Records as `String` lines (tests and tools).
    public convenience init(bodies: Bool = false, analyzerFlows: Int = defaultAnalyzerFlows, emit: @escaping (String) -> Void) {
        self.init(bodies: bodies, analyzerFlows: analyzerFlows, lines: { emit(String(decoding: $0, as: UTF8.self)) })
    }

    /// Routing by an SF-TAP config's classification (see the type's description).
    public convenience init(bodies: Bool = false, analyzerFlows: Int = defaultAnalyzerFlows, settings: SFTapSettings,
                            lines: @escaping RecordLines) throws(ClassifierError) {
        let classification = SFTapClassification(settings: settings)
        self.init(bodies: bodies, analyzerFlows: analyzerFlows, classification: classification, classifier: try classification.makeClassifier(),
                  lines: lines)
    }

    /// Records as `String` lines (tests and tools).
    public convenience init(bodies: Bool = false, analyzerFlows: Int = defaultAnalyzerFlows, settings: SFTapSettings,
                            emit: @escaping (String) -> Void) throws(ClassifierError) {
        try self.init(bodies: bodies, analyzerFlows: analyzerFlows, settings: settings, lines: { emit(String(decoding: $0, as: UTF8.self)) })
    }

    private init(bodies: Bool, analyzerFlows: Int, classification: SFTapClassification?, classifier: Classifier?, lines: @escaping RecordLines) {
        var options = HTTPAnalyzer.Options()
        options.bodies = bodies
        options.handOffTunnels = true
        http = HTTPAnalyzer(options: options, lines: lines)
        tls = TLSAnalyzer(maxFlows: analyzerFlows, lines: lines)
        dns = DNSAnalyzer(maxFlows: analyzerFlows, lines: lines)
        quic = QUICAnalyzer(maxFlows: analyzerFlows, lines: lines)
        self.classifier = classifier
        ruleNames = classification?.rules.map(\.name) ?? []
        ruleInterfaces = classification?.rules.map(\.interface) ?? []
        ruleRoutes = ruleInterfaces.map(Self.route(interface:))
        unanalyzedFlows = [UInt64](repeating: 0, count: ruleNames.count)
        unanalyzedDatagrams = unanalyzedFlows
    }

    /// The analyzer for a config interface: `https`, `tls*`, `ssl*` → TLS; `http*` (http, http_proxy …),
    /// `websocket*`, `torrent_tracker*` (carried over HTTP) → HTTP; `dns*` → DNS; `quic*` → QUIC; else none.
    static func route(interface: String) -> Route {
        let name = interface.lowercased()
        if name == "https" || name.hasPrefix("tls") || name.hasPrefix("ssl") { return .tls }
        if name.hasPrefix("http") || name.hasPrefix("websocket") || name.hasPrefix("torrent_tracker") { return .http }
        if name.hasPrefix("dns") { return .dns }
        if name.hasPrefix("quic") { return .quic }
        return .none
    }

    /// With a config: per interface without an analyzer, the TCP flows and UDP datagrams classified into it.
    public var unanalyzed: [(interface: String, flows: UInt64, datagrams: UInt64)] {
        var result: [(interface: String, flows: UInt64, datagrams: UInt64)] = []
        for (i, name) in ruleInterfaces.enumerated() where unanalyzedFlows[i] > 0 || unanalyzedDatagrams[i] > 0 {
            if let j = result.firstIndex(where: { $0.interface == name }) {
                result[j].flows += unanalyzedFlows[i]
                result[j].datagrams += unanalyzedDatagrams[i]
            } else {
                result.append((name, unanalyzedFlows[i], unanalyzedDatagrams[i]))
            }
        }
        return result
    }

    @inline(__always)
    static func isDNSPort(_ port: UInt16) -> Bool { port == 53 || port == 5353 || port == 5355 }

    static func seconds(_ t: Timestamp) -> Double { Double(t.seconds) + Double(t.microseconds) * 1e-6 }

    static func vlan(_ key: FlowKey) -> Int? { key.vlan == FlowKey.noVLAN ? nil : Int(key.vlan) }

    public func flowCreated(_ flow: FlowView, time: Timestamp) {
        guard flow.key.ipProtocol == 6 || flow.key.ipProtocol == 17 else { return }
        if flow.slot >= flows.count { flows.append(contentsOf: repeatElement(FlowState(), count: flow.slot + 1 - flows.count)) }
        flows[flow.slot] = FlowState(id: flow.id)
    }

    /// Learns who started the flow from its first packet.
    public func flowPacket(_ flow: FlowView, fromFirst: Bool, packet: FlowPacket, time: Timestamp) {
        guard flow.slot < flows.count, flows[flow.slot].id == flow.id, !flows[flow.slot].started else { return }
        flows[flow.slot].started = true
        flows[flow.slot].originatorIsFirst = packet.tcpFlags & 0x12 == 0x12 ? !fromFirst : fromFirst
    }

    /// The flow's shared record fields, made at its first record.
    func record(_ flow: FlowView) -> RecordFlow? {
        guard flow.slot < flows.count, flows[flow.slot].id == flow.id else { return nil }
        if let record = flows[flow.slot].record { return record }
        let record = RecordFlow(key: flow.key, originatorIsFirst: flows[flow.slot].originatorIsFirst, created: flow.created,
                                communityIDSeed: communityIDSeed)
        flows[flow.slot].record = record
        return record
    }

    /// The endpoints' addresses as text, made once per flow (not per datagram).
    func endpoints(_ flow: FlowView) -> (one: (ip: String, port: UInt16), two: (ip: String, port: UInt16)) {
        if flow.slot < flows.count, flows[flow.slot].id == flow.id, let e = flows[flow.slot].endpoints { return e }
        let key = flow.key
        let e = (one: (ip: key.address1.description, port: key.port1), two: (ip: key.address2.description, port: key.port2))
        if flow.slot < flows.count, flows[flow.slot].id == flow.id { flows[flow.slot].endpoints = e }
        return e
    }

    // MARK: Data

    public func flowData(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        let key = flow.key
        if key.ipProtocol == 17 {
            if classifier != nil { return classifiedDatagram(flow, fromFirst: fromFirst, bytes: bytes, time: time) }
            guard Self.isDNSPort(key.port1) || Self.isDNSPort(key.port2) else {
                return quicDatagram(flow, fromFirst: fromFirst, bytes: bytes, time: Self.seconds(time), take: nil)
            }
            dnsDatagram(flow, fromFirst: fromFirst, bytes: bytes, time: time)
            return
        }
        guard key.ipProtocol == 6, flow.slot < flows.count, flows[flow.slot].id == flow.id, !bytes.isEmpty else { return }
        if flows[flow.slot].route == .undecided {
            if classifier != nil && !flows[flow.slot].inTunnel {
                holdForClassifier(flow, fromFirst: fromFirst, bytes: bytes, time: time)
            } else {
                routeByFirstBytes(flow, fromFirst: fromFirst, bytes: bytes, time: time)
            }
            return
        }
        deliver(flow, fromFirst: fromFirst, bytes: bytes, time: time)
    }

    /// Hands a chunk of a routed TCP flow to its analyzer.
    func deliver(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        // Two fields, not the whole state: a copy of it retained and released its strings and buffers
        // with every chunk.
        let fromClient = fromFirst == flows[flow.slot].clientIsFirst
        let t = Self.seconds(time)
        switch flows[flow.slot].route {
        case .http:
            if http.data(flow: flow.id, fromClient: fromClient, bytes: bytes, time: t) { connectTunnel(flow, time: time) }
        case .tls: tls.data(flow: flow.id, fromClient: fromClient, bytes: bytes, time: t)
        case .dns: dns.data(flow: flow.id, fromClient: fromClient, bytes: bytes, time: t)
        case .socks: socksData(flow, fromClient: fromClient, bytes: bytes, time: time)
        case .undecided, .quic, .none: break
        }
    }

    // MARK: Tunnels

    /// A CONNECT tunnel the HTTP analyzer handed back (not plain HTTP): its bytes are routed again by
    /// their first bytes, so TLS through a proxy is analysed as TLS.
    func connectTunnel(_ flow: FlowView, time: Timestamp) {
        let chunks = http.takeTunnel(flow: flow.id)
        counters.connectTunnels &+= 1
        openTunnel(flow)
        let clientIsFirst = flows[flow.slot].clientIsFirst
        for chunk in chunks where !chunk.bytes.isEmpty {
            chunk.bytes.withUnsafeBytes { flowData(flow, fromFirst: chunk.fromClient == clientIsFirst, bytes: $0, time: time) }
        }
    }

    func socksData(_ flow: FlowView, fromClient: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        // The first chunk routed here is the client's greeting or request, which names the version.
        let socks = flows[flow.slot].socks ?? SOCKSHandshake(version: bytes.first == 4 ? .four : .five)
        flows[flow.slot].socks = socks
        switch socks.consume(fromClient: fromClient, bytes) {
        case .handshaking:
            break
        case .failed:
            counters.socksFailed &+= 1
            flows[flow.slot].socks = nil
            flows[flow.slot].route = .none
        case .tunnel:
            counters.socksTunnels &+= 1
            openTunnel(flow)
            let clientIsFirst = flows[flow.slot].clientIsFirst
            for chunk in socks.early {
                chunk.bytes.withUnsafeBytes { flowData(flow, fromFirst: chunk.fromClient == clientIsFirst, bytes: $0, time: time) }
            }
        }
    }

    /// The flow's next bytes are a tunnel's: routed from scratch by their first bytes.
    private func openTunnel(_ flow: FlowView) {
        var state = FlowState(id: flow.id)
        state.clientIsFirst = flows[flow.slot].clientIsFirst
        state.started = flows[flow.slot].started
        state.originatorIsFirst = flows[flow.slot].originatorIsFirst
        state.record = flows[flow.slot].record
        state.endpoints = flows[flow.slot].endpoints
        state.inTunnel = true
        flows[flow.slot] = state
    }

    func dnsDatagram(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        counters.dnsDatagrams &+= 1
        let (a, b) = endpoints(flow)
        dns.datagram(source: fromFirst ? a : b, destination: fromFirst ? b : a, vlan: Self.vlan(flow.key), bytes: bytes, time: Self.seconds(time),
                     record: record(flow))
    }

    /// Built-in routing of an undecided TCP flow's chunk.
    func routeByFirstBytes(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        switch Self.examineFirstBytes(&flows[flow.slot].held, key: flow.key, fromFirst: fromFirst, bytes: bytes, time: time) {
        case .decided(let route, let senderIsClient):
            open(flow, route: route, clientIsFirst: fromFirst == senderIsClient, time: time)
            if let h = flows[flow.slot].held {
                flows[flow.slot].held = nil
                replay(flow, h)
            } else {
                deliver(flow, fromFirst: fromFirst, bytes: bytes, time: time)
            }
        case .holding:
            break
        case .overLimit:
            flows[flow.slot].route = .none
            counters.undecidedFlows &+= 1
        case .no:
            Self.dropFirstBytes(&flows[flow.slot].held, fromFirst: fromFirst)
            flows[flow.slot].chunksSeen += 1
            if flows[flow.slot].chunksSeen >= 2 {
                flows[flow.slot].route = .none
                flows[flow.slot].held = nil
                counters.unroutedFlows &+= 1
            }
        }
    }

    /// Sets a TCP flow's route and client and opens its analyzer.
    func open(_ flow: FlowView, route: Route, clientIsFirst: Bool, time: Timestamp) {
        let key = flow.key
        flows[flow.slot].route = route
        flows[flow.slot].clientIsFirst = clientIsFirst
        let (one, two) = endpoints(flow)
        let client = clientIsFirst ? one : two, server = clientIsFirst ? two : one
        let record = record(flow)
        let t = Self.seconds(time)
        switch route {
        case .socks:
            counters.socksFlows &+= 1
        case .http:
            counters.httpFlows &+= 1
            http.open(flow: flow.id, client: HTTPEndpoint(ip: client.ip, port: client.port), server: HTTPEndpoint(ip: server.ip, port: server.port),
                      vlan: Self.vlan(key), time: t, record: record)
        case .tls:
            counters.tlsFlows &+= 1
            tls.open(flow: flow.id, client: client, server: server, vlan: Self.vlan(key), time: t, record: record)
        case .dns:
            counters.dnsTCPFlows &+= 1
            dns.open(flow: flow.id, client: client, server: server, vlan: Self.vlan(key), time: t, record: record)
        case .undecided, .quic, .none:
            break
        }
    }

    func replay(_ flow: FlowView, _ held: HeldStream) {
        held.replay(data: { fromFirst, bytes, time in
            deliver(flow, fromFirst: fromFirst, bytes: bytes, time: time)
        }, gap: { fromFirst, length, _ in
            gap(flow, fromFirst: fromFirst, length: length)
        })
    }

    // MARK: Gaps and ends

    public func flowGap(_ flow: FlowView, fromFirst: Bool, length: Int, time: Timestamp) {
        guard flow.key.ipProtocol == 6, flow.slot < flows.count, flows[flow.slot].id == flow.id else { return }
        if flows[flow.slot].route == .undecided, let held = flows[flow.slot].held {
            if classifier != nil {
                held.appendGap(fromFirst: fromFirst, length: length, time: time)
            } else if held.count(fromFirst: fromFirst) > 0 {
                // The held first bytes no longer continue: this direction starts over.
                held.drop(fromFirst: fromFirst)
                if held.events.isEmpty { flows[flow.slot].held = nil }
            }
            return
        }
        gap(flow, fromFirst: fromFirst, length: length, time: time)
    }

    func gap(_ flow: FlowView, fromFirst: Bool, length: Int, time: Timestamp? = nil) {
        guard flows[flow.slot].route == .http else { return }
        http.gap(flow: flow.id, fromClient: fromFirst == flows[flow.slot].clientIsFirst, length: length, time: time.map(Self.seconds))
    }

    public func flowDestroyed(_ flow: FlowView, reason: DestroyReason, time: Timestamp) {
        guard flow.key.ipProtocol == 6 || flow.key.ipProtocol == 17, flow.slot < flows.count, flows[flow.slot].id == flow.id else { return }
        if flows[flow.slot].route == .undecided && flow.key.ipProtocol == 6 && flows[flow.slot].held != nil {
            // As the abstractor does, a held flow is classified at its end with whatever it has.
            if classifier != nil {
                if !classify(flow) { counters.unclassifiedTCPFlows &+= 1 }
            } else {
                counters.undecidedFlows &+= 1
            }
        }
        switch flows[flow.slot].route {
        case .http: http.close(flow: flow.id, time: Self.seconds(time))
        case .tls: tls.close(flow: flow.id, time: Self.seconds(time))
        case .dns: dns.close(flow: flow.id)
        case .quic: quic.close(flow: flow.id, time: Self.seconds(time))
        case .undecided, .socks, .none: break
        }
        flows[flow.slot] = FlowState()
    }
}
