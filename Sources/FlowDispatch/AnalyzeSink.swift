import Outputs
import FlowCore
import Analyzers
import Classify
import Flows
import PacketCore
import SFTapConfig

/// Feeds the flow engine's streams to the built-in analyzers (`flowtap analyze`) and hands each JSON record
/// line to `emit`.
///
/// Routing without a config (the built-in default), decided from a flow's first bytes:
/// - TCP: an HTTP request line (or a response line, for a flow picked up mid-stream) → HTTP; a TLS handshake
///   record → TLS; port 53 → DNS over TCP. A request line is an RFC 9110 method token, a space, a
///   request-target and "HTTP/" on a complete first line; 3 to 16 upper-case letters and a space are
///   enough on their own (which also takes HTTP/0.9 requests). While a direction's first bytes could still
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
    }

    enum Route: UInt8 { case undecided, http, tls, dns, quic, none }

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
        var route: Route = .undecided
        var clientIsFirst = true
        /// Built-in routing: chunks that started nothing known.
        var chunksSeen: UInt8 = 0
        /// Bytes held until the route is known.
        var held: HeldStream?
    }

    /// Built-in routing examines at most this many first bytes of a direction.
    public static let firstBytesLimit = 4096

    public let http: HTTPAnalyzer
    public let tls: TLSAnalyzer
    public let dns: DNSAnalyzer
    public let quic: QUICAnalyzer
    public private(set) var counters = Counters()
    private var flows: [FlowState] = []

    /// With a config: the classifier, and per rule its name, interface and analyzer.
    private let classifier: Classifier?
    public let ruleNames: [String]
    public let ruleInterfaces: [String]
    private let ruleRoutes: [Route]
    private var unanalyzedFlows: [UInt64]
    private var unanalyzedDatagrams: [UInt64]
    /// With a config: called with each TCP flow's rule name when it is classified (for tests and tools).
    public var onClassified: ((FlowKey, String) -> Void)?

    /// Built-in first-bytes routing.
    public convenience init(bodies: Bool = false, emit: @escaping (String) -> Void) {
        self.init(bodies: bodies, classification: nil, classifier: nil, emit: emit)
    }

    /// Routing by an SF-TAP config's classification (see the type's description).
    public convenience init(bodies: Bool = false, settings: SFTapSettings, emit: @escaping (String) -> Void) throws(ClassifierError) {
        let classification = SFTapClassification(settings: settings)
        self.init(bodies: bodies, classification: classification, classifier: try classification.makeClassifier(), emit: emit)
    }

    private init(bodies: Bool, classification: SFTapClassification?, classifier: Classifier?, emit: @escaping (String) -> Void) {
        var options = HTTPAnalyzer.Options()
        options.bodies = bodies
        http = HTTPAnalyzer(options: options, emit: emit)
        tls = TLSAnalyzer(emit: emit)
        dns = DNSAnalyzer(emit: emit)
        quic = QUICAnalyzer(emit: emit)
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

    // MARK: First bytes

    /// Whether `b` starts an HTTP request line (RFC 9112 §3): a method token and a space, and then either the
    /// method is 3 to 16 upper-case letters or the rest of the complete first line holds a request-target and
    /// "HTTP/" (no control bytes).
    /// `.needMore` while the bytes are a prefix of such a line (or of a status line, "HTTP/1.") that does not
    /// decide yet.
    static func httpStart(_ b: UnsafeRawBufferPointer) -> FirstBytes {
        let n = min(b.count, firstBytesLimit)
        let status: StaticString = "HTTP/1."
        var i = 0
        while i < n && i < status.utf8CodeUnitCount && b[i] == status.utf8Start[i] { i += 1 }
        if i == status.utf8CodeUnitCount { return .decided(.http, senderIsClient: false) }
        let maybeStatus = i == n
        // The method token (RFC 9110 §9.1: any token; 64 bytes is far beyond any registered method).
        var t = 0
        var upper = true
        while t < n && t < 64 && HTTPParser.isToken(b[t]) {
            upper = upper && b[t] >= UInt8(ascii: "A") && b[t] <= UInt8(ascii: "Z")
            t += 1
        }
        if t == n { return t < 64 || maybeStatus ? .needMore : .no }
        guard t > 0, b[t] == UInt8(ascii: " ") else { return maybeStatus ? .needMore : .no }
        if upper && t >= 3 && t <= 16 { return .decided(.http, senderIsClient: true) }
        // The rest of the first line, which must be complete and without control bytes.
        var end = t + 1
        while end < n && b[end] != UInt8(ascii: "\n") {
            if (b[end] < 0x20 && b[end] != 0x09 && b[end] != UInt8(ascii: "\r")) || b[end] == 0x7F { return .no }
            end += 1
        }
        guard end < n else { return .needMore } // the caller bounds how long a first line may take
        // "HTTP/" somewhere after a non-empty target: "GET / HTTP/1.1", and also "GET /HTTP/1.1", a request
        // line whose version lost its space, which servers still answer.
        var k = t + 1
        while k < end && b[k] == UInt8(ascii: " ") { k += 1 }
        guard k < end else { return .no }
        k += 1 // the target's first byte
        let version: StaticString = "HTTP/"
        var found = false
        while !found && k + version.utf8CodeUnitCount <= end {
            found = startsWith(UnsafeRawBufferPointer(rebasing: b[k ..< end]), version)
            k += 1
        }
        guard found else { return .no }
        return .decided(.http, senderIsClient: true)
    }

    static func startsWith(_ b: UnsafeRawBufferPointer, _ prefix: StaticString) -> Bool {
        let n = prefix.utf8CodeUnitCount
        guard b.count >= n else { return false }
        for i in 0 ..< n where b[i] != prefix.utf8Start[i] { return false }
        return true
    }

    /// What a TCP direction's first bytes say: the analyzer and whether their sender is the client.
    static func firstBytes(_ bytes: UnsafeRawBufferPointer, key: FlowKey, fromFirst: Bool) -> FirstBytes {
        let http = httpStart(bytes)
        if case .decided = http { return http }
        if bytes.count >= 6 && bytes[0] == 0x16 && bytes[1] == 0x03 {
            return .decided(.tls, senderIsClient: bytes[5] != 2) // a ServerHello came first
        }
        if key.port1 == 53 || key.port2 == 53 { return .decided(.dns, senderIsClient: (fromFirst ? key.port1 : key.port2) != 53) }
        let maybeTLS = bytes.count < 6 && (bytes.isEmpty || bytes[0] == 0x16) && (bytes.count < 2 || bytes[1] == 0x03)
        return http == .needMore || maybeTLS ? .needMore : .no
    }

    /// What built-in routing makes of a TCP chunk of a flow not yet routed (`examineFirstBytes`).
    enum FirstBytesStep: Equatable {
        /// The sending direction's first bytes decided; the caller replays `held` (which then ends with this
        /// chunk), or delivers the chunk when nothing is held.
        case decided(Route, senderIsClient: Bool)
        /// The chunk is held until a later one decides.
        case holding
        /// Still undecided at `firstBytesLimit` bytes of the direction or `HeldStream.maxEvents` chunks:
        /// `held` is emptied, the flow is to be given up and counted as undecided.
        case overLimit
        /// The direction's first bytes start nothing known; the chunk is in `held` when that is not nil
        /// (`dropFirstBytes` forgets the direction).
        case no
    }

    /// Built-in routing's holding of split first bytes, shared by `analyze` and the socket analyzers
    /// (`SFTapStreamAnalyzer`): examines a chunk together with what its direction holds, and holds it while
    /// the answer is `.needMore`, or while anything else is held (so a replay keeps the arrival order). After
    /// the call the chunk is in `held` exactly when `held` is not nil.
    static func examineFirstBytes(_ held: inout HeldStream?, key: FlowKey, fromFirst: Bool, bytes: UnsafeRawBufferPointer,
                                  time: Timestamp) -> FirstBytesStep {
        let verdict: FirstBytes
        if let h = held, h.count(fromFirst: fromFirst) > 0 {
            h.append(fromFirst: fromFirst, bytes: bytes, time: time)
            verdict = (fromFirst ? h.bytes1 : h.bytes2).withUnsafeBytes { firstBytes($0, key: key, fromFirst: fromFirst) }
        } else {
            verdict = firstBytes(bytes, key: key, fromFirst: fromFirst)
            if verdict == .needMore || held != nil {
                let h = held ?? HeldStream()
                h.append(fromFirst: fromFirst, bytes: bytes, time: time)
                held = h
            }
        }
        switch verdict {
        case .decided(let route, let senderIsClient):
            return .decided(route, senderIsClient: senderIsClient)
        case .needMore:
            guard let h = held, h.count(fromFirst: fromFirst) < firstBytesLimit && h.events.count < HeldStream.maxEvents else {
                held = nil
                return .overLimit
            }
            return .holding
        case .no:
            return .no
        }
    }

    /// Forgets what one direction of a not yet routed flow holds (its first bytes started nothing known).
    static func dropFirstBytes(_ held: inout HeldStream?, fromFirst: Bool) {
        guard let h = held else { return }
        h.drop(fromFirst: fromFirst)
        if h.events.isEmpty { held = nil }
    }

    // MARK: Data

    public func flowData(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        let key = flow.key
        if key.ipProtocol == 17 {
            if classifier != nil { return classifiedDatagram(flow, fromFirst: fromFirst, bytes: bytes, time: time) }
            guard Self.isDNSPort(key.port1) || Self.isDNSPort(key.port2) else {
                return quicDatagram(flow, fromFirst: fromFirst, bytes: bytes, time: Self.seconds(time), take: nil)
            }
            dnsDatagram(key, fromFirst: fromFirst, bytes: bytes, time: time)
            return
        }
        guard key.ipProtocol == 6, flow.slot < flows.count, flows[flow.slot].id == flow.id, !bytes.isEmpty else { return }
        if flows[flow.slot].route == .undecided {
            if classifier != nil {
                holdForClassifier(flow, fromFirst: fromFirst, bytes: bytes, time: time)
            } else {
                routeByFirstBytes(flow, fromFirst: fromFirst, bytes: bytes, time: time)
            }
            return
        }
        deliver(flow, fromFirst: fromFirst, bytes: bytes, time: time)
    }

    /// Hands a chunk of a routed TCP flow to its analyzer.
    private func deliver(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        let state = flows[flow.slot]
        let fromClient = fromFirst == state.clientIsFirst
        let t = Self.seconds(time)
        switch state.route {
        case .http: http.data(flow: flow.id, fromClient: fromClient, bytes: bytes, time: t)
        case .tls: tls.data(flow: flow.id, fromClient: fromClient, bytes: bytes, time: t)
        case .dns: dns.data(flow: flow.id, fromClient: fromClient, bytes: bytes, time: t)
        case .undecided, .quic, .none: break
        }
    }

    private func dnsDatagram(_ key: FlowKey, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        counters.dnsDatagrams &+= 1
        let a = (ip: key.address1.description, port: key.port1), b = (ip: key.address2.description, port: key.port2)
        dns.datagram(source: fromFirst ? a : b, destination: fromFirst ? b : a, vlan: Self.vlan(key), bytes: bytes, time: Self.seconds(time))
    }

    /// Built-in routing of an undecided TCP flow's chunk.
    private func routeByFirstBytes(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
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
    private func open(_ flow: FlowView, route: Route, clientIsFirst: Bool, time: Timestamp) {
        let key = flow.key
        flows[flow.slot].route = route
        flows[flow.slot].clientIsFirst = clientIsFirst
        let one = (ip: key.address1.description, port: key.port1), two = (ip: key.address2.description, port: key.port2)
        let client = clientIsFirst ? one : two, server = clientIsFirst ? two : one
        let t = Self.seconds(time)
        switch route {
        case .http:
            counters.httpFlows &+= 1
            http.open(flow: flow.id, client: HTTPEndpoint(ip: client.ip, port: client.port), server: HTTPEndpoint(ip: server.ip, port: server.port),
                      vlan: Self.vlan(key), time: t)
        case .tls:
            counters.tlsFlows &+= 1
            tls.open(flow: flow.id, client: client, server: server, vlan: Self.vlan(key), time: t)
        case .dns:
            counters.dnsTCPFlows &+= 1
            dns.open(flow: flow.id, client: client, server: server, vlan: Self.vlan(key), time: t)
        case .undecided, .quic, .none:
            break
        }
    }

    private func replay(_ flow: FlowView, _ held: HeldStream) {
        held.replay(data: { fromFirst, bytes, time in
            deliver(flow, fromFirst: fromFirst, bytes: bytes, time: time)
        }, gap: { fromFirst, length, _ in
            gap(flow, fromFirst: fromFirst, length: length)
        })
    }

    // MARK: Config classification

    /// Holds a TCP chunk and classifies when `Abstractor` would.
    private func holdForClassifier(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        let held = flows[flow.slot].held ?? HeldStream()
        flows[flow.slot].held = held
        held.append(fromFirst: fromFirst, bytes: bytes, time: time)
        let n1 = held.bytes1.count, n2 = held.bytes2.count
        guard ClassifierHoldPolicy.readyToClassify(held1: n1, held2: n2) else { return }
        if !classify(flow) && ClassifierHoldPolicy.givesUp(held1: n1, held2: n2) {
            counters.givenUpTCPFlows &+= 1
            flows[flow.slot].route = .none
            flows[flow.slot].held = nil
        }
    }

    /// Classifies a held TCP flow; on a match routes it by its rule's interface and replays the held chunks.
    /// Returns whether a rule matched.
    private func classify(_ flow: FlowView) -> Bool {
        guard let classifier, let held = flows[flow.slot].held else { return false }
        let key = flow.key
        let examined = ClassifierHoldPolicy.examinedBytes
        let result: Classification? = held.bytes1.withUnsafeBytes { b1 in
            held.bytes2.withUnsafeBytes { b2 in
                classifier.classifyTCP(port1: key.port1, port2: key.port2, buffer1: UnsafeRawBufferPointer(rebasing: b1.prefix(examined)),
                                       buffer2: UnsafeRawBufferPointer(rebasing: b2.prefix(examined)))
            }
        }
        guard let match = result else { return false }
        flows[flow.slot].held = nil
        onClassified?(key, ruleNames[match.ruleIndex])
        let route = ruleRoutes[match.ruleIndex]
        guard route == .http || route == .tls || route == .dns else {
            flows[flow.slot].route = .none
            unanalyzedFlows[match.ruleIndex] &+= 1
            return true
        }
        let clientIsFirst = Self.clientIsFirst(route: route, key: key, held: held, match: match)
        open(flow, route: route, clientIsFirst: clientIsFirst, time: held.events.first?.time ?? flow.created)
        replay(flow, held)
        return true
    }

    /// The client of a classified TCP flow: the side whose first bytes say so for this class, else the rule's
    /// `up` side, else for DNS the side not on port 53, else the side that sent first.
    static func clientIsFirst(route: Route, key: FlowKey, held: HeldStream, match: Classification) -> Bool {
        for fromFirst in [true, false] {
            let verdict = (fromFirst ? held.bytes1 : held.bytes2).withUnsafeBytes { b in
                b.isEmpty ? FirstBytes.no : firstBytes(b, key: key, fromFirst: fromFirst)
            }
            if case .decided(route, let senderIsClient) = verdict, route != .dns { return fromFirst == senderIsClient }
        }
        switch (match.first, match.second) {
        case (.up, _), (_, .down): return true
        case (.down, _), (_, .up): return false
        default: break
        }
        if route == .dns && (key.port1 == 53 || key.port2 == 53) { return key.port1 != 53 }
        return held.firstFromFirst ?? true
    }

    private func classifiedDatagram(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        let key = flow.key
        guard let match = classifier?.classifyUDP(port1: key.port1, port2: key.port2, payload: bytes) else {
            counters.unclassifiedDatagrams &+= 1
            return
        }
        switch ruleRoutes[match.ruleIndex] {
        case .dns: dnsDatagram(key, fromFirst: fromFirst, bytes: bytes, time: time)
        case .quic: quicDatagram(flow, fromFirst: fromFirst, bytes: bytes, time: Self.seconds(time), take: true)
        default: unanalyzedDatagrams[match.ruleIndex] &+= 1
        }
    }

    // MARK: QUIC

    /// A QUIC flow's client: the sender of its first datagram, unless that is sent from port 443 to another
    /// port (shared with the socket analyzers).
    static func quicSenderIsClient(key: FlowKey, fromFirst: Bool) -> Bool {
        !((fromFirst ? key.port1 : key.port2) == 443 && (fromFirst ? key.port2 : key.port1) != 443)
    }

    /// A UDP datagram for QUIC analysis; `take`: the config classified it as QUIC (nil: decide by port and header).
    private func quicDatagram(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Double, take: Bool?) {
        guard flow.slot < flows.count, flows[flow.slot].id == flow.id else { return }
        let key = flow.key
        if flows[flow.slot].route == .undecided {
            guard take ?? (key.port1 == 443 || key.port2 == 443 || QUICAnalyzer.startsWithKnownLongHeader(bytes)) else {
                flows[flow.slot].chunksSeen += 1
                if flows[flow.slot].chunksSeen >= 4 { flows[flow.slot].route = .none }
                return
            }
            let clientIsFirst = fromFirst == Self.quicSenderIsClient(key: key, fromFirst: fromFirst)
            flows[flow.slot].route = .quic
            flows[flow.slot].clientIsFirst = clientIsFirst
            counters.quicFlows &+= 1
            let one = (ip: key.address1.description, port: key.port1), two = (ip: key.address2.description, port: key.port2)
            quic.open(flow: flow.id, client: clientIsFirst ? one : two, server: clientIsFirst ? two : one, vlan: Self.vlan(key), time: time)
        }
        guard flows[flow.slot].route == .quic else { return }
        quic.datagram(flow: flow.id, fromClient: fromFirst == flows[flow.slot].clientIsFirst, bytes: bytes, time: time)
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
        gap(flow, fromFirst: fromFirst, length: length)
    }

    private func gap(_ flow: FlowView, fromFirst: Bool, length: Int) {
        guard flows[flow.slot].route == .http else { return }
        http.gap(flow: flow.id, fromClient: fromFirst == flows[flow.slot].clientIsFirst, length: length)
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
        case .undecided, .none: break
        }
        flows[flow.slot] = FlowState()
    }
}
