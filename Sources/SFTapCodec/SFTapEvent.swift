#if canImport(Glibc)
import Glibc
#endif
import PacketCore

/// One SF-TAP event header, as an analyzer reads it from an interface stream
/// (reference §2.1 text, §2.2 binary). A DATA event's body is handed beside it.
public struct SFTapEvent: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        case created = 0, destroyed = 1, data = 2
    }

    public enum Match: UInt8, Sendable {
        case up = 0, down = 1, none = 2

        /// The text format's word.
        public var text: StaticString {
            switch self {
            case .up: "up"
            case .down: "down"
            case .none: "none"
            }
        }
    }

    public var kind: Kind
    /// Endpoint 1 is the lower (address, port) in SF-TAP's order; it is not the client.
    public var address1: IPAddress
    public var address2: IPAddress
    /// 0 for ICMP, which has no port fields.
    public var port1: UInt16
    public var port2: UInt16
    /// The outer 802.1Q ID; `SFTapEvent.noVLAN` when untagged or not given (SF-TAP's `master` prints none).
    public var vlan: UInt16
    public var hop: UInt8
    /// IP protocol number: 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6.
    public var transport: UInt8
    /// DATA: `true` from endpoint 1, `false` from endpoint 2; `nil` for `from=none` and other events.
    public var fromFirst: Bool?
    public var match: Match
    /// DESTROYED: 0 NORMAL, 1 RESET, 2 TIMEOUT, 3 COMPROMISED.
    public var reason: UInt8
    /// Zero when a text header has no `time` (SF-TAP before December 2015).
    public var time: Timestamp
    /// DATA: the body length; 0 otherwise.
    public var length: Int

    public static let noVLAN: UInt16 = 0xFFFF

    public var isIPv6: Bool { address1.isIPv6 }

    public init(kind: Kind, address1: IPAddress, address2: IPAddress, port1: UInt16, port2: UInt16, vlan: UInt16 = noVLAN, hop: UInt8 = 0,
                transport: UInt8, fromFirst: Bool? = nil, match: Match = .none, reason: UInt8 = 0, time: Timestamp = .zero, length: Int = 0) {
        self.kind = kind
        self.address1 = address1
        self.address2 = address2
        self.port1 = port1
        self.port2 = port2
        self.vlan = vlan
        self.hop = hop
        self.transport = transport
        self.fromFirst = fromFirst
        self.match = match
        self.reason = reason
        self.time = time
        self.length = length
    }
}

/// Where each field sits in SF-TAP's packed 64-byte binary header (`fabs_appif_header`, reference
/// §2.2; VLAN at 61 as on the original's `vlan` branch). Addresses, ports and VLAN are big-endian;
/// the timeval and `len` are in host order (little-endian on x86-64 Linux, where SF-TAP runs).
public enum SFTapBinaryLayout {
    /// 16 bytes each; an IPv4 address fills the first four.
    public static let address1 = 0
    public static let address2 = 16
    /// `struct timeval`: 8-byte seconds, then 8-byte microseconds.
    public static let seconds = 32
    public static let microseconds = 40
    public static let port1 = 48
    public static let port2 = 50
    /// 0 CREATED, 1 DESTROYED, 2 DATA.
    public static let event = 52
    /// 0 endpoint 1, 1 endpoint 2, 3 none.
    public static let from = 53
    /// DATA body length, a u16: longer data is sent as several events.
    public static let length = 54
    public static let hop = 56
    /// 0 IPv4, 41 IPv6.
    public static let l3 = 57
    /// IP protocol number.
    public static let l4 = 58
    public static let match = 59
    public static let reason = 60
    public static let vlan = 61
    public static let size = 64
}
