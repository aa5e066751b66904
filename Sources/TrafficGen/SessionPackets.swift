import PacketCore
import Wire

extension TrafficGenerator {
    /// A session's packets with their times, and what was done to them.
    struct SessionPlan {
        var packets: [(Timestamp, [UInt8])]
        var impairments: [Impairment]
        var counts: ImpairmentCounts
    }

    /// Every packet of a session with its time, impairments applied.
    public func packets(of s: Session, start: Timestamp, rng: inout SplitMix64) -> [(Timestamp, [UInt8])] {
        plan(s, start: start, rng: &rng).packets
    }

    /// Builds a session's packets. `rng` is the generator's main stream and is
    /// drawn from exactly as before impairments existed; impairment decisions
    /// come from the session's own stream.
    func plan(_ s: Session, start: Timestamp, rng: inout SplitMix64) -> SessionPlan {
        let halfRTT = Int64(rng.next() % 10_000_000 + 100_000)
        var out = SessionOutput(session: s, impairments: options.impairments, now: start.nanoseconds,
                                rng: SplitMix64(seed: options.seed, stream: UInt64(s.id)))
        switch s.kind {
        case .dns, .udp:
            for (fromClient, bytes) in s.messages {
                let ports = fromClient ? (s.clientPort, s.serverPort) : (s.serverPort, s.clientPort)
                out.send(fromClient, .udp(sourcePort: ports.0, destinationPort: ports.1), bytes, gap: halfRTT, fragmentable: true)
            }
        case .icmp:
            let v6 = s.client.isIPv6
            for (i, (fromClient, bytes)) in s.messages.enumerated() {
                let type: UInt8 = v6 ? (fromClient ? 128 : 129) : (fromClient ? 8 : 0)
                let rest = UInt32(s.clientPort) << 16 | UInt32(i / 2)
                out.send(fromClient, v6 ? .icmpv6(type: type, code: 0, rest: rest) : .icmp(type: type, code: 0, rest: rest), bytes,
                         gap: halfRTT, fragmentable: false)
            }
        case .http, .tls, .ssh, .tcp:
            let mss = Int(rng.next() % 925 + 536)
            let clientISN = UInt32(truncatingIfNeeded: rng.next())
            let serverISN = UInt32(truncatingIfNeeded: rng.next())
            var tcp = TCPSessionWriter(output: out, mss: mss, halfRTT: halfRTT, clientISN: clientISN, serverISN: serverISN)
            tcp.run()
            out = tcp.output
        }
        let impairments = Impairment.allCases.filter { out.impaired.contains($0) }
        return SessionPlan(packets: out.packets, impairments: impairments, counts: out.counts)
    }
}

/// Collects one session's frames, applying IP fragmentation.
struct SessionOutput {
    typealias Impairment = TrafficGenerator.Impairment

    let session: TrafficGenerator.Session
    let impairments: TrafficGenerator.Impairments
    let link: PacketBuilder.Link
    /// Capture time of the last packet, nanoseconds.
    var now: Int64
    /// The session's impairment decisions.
    var rng: SplitMix64
    var packets: [(Timestamp, [UInt8])] = []
    var impaired: Set<Impairment> = []
    var counts = TrafficGenerator.ImpairmentCounts()
    /// Identification for the next fragmented IPv4 datagram. Unfragmented
    /// datagrams keep identification 0, as before impairments existed.
    private var nextIPv4ID: UInt16 = 0

    init(session: TrafficGenerator.Session, impairments: TrafficGenerator.Impairments, now: Int64, rng: SplitMix64) {
        self.session = session
        self.impairments = impairments
        self.now = now
        self.rng = rng
        link = .ethernet(vlans: session.vlan.map { [PacketBuilder.VLANTag(id: $0)] } ?? [])
    }

    func network(_ fromClient: Bool) -> PacketBuilder.Network {
        let s = session
        let (src, dst) = fromClient ? (s.client, s.server) : (s.server, s.client)
        return src.isIPv6 ? .ipv6(.init(source: src, destination: dst)) : .ipv4(.init(source: src, destination: dst))
    }

