/// pcap LINKTYPE_ values (https://www.tcpdump.org/linktypes.html) that FlowTap decodes.
public struct LinkType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// BSD loopback: a 4-byte address family in the writer's byte order.
    public static let null = LinkType(rawValue: 0)
    public static let ethernet = LinkType(rawValue: 1)
    /// BSD/OS SLIP: a 16-byte pseudo-header, then IP.
    public static let slip = LinkType(rawValue: 8)
    /// PPP: optional 0xFF 0x03, then a 1- or 2-byte PPP protocol.
    public static let ppp = LinkType(rawValue: 9)
    /// PPP in HDLC-like framing (RFC 1662).
    public static let pppSerial = LinkType(rawValue: 50)
    /// Cisco HDLC: address, control, then an EtherType.
    public static let ciscoHDLC = LinkType(rawValue: 104)
    /// Frame Relay: Q.922 address, then RFC 2427 NLPID encapsulation.
    public static let frameRelay = LinkType(rawValue: 107)
    /// DLT_RAW as some BSDs number it.
    public static let rawBSD12 = LinkType(rawValue: 12)
    public static let rawBSD14 = LinkType(rawValue: 14)
    public static let raw = LinkType(rawValue: 101)
    /// OpenBSD loopback: the family in network byte order.
    public static let loop = LinkType(rawValue: 108)
    public static let linuxSLL = LinkType(rawValue: 113)
    public static let ipv4 = LinkType(rawValue: 228)
    public static let ipv6 = LinkType(rawValue: 229)
    public static let linuxSLL2 = LinkType(rawValue: 276)

    public var description: String {
        switch self {
        case .null: "NULL"
        case .ethernet: "EN10MB"
        case .slip: "SLIP"
        case .ppp: "PPP"
        case .pppSerial: "PPP_HDLC"
        case .ciscoHDLC: "C_HDLC"
        case .frameRelay: "FRELAY"
        case .rawBSD12, .rawBSD14, .raw: "RAW"
        case .loop: "LOOP"
        case .linuxSLL: "LINUX_SLL"
        case .ipv4: "IPV4"
        case .ipv6: "IPV6"
        case .linuxSLL2: "LINUX_SLL2"
        default: "LINKTYPE_\(rawValue)"
        }
    }
}
