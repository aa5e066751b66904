import Crypto
import Outputs
import PacketCore

/// Community ID flow hashing, version 1 (the published Community ID specification, as Zeek, Suricata
/// and Arkime compute it): the same connection gets the same `"1:…"` string in every tool's logs.
///
/// The hash is SHA-1 over: the seed (2 bytes, network order), the two addresses, the IP protocol, a zero
/// byte and, for TCP, UDP and SCTP, the two ports — the endpoint that orders first (lower address, then
/// lower port) always first, so both directions hash alike. ICMP and ICMPv6 use the type as the source
/// port; a type with a request/reply counterpart uses that counterpart as the destination port and is
/// ordered like a connection, any other type uses the code and keeps its direction (one-way).
public enum CommunityID {
    public static func compute(seed: UInt16 = 0, source: IPAddress, sourcePort: UInt16, destination: IPAddress, destinationPort: UInt16,
                               ipProtocol: UInt8) -> String {
        var a = (source, sourcePort), b = (destination, destinationPort)
        var oneWay = false
        if ipProtocol == 1 || ipProtocol == 58 {
            let (port, counterpart) = icmpPorts(type: UInt8(truncatingIfNeeded: sourcePort), code: UInt8(truncatingIfNeeded: destinationPort), v6: ipProtocol == 58)
            a.1 = sourcePort
            b.1 = port
            oneWay = !counterpart
        }
        if !oneWay && !(a.0 < b.0 || (a.0 == b.0 && a.1 <= b.1)) { swap(&a, &b) }
        var input: [UInt8] = [UInt8(seed >> 8), UInt8(seed & 0xFF)]
        input.reserveCapacity(40)
        a.0.append(to: &input)
        b.0.append(to: &input)
        input.append(ipProtocol)
        input.append(0)
        if ipProtocol == 1 || ipProtocol == 6 || ipProtocol == 17 || ipProtocol == 58 || ipProtocol == 132 {
            input.append(UInt8(a.1 >> 8))
            input.append(UInt8(a.1 & 0xFF))
            input.append(UInt8(b.1 >> 8))
            input.append(UInt8(b.1 & 0xFF))
        }
        let digest = Insecure.SHA1.hash(data: input)
        var text: [UInt8] = [UInt8(ascii: "1"), UInt8(ascii: ":")]
        text += digest.withUnsafeBytes { Base64.encode($0) }
        return String(decoding: text, as: UTF8.self)
    }

    /// The ICMP "destination port": the counterpart type of a request/reply pair (and true), or the code (false).
    static let icmpv4Pairs: [UInt8: UInt8] = [8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17]
    static let icmpv6Pairs: [UInt8: UInt8] = [128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130, 139: 140, 140: 139,
                                              144: 145, 145: 144]

    static func icmpPorts(type: UInt8, code: UInt8, v6: Bool) -> (UInt16, Bool) {
        if let other = (v6 ? icmpv6Pairs : icmpv4Pairs)[type] { return (UInt16(other), true) }
        return (UInt16(code), false)
    }
}