    /// Advances the clock by `gap` and records one packet, as IP fragments when
    /// it is `fragmentable` (TCP data or UDP), long enough, and chosen.
    mutating func send(_ fromClient: Bool, _ transport: PacketBuilder.Transport, _ payload: [UInt8], gap: Int64, fragmentable: Bool) {
        now += gap
        let network = network(fromClient)
        let transportLength = transportHeaderLength(transport) + payload.count
        guard fragmentable, transportLength >= TrafficGenerator.Impairments.minimumFragmentableLength else {
            packets.append((Timestamp(nanoseconds: now), PacketBuilder.frame(link: link, network: network, transport: transport, payload: payload)))
            return
        }
        counts.fragmentCandidates += 1
        guard rng.chance(impairments.fragment) else {
            packets.append((Timestamp(nanoseconds: now), PacketBuilder.frame(link: link, network: network, transport: transport, payload: payload)))
            return
        }
        let (source, destination) = fromClient ? (session.client, session.server) : (session.server, session.client)
        let segment = PacketBuilder.segment(transport, payload: payload, source: source, destination: destination)
        // 2–4 fragments, each a multiple of 8 bytes and at least 64, so the
        // first holds the whole transport header.
        let pieces = 2 + rng.below(3)
        let share: Int = (segment.count + pieces - 1) / pieces
        let step: Int = max(64, (share + 7) / 8 * 8)
        var fragments: [[UInt8]]
        switch network {
        case .ipv4(var header):
            if nextIPv4ID == 0 { nextIPv4ID = UInt16(truncatingIfNeeded: rng.next() % 0xFFFE + 1) }
            header.identification = nextIPv4ID
            nextIPv4ID = nextIPv4ID == 0xFFFF ? 1 : nextIPv4ID + 1
            let datagram = PacketBuilder.ip(.ipv4(header), protocol: transport.number, payload: segment)
            fragments = PacketBuilder.fragmentIPv4(datagram, maxPayload: step)
        case .ipv6(let header):
            fragments = PacketBuilder.fragmentIPv6(header, protocol: transport.number, payload: segment, maxPayload: step,
                                                   identification: UInt32(truncatingIfNeeded: rng.next()))
        }
        counts.fragmentedDatagrams += 1
        counts.fragments += fragments.count
        impaired.insert(.fragment)
        if rng.chance(0.5) {
            let original = fragments
            for i in stride(from: fragments.count - 1, to: 0, by: -1) {
                fragments.swapAt(i, rng.below(i + 1))
            }
            if fragments == original { fragments.reverse() }
            counts.shuffledDatagrams += 1
        }
        for (i, fragment) in fragments.enumerated() {
            if i > 0 { now += 1_000 }
            packets.append((Timestamp(nanoseconds: now), PacketBuilder.wrap(link: link, datagram: fragment)))
        }
    }

    /// A packet the capture missed: its time passes, nothing is recorded.
    mutating func skip(gap: Int64) { now += gap }

    private func transportHeaderLength(_ transport: PacketBuilder.Transport) -> Int {
        switch transport {
        case .tcp(let t):
            var options = 0
            for option in t.options {
                switch option {
                case .mss: options += 4
                case .windowScale: options += 3
                case .sackPermitted: options += 2
                case .sack(let blocks): options += 2 + 8 * blocks.count
                case .timestamp: options += 10
                case .nop: options += 1
                }
            }
            return 20 + (options + 3) / 4 * 4
        case .udp, .icmp, .icmpv6: return 8
        case .raw: return 0
        }
    }
}

extension PacketBuilder.Transport {
    /// The IP protocol number.
    var number: UInt8 {
        switch self {
        case .tcp: IPProtocol.tcp
        case .udp: IPProtocol.udp
        case .icmp: IPProtocol.icmp
        case .icmpv6: IPProtocol.icmpv6
        case .raw(let p): p
        }
    }
}
