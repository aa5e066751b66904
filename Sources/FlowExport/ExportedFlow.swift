import PacketCore

/// One direction of a flow as NetFlow and IPFIX describe it: a unidirectional record (RFC 7011 §2,
/// RFC 3954 §2). A connection is exported as two of these, the originator's first; a direction that
/// sent nothing is not exported.
public struct ExportedFlow: Sendable, Equatable {
    /// RFC 7011 `flowEndReason` (IANA IE 136).
    public enum EndReason: UInt8, Sendable {
        case idleTimeout = 1
        case activeTimeout = 2
        case endOfFlow = 3
        case forcedEnd = 4
        case lackOfResources = 5
    }

    public var source: IPAddress
    public var destination: IPAddress
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var ipProtocol: UInt8
    /// The OR of every TCP flag this direction sent.
    public var tcpFlags: UInt8
    public var packets: UInt64
    /// Layer-3 bytes (IP total lengths), what NetFlow's `IN_BYTES` and IPFIX's `octetDeltaCount` count.
    public var bytes: UInt64
    /// This direction's first and last packet.
    public var start: Timestamp
    public var end: Timestamp
    /// 802.1Q VLAN ID, 0 when untagged.
    public var vlan: UInt16
    /// ICMP: type × 256 + code of the direction's first message; 0 otherwise.
    public var icmpTypeCode: UInt16
    public var endReason: EndReason
    /// Whether this record is the originator's direction (RFC 5103 `biflowDirection`: 1 initiator, 2 reverse).
    public var fromOriginator: Bool

    public init(source: IPAddress, destination: IPAddress, sourcePort: UInt16, destinationPort: UInt16, ipProtocol: UInt8,
                tcpFlags: UInt8 = 0, packets: UInt64, bytes: UInt64, start: Timestamp, end: Timestamp, vlan: UInt16 = 0,
                icmpTypeCode: UInt16 = 0, endReason: EndReason = .idleTimeout, fromOriginator: Bool = true) {
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.ipProtocol = ipProtocol
        self.tcpFlags = tcpFlags
        self.packets = packets
        self.bytes = bytes
        self.start = start
        self.end = end
        self.vlan = vlan
        self.icmpTypeCode = icmpTypeCode
        self.endReason = endReason
        self.fromOriginator = fromOriginator
    }

    var isICMP: Bool { ipProtocol == 1 || ipProtocol == 58 }
}
