import Capture
import PacketCore
import Wire

/// Writes synthetic, protocol-correct traffic: whole TCP sessions (handshake,
/// data segmented at the MSS, ACKs, FIN exchange), DNS over UDP, UDP and ICMP
/// exchanges, over IPv4 or IPv6, optionally VLAN-tagged.
///
/// Output is deterministic for a seed. Packets of concurrent sessions are
/// interleaved in timestamp order; memory holds only the sessions still open.
public struct TrafficGenerator {
    public enum Kind: String, CaseIterable, Sendable {
        case http, tls, dns, ssh, tcp, udp, icmp
    }

    public struct Options: Sendable {
        public var sessions = 100
        public var seed: UInt64 = 1
        /// New sessions per second of capture time.
        public var sessionsPerSecond = 200.0
        public var kinds: [Kind] = Kind.allCases
        public var ipv6Fraction = 0.2
        public var vlanFraction = 0.1
        /// Capture start, seconds since the epoch.
        public var startTime: Int64 = 1_700_000_000
        public init() {}
    }

    /// One generated conversation: who talks, and what each side sends, in order.
    public struct Session: Sendable {
        public var kind: Kind
        public var client: IPAddress
        public var server: IPAddress
        public var clientPort: UInt16
        public var serverPort: UInt16
        public var vlan: UInt16?
        public var messages: [(fromClient: Bool, bytes: [UInt8])]
    }

    public struct Summary: Sendable {
        public var sessions = 0
        public var packets = 0
        public var bytes = 0
    }

    public var options: Options

    public init(options: Options) { self.options = options }

    /// Generates every session and hands each packet, in time order, to `emit`.
    public func generate(_ emit: (Timestamp, [UInt8]) throws -> Void) rethrows -> Summary {
        var rng = SplitMix64(seed: options.seed)
        var pending: [(Timestamp, Int, [UInt8])] = []
        var order = 0
        var summary = Summary()
        func flush(before limit: Timestamp?) throws {
            pending.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            var emitted = 0
            for item in pending {
                if let limit, !(item.0 < limit) { break }
                try emit(item.0, item.2)
                summary.packets += 1
                summary.bytes += item.2.count
                emitted += 1
            }
            pending.removeFirst(emitted)
        }
        let interval = 1e9 / max(options.sessionsPerSecond, 1e-6)
        for index in 0 ..< options.sessions {
            let start = Timestamp(nanoseconds: options.startTime * 1_000_000_000 + Int64(Double(index) * interval) + Int64(rng.next() % 1000))
            if index % 64 == 0 { try flush(before: start) }
            let session = makeSession(index: index, rng: &rng)
            for (time, frame) in packets(of: session, start: start, rng: &rng) {
                pending.append((time, order, frame))
                order += 1
            }
            summary.sessions += 1
        }
        try flush(before: nil)
        return summary
    }

    /// Generates into a pcap file.
    public func write(to path: String) throws -> Summary {
        let writer = try PcapWriter(path: path, linkType: .ethernet, nanoseconds: false)
        let summary = try generate { time, frame in try writer.write(timestamp: time, bytes: frame) }
        try writer.flush()
        return summary
    }

    func makeSession(index: Int, rng: inout SplitMix64) -> Session {
        let kind = options.kinds[Int(rng.next() % UInt64(options.kinds.count))]
        let v6 = rng.chance(options.ipv6Fraction)
        let clientHost = UInt32(index % 60_000 + 2)
        let serverHost = UInt32(rng.next() % 200 + 1)
        let client = v6 ? IPAddress(high: 0x2001_0DB8_0000_0001, low: UInt64(clientHost), isIPv6: true) : IPAddress(ipv4: 0x0A00_0000 | clientHost)
        let server = v6 ? IPAddress(high: 0x2001_0DB8_0000_0002, low: UInt64(serverHost), isIPv6: true) : IPAddress(ipv4: 0xC633_6400 | serverHost)
        let clientPort = UInt16(1024 + rng.next() % 64_000)
        let vlan: UInt16? = rng.chance(options.vlanFraction) ? UInt16(rng.next() % 4000 + 2) : nil
        var messages: [(Bool, [UInt8])] = []
        let serverPort: UInt16
        switch kind {
        case .http:
            serverPort = 80
            for request in 0 ..< Int(rng.next() % 3 + 1) {
                let (q, r) = ApplicationMessages.http(host: "www.site\(serverHost).example", path: "/page/\(index)/\(request)",
                                                      bodyLength: Int(rng.next() % 6000), rng: &rng)
                messages += [(true, q), (false, r)]
            }
        case .tls:
            serverPort = 443
            messages = [(true, ApplicationMessages.tlsClientHello(serverName: "secure\(serverHost).example", rng: &rng)),
                        (false, ApplicationMessages.tlsServerFlight(rng: &rng, dataLength: Int(rng.next() % 8000)))]
        case .dns:
            serverPort = 53
            let (q, r) = ApplicationMessages.dns(id: UInt16(truncatingIfNeeded: rng.next()), name: "host\(index).zone\(serverHost).example",
                                                 answer: 0xC000_0200 | UInt32(index % 250))
            messages = [(true, q), (false, r)]
        case .ssh:
            serverPort = 22
            messages = [(false, Array("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n".utf8)), (true, Array("SSH-2.0-OpenSSH_9.6\r\n".utf8)),
                        (true, rng.bytes(Int(rng.next() % 1500 + 100))), (false, rng.bytes(Int(rng.next() % 1500 + 100)))]
        case .tcp:
            serverPort = UInt16(10_000 + rng.next() % 5000)
            for _ in 0 ..< Int(rng.next() % 4 + 1) {
                messages.append((rng.chance(0.5), rng.bytes(Int(rng.next() % 4000 + 1))))
            }
        case .udp:
            serverPort = UInt16(20_000 + rng.next() % 5000)
            for _ in 0 ..< Int(rng.next() % 4 + 1) {
                messages.append((rng.chance(0.5), rng.bytes(Int(rng.next() % 1200 + 1))))
            }
        case .icmp:
            serverPort = 0
            for _ in 0 ..< Int(rng.next() % 3 + 1) {
                let data = rng.bytes(56)
                messages += [(true, data), (false, data)]
            }
        }
        return Session(kind: kind, client: client, server: server, clientPort: clientPort, serverPort: serverPort, vlan: vlan, messages: messages)
    }

