import Outputs
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
}
