import PacketCore

/// What a forwarded datagram carries, read from its first bytes (rules may match on it, and NetFlow v9
/// and IPFIX sent without the exporter's address draw a warning). The forwarder never needs more:
/// a datagram of any kind, well formed or not, is forwarded unchanged.
public enum PayloadKind: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    case syslog, netflow5, netflow9, ipfix, sflow, other

    /// NetFlow v5: version 5, 1–30 records and the length they imply. NetFlow v9: version 9 and a
    /// 20-byte header. IPFIX: version 10 with the message length equal to the datagram's (RFC 7011 §3.1).
    /// sFlow v5: a 32-bit version 5 and an agent address type of 1 or 2. Syslog: a `<PRI>` of 1–3
    /// digits (RFC 5424 §6.2.1, RFC 3164 §4.1.1).
    @inlinable
    public static func of(_ bytes: UnsafeRawBufferPointer) -> PayloadKind {
        let n = bytes.count
        if n >= 3 && bytes[0] == UInt8(ascii: "<") {
            var i = 1
            while i < n && i <= 4 && bytes[i] >= 0x30 && bytes[i] <= 0x39 { i += 1 }
            if i > 1 && i <= 4 && i < n && bytes[i] == UInt8(ascii: ">") { return .syslog }
            return .other
        }
        guard n >= 4 else { return .other }
        switch bytes.beUInt16(at: 0) {
        case 5:
            let count = Int(bytes.beUInt16(at: 2))
            if count >= 1 && count <= 30 && n == 24 + 48 * count { return .netflow5 }
        case 9:
            if n >= 20 { return .netflow9 }
        case 10:
            if n >= 16 && Int(bytes.beUInt16(at: 2)) == n { return .ipfix }
        case 0:
            if n >= 8 && bytes.beUInt32(at: 0) == 5 {
                let agentType = bytes.beUInt32(at: 4)
                if agentType == 1 || agentType == 2 { return .sflow }
            }
        default: break
        }
        return .other
    }

    /// Templates scope to the exporter's transport session (RFC 7011 §8; RFC 3954 §5.1 via the source ID).
    public var hasTemplates: Bool { self == .netflow9 || self == .ipfix }

    public var description: String {
        switch self {
        case .syslog: "syslog"
        case .netflow5: "netflow5"
        case .netflow9: "netflow9"
        case .ipfix: "ipfix"
        case .sflow: "sflow"
        case .other: "other"
        }
    }

    public init?(name: String) {
        guard let kind = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = kind
    }
}