    /// Every packet of a session with its time.
    public func packets(of s: Session, start: Timestamp, rng: inout SplitMix64) -> [(Timestamp, [UInt8])] {
        let halfRTT = Int64(rng.next() % 10_000_000 + 100_000)
        var now = start.nanoseconds
        var out: [(Timestamp, [UInt8])] = []
        let link = PacketBuilder.Link.ethernet(vlans: s.vlan.map { [PacketBuilder.VLANTag(id: $0)] } ?? [])
        func network(_ fromClient: Bool) -> PacketBuilder.Network {
            let (src, dst) = fromClient ? (s.client, s.server) : (s.server, s.client)
            return src.isIPv6 ? .ipv6(.init(source: src, destination: dst)) : .ipv4(.init(source: src, destination: dst))
        }
        func send(_ fromClient: Bool, _ transport: PacketBuilder.Transport, _ payload: [UInt8], gap: Int64) {
            now += gap
            out.append((Timestamp(nanoseconds: now), PacketBuilder.frame(link: link, network: network(fromClient), transport: transport, payload: payload)))
        }
        switch s.kind {
        case .dns, .udp:
            for (fromClient, bytes) in s.messages {
                let ports = fromClient ? (s.clientPort, s.serverPort) : (s.serverPort, s.clientPort)
                send(fromClient, .udp(sourcePort: ports.0, destinationPort: ports.1), bytes, gap: halfRTT)
            }
        case .icmp:
            let v6 = s.client.isIPv6
            for (i, (fromClient, bytes)) in s.messages.enumerated() {
                let type: UInt8 = v6 ? (fromClient ? 128 : 129) : (fromClient ? 8 : 0)
                let rest = UInt32(s.clientPort) << 16 | UInt32(i / 2)
                send(fromClient, v6 ? .icmpv6(type: type, code: 0, rest: rest) : .icmp(type: type, code: 0, rest: rest), bytes, gap: halfRTT)
            }
        case .http, .tls, .ssh, .tcp:
            let mss = Int(rng.next() % 925 + 536)
            var clientSeq = UInt32(truncatingIfNeeded: rng.next())
            var serverSeq = UInt32(truncatingIfNeeded: rng.next())
            func tcp(_ fromClient: Bool, _ flags: TCPFlags, _ payload: [UInt8] = [], gap: Int64) {
                var t = fromClient
                    ? PacketBuilder.TCP(sourcePort: s.clientPort, destinationPort: s.serverPort, sequence: clientSeq, acknowledgement: serverSeq, flags: flags)
                    : PacketBuilder.TCP(sourcePort: s.serverPort, destinationPort: s.clientPort, sequence: serverSeq, acknowledgement: clientSeq, flags: flags)
                if flags.contains(.syn) { t.options = [.mss(UInt16(mss)), .sackPermitted, .windowScale(7)] }
                if !flags.contains(.ack) { t.acknowledgement = 0 }
                send(fromClient, .tcp(t), payload, gap: gap)
                let advance = UInt32(payload.count) &+ (flags.contains(.syn) || flags.contains(.fin) ? 1 : 0)
                if fromClient { clientSeq &+= advance } else { serverSeq &+= advance }
            }
            tcp(true, [.syn], gap: 0)
            tcp(false, [.syn, .ack], gap: halfRTT)
            tcp(true, [.ack], gap: halfRTT)
            for (fromClient, bytes) in s.messages {
                var offset = 0
                while offset < bytes.count {
                    let end = min(offset + mss, bytes.count)
                    tcp(fromClient, end == bytes.count ? [.ack, .psh] : [.ack], Array(bytes[offset ..< end]), gap: 20_000)
                    offset = end
                }
                tcp(!fromClient, [.ack], gap: halfRTT)
            }
            tcp(true, [.fin, .ack], gap: halfRTT)
            tcp(false, [.fin, .ack], gap: halfRTT)
            tcp(true, [.ack], gap: halfRTT)
        }
        return out
    }
}
