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
    ///
    /// Written into one 36-byte string, the hashed lists into one scratch buffer: built from `String`
    /// pieces and appended `Array`s it took about 32,000 instructions a hello, a sixth of `analyze`'s
    /// QUIC records on nDPI's captures.
    public static func ja4(_ hello: TLSClientHello, quic: Bool = false) -> String {
        var ciphers = hello.ciphers.filter { !isGREASE($0) }
        ciphers.sort()
        // Extensions are counted without GREASE; SNI and ALPN (already in part a) are not hashed.
        var extensionCount = 0
        var hashedExtensions: [UInt16] = []
        hashedExtensions.reserveCapacity(hello.extensions.count)
        for e in hello.extensions where !isGREASE(e) {
            extensionCount += 1
            if e != 0x0000 && e != 0x0010 { hashedExtensions.append(e) }
        }
        hashedExtensions.sort()
        // Version: the highest supported_versions entry, else legacy_version.
        var version = hello.legacyVersion
        var offered = false
        for v in hello.supportedVersions where !isGREASE(v) {
            if !offered || v > version { version = v }
            offered = true
        }
        let versionText: (UInt8, UInt8)
        switch version {
        case 0x0304: versionText = (0x31, 0x33) // "13"
        case 0x0303: versionText = (0x31, 0x32)
        case 0x0302: versionText = (0x31, 0x31)
        case 0x0301: versionText = (0x31, 0x30)
        case 0x0300: versionText = (UInt8(ascii: "s"), 0x33)
        case 0x0002: versionText = (UInt8(ascii: "s"), 0x32)
        case 0xFEFF: versionText = (UInt8(ascii: "d"), 0x31)
        case 0xFEFD: versionText = (UInt8(ascii: "d"), 0x32)
        case 0xFEFC: versionText = (UInt8(ascii: "d"), 0x33)
        default: versionText = (0x30, 0x30)
        }
        let alpn = alpnBytes(hello.alpn.first)
        let signatureCount = hello.signatureAlgorithms.reduce(0) { $0 + (isGREASE($1) ? 0 : 1) }
        // The longest text hashed: every value as four hex digits and a separator.
        let scratchCount = 5 * max(ciphers.count, hashedExtensions.count + signatureCount) + 1
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: scratchCount) { (scratch: UnsafeMutableBufferPointer<UInt8>) -> String in
            String(unsafeUninitializedCapacity: 36) { (out: UnsafeMutableBufferPointer<UInt8>) -> Int in
                out[0] = UInt8(ascii: quic ? "q" : "t")
                (out[1], out[2]) = versionText
                out[3] = UInt8(ascii: hello.extensions.contains(0x0000) ? "d" : "i")
                writeTwoDigits(ciphers.count, to: out, at: 4)
                writeTwoDigits(extensionCount, to: out, at: 6)
                (out[8], out[9]) = alpn
                out[10] = UInt8(ascii: "_")
                out[23] = UInt8(ascii: "_")
                // Four-digit lower-case hex sorts as the numbers do, so the values are sorted, then written.
                if ciphers.isEmpty {
                    writeZeros(to: out, at: 11)
                } else {
                    let n = writeHex4List(ciphers, to: scratch, at: 0)
                    writeSHA256Prefix(of: UnsafeRawBufferPointer(start: scratch.baseAddress, count: n), to: out, at: 11)
                }
                if hashedExtensions.isEmpty {
                    writeZeros(to: out, at: 24)
                } else {
                    // Signature algorithms keep their wire order.
                    var n = writeHex4List(hashedExtensions, to: scratch, at: 0)
                    if signatureCount > 0 {
                        scratch[n] = UInt8(ascii: "_")
                        n = writeHex4List(hello.signatureAlgorithms.lazy.filter { !isGREASE($0) }, to: scratch, at: n + 1)
                    }
                    writeSHA256Prefix(of: UnsafeRawBufferPointer(start: scratch.baseAddress, count: n), to: out, at: 24)
                }
                return 36
            }
        }
    }

    private static func writeTwoDigits(_ n: Int, to out: UnsafeMutableBufferPointer<UInt8>, at i: Int) {
        let capped = min(n, 99)
        out[i] = UInt8(ascii: "0") &+ UInt8(capped / 10)
        out[i + 1] = UInt8(ascii: "0") &+ UInt8(capped % 10)
    }

    private static func writeZeros(to out: UnsafeMutableBufferPointer<UInt8>, at i: Int) {
        for j in i ..< i + 12 { out[j] = UInt8(ascii: "0") }
    }

    /// Each value as four lower-case hex digits, joined by ','; returns the index after the last one.
    private static func writeHex4List<S: Sequence>(_ values: S, to out: UnsafeMutableBufferPointer<UInt8>, at start: Int) -> Int
    where S.Element == UInt16 {
        var i = start
        for v in values {
            if i > start {
                out[i] = UInt8(ascii: ",")
                i += 1
            }
            out[i] = hexDigit(UInt8(truncatingIfNeeded: v >> 12) & 0xF)
            out[i + 1] = hexDigit(UInt8(truncatingIfNeeded: v >> 8) & 0xF)
            out[i + 2] = hexDigit(UInt8(truncatingIfNeeded: v >> 4) & 0xF)
            out[i + 3] = hexDigit(UInt8(truncatingIfNeeded: v) & 0xF)
            i += 4
        }
        return i
    }

    /// The first 12 lower-case hex digits of the text's SHA-256.
    private static func writeSHA256Prefix(of text: UnsafeRawBufferPointer, to out: UnsafeMutableBufferPointer<UInt8>, at i: Int) {
        var hasher = SHA256()
        hasher.update(bufferPointer: text)
        hasher.finalize().withUnsafeBytes { digest in
            for j in 0 ..< 6 {
                out[i + 2 * j] = hexDigit(digest[j] >> 4)
                out[i + 2 * j + 1] = hexDigit(digest[j] & 0xF)
            }
        }
    }

    /// First and last character of the first ALPN value; hex digits when either
    /// end is not alphanumeric; "00" when there is none.
    static func alpnChars(_ value: [UInt8]?) -> String {
        let (a, b) = alpnBytes(value)
        return String(decoding: [a, b], as: UTF8.self)
    }

    private static func alpnBytes(_ value: [UInt8]?) -> (UInt8, UInt8) {
        guard let value, let first = value.first, let last = value.last else { return (0x30, 0x30) }
        func alphanumeric(_ b: UInt8) -> Bool {
            (0x30 ... 0x39).contains(b) || (0x41 ... 0x5A).contains(b) || (0x61 ... 0x7A).contains(b)
        }
        if alphanumeric(first) && alphanumeric(last) { return (first, last) }
        return (hexDigit(first >> 4), hexDigit(last & 0xF))
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

    /// The digest's first `count` lower-case hex digits (at most two a byte).
    private static func hex<D: Digest>(_ digest: D, count: Int) -> String {
        digest.withUnsafeBytes { bytes in
            let n = min(count, 2 * bytes.count)
            return String(unsafeUninitializedCapacity: n) { out in
                for i in 0 ..< n { out[i] = hexDigit(i & 1 == 0 ? bytes[i >> 1] >> 4 : bytes[i >> 1] & 0xF) }
                return n
            }
        }
    }
}
