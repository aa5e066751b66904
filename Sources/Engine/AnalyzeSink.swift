import Analyzers
import Flows
import PacketCore

/// Feeds the flow engine's streams to the built-in analyzers (`flowtap analyze`) and hands each JSON record
/// line to `emit`.
///
/// Routing, decided from a flow's first bytes (no configuration needed):
/// - TCP: an HTTP request line (or a response line, for a flow picked up mid-stream) → HTTP; a TLS handshake
///   record → TLS; port 53 → DNS over TCP. Up to the first two chunks are looked at; a flow that matches none
///   is ignored (counted).
/// - The client is the side that sent the request or ClientHello; for DNS the side not on port 53.
/// - UDP on ports 53, 5353 and 5355 → DNS, one message per datagram.
/// - Other UDP: a flow on port 443, or whose datagram starts with a QUIC long header of a version the
///   QUIC analyzer decrypts → QUIC. The client is the sender of that first datagram, unless it sends from
///   port 443 to another port. Up to the first four datagrams are looked at.
public final class AnalyzeSink: FlowEventSink {
    public struct Counters: Sendable {
        public var httpFlows: UInt64 = 0
        public var tlsFlows: UInt64 = 0
        public var dnsTCPFlows: UInt64 = 0
        public var dnsDatagrams: UInt64 = 0
        public var quicFlows: UInt64 = 0
        public var unroutedFlows: UInt64 = 0
    }

    enum Route: UInt8 { case undecided, http, tls, dns, quic, none }

    struct FlowState {
        var id: UInt64 = 0
        var route: Route = .undecided
        var clientIsFirst = true
        var chunksSeen = 0
    }

    public let http: HTTPAnalyzer
    public let tls: TLSAnalyzer
    public let dns: DNSAnalyzer
    public let quic: QUICAnalyzer
    public private(set) var counters = Counters()
    private var flows: [FlowState] = []

