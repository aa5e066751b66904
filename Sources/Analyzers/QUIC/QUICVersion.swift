/// The QUIC versions whose Initial packets can be decrypted, with what differs between them:
/// the initial salt, the HKDF labels and the long-header packet type bits.
///
/// - v1, RFC 9000 / RFC 9001 §5.2: salt 0x38762cf7…, labels "quic key/iv/hp",
///   types Initial 0, 0-RTT 1, Handshake 2, Retry 3 (RFC 9000 §17.2).
/// - v2, RFC 9369 §3.3.1–3.3.2: salt 0x0dede3de…, labels "quicv2 key/iv/hp",
///   types Initial 1, 0-RTT 2, Handshake 3, Retry 0 (RFC 9369 §3.2).
/// - drafts 23–34 (0xff000017…0xff000022), still seen in older captures: v1's labels and
///   types; drafts 23–28 use draft-23's salt (draft-ietf-quic-tls-23 §5.2), 29–32 draft-29's
///   (draft-ietf-quic-tls-29 §5.2), 33–34 v1's.
/// - reserved versions 0x?a?a?a?a (RFC 9000 §15, sent to exercise version negotiation, "greased"):
///   they define no protection of their own; clients that send them protect their Initials as v1,
///   and Wireshark decrypts them with v1's keys, so FlowTap does too.
public struct QUICVersion: Sendable, Equatable {
    public let wire: UInt32
    let salt: [UInt8]
    let keyLabel: [UInt8]
    let ivLabel: [UInt8]
    let hpLabel: [UInt8]
    /// Long-header type bits (first byte bits 4–5) of Initial, 0-RTT, Handshake and Retry.
    let initialType: UInt8

    public static let v1Wire: UInt32 = 0x0000_0001
    public static let v2Wire: UInt32 = 0x6B33_43CF

    static let v1Salt: [UInt8] = [0x38, 0x76, 0x2C, 0xF7, 0xF5, 0x59, 0x34, 0xB3, 0x4D, 0x17,
                                  0x9A, 0xE6, 0xA4, 0xC8, 0x0C, 0xAD, 0xCC, 0xBB, 0x7F, 0x0A]
    static let v2Salt: [UInt8] = [0x0D, 0xED, 0xE3, 0xDE, 0xF7, 0x00, 0xA6, 0xDB, 0x81, 0x93,
                                  0x81, 0xBE, 0x6E, 0x26, 0x9D, 0xCB, 0xF9, 0xBD, 0x2E, 0xD9]
    static let draft23Salt: [UInt8] = [0xC3, 0xEE, 0xF7, 0x12, 0xC7, 0x2E, 0xBB, 0x5A, 0x11, 0xA7,
                                       0xD2, 0x43, 0x2B, 0xB4, 0x63, 0x65, 0xBE, 0xF9, 0xF5, 0x02]
    static let draft29Salt: [UInt8] = [0xAF, 0xBF, 0xEC, 0x28, 0x99, 0x93, 0xD2, 0x4C, 0x9E, 0x97,
                                       0x86, 0xF1, 0x9C, 0x61, 0x11, 0xE0, 0x43, 0x90, 0xA8, 0x99]

    public static let v1 = QUICVersion(wire: v1Wire, salt: v1Salt, prefix: "quic", initialType: 0)
    public static let v2 = QUICVersion(wire: v2Wire, salt: v2Salt, prefix: "quicv2", initialType: 1)

    init(wire: UInt32, salt: [UInt8], prefix: String, initialType: UInt8) {
        self.wire = wire
        self.salt = salt
        keyLabel = Array((prefix + " key").utf8)
        ivLabel = Array((prefix + " iv").utf8)
        hpLabel = Array((prefix + " hp").utf8)
        self.initialType = initialType
    }

    /// Drafts 23…34, by draft number minus 23.
    private static let drafts: [QUICVersion] = (23 ... 34).map { n in
        QUICVersion(wire: 0xFF00_0000 | UInt32(n), salt: n < 29 ? draft23Salt : n < 33 ? draft29Salt : v1Salt,
                    prefix: "quic", initialType: 0)
    }

    /// The version for a wire value, or nil when its Initial protection is not known.
    public static func known(_ wire: UInt32) -> QUICVersion? {
        switch wire {
        case v1Wire: v1
        case v2Wire: v2
        case 0xFF00_0017 ... 0xFF00_0022: drafts[Int(wire - 0xFF00_0017)]
        default: isReserved(wire) ? QUICVersion(wire: wire, salt: v1Salt, prefix: "quic", initialType: 0) : nil
        }
    }

    /// RFC 9000 §15: versions of the pattern 0x?a?a?a?a are reserved for greasing version negotiation.
    @inlinable
    public static func isReserved(_ wire: UInt32) -> Bool { wire & 0x0F0F_0F0F == 0x0A0A_0A0A }

    /// Whether `wire` is a version `known` answers for (no lookup of the salts).
    @inlinable
    public static func isKnown(_ wire: UInt32) -> Bool {
        wire == v1Wire || wire == v2Wire || (wire >= 0xFF00_0017 && wire <= 0xFF00_0022) || isReserved(wire)
    }

    /// The packet type of a long header's first byte, in v1's terms.
    func packetType(_ firstByte: UInt8) -> QUICPacketType {
        // v2 rotates v1's numbering by one: v2 = (v1 + 1) mod 4.
        switch ((firstByte >> 4) &- initialType) & 0x03 {
        case 0: .initial
        case 1: .zeroRTT
        case 2: .handshake
        default: .retry
        }
    }

    /// "1", "2", or the wire value in hex ("ff00001d") for the others.
    public static func name(_ wire: UInt32) -> String {
        switch wire {
        case v1Wire: return "1"
        case v2Wire: return "2"
        default:
            let text = String(wire, radix: 16)
            return String(repeating: "0", count: 8 - text.count) + text
        }
    }
}

/// Long-header packet types (RFC 9000 §17.2, Table 5), whatever their bits in a given version.
public enum QUICPacketType: UInt8, Sendable {
    case initial, zeroRTT, handshake, retry
}
