@testable import Outputs
import PacketCore
import Foundation
import TestSupport
import XCTest

final class JSONWriterTests: XCTestCase {
    func testNestedObjectsArraysAndEscapes() throws {
        var w = JSONWriter()
        w.beginObject()
        w.string("type", "http")
        w.beginObject("client")
        w.string("ip", "10.0.0.1")
        w.number("port", 80)
        w.beginArray("alpn")
        w.string(nil, "h2")
        w.string(nil, "http/1.1")
        w.endArray()
        w.endObject()
        w.string("odd", [0x22, 0x5C, 0x0A, 0x01, 0xFF])
        w.bool("qr", true)
        w.null("body")
        w.endObject()
        let object = try JSONSerialization.jsonObject(with: Data(w.line.utf8)) as? [String: Any]
        XCTAssertEqual(object?["type"] as? String, "http")
        XCTAssertEqual((object?["client"] as? [String: Any])?["port"] as? Int, 80)
        XCTAssertEqual((object?["client"] as? [String: Any])?["alpn"] as? [String], ["h2", "http/1.1"])
        XCTAssertEqual(object?["odd"] as? String, "\"\\\n\u{1}\u{FFFD}")
        XCTAssertTrue(w.line.hasSuffix("}\n"))
        w.reset()
        w.beginObject()
        w.endObject()
        XCTAssertEqual(w.line, "{}\n")
    }

    /// Integers are written digit by digit in place: every value reads back as Swift prints it.
    func testIntegersMatchTheirDecimalText() {
        var values = [0, 1, -1, 9, 10, -10, 99, 100, Int.max, Int.min, Int.max - 1, Int.min + 1, 1_000_000_007]
        // Every width: each power of ten, one below it, and their negatives.
        var power = 1
        for _ in 0 ..< 19 {
            power *= 10
            values += [power, power - 1, -power, -(power - 1)]
            if power > Int.max / 10 { break }
        }
        var seed: UInt64 = 7
        for _ in 0 ..< 2000 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            values.append(Int(bitPattern: UInt(seed)) >> Int(seed % 60))
        }
        for value in values {
            var writer = JSONWriter()
            writer.beginArray()
            writer.number(nil, value)
            writer.endArray()
            XCTAssertEqual(String(decoding: writer.bytes, as: UTF8.self), "[\(value)]")
            // With keys (the comma, key, sign and digits written at once), of lengths around every copy size.
            var keyed = JSONWriter()
            keyed.beginObject()
            keyed.number("a", value)
            keyed.number("pkt", value)
            keyed.number("bytes_toserver", value)
            keyed.number("payload_bytes_toserver", value)
            keyed.number("a_key_of_thirty_three_characters_", value)
            keyed.endObject()
            XCTAssertEqual(String(decoding: keyed.bytes, as: UTF8.self),
                           "{\"a\":\(value),\"pkt\":\(value),\"bytes_toserver\":\(value),\"payload_bytes_toserver\":\(value),\"a_key_of_thirty_three_characters_\":\(value)}")
        }
    }
}