    public init(bodies: Bool = false, emit: @escaping (String) -> Void) {
        var options = HTTPAnalyzer.Options()
        options.bodies = bodies
        http = HTTPAnalyzer(options: options, emit: emit)
        tls = TLSAnalyzer(emit: emit)
        dns = DNSAnalyzer(emit: emit)
        quic = QUICAnalyzer(emit: emit)
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

    static func startsWithMethod(_ b: UnsafeRawBufferPointer) -> Bool {
        // An HTTP method token (RFC 9110 §9: upper-case letters here) then a space.
        var i = 0
        while i < b.count && i < 16 && b[i] >= UInt8(ascii: "A") && b[i] <= UInt8(ascii: "Z") { i += 1 }
        return i >= 3 && i < b.count && b[i] == UInt8(ascii: " ")
    }

    static func startsWith(_ b: UnsafeRawBufferPointer, _ prefix: StaticString) -> Bool {
        let n = prefix.utf8CodeUnitCount
        guard b.count >= n else { return false }
        for i in 0 ..< n where b[i] != prefix.utf8Start[i] { return false }
        return true
    }

    /// The analyzer a TCP chunk's first bytes pick, and whether its sender is the client (`.undecided` when
    /// none); the socket analyzers (`SFTapStreamAnalyzer`) decide the client the same way.
    static func route(firstBytes bytes: UnsafeRawBufferPointer, key: FlowKey, fromFirst: Bool) -> (route: Route, senderIsClient: Bool) {
        if startsWithMethod(bytes) { return (.http, true) }
        if startsWith(bytes, "HTTP/1.") { return (.http, false) }
        if bytes.count >= 6 && bytes[0] == 0x16 && bytes[1] == 0x03 {
            return (.tls, bytes[5] != 2) // a ServerHello came first
        }
        if key.port1 == 53 || key.port2 == 53 { return (.dns, (fromFirst ? key.port1 : key.port2) != 53) }
        return (.undecided, true)
    }

    public func flowData(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        let key = flow.key
        let t = Self.seconds(time)
        if key.ipProtocol == 17 {
            guard Self.isDNSPort(key.port1) || Self.isDNSPort(key.port2) else {
                return quicDatagram(flow, fromFirst: fromFirst, bytes: bytes, time: t)
            }
            counters.dnsDatagrams &+= 1
            let a = (ip: key.address1.description, port: key.port1), b = (ip: key.address2.description, port: key.port2)
            dns.datagram(source: fromFirst ? a : b, destination: fromFirst ? b : a, vlan: Self.vlan(key), bytes: bytes, time: t)
            return
        }
        guard key.ipProtocol == 6, flow.slot < flows.count, flows[flow.slot].id == flow.id else { return }
        if flows[flow.slot].route == .undecided { route(flow, fromFirst: fromFirst, bytes: bytes, time: t) }
        let state = flows[flow.slot]
        let fromClient = fromFirst == state.clientIsFirst
        switch state.route {
        case .http: http.data(flow: flow.id, fromClient: fromClient, bytes: bytes, time: t)
        case .tls: tls.data(flow: flow.id, fromClient: fromClient, bytes: bytes, time: t)
        case .dns: dns.data(flow: flow.id, fromClient: fromClient, bytes: bytes, time: t)
        case .undecided, .quic, .none: break
        }
    }

    private func route(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Double) {
        let key = flow.key
        let (route, senderIsClient) = Self.route(firstBytes: bytes, key: key, fromFirst: fromFirst)
        flows[flow.slot].chunksSeen += 1
        guard route != .undecided else {
            if flows[flow.slot].chunksSeen >= 2 {
                flows[flow.slot].route = .none
                counters.unroutedFlows &+= 1
            }
            return
        }
        let clientIsFirst = fromFirst == senderIsClient
        flows[flow.slot].route = route
        flows[flow.slot].clientIsFirst = clientIsFirst
        let one = (ip: key.address1.description, port: key.port1), two = (ip: key.address2.description, port: key.port2)
        let client = clientIsFirst ? one : two, server = clientIsFirst ? two : one
        switch route {
        case .http:
            counters.httpFlows &+= 1
            http.open(flow: flow.id, client: HTTPEndpoint(ip: client.ip, port: client.port), server: HTTPEndpoint(ip: server.ip, port: server.port),
                      vlan: Self.vlan(key), time: time)
        case .tls:
            counters.tlsFlows &+= 1
            tls.open(flow: flow.id, client: client, server: server, vlan: Self.vlan(key), time: time)
        case .dns:
            counters.dnsTCPFlows &+= 1
            dns.open(flow: flow.id, client: client, server: server, vlan: Self.vlan(key), time: time)
        case .undecided, .quic, .none:
            break
        }
    }

    /// A QUIC flow's client: the sender of its first datagram, unless that is sent from port 443 to another
    /// port (shared with the socket analyzers).
    static func quicSenderIsClient(key: FlowKey, fromFirst: Bool) -> Bool {
        !((fromFirst ? key.port1 : key.port2) == 443 && (fromFirst ? key.port2 : key.port1) != 443)
    }

    private func quicDatagram(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Double) {
        guard flow.slot < flows.count, flows[flow.slot].id == flow.id else { return }
        let key = flow.key
        if flows[flow.slot].route == .undecided {
            guard key.port1 == 443 || key.port2 == 443 || QUICAnalyzer.startsWithKnownLongHeader(bytes) else {
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

    public func flowGap(_ flow: FlowView, fromFirst: Bool, length: Int, time: Timestamp) {
        guard flow.key.ipProtocol == 6, flow.slot < flows.count, flows[flow.slot].id == flow.id, flows[flow.slot].route == .http else { return }
        http.gap(flow: flow.id, fromClient: fromFirst == flows[flow.slot].clientIsFirst, length: length)
    }

    public func flowDestroyed(_ flow: FlowView, reason: DestroyReason, time: Timestamp) {
        guard flow.key.ipProtocol == 6 || flow.key.ipProtocol == 17, flow.slot < flows.count, flows[flow.slot].id == flow.id else { return }
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
