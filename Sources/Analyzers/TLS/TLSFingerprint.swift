import PacketCore
import Outputs
import Crypto

/// JA3 / JA3S (salesforce/ja3) and JA4 (FoxIO-LLC/ja4, technical_details/JA4.md).
///
/// JA3  = MD5("SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats"),
///        decimal values joined by '-', GREASE removed, legacy_version as SSLVersion.
/// JA3S = MD5("SSLVersion,Cipher,Extensions") from the ServerHello.
/// JA4  = a_b_c for TLS over TCP ("t") or QUIC ("q"); see `ja4`.
public enum TLSFingerprint {
    /// GREASE values (RFC 8701 §2): 0x0A0A, 0x1A1A, … 0xFAFA.
    @inlinable
    public static func isGREASE(_ value: UInt16) -> Bool {
        value & 0x0F0F == 0x0A0A && value >> 8 == value & 0xFF
    }

    public static func ja3(_ hello: TLSClientHello) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(256)
        appendDecimal(hello.legacyVersion, to: &text)
        text.append(UInt8(ascii: ","))
        appendDecimals(hello.ciphers, to: &text)
        text.append(UInt8(ascii: ","))
        appendDecimals(hello.extensions, to: &text)
        text.append(UInt8(ascii: ","))
        appendDecimals(hello.groups, to: &text)
        text.append(UInt8(ascii: ","))
        for (i, format) in hello.pointFormats.enumerated() {
            if i > 0 { text.append(UInt8(ascii: "-")) }
            appendDecimal(UInt16(format), to: &text)
        }
        return String(decoding: text, as: UTF8.self)
    }

    public static func ja3s(_ hello: TLSServerHello) -> String {
        var text: [UInt8] = []
        appendDecimal(hello.legacyVersion, to: &text)
        text.append(UInt8(ascii: ","))
        appendDecimal(hello.cipher, to: &text)
        text.append(UInt8(ascii: ","))
        appendDecimals(hello.extensions, to: &text)
        return String(decoding: text, as: UTF8.self)
    }

    /// Lower-case hex MD5 (JA3's hash; MD5 is the definition, not a security choice).
    public static func md5(_ text: String) -> String {
        hex(Insecure.MD5.hash(data: Array(text.utf8)), count: 32)
    }

    /// JA4 for a ClientHello seen over TCP, or over QUIC (`quic`: protocol letter "q" instead of "t").
    public static func ja4(_ hello: TLSClientHello, quic: Bool = false) -> String {
        let ciphers = hello.ciphers.filter { !isGREASE($0) }
        let extensions = hello.extensions.filter { !isGREASE($0) }
        // Version: the highest supported_versions entry, else legacy_version.
        let offered = hello.supportedVersions.filter { !isGREASE($0) }
        let version = offered.max() ?? hello.legacyVersion
        let versionText: String
        switch version {
        case 0x0304: versionText = "13"
        case 0x0303: versionText = "12"
        case 0x0302: versionText = "11"
        case 0x0301: versionText = "10"
        case 0x0300: versionText = "s3"
        case 0x0002: versionText = "s2"
        case 0xFEFF: versionText = "d1"
        case 0xFEFD: versionText = "d2"
        case 0xFEFC: versionText = "d3"
        default: versionText = "00"
        }
        var a = (quic ? "q" : "t") + versionText
        a += hello.extensions.contains(0x0000) ? "d" : "i"
        a += twoDigits(ciphers.count) + twoDigits(extensions.count)
        a += alpnChars(hello.alpn.first)

        // Four-digit lower-case hex sorts as the numbers do, so the values are sorted, then written.
        var text: [UInt8] = []
        text.reserveCapacity(512)
        appendHex4List(ciphers.sorted(), to: &text)
        let b = ciphers.isEmpty ? "000000000000" : sha256Prefix(text)

        // SNI and ALPN are already in part a; signature algorithms keep wire order.
        let sortedExtensions = extensions.filter { $0 != 0x0000 && $0 != 0x0010 }.sorted()
        let c: String
        if sortedExtensions.isEmpty {
            c = "000000000000"
        } else {
            text.removeAll(keepingCapacity: true)
            appendHex4List(sortedExtensions, to: &text)
            let signatures = hello.signatureAlgorithms.filter { !isGREASE($0) }
            if !signatures.isEmpty {
                text.append(UInt8(ascii: "_"))
                appendHex4List(signatures, to: &text)
            }
            c = sha256Prefix(text)
        }
        return a + "_" + b + "_" + c
    }

    /// First and last character of the first ALPN value; hex digits when either
    /// end is not alphanumeric; "00" when there is none.
    static func alpnChars(_ value: [UInt8]?) -> String {
        guard let value, let first = value.first, let last = value.last else { return "00" }
        func alphanumeric(_ b: UInt8) -> Bool {
            (0x30 ... 0x39).contains(b) || (0x41 ... 0x5A).contains(b) || (0x61 ... 0x7A).contains(b)
        }
        if alphanumeric(first) && alphanumeric(last) {
            return String(decoding: [first, last], as: UTF8.self)
        }
        return String(decoding: [hexDigit(first >> 4), hexDigit(last & 0xF)], as: UTF8.self)
    }

    /// The values but GREASE, in decimal, joined by '-'.
    private static func appendDecimals(_ values: [UInt16], to text: inout [UInt8]) {
        var first = true
        for v in values where !isGREASE(v) {
            if !first { text.append(UInt8(ascii: "-")) }
            appendDecimal(v, to: &text)
            first = false
        }
    }

    private static func appendDecimal(_ v: UInt16, to text: inout [UInt8]) {
        var divisor: UInt16 = 10000
        while divisor > 1 && v < divisor { divisor /= 10 }
        while divisor > 0 {
            text.append(UInt8(ascii: "0") &+ UInt8(v / divisor % 10))
            divisor /= 10
        }
    }

    /// Each value as four lower-case hex digits, joined by ','.
    private static func appendHex4List(_ values: [UInt16], to text: inout [UInt8]) {
        for (i, v) in values.enumerated() {
            if i > 0 { text.append(UInt8(ascii: ",")) }
            for shift in stride(from: 12, through: 0, by: -4) { text.append(hexDigit(UInt8(truncatingIfNeeded: v >> UInt16(shift)) & 0xF)) }
        }
    }

    private static func twoDigits(_ n: Int) -> String {
        let capped = min(n, 99)
        return capped < 10 ? "0\(capped)" : "\(capped)"
    }

    private static func sha256Prefix(_ text: [UInt8]) -> String {
        hex(SHA256.hash(data: text), count: 12)
    }

    private static func hex<D: Sequence>(_ digest: D, count: Int) -> String where D.Element == UInt8 {
        var out: [UInt8] = []
        for byte in digest {
            out.append(hexDigit(byte >> 4))
            out.append(hexDigit(byte & 0xF))
            if out.count >= count { break }
        }
        return String(decoding: out.prefix(count), as: UTF8.self)
    }
}
