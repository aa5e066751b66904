import Defragment
import PacketCore
import Wire
import XCTest

/// SplitMix64: a seeded generator, so every failure replays.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func bytes(_ count: Int) -> [UInt8] { (0 ..< count).map { _ in UInt8(truncatingIfNeeded: next()) } }
    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0 ..< 100, using: &self) < percent }
}

/// What happened to one fed frame, with the completed datagram copied out.
enum Outcome: Equatable {
    case notFragment
    case incomplete
    case complete([UInt8])
    case dropped(DefragmentDrop)

    var datagram: [UInt8]? {
        if case .complete(let bytes) = self { return bytes }
        return nil
    }
}

/// Decodes frames and feeds the fragments to a `Defragmenter`, as an engine would.
final class Harness {
    var decoder = PacketDecoder()
    var packet = DecodedPacket()
    let defrag: Defragmenter

    init(_ config: DefragmentConfig = DefragmentConfig()) {
        defrag = Defragmenter(config: config)
    }

    convenience init(policy: OverlapPolicy) {
        self.init(DefragmentConfig(policy: policy))
    }

    var counters: DefragmentCounters { defrag.counters }

    /// Decodes `frame`; fragments go to the defragmenter with the outer VLAN (or `vlan`).
    @discardableResult
    func feed(_ frame: [UInt8], link: LinkType = .raw, at nanoseconds: Int64 = 0, vlan: UInt16? = nil) -> Outcome {
        frame.withUnsafeBytes { raw in
            decoder.decode(raw, originalLength: raw.count, linkType: link, into: &packet)
            guard packet.isFragment else { return .notFragment }
            let result = defrag.process(packet, bytes: raw, vlan: vlan ?? packet.outerVLAN ?? 0, timestamp: Timestamp(nanoseconds: nanoseconds))
            switch result {
            case .incomplete: return .incomplete
            case .complete(let bytes): return .complete(Array(bytes))
            case .dropped(let reason): return .dropped(reason)
            }
        }
    }
}

/// Fixed addresses for hand-built cases.
enum Addresses {
    static let v4a = IPAddress("192.0.2.1")!
    static let v4b = IPAddress("198.51.100.7")!
    static let v6a = IPAddress("2001:db8::1")!
    static let v6b = IPAddress("2001:db8::2")!
}

/// One fragment as the tests describe it: data offset, bytes, More Fragments.
struct FragmentSpec {
    var offset: Int
    var data: [UInt8]
    var more: Bool
    var end: Int { offset + data.count }
}

/// Builds raw IP fragments of a datagram with the given id (protocol 253, RFC 3692 experimental, so there is no transport header).
enum FragmentFactory {
    static func ipv4(_ spec: FragmentSpec, id: UInt16, proto: UInt8 = 253, options: [UInt8] = [],
                     source: IPAddress = Addresses.v4a, destination: IPAddress = Addresses.v4b) -> [UInt8] {
        var header = PacketBuilder.IPv4(source: source, destination: destination)
        header.identification = id
        header.fragmentOffset = spec.offset
        header.moreFragments = spec.more
        header.options = options
        return PacketBuilder.ip(.ipv4(header), protocol: proto, payload: spec.data)
    }

    static func ipv6(_ spec: FragmentSpec, id: UInt32, proto: UInt8 = 253, extensions: [PacketBuilder.IPv6Extension] = [],
                     source: IPAddress = Addresses.v6a, destination: IPAddress = Addresses.v6b) -> [UInt8] {
        var header = PacketBuilder.IPv6(source: source, destination: destination)
        header.extensions = extensions + [.fragment(offset: spec.offset, more: spec.more, identification: id)]
        return PacketBuilder.ip(.ipv6(header), protocol: proto, payload: spec.data)
    }

    static func build(_ spec: FragmentSpec, ipv6: Bool, id: UInt32) -> [UInt8] {
        ipv6 ? self.ipv6(spec, id: id) : ipv4(spec, id: UInt16(truncatingIfNeeded: id))
    }
}

/// The payload of a reassembled raw-protocol datagram: everything after the IP header(s).
func reassembledPayload(_ datagram: [UInt8]) -> [UInt8] {
    guard let first = datagram.first else { return [] }
    if first >> 4 == 4 { return Array(datagram[Int(first & 0x0F) * 4 ..< datagram.count]) }
    return Array(datagram[40...])
}
