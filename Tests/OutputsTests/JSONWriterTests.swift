import Outputs
import PacketCore
import Foundation
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
            stamps += [base, base &+ 1_000, base &+ 999_999]
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