/// Record timestamps (RFC 3339, UTC, microseconds) against the C library's own formatting.
final class RecordTimeTests: XCTestCase {
    func testRFC3339MatchesStrftime() {
        var seed: UInt64 = 11
        var stamps: [Int64] = [0, 1, 999, 1_000_000_000, 1_700_000_000_123_456_789, -1, -1_000_000_001, 951_782_400_000_000_000]
        for _ in 0 ..< 2000 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            stamps.append(Int64(bitPattern: seed % 9_000_000_000_000_000_000))
        }
        for ns in stamps {
            let t = Timestamp(nanoseconds: ns)
            var seconds = time_t(ns >= 0 ? ns / 1_000_000_000 : (ns - 999_999_999) / 1_000_000_000)
            let micro = (ns - Int64(seconds) * 1_000_000_000) / 1000
            var parts = tm()
            gmtime_r(&seconds, &parts)
            var buffer = [CChar](repeating: 0, count: 64)
            strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S", &parts)
            let fraction = String(micro)
            let expected = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                + "." + String(repeating: "0", count: 6 - fraction.count) + fraction + "+00:00"
            XCTAssertEqual(t.rfc3339, expected, "\(ns)")
        }
    }

    /// The writer's in-place timestamps (with their once-a-second cache) are the same text as `rfc3339`,
    /// in random order and in runs within one second, at Int64's edges too.
    func testWriterTimestampsEqualRFC3339() throws {
        var seed: UInt64 = 12
        var stamps: [Int64] = [0, -1, Int64.min, Int64.max, Int64.min + 1, 1_700_000_000_999_999_999, 1_700_000_001_000_000_000]
        for _ in 0 ..< 3000 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let base = Int64(bitPattern: seed)
            // The same second, then later seconds of the same day and the next (the cache keeps a day).
            stamps += [base, base &+ 1_000, base &+ 999_999, base &+ 1_000_000_000, base &+ 3_599_000_000_000, base &+ 86_399_000_000_000,
                       base &+ 86_400_000_000_000]
        }
        var writer = JSONWriter()
        for ns in stamps {
            writer.reset()
            writer.beginObject()
            writer.timestamp("t", Timestamp(nanoseconds: ns))
            writer.endObject()
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(writer.bytes)) as? [String: String])
            XCTAssertEqual(object["t"], Timestamp(nanoseconds: ns).rfc3339, "\(ns)")
        }
        // Every day Int64 nanoseconds reach (1678 to 2261: leap days, 1700, 1800, 1900 and 2100 without
        // one, 2000 with), at the day's first and last second: the date arithmetic against gmtime_r.
        for day in Int64(-106_750) ... 106_750 {
            for second in [day * 86_400, day * 86_400 + 86_399] {
                writer.reset()
                writer.timestamp(nil, Timestamp(nanoseconds: second * 1_000_000_000 + 123_456_000))
                let text = writer.bytes.dropFirst().dropLast()
                if String(decoding: text, as: UTF8.self) != Timestamp(nanoseconds: second * 1_000_000_000 + 123_456_000).rfc3339 {
                    XCTFail("day \(day): \(String(decoding: text, as: UTF8.self))")
                    return
                }
            }
        }
    }

    /// Addresses written in place are `IPAddress.description`'s text.
    func testWriterAddressesEqualTheirDescription() throws {
        var seed: UInt64 = 13
        var addresses = [IPAddress(ipv4: 0), IPAddress(ipv4: 0xFFFF_FFFF), IPAddress(ipv4: 0x0A00_0001), IPAddress("2001:db8::1")!, IPAddress("::")!]
        for _ in 0 ..< 3000 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            addresses.append(IPAddress(ipv4: UInt32(truncatingIfNeeded: seed >> 17)))
        }
        var writer = JSONWriter()
        for a in addresses {
            writer.reset()
            writer.beginObject()
            writer.address("a", a)
            writer.endObject()
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(writer.bytes)) as? [String: String])
            XCTAssertEqual(object["a"], a.description)
        }
    }
}

