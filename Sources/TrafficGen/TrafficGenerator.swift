import Capture
import PacketCore
import Wire

/// Writes synthetic, protocol-correct traffic: whole TCP sessions (handshake,
/// data segmented at the MSS, ACKs, FIN exchange), DNS over UDP, UDP and ICMP
/// exchanges, over IPv4 or IPv6, optionally VLAN-tagged, with optional seeded
/// impairments (`Impairments`: reordering, retransmission, overlapping
/// re-segmentation, IP fragmentation, mid-stream pickup, RST and no-FIN
/// endings, sequence wraparound).
///
/// Alongside the packets it reports every session's expected application data
/// (`SessionRecord`): the byte stream each TCP side's application reads, and
/// the UDP datagrams and ICMP echo payloads in arrival order. A flow engine's
/// reassembly can be checked against it byte for byte (`flowtap generate
/// --manifest`).
///
/// Invariants:
/// - Output is deterministic for a seed. Impairment decisions use a separate
///   per-session random stream, so with every impairment at 0 the capture is
///   byte-identical to one made before impairments existed (`samples/sample.pcap`).
/// - Every packet is well formed: lengths and checksums are right, fragments
///   reassemble, TCP sequence and acknowledgement numbers stay consistent.
/// - Memory holds only the sessions still open: packets of concurrent sessions
///   wait in a pending list and are flushed in timestamp order every 64 sessions,
///   and each `SessionRecord` is handed out once and not kept.
public struct TrafficGenerator {
    public enum Kind: String, CaseIterable, Sendable {
        case http, tls, dns, ssh, tcp, udp, icmp

        /// The transport the kind runs over.
        public var transport: Transport {
            switch self {
            case .http, .tls, .ssh, .tcp: .tcp
            case .dns, .udp: .udp
            case .icmp: .icmp
            }
        }
    }

    public enum Transport: String, Sendable {
        case tcp, udp, icmp
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
        /// Seeded impairments; all off by default.
        public var impairments = Impairments()
        public init() {}
    }

    /// One generated conversation: who talks, and what each side sends, in order.
    public struct Session: Sendable {
        /// Position in the capture's session order, from 0.
        public var id: Int
        public var kind: Kind
        public var client: IPAddress
        public var server: IPAddress
        /// For ICMP, the echo identifier.
        public var clientPort: UInt16
        /// 0 for ICMP.
        public var serverPort: UInt16
        public var vlan: UInt16?
        public var messages: [(fromClient: Bool, bytes: [UInt8])]
    }

    public struct Summary: Sendable {
        public var sessions = 0
        public var packets = 0
        public var bytes = 0
        /// What the impairments did, over all sessions.
        public var impairments = ImpairmentCounts()
        /// The most packets held at once waiting for their time: what memory
        /// is bounded by (the sessions still open), not the capture size.
        public var peakPendingPackets = 0
    }

    public var options: Options

    public init(options: Options) { self.options = options }

    /// Generates every session and hands each packet, in time order, to `emit`.
    public func generate(_ emit: (Timestamp, [UInt8]) throws -> Void) rethrows -> Summary {
        try generate(emit, sessions: { _ in })
    }

    /// Generates every session: each packet, in time order, goes to `emit`, and
    /// each session's record to `record`, in session order, as soon as the
    /// session is planned (before its last packets are emitted).
    public func generate(
        _ emit: (Timestamp, [UInt8]) throws -> Void,
        sessions record: (SessionRecord) throws -> Void
    ) rethrows -> Summary {
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
            let plan = self.plan(session, start: start, rng: &rng)
            for (time, frame) in plan.packets {
                pending.append((time, order, frame))
                order += 1
            }
            summary.peakPendingPackets = max(summary.peakPendingPackets, pending.count)
            summary.sessions += 1
            summary.impairments.add(plan.counts)
            try record(SessionRecord(session: session, impairments: plan.impairments, packets: plan.packets.count,
                                     firstPacket: plan.packets.first?.0 ?? start, lastPacket: plan.packets.last?.0 ?? start))
        }
        try flush(before: nil)
        return summary
    }

    /// Generates into a pcap file, and the expected-streams manifest (one JSON
    /// line per session, `SessionRecord.jsonLine()`) into `manifest` when given.
    public func write(to path: String, manifest: String? = nil) throws -> Summary {
        // The manifest first: a bad path fails before the capture is truncated.
        let lines = try manifest.map { try ManifestWriter(path: $0) }
        let writer = try PcapWriter(path: path, linkType: .ethernet, nanoseconds: false)
        let summary = try generate({ time, frame in try writer.write(timestamp: time, bytes: frame) },
                                   sessions: { record in try lines?.write(record.jsonLine()) })
        try writer.flush()
        try lines?.close()
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
        return Session(id: index, kind: kind, client: client, server: server, clientPort: clientPort, serverPort: serverPort, vlan: vlan, messages: messages)
    }
}
