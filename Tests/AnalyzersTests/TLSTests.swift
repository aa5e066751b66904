@testable import Analyzers
import Crypto
import Foundation
import TestSupport
import XCTest

private final class TLSLines {
    var all: [String] = []
    func objects() throws -> [[String: Any]] {
        try all.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }
}

private func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
private func vec16(_ body: [UInt8]) -> [UInt8] { be16(UInt16(body.count)) + body }
private func vec8(_ body: [UInt8]) -> [UInt8] { [UInt8(body.count)] + body }
private func list16(_ values: [UInt16]) -> [UInt8] { values.flatMap(be16) }
private func ext(_ type: UInt16, _ body: [UInt8]) -> [UInt8] { be16(type) + vec16(body) }

/// Handshake header (RFC 8446 §4): type, 24-bit length.
private func handshake(_ type: UInt8, _ body: [UInt8]) -> [UInt8] {
    [type, UInt8(body.count >> 16), UInt8((body.count >> 8) & 0xFF), UInt8(body.count & 0xFF)] + body
}

/// Cuts handshake bytes into TLS records (RFC 8446 §5.1) of at most `size` fragment bytes.
private func records(_ bytes: [UInt8], size: Int, type: UInt8 = 22) -> [UInt8] {
    var out: [UInt8] = []
    var at = 0
    while at < bytes.count {
        let end = min(bytes.count, at + size)
        out += [type, 3, 1] + be16(UInt16(end - at)) + bytes[at ..< end]
        at = end
    }
    return out
}

/// A Chrome-like ClientHello matching browserleaks.com's published example:
///   ja3_text "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,
///             45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0"
///   ja3_hash 98487aa16281980e7d1120d399efb6a4
///   ja4      t13d1516h2_8daaf6152771_d8a2da3f94cd
/// (checked independently: md5sum / sha256sum of the texts give the same values.)
/// GREASE is added to the ciphers, extensions, groups and versions.
private func chromeClientHelloBody() -> [UInt8] {
    let ciphers: [UInt16] = [0x7A7A, 4865, 4866, 4867, 49195, 49199, 49196, 49200, 52393, 52392, 49171, 49172, 156, 157, 47, 53]
    var extensions: [UInt8] = []
    extensions += ext(0x1A1A, [])
    extensions += ext(45, vec8([1]))
    extensions += ext(51, vec16(be16(0x001D) + vec16([UInt8](repeating: 0x11, count: 32))))
    extensions += ext(16, vec16(vec8(Array("h2".utf8)) + vec8(Array("http/1.1".utf8))))
    extensions += ext(65037, [0, 0, 1, 0, 1, 0x42, 0, 0])
    extensions += ext(23, [])
    extensions += ext(17613, vec16(vec8(Array("h2".utf8))))
    extensions += ext(0, vec16([0] + vec16(Array("tls.browserleaks.com".utf8))))
    extensions += ext(11, vec8([0]))
    extensions += ext(10, vec16(list16([0x3A3A, 4588, 29, 23, 24])))
    extensions += ext(43, vec8(list16([0x4A4A, 0x0304, 0x0303])))
    extensions += ext(65281, [0])
    extensions += ext(35, [])
    extensions += ext(18, [])
    extensions += ext(5, [1, 0, 0, 0, 0])
    extensions += ext(13, vec16(list16([0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601])))
    extensions += ext(27, vec8(be16(2)))
    extensions += ext(0x2A2A, [0])
    return be16(0x0303) + [UInt8](repeating: 0xAB, count: 32) + vec8([UInt8](repeating: 0xCD, count: 32))
        + vec16(list16(ciphers)) + vec8([0]) + vec16(extensions)
}

/// A TLS 1.3 ServerHello: cipher 0x1301, supported_versions 0x0304, key_share, ALPN h2.
///   JA3S text "771,4865,43-51-16", MD5 b5d161dc269619705eba4f0e4a32116c (md5sum).
private func serverHelloBody() -> [UInt8] {
    var extensions: [UInt8] = []
    extensions += ext(43, be16(0x0304))
    extensions += ext(51, be16(0x001D) + vec16([UInt8](repeating: 0x22, count: 32)))
    extensions += ext(16, vec16(vec8(Array("h2".utf8))))
    return be16(0x0303) + [UInt8](repeating: 0x33, count: 32) + vec8([UInt8](repeating: 0xCD, count: 32))
        + be16(0x1301) + [0] + vec16(extensions)
}

private let client = (ip: "192.0.2.10", port: UInt16(50123))
private let server = (ip: "198.51.100.7", port: UInt16(443))