/// Numbers, strings and addresses written in place read back as the standard library and the C library
/// write them.
final class JSONWriterTextTests: XCTestCase {
    private func written(_ body: (inout JSONWriter) -> Void) -> String {
        var writer = JSONWriter()
        writer.beginArray()
        body(&writer)
        writer.endArray()
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    /// Doubles: record times (seconds with micro- and nanoseconds), durations, ratios, integers, edges of the
    /// in-place range, and random bit patterns (mostly written through `String`) — all as `"\(value)"`.
    func testDoublesMatchSwiftText() {
        var random = SeededRandom(seed: 31)
        var values: [Double] = [0, -0.0, 1, -1, 0.001, 0.000999, 0.0001, 1e-5, 0.1, 0.5, 1.0 / 3.0, 2.0 / 3.0, 100, 1e15, 1e16,
                                9_007_199_254_740_991, 9_007_199_254_740_992, 9_007_199_254_740_993, 4_503_599_627_370_495.5,
                                1_700_000_000, 1_700_000_000.5, 1_700_000_000.000001, 123_456_789_012_345.6, .infinity, -.infinity,
                                .greatestFiniteMagnitude, .leastNonzeroMagnitude, .ulpOfOne]
        for _ in 0 ..< 40_000 {
            let seconds = Double(Int.random(in: 0 ... 4_000_000_000, using: &random))
            values.append(seconds + Double(Int.random(in: 0 ..< 1_000_000, using: &random)) / 1e6)
            values.append(seconds + Double(Int.random(in: 0 ..< 1_000_000_000, using: &random)) / 1e9)
            values.append(Double(Int.random(in: 0 ..< 100_000_000, using: &random)) / 1e6)
            values.append(-Double(Int.random(in: 0 ..< 100_000, using: &random)) / 1e3)
            values.append(Double.random(in: 0 ..< 1, using: &random))
            values.append(Double.random(in: 0 ..< 1e15, using: &random))
            values.append(Double(Int.random(in: 1 ... 1000, using: &random)) / Double(Int.random(in: 1 ... 1000, using: &random)))
            values.append(Double(bitPattern: UInt64.random(in: 0 ... .max, using: &random)))
        }
        var mismatches = 0
        for value in values where !value.isNaN {
            let expected = value.isFinite ? "[\(value)]" : "[null]"
            let got = written { $0.number(nil, value) }
            if got != expected {
                mismatches += 1
                if mismatches < 5 { XCTFail("\(got) != \(expected) (bits \(value.bitPattern))") }
            }
        }
        XCTAssertEqual(mismatches, 0)
    }

    /// Strings of random bytes, with every character that needs escaping at every offset of the eight-byte
    /// scan, read back by Foundation's JSON parser as the bytes decoded as UTF-8; plain text is copied as it is.
    func testStringsReadBackAsTheirUTF8() throws {
        var random = SeededRandom(seed: 37)
        let special: [UInt8] = [0x22, 0x5C, 0x00, 0x0A, 0x0D, 0x09, 0x1F, 0x7F, 0x80, 0xC3, 0xA9, 0xFF, 0x20, 0x41]
        for n in 0 ..< 20_000 {
            let length = n % 70
            var raw = (0 ..< length).map { _ in UInt8.random(in: 0x20 ... 0x7E, using: &random) }
            if n % 3 != 0 && length > 0 {
                raw[Int.random(in: 0 ..< length, using: &random)] = special[Int.random(in: 0 ..< special.count, using: &random)]
            }
            var writer = JSONWriter()
            writer.beginObject()
            writer.key(escaping: String(decoding: raw, as: UTF8.self))
            writer.string(nil, raw)
            writer.endObject()
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(writer.bytes)) as? [String: String])
            let text = String(decoding: raw, as: UTF8.self)
            XCTAssertEqual(object, [text: text], "\(raw)")
            let plain = raw.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }
            if !plain && raw.allSatisfy({ $0 < 0x80 }) {
                // ASCII that needs escapes: exactly RFC 8259's short escapes, \u00XX for other controls.
                var quoted: [UInt8] = [0x22]
                for b in raw {
                    switch b {
                    case 0x22, 0x5C: quoted += [0x5C, b]
                    case 0x0A: quoted += Array("\\n".utf8)
                    case 0x0D: quoted += Array("\\r".utf8)
                    case 0x09: quoted += Array("\\t".utf8)
                    case 0 ..< 0x20: quoted += Array(String(format: "\\u%04x", b).utf8)
                    default: quoted.append(b)
                    }
                }
                quoted.append(0x22)
                XCTAssertEqual(writer.bytes, [UInt8(ascii: "{")] + quoted + [UInt8(ascii: ":")] + quoted + [UInt8(ascii: "}")], "\(raw)")
            }
            if plain {
                let quoted: [UInt8] = [0x22] + raw + [0x22]
                var expected: [UInt8] = [UInt8(ascii: "{")]
                expected += quoted
                expected.append(UInt8(ascii: ":"))
                expected += quoted
                expected.append(UInt8(ascii: "}"))
                XCTAssertEqual(writer.bytes, expected)
            }
        }
    }

    /// Addresses: RFC 5952 text, which is inet_ntop's for every address but the IPv4-compatible ones
    /// (`::a.b.c.d`, deprecated by RFC 4291 §2.5.5.1; written as hex words here).
    func testAddressesMatchInetNtop() {
        var random = SeededRandom(seed: 41)
        var addresses: [IPAddress] = [.zero, IPAddress(ipv4: 0xFFFF_FFFF), IPAddress(high: 0, low: 1, isIPv6: true),
                                      IPAddress(high: 0, low: 0, isIPv6: true), IPAddress(high: 0, low: 0xFFFF_0A00_0001, isIPv6: true)]
        for _ in 0 ..< 50_000 {
            var words = (0 ..< 8).map { _ in UInt64.random(in: 0 ... 0xFFFF, using: &random) }
            for i in words.indices where Bool.random(using: &random) { words[i] = 0 }
            if Int.random(in: 0 ..< 10, using: &random) == 0 { words[5] = 0xFFFF; for i in 0 ..< 5 { words[i] = 0 } }
            addresses.append(IPAddress(high: words[0 ..< 4].reduce(0) { $0 << 16 | $1 }, low: words[4 ..< 8].reduce(0) { $0 << 16 | $1 }, isIPv6: true))
            addresses.append(IPAddress(ipv4: UInt32.random(in: 0 ... .max, using: &random)))
        }
        for a in addresses {
            let ours = a.description
            XCTAssertEqual(written { $0.address(nil, a) }, "[\"\(ours)\"]")
            if a.isIPv6 && a.high == 0 && a.low >> 32 == 0 && a.low > 1 {
                // IPv4-compatible: glibc writes a dotted quad, RFC 5952 hex groups; the text must read back.
                XCTAssertFalse(ours.contains("."), ours)
                XCTAssertEqual(Self.inetPton(ours), a, ours)
            } else {
                XCTAssertEqual(ours, Self.inetNtop(a))
            }
        }
        XCTAssertEqual(IPAddress(high: 0, low: 0x0102_0304, isIPv6: true).description, "::102:304")
    }

    private static func inetPton(_ text: String) -> IPAddress? {
        var raw = [UInt8](repeating: 0, count: 16)
        guard inet_pton(AF_INET6, text, &raw) == 1 else { return nil }
        return raw.withUnsafeBytes { IPAddress.ipv6($0, at: 0) }
    }

    private static func inetNtop(_ a: IPAddress) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        if a.isIPv6 {
            var raw = [UInt8](repeating: 0, count: 16)
            for i in 0 ..< 8 {
                raw[i] = UInt8(truncatingIfNeeded: a.high >> UInt64(56 - 8 * i))
                raw[8 + i] = UInt8(truncatingIfNeeded: a.low >> UInt64(56 - 8 * i))
            }
            _ = inet_ntop(AF_INET6, raw, &buffer, socklen_t(buffer.count))
        } else {
            var value = a.ipv4Value.bigEndian
            _ = inet_ntop(AF_INET, &value, &buffer, socklen_t(buffer.count))
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The record buffer grows past any capacity and keeps its bytes through appends, removals and growth.
final class RecordBytesTests: XCTestCase {
    func testGrowthAndRemovalKeepTheBytes() {
        var random = SeededRandom(seed: 43)
        var a = RecordBytes(capacity: 1), reference: [UInt8] = []
        for _ in 0 ..< 5000 {
            switch Int.random(in: 0 ..< 4, using: &random) {
            case 0:
                let byte = UInt8.random(in: 0 ... .max, using: &random)
                a.append(byte)
                reference.append(byte)
            case 1:
                let chunk = (0 ..< Int.random(in: 0 ..< 300, using: &random)).map { _ in UInt8.random(in: 0 ... .max, using: &random) }
                a.append(contentsOf: chunk)
                reference += chunk
            case 2:
                let n = Int.random(in: 0 ... min(5, reference.count), using: &random)
                a.removeLast(n)
                reference.removeLast(n)
            default:
                // Bytes written through a reservation, as the number writers do.
                let n = Int.random(in: 1 ... 40, using: &random)
                let at = a.reserve(n)
                for i in 0 ..< n { at[i] = UInt8(truncatingIfNeeded: i &* 7) }
                a.didWrite(n)
                reference += (0 ..< n).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            }
            XCTAssertEqual(a.count, reference.count)
        }
        XCTAssertEqual(a.array, reference)
        a.removeAll()
        XCTAssertEqual(a.count, 0)
        a.append(contentsOf: "again".utf8)
        XCTAssertEqual(a.array, Array("again".utf8))
        var writer = JSONWriter(capacity: 1)
        writer.beginObject()
        writer.string("k", String(repeating: "v", count: 10_000))
        let before = writer.bytes.count
        writer.endObject()
        XCTAssertEqual(writer.bytes.count, before + 1)
        XCTAssertEqual(writer.line, "{\"k\":\"" + String(repeating: "v", count: 10_000) + "\"}\n")
    }
}

/// Digit counts and the number writer's digits at every power of ten, around it, and at random.
final class DecimalDigitsTests: XCTestCase {
    func testDigitCountAndNumbersAtEveryPowerOfTen() {
        var values: [UInt64] = [0, 1, 9, 10, 11, 99, 100, UInt64.max, UInt64.max - 1, UInt64(Int64.max), UInt64(Int64.max) + 1]
        var power: UInt64 = 1
        for _ in 0 ... 19 {
            values += [power &- 1, power, power &+ 1]
            if power > UInt64.max / 10 { break }
            power *= 10
        }
        var random = SeededRandom(seed: 7)
        for _ in 0 ..< 20_000 { values.append(UInt64.random(in: 0 ... .max, using: &random) >> UInt64.random(in: 0 ... 63, using: &random)) }
        for v in values {
            XCTAssertEqual(decimalDigitCount(v), String(v).count, "\(v)")
            XCTAssertEqual(powerOfTen(decimalDigitCount(v) - 1) <= v || v == 0, true, "\(v)")
            if v <= UInt64(Int64.max) {
                for signed in [Int(v), -Int(v)] {
                    var w = JSONWriter()
                    w.beginObject()
                    w.number("n", signed)
                    w.number(nil as StaticString?, signed)
                    w.endObject()
                    XCTAssertEqual(String(decoding: w.bytes, as: UTF8.self), "{\"n\":\(signed),\(signed)}")
                }
            }
        }
        var w = JSONWriter()
        w.number(nil as StaticString?, Int.min)
        XCTAssertEqual(String(decoding: w.bytes, as: UTF8.self), "\(Int.min)")
    }
}
