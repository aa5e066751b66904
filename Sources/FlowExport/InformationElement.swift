/// The information elements FlowTap exports and decodes: IANA's IPFIX registry numbers, which
/// NetFlow v9 shares for IDs below 128 (RFC 3954 §8, RFC 7012).
public enum InformationElement {
    public static let octetDeltaCount: UInt16 = 1
    public static let packetDeltaCount: UInt16 = 2
    public static let protocolIdentifier: UInt16 = 4
    public static let ipClassOfService: UInt16 = 5
    public static let tcpControlBits: UInt16 = 6
    public static let sourceTransportPort: UInt16 = 7
    public static let sourceIPv4Address: UInt16 = 8
    public static let sourceIPv4PrefixLength: UInt16 = 9
    public static let ingressInterface: UInt16 = 10
    public static let destinationTransportPort: UInt16 = 11
    public static let destinationIPv4Address: UInt16 = 12
    public static let destinationIPv4PrefixLength: UInt16 = 13
    public static let egressInterface: UInt16 = 14
    public static let ipNextHopIPv4Address: UInt16 = 15
    public static let bgpSourceAsNumber: UInt16 = 16
    public static let bgpDestinationAsNumber: UInt16 = 17
    public static let flowEndSysUpTime: UInt16 = 21
    public static let flowStartSysUpTime: UInt16 = 22
    public static let sourceIPv6Address: UInt16 = 27
    public static let destinationIPv6Address: UInt16 = 28
    public static let icmpTypeCodeIPv4: UInt16 = 32
    public static let vlanId: UInt16 = 58
    public static let ipVersion: UInt16 = 60
    public static let flowDirection: UInt16 = 61
    public static let icmpTypeCodeIPv6: UInt16 = 139
    public static let flowEndReason: UInt16 = 136
    public static let flowStartSeconds: UInt16 = 150
    public static let flowEndSeconds: UInt16 = 151
    public static let flowStartMilliseconds: UInt16 = 152
    public static let flowEndMilliseconds: UInt16 = 153
    public static let flowStartMicroseconds: UInt16 = 154
    public static let flowEndMicroseconds: UInt16 = 155
    public static let flowStartNanoseconds: UInt16 = 156
    public static let flowEndNanoseconds: UInt16 = 157
    public static let biflowDirection: UInt16 = 239
    /// RFC 7011 §6.2: a field of this length carries its own length prefix.
    public static let variableLength: UInt16 = 0xFFFF
}

/// The field list of a template: (element ID, length) pairs in record order.
public struct TemplateLayout: Sendable, Equatable {
    public var fields: [(id: UInt16, length: UInt16)]

    public init(_ fields: [(id: UInt16, length: UInt16)]) { self.fields = fields }

    /// Bytes per record (no variable-length fields in templates FlowTap writes).
    public var recordLength: Int { fields.reduce(0) { $0 + Int($1.length) } }

    public static func == (a: TemplateLayout, b: TemplateLayout) -> Bool {
        a.fields.count == b.fields.count && zip(a.fields, b.fields).allSatisfy { $0.id == $1.id && $0.length == $1.length }
    }
}