final class TLSTests: XCTestCase {
    func testPublishedJA3AndJA4Vectors() throws {
        // salesforce/ja3 README: "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"
        // → ada70206e40642a3e4461f35503241d5.
        var old = TLSClientHello()
        old.legacyVersion = 769
        old.ciphers = [47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4]
        old.extensions = [0, 10, 11]
        old.groups = [23, 24, 25]
        old.pointFormats = [0]
        XCTAssertEqual(TLSFingerprint.ja3(old), "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0")
        XCTAssertEqual(TLSFingerprint.md5(TLSFingerprint.ja3(old)), "ada70206e40642a3e4461f35503241d5")

        // FoxIO-LLC/ja4 technical_details/JA4.md worked example → t13d1516h2_8daaf6152771_e5627efa2ab1.
        var fox = TLSClientHello()
        fox.legacyVersion = 0x0303
        fox.ciphers = [0x0A0A, 0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035]
        fox.extensions = [0x1A1A, 0x001B, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002D, 0x000D, 0x0005, 0x0023, 0x0012, 0x002B, 0xFF01, 0x000B, 0x000A, 0x0015, 0x2A2A]
        fox.supportedVersions = [0x3A3A, 0x0304, 0x0303]
        fox.alpn = [Array("h2".utf8), Array("http/1.1".utf8)]
        fox.signatureAlgorithms = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]
        XCTAssertEqual(TLSFingerprint.ja4(fox), "t13d1516h2_8daaf6152771_e5627efa2ab1")
        // Same spec: without signature algorithms the c part hashes the extensions alone → 6d807ffa2a79.
        fox.signatureAlgorithms = []
        XCTAssertEqual(TLSFingerprint.ja4(fox), "t13d1516h2_8daaf6152771_6d807ffa2a79")
        // No SNI → "i"; no ALPN → "00"; no ciphers / extensions → zeros; legacy version when no supported_versions.
        var bare = TLSClientHello()
        bare.legacyVersion = 0x0301
        XCTAssertEqual(TLSFingerprint.ja4(bare), "t10i000000_000000000000_000000000000")
        XCTAssertEqual(TLSFingerprint.ja3(bare), "769,,,,")
    }

    /// JA4 against the definition written out plainly (strings, sort, SHA-256 of the joined hex) on random
    /// hellos: GREASE anywhere, more than 99 ciphers or extensions, duplicate values, every version code,
    /// ALPN values of any bytes, signature algorithms with and without GREASE.
    func testJA4AgreesWithAPlainTextDefinitionOnRandomHellos() {
        func hex4(_ v: UInt16) -> String { let h = String(v, radix: 16); return String(repeating: "0", count: 4 - h.count) + h }
        func prefix(_ text: String) -> String {
            SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined().prefix(12).description
        }
        func reference(_ h: TLSClientHello, quic: Bool) -> String {
            let grease = TLSFingerprint.isGREASE
            let ciphers = h.ciphers.filter { !grease($0) }
            let extensions = h.extensions.filter { !grease($0) }
            let version = h.supportedVersions.filter { !grease($0) }.max() ?? h.legacyVersion
            let names: [UInt16: String] = [0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3", 0x0002: "s2",
                                           0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"]
            let two = { (n: Int) in String(format: "%02d", min(n, 99)) }
            var a = (quic ? "q" : "t") + (names[version] ?? "00") + (h.extensions.contains(0) ? "d" : "i")
            a += two(ciphers.count) + two(extensions.count) + TLSFingerprint.alpnChars(h.alpn.first)
            let b = ciphers.isEmpty ? "000000000000" : prefix(ciphers.sorted().map(hex4).joined(separator: ","))
            let hashed = extensions.filter { $0 != 0 && $0 != 0x10 }.sorted()
            let signatures = h.signatureAlgorithms.filter { !grease($0) }
            var cText = hashed.map(hex4).joined(separator: ",")
            if !signatures.isEmpty { cText += "_" + signatures.map(hex4).joined(separator: ",") }
            let c = hashed.isEmpty ? "000000000000" : prefix(cText)
            return a + "_" + b + "_" + c
        }
        var random = SeededRandom(seed: 0x1A4)
        let versions: [UInt16] = [0x0304, 0x0303, 0x0302, 0x0301, 0x0300, 0x0002, 0xFEFF, 0xFEFD, 0xFEFC, 0x0305, 0x1A1A]
        func values(_ maxCount: Int) -> [UInt16] {
            (0 ..< Int.random(in: 0 ... maxCount, using: &random)).map { _ in
                switch Int.random(in: 0 ..< 10, using: &random) {
                case 0: UInt16(Int.random(in: 0 ..< 16, using: &random)) * 0x1010 | 0x0A0A  // GREASE
                case 1: 0x0000
                case 2: 0x0010
                default: UInt16.random(in: 0 ... UInt16.max, using: &random)
                }
            }
        }
        for _ in 0 ..< 400 {
            var hello = TLSClientHello()
            hello.legacyVersion = versions.randomElement(using: &random)!
            hello.ciphers = values(Bool.random(using: &random) ? 12 : 140)
            hello.extensions = values(Bool.random(using: &random) ? 12 : 120)
            hello.supportedVersions = (0 ..< Int.random(in: 0 ... 3, using: &random)).map { _ in versions.randomElement(using: &random)! }
            hello.signatureAlgorithms = values(20)
            hello.alpn = (0 ..< Int.random(in: 0 ... 2, using: &random)).map { _ in
                (0 ..< Int.random(in: 0 ... 5, using: &random)).map { _ in UInt8.random(in: 0 ... 255, using: &random) }
            }
            for quic in [false, true] {
                XCTAssertEqual(TLSFingerprint.ja4(hello, quic: quic), reference(hello, quic: quic))
            }
        }
    }

    func testJA4ALPNCharacters() {
        // The examples in JA4.md §ALPN Extension Value.
        XCTAssertEqual(TLSFingerprint.alpnChars(Array("h2".utf8)), "h2")
        XCTAssertEqual(TLSFingerprint.alpnChars(Array("http/1.1".utf8)), "h1")
        XCTAssertEqual(TLSFingerprint.alpnChars([0x71]), "qq")
        XCTAssertEqual(TLSFingerprint.alpnChars([0xAB]), "ab")
        XCTAssertEqual(TLSFingerprint.alpnChars([0xAB, 0xCD]), "ad")
        XCTAssertEqual(TLSFingerprint.alpnChars([0x30, 0xAB]), "3b")
        XCTAssertEqual(TLSFingerprint.alpnChars([0x30, 0x31, 0xAB, 0xCD]), "3d")
        XCTAssertEqual(TLSFingerprint.alpnChars([0x30, 0xAB, 0xCD, 0x31]), "01")
        XCTAssertEqual(TLSFingerprint.alpnChars([]), "00")
        XCTAssertEqual(TLSFingerprint.alpnChars(nil), "00")
        XCTAssertTrue(TLSFingerprint.isGREASE(0xFAFA))
        XCTAssertFalse(TLSFingerprint.isGREASE(0x0A1A))
    }

    private func streams(recordSize: Int) -> (client: [UInt8], server: [UInt8]) {
        let client = records(handshake(1, chromeClientHelloBody()), size: recordSize)
        // ServerHello and a (fake) Certificate in the same records, then ChangeCipherSpec and app data.
        let server = records(handshake(2, serverHelloBody()) + handshake(11, [0, 0, 0]), size: recordSize)
            + [20, 3, 3, 0, 1, 1] + [23, 3, 3, 0, 3, 9, 9, 9]
        return (client, server)
    }

    private func checkRecord(_ r: [String: Any], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r["type"] as? String, "tls", file: file, line: line)
        let c = r["client"] as? [String: Any] ?? [:]
        XCTAssertEqual(c["ip"] as? String, "192.0.2.10", file: file, line: line)
        XCTAssertEqual(c["port"] as? Int, 50123, file: file, line: line)
        XCTAssertEqual(c["sni"] as? String, "tls.browserleaks.com", file: file, line: line)
        XCTAssertEqual(c["alpn"] as? [String], ["h2", "http/1.1"], file: file, line: line)
        XCTAssertEqual(c["versions"] as? [Int], [0x0304, 0x0303], file: file, line: line)
        XCTAssertEqual(c["legacy_version"] as? Int, 771, file: file, line: line)
        XCTAssertEqual((c["ciphers"] as? [Int])?.first, 4865, file: file, line: line)
        XCTAssertEqual((c["ciphers"] as? [Int])?.count, 15, file: file, line: line)
        XCTAssertEqual(c["groups"] as? [Int], [4588, 29, 23, 24], file: file, line: line)
        XCTAssertEqual(c["ja3"] as? String, "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0", file: file, line: line)
        XCTAssertEqual(c["ja3_hash"] as? String, "98487aa16281980e7d1120d399efb6a4", file: file, line: line)
        XCTAssertEqual(c["ja4"] as? String, "t13d1516h2_8daaf6152771_d8a2da3f94cd", file: file, line: line)
        let s = r["server"] as? [String: Any] ?? [:]
        XCTAssertEqual(s["ip"] as? String, "198.51.100.7", file: file, line: line)
        XCTAssertEqual(s["port"] as? Int, 443, file: file, line: line)
        XCTAssertEqual(s["version"] as? Int, 0x0304, file: file, line: line)
        XCTAssertEqual(s["cipher"] as? Int, 0x1301, file: file, line: line)
        XCTAssertEqual(s["alpn"] as? String, "h2", file: file, line: line)
        XCTAssertEqual(s["ja3s"] as? String, "771,4865,43-51-16", file: file, line: line)
        XCTAssertEqual(s["ja3s_hash"] as? String, "b5d161dc269619705eba4f0e4a32116c", file: file, line: line)
        XCTAssertNil(c["error"], file: file, line: line)
        XCTAssertNil(s["error"], file: file, line: line)
    }

    func testHellosAcrossRecordsInAnySplit() throws {
        for recordSize in [16384, 100, 7, 1] {
            let (c, s) = streams(recordSize: recordSize)
            for chunk in [Int.max, 1, 3, 50] {
                let lines = TLSLines()
                let tls = TLSAnalyzer { lines.all.append($0) }
                tls.open(flow: 4, client: client, server: server, vlan: 100, time: 1)
                var ci = 0, si = 0
                // Interleave the directions chunk by chunk.
                while ci < c.count || si < s.count {
                    if ci < c.count {
                        let end = min(c.count, ci + min(chunk, c.count))
                        c[ci ..< end].withUnsafeBytes { tls.data(flow: 4, fromClient: true, bytes: $0, time: 2) }
                        ci = end
                    }
                    if si < s.count {
                        let end = min(s.count, si + min(chunk, s.count))
                        s[si ..< end].withUnsafeBytes { tls.data(flow: 4, fromClient: false, bytes: $0, time: 3) }
                        si = end
                    }
                }
                tls.close(flow: 4)
                XCTAssertEqual(lines.all.count, 1, "record \(recordSize) chunk \(chunk)")
                let r = try XCTUnwrap(lines.objects().first)
                checkRecord(r)
                XCTAssertEqual(r["vlan"] as? [Int], [100])
                XCTAssertEqual(tls.counters.clientHellos, 1)
                XCTAssertEqual(tls.counters.serverHellos, 1)
                XCTAssertEqual(tls.counters.errors, 0)
            }
        }
    }

    func testDraftServerHelloWithoutSessionID() throws {
        // TLS 1.3 draft-18 ServerHello: version 0x7f12, random, cipher, extensions (key_share, empty here).
        let body: [UInt8] = [0x7F, 0x12] + [UInt8](repeating: 7, count: 32) + [0x13, 0x01] + [0x00, 0x04, 0x00, 0x33, 0x00, 0x00]
        let hello = try XCTUnwrap(body.withUnsafeBytes { TLSServerHello.parse($0) })
        XCTAssertEqual(hello.version, 0x7F12)
        XCTAssertEqual(hello.cipher, 0x1301)
        XCTAssertEqual(hello.extensions, [51])
        // The same bytes under a final version read a session id and fail to fit.
        var final = body
        final[0] = 0x03; final[1] = 0x03
        XCTAssertNil(final.withUnsafeBytes { TLSServerHello.parse($0) })
    }

    func testHellosSplitAtEveryBoundary() throws {
        let (c, s) = streams(recordSize: 100)
        func line(clientCut: Int, serverCut: Int) -> [String] {
            let lines = TLSLines()
            let tls = TLSAnalyzer { lines.all.append($0) }
            tls.open(flow: 5, client: client, server: server, vlan: nil, time: 1)
            for piece in [c[..<clientCut], c[clientCut...]] { piece.withUnsafeBytes { tls.data(flow: 5, fromClient: true, bytes: $0, time: 2) } }
            for piece in [s[..<serverCut], s[serverCut...]] { piece.withUnsafeBytes { tls.data(flow: 5, fromClient: false, bytes: $0, time: 3) } }
            tls.close(flow: 5)
            return lines.all
        }
        let whole = line(clientCut: c.count, serverCut: s.count)
        XCTAssertEqual(whole.count, 1)
        for at in 0 ..< c.count { XCTAssertEqual(line(clientCut: at, serverCut: s.count), whole, "client split at \(at)") }
        for at in 0 ..< s.count { XCTAssertEqual(line(clientCut: c.count, serverCut: at), whole, "server split at \(at)") }
    }

    func testClientOnlyAtCloseAndErrors() throws {
        let lines = TLSLines()
        let tls = TLSAnalyzer { lines.all.append($0) }
        let (c, _) = streams(recordSize: 200)
        tls.open(flow: 1, client: client, server: server, vlan: nil, time: 0)
        c.withUnsafeBytes { tls.data(flow: 1, fromClient: true, bytes: $0, time: 0) }
        // The server answers with an alert record, not a ServerHello.
        ([21, 3, 3, 0, 2, 2, 40] as [UInt8]).withUnsafeBytes { tls.data(flow: 1, fromClient: false, bytes: $0, time: 0) }
        XCTAssertTrue(lines.all.isEmpty)
        tls.close(flow: 1, time: 9)
        let r = try XCTUnwrap(lines.objects().first)
        XCTAssertEqual(r["time"] as? Double, 9)
        XCTAssertEqual((r["client"] as? [String: Any])?["ja4"] as? String, "t13d1516h2_8daaf6152771_d8a2da3f94cd")
        XCTAssertEqual((r["server"] as? [String: Any])?["error"] as? String, "unexpected_message")
        XCTAssertNil((r["server"] as? [String: Any])?["cipher"])
        XCTAssertEqual(tls.counters[.unexpectedMessage], 1)

        // Plain HTTP is not TLS; nothing is emitted for a flow without a hello.
        tls.open(flow: 2, client: client, server: server, vlan: nil, time: 0)
        Array("GET / HTTP/1.1\r\n\r\n".utf8).withUnsafeBytes { tls.data(flow: 2, fromClient: true, bytes: $0, time: 0) }
        tls.close(flow: 2)
        XCTAssertEqual(tls.counters[.notTLS], 1)
        // A hello claiming 16 MiB exceeds the 64 KiB bound.
        tls.open(flow: 3, client: client, server: server, vlan: nil, time: 0)
        ([22, 3, 1, 0, 4, 1, 0xFF, 0xFF, 0xFF] as [UInt8]).withUnsafeBytes { tls.data(flow: 3, fromClient: true, bytes: $0, time: 0) }
        XCTAssertEqual(tls.counters[.tooLarge], 1)
        // A hello whose cipher vector overruns it.
        tls.open(flow: 5, client: client, server: server, vlan: nil, time: 0)
        let bad = records(handshake(1, be16(0x0303) + [UInt8](repeating: 0, count: 32) + [0] + be16(200) + [1, 2]), size: 1000)
        bad.withUnsafeBytes { tls.data(flow: 5, fromClient: true, bytes: $0, time: 0) }
        XCTAssertEqual(tls.counters[.malformedHello], 1)
        tls.close(flow: 3); tls.close(flow: 5)
        XCTAssertEqual(lines.all.count, 1)
    }

    func testTruncationAndGarbageNeverTrap() throws {
        let lines = TLSLines()
        let tls = TLSAnalyzer { lines.all.append($0) }
        let body = chromeClientHelloBody()
        // Every prefix of the hello body, as a complete handshake message: parse fails or succeeds, never traps.
        for n in 0 ..< body.count {
            _ = body[0 ..< n].withUnsafeBytes { TLSClientHello.parse($0) }
            _ = body[0 ..< n].withUnsafeBytes { TLSServerHello.parse($0) }
        }
        // Every prefix of the stream, then close.
        let (c, s) = streams(recordSize: 64)
        for n in stride(from: 0, to: c.count, by: 5) {
            tls.open(flow: 1, client: client, server: server, vlan: nil, time: 0)
            c[0 ..< n].withUnsafeBytes { tls.data(flow: 1, fromClient: true, bytes: $0, time: 0) }
            tls.close(flow: 1)
        }
        XCTAssertTrue(lines.all.isEmpty)
        // Seeded mutations and noise.
        var rng = SeededRandom(seed: 0x7157)
        for round in 0 ..< 1500 {
            var bytes = round % 2 == 0 ? c : s
            if round % 5 == 0 {
                bytes = (0 ..< Int(rng.next() % 400)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if rng.next() % 2 == 0 { bytes = [22, 3, 1] + bytes }
            } else {
                for _ in 0 ..< 1 + Int(rng.next() % 8) {
                    bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
            }
            tls.open(flow: 7, client: client, server: server, vlan: nil, time: 0)
            var at = 0
            while at < bytes.count {
                let end = min(bytes.count, at + 1 + Int(rng.next() % 40))
                bytes[at ..< end].withUnsafeBytes { tls.data(flow: 7, fromClient: round % 2 == 0, bytes: $0, time: 0) }
                at = end
            }
            tls.close(flow: 7)
        }
        for line in lines.all {
            XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        XCTAssertGreaterThan(tls.counters.errors, 0)
    }
}
