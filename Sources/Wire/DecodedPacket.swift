import PacketCore

/// Network layer found under the link header.
public enum NetworkLayer: UInt8, Sendable {
    case none, ipv4, ipv6, arp, other
}

/// Transport layer found under the IP header(s).
public enum TransportLayer: UInt8, Sendable {
    /// No transport header was decoded: not IP, a non-first fragment, or truncated.
    case none
    case tcp, udp, icmp, icmpv6
    /// An IP protocol FlowTap does not decode (GRE, ESP, SCTP, …); see `ipProtocol`.
    case other
}

/// TCP flag bits (RFC 9293 §3.1, RFC 3168 for ECE/CWR).
public struct TCPFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
    public static let ece = TCPFlags(rawValue: 0x40)
    public static let cwr = TCPFlags(rawValue: 0x80)
}

/// The TCP options FlowTap reads (RFC 9293 §3.2, RFC 7323, RFC 2018).
public struct TCPOptions: Sendable {
    public static let maxSACKBlocks = 4
    public var mss: UInt16 = 0
    public var hasMSS = false
    public var windowScale: UInt8 = 0
    public var hasWindowScale = false
    public var sackPermitted = false
    public var sackBlockCount: UInt8 = 0
    /// Left and right edges of up to four SACK blocks.
    public var sackBlocks: InlineArray<4, (left: UInt32, right: UInt32)> = .init(repeating: (0, 0))
    public var hasTimestamp = false
    public var timestampValue: UInt32 = 0
    public var timestampEcho: UInt32 = 0

    public init() {}
}

/// Everything the decoder learned about one packet.
///
/// The caller owns one instance and the decoder overwrites it per packet
/// (gopacket's `DecodingLayerParser` shape): decoding allocates nothing.
/// Offsets index the packet bytes given to `PacketDecoder.decode`.
public struct DecodedPacket: Sendable {
    public static let maxVLANTags = 4

    public var linkType: LinkType = .ethernet
    public var capturedLength = 0

    // Link layer
    /// The EtherType that named the network layer, after tags (0 when there was none).
    public var etherType: UInt16 = 0
    public var vlanDepth: UInt8 = 0
    /// VLAN IDs, outermost first; `vlanDepth` of them are valid.
    public var vlanIDs: InlineArray<4, UInt16> = .init(repeating: 0)
    public var mplsDepth: UInt8 = 0
    public var isPPPoE = false
    /// The outermost tunnel that was decapsulated, and how many (only with `decapsulateTunnels`).
    /// Network and transport fields then describe the innermost packet.
    public var tunnel: TunnelKind = .none
    public var tunnelDepth: UInt8 = 0

    // Network layer
    public var network: NetworkLayer = .none
    public var networkOffset = 0
    public var source: IPAddress = .zero
    public var destination: IPAddress = .zero
    /// IPv4: IHL×4. IPv6: 40 plus every extension header before the transport.
    public var ipHeaderLength = 0
    /// IPv4 total length; IPv6 40 + payload length. What the header claims, not what was captured.
    public var ipTotalLength = 0
    public var ttl: UInt8 = 0
    /// IPv4 identification, or the IPv6 fragment header's identification.
    public var ipIdentification: UInt32 = 0
    public var isFragment = false
    public var moreFragments = false
    public var dontFragment = false
    /// Fragment offset in bytes.
    public var fragmentOffset = 0
    /// Offset of the IPv6 fragment header, or 0.
    public var ipv6FragmentHeaderOffset = 0
    public var ipv6ExtensionCount: UInt8 = 0
    /// The protocol number of the header after IP (after IPv6 extensions).
    public var ipProtocol: UInt8 = 0

    // Transport layer
    public var transport: TransportLayer = .none
    public var transportOffset = 0
    public var sourcePort: UInt16 = 0
    public var destinationPort: UInt16 = 0
    public var tcpFlags: TCPFlags = []
    public var tcpSequence: UInt32 = 0
    public var tcpAcknowledgement: UInt32 = 0
    public var tcpWindow: UInt16 = 0
    public var tcpHeaderLength = 0
    public var tcpOptions = TCPOptions()
    public var icmpType: UInt8 = 0
    public var icmpCode: UInt8 = 0

    // Payload
    public var payloadOffset = 0
    /// Payload length the headers claim (TCP: IP length minus headers; UDP: UDP length minus 8).
    public var payloadLength = 0
    /// Payload bytes actually present in the capture.
    public var payloadCapturedLength = 0

    /// The first anomaly seen, or `.none`.
    public var anomaly: Anomaly = .none
    /// Every anomaly seen, one bit per `Anomaly.rawValue`.
    public var anomalyBits: UInt64 = 0

    public init() {}

    @usableFromInline
    static let blank = DecodedPacket()

    /// Resets every field so the struct can be reused for the next packet.
    @inlinable
    public mutating func reset(linkType: LinkType, capturedLength: Int) {
        // One copy of a blank packet: `DecodedPacket()` built a temporary field by field and then copied it.
        self = Self.blank
        self.linkType = linkType
        self.capturedLength = capturedLength
    }

    /// The outermost VLAN ID, or nil when untagged.
    @inlinable
    public var outerVLAN: UInt16? { vlanDepth > 0 ? vlanIDs[0] : nil }

    @inlinable
    public var isIP: Bool { network == .ipv4 || network == .ipv6 }

    @inlinable
    public func has(_ anomaly: Anomaly) -> Bool { anomalyBits & (1 << UInt64(anomaly.rawValue)) != 0 }

    /// True when any recorded anomaly says the bytes ended before a header did.
    @inlinable
    public var isTruncated: Bool { anomalyBits & Anomaly.truncationBits != 0 }
}
