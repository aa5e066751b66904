/// A closed set of things that can be wrong with a packet, in the manner of
/// Zeek's "weirds" and Suricata's decode events.
///
/// Decoders record a code, never a string; text is made only when counters
/// are printed. A packet can carry several anomalies; `DecodedPacket` keeps
/// the first and the counters keep all of them.
public enum Anomaly: UInt8, CaseIterable, Sendable {
    case none = 0

    // Capture and link layer
    case truncatedLinkHeader
    case unknownLinkType
    case vlanTooDeep
    case truncatedVLAN
    case unknownLoopbackFamily

    // IPv4 (RFC 791)
    case truncatedIPv4
    case ipv4BadVersion
    case ipv4BadHeaderLength
    case ipv4BadTotalLength
    case ipv4BadChecksum
    case ipv4BadOption
    case ipv4CapturedShort

    // IPv6 (RFC 8200)
    case truncatedIPv6
    case ipv6BadVersion
    case ipv6BadPayloadLength
    case ipv6TruncatedExtension
    case ipv6TooManyExtensions
    case ipv6HopByHopNotFirst
    case ipv6CapturedShort

    // Fragments
    case fragmentZeroLength
    case fragmentTooLarge
    case fragmentTiny

    // TCP (RFC 9293)
    case truncatedTCP
    case tcpBadDataOffset
    case tcpBadOption
    case tcpBadChecksum
    case tcpBadFlags

    // UDP (RFC 768)
    case truncatedUDP
    case udpBadLength
    case udpBadChecksum

    // ICMP / ICMPv6
    case truncatedICMP
    case icmpBadChecksum

    // Added later; kept last so earlier codes keep their numbers.
    /// IPv4 total length 0 on a frame longer than a header: captured before segmentation offload
    /// (TSO/GSO) split it. Taken as the captured length, as Wireshark and tshark do.
    case ipv4ZeroTotalLength

    /// Stable snake_case name used in stats output and logs.
    public var name: String {
        switch self {
        case .none: "none"
        case .truncatedLinkHeader: "truncated_link_header"
        case .unknownLinkType: "unknown_link_type"
        case .vlanTooDeep: "vlan_too_deep"
        case .truncatedVLAN: "truncated_vlan"
        case .unknownLoopbackFamily: "unknown_loopback_family"
        case .truncatedIPv4: "truncated_ipv4"
        case .ipv4BadVersion: "ipv4_bad_version"
        case .ipv4BadHeaderLength: "ipv4_bad_header_length"
        case .ipv4BadTotalLength: "ipv4_bad_total_length"
        case .ipv4BadChecksum: "ipv4_bad_checksum"
        case .ipv4BadOption: "ipv4_bad_option"
        case .ipv4CapturedShort: "ipv4_captured_short"
        case .truncatedIPv6: "truncated_ipv6"
        case .ipv6BadVersion: "ipv6_bad_version"
        case .ipv6BadPayloadLength: "ipv6_bad_payload_length"
        case .ipv6TruncatedExtension: "ipv6_truncated_extension"
        case .ipv6TooManyExtensions: "ipv6_too_many_extensions"
        case .ipv6HopByHopNotFirst: "ipv6_hop_by_hop_not_first"
        case .ipv6CapturedShort: "ipv6_captured_short"
        case .fragmentZeroLength: "fragment_zero_length"
        case .fragmentTooLarge: "fragment_too_large"
        case .fragmentTiny: "fragment_tiny"
        case .truncatedTCP: "truncated_tcp"
        case .tcpBadDataOffset: "tcp_bad_data_offset"
        case .tcpBadOption: "tcp_bad_option"
        case .tcpBadChecksum: "tcp_bad_checksum"
        case .tcpBadFlags: "tcp_bad_flags"
        case .truncatedUDP: "truncated_udp"
        case .udpBadLength: "udp_bad_length"
        case .udpBadChecksum: "udp_bad_checksum"
        case .truncatedICMP: "truncated_icmp"
        case .icmpBadChecksum: "icmp_bad_checksum"
        case .ipv4ZeroTotalLength: "ipv4_zero_total_length"
        }
    }

    /// `isTruncation` codes as a bit set over raw values.
    public static let truncationBits: UInt64 = allCases.reduce(0) { $1.isTruncation ? $0 | (1 << UInt64($1.rawValue)) : $0 }

    /// True for the codes that mean "the bytes ended before the header did".
    public var isTruncation: Bool {
        switch self {
        case .truncatedLinkHeader, .truncatedVLAN, .truncatedIPv4, .truncatedIPv6,
             .ipv6TruncatedExtension, .truncatedTCP, .truncatedUDP, .truncatedICMP,
             .ipv4CapturedShort, .ipv6CapturedShort:
            true
        default:
            false
        }
    }
}

/// One counter per `Anomaly`, allocated once.
public struct AnomalyCounters: Sendable {
    public private(set) var counts: [UInt64]

    public init() { counts = [UInt64](repeating: 0, count: Anomaly.allCases.count) }

    public mutating func record(_ anomaly: Anomaly) {
        counts[Int(anomaly.rawValue)] &+= 1
    }

    public subscript(_ anomaly: Anomaly) -> UInt64 { counts[Int(anomaly.rawValue)] }

    public var total: UInt64 { counts.dropFirst().reduce(0, &+) }

    public mutating func merge(_ other: AnomalyCounters) {
        for i in counts.indices { counts[i] &+= other.counts[i] }
    }

    /// Non-zero counters, in declaration order.
    public var nonZero: [(Anomaly, UInt64)] {
        Anomaly.allCases.dropFirst().compactMap { self[$0] > 0 ? ($0, self[$0]) : nil }
    }
}
