import Classify
import XCTest

/// Bad patterns stop start-up with an error naming rule, key and pattern.
final class ClassifierErrorTests: XCTestCase {
    private func error(_ rules: [ClassificationRule], tcpDefault: Int? = nil, udpDefault: Int? = nil) -> ClassifierError? {
        do {
            _ = try Classifier(rules: rules, tcpDefault: tcpDefault, udpDefault: udpDefault)
            return nil
        } catch {
            return error
        }
    }

    func testBackReference() throws {
        let good = ClassificationRule(name: "good", proto: .tcp, up: "^a", down: "^b")
        let bad = ClassificationRule(name: "echo", proto: .tcp, up: "^x", down: #"(a)\1"#)
        let e = try XCTUnwrap(error([good, bad]))
        XCTAssertEqual(e.kind, .badPattern)
        XCTAssertEqual(e.ruleName, "echo")
        XCTAssertEqual(e.side, .down)
        XCTAssertEqual(e.pattern, #"(a)\1"#)
        XCTAssertTrue(e.message.contains("Back-reference"), e.message)
        let text = e.description
        XCTAssertTrue(text.contains("\"echo\""), text)
        XCTAssertTrue(text.contains("key down"), text)
        XCTAssertTrue(text.contains(#"'(a)\1'"#), text)
        XCTAssertFalse(text.contains("\n"), "one line")
    }

    func testUnbalancedParenthesesReportOffsets() throws {
        let open = try XCTUnwrap(error([ClassificationRule(name: "open", proto: .udp, up: "^(GET|POST")]))
        XCTAssertEqual(open.ruleName, "open")
        XCTAssertEqual(open.side, .up)
        XCTAssertEqual(open.pattern, "^(GET|POST")
        XCTAssertEqual(open.offset, 1, open.message)

        let close = try XCTUnwrap(error([ClassificationRule(name: "close", proto: .tcp, up: "ab)", down: "x")]))
        XCTAssertEqual(close.side, .up)
        XCTAssertEqual(close.offset, 2, close.message)
        XCTAssertTrue(close.description.contains("byte 2"), close.description)

        // The offset refers to the config text, not to the '$' → '\z' rewrite.
        let shifted = try XCTUnwrap(error([ClassificationRule(name: "shifted", proto: .udp, up: "x$|y$)")]))
        XCTAssertEqual(shifted.offset, 5, shifted.message)
    }

    func testUnsupportedRE2Syntax() throws {
        // RE2 accepts these; Vectorscan does not.
        for pattern in ["(?U)a+", "a$b", "(?<=a)b", "a++"] {
            let e = try XCTUnwrap(error([ClassificationRule(name: "r", proto: .udp, up: pattern)]), pattern)
            XCTAssertEqual(e.kind, .badPattern, pattern)
            XCTAssertEqual(e.pattern, pattern)
        }
    }

    func testPatternsThatAreNeverScannedAreStillChecked() throws {
        // The default rule's pattern, a UDP `down`, a one-sided TCP rule.
        let d = try XCTUnwrap(error([ClassificationRule(name: "tcp_default", proto: .tcp, up: "(")], tcpDefault: 0))
        XCTAssertEqual(d.ruleName, "tcp_default")
        let u = try XCTUnwrap(error([ClassificationRule(name: "dgram", proto: .udp, up: "^ok", down: "[")]))
        XCTAssertEqual(u.ruleName, "dgram")
        XCTAssertEqual(u.side, .down)
        let t = try XCTUnwrap(error([ClassificationRule(name: "half", proto: .tcp, up: "a{2,1}")]))
        XCTAssertEqual(t.side, .up)
    }

    func testFirstBadRuleInInputOrderIsReported() throws {
        let e = try XCTUnwrap(error([
            ClassificationRule(name: "z_first", proto: .tcp, up: "(", down: "x"),
            ClassificationRule(name: "a_second", proto: .tcp, up: ")", down: "x"),
        ]))
        XCTAssertEqual(e.ruleName, "z_first")
    }

    func testNulInPattern() throws {
        let e = try XCTUnwrap(error([ClassificationRule(name: "nul", proto: .udp, up: "a\u{0}b")]))
        XCTAssertEqual(e.kind, .nulInPattern)
        XCTAssertEqual(e.ruleName, "nul")
        XCTAssertTrue(e.description.contains(#"\x00"#), e.description)
        // Written as an escape it is fine, and matches a NUL byte.
        let c = try Classifier(rules: [ClassificationRule(name: "nul", proto: .udp, up: #"^a\x00b"#)])
        XCTAssertEqual(c.udp(1, 2, [0x61, 0x00, 0x62])?.matched, .up)
    }

    func testInvalidUTF8EscapeInUTF8Mode() throws {
        // Fine as bytes; in UTF-8 mode Vectorscan must accept it as a code
        // point or report it, never crash.
        let bytes = try Classifier(rules: [ClassificationRule(name: "b", proto: .udp, up: #"\xff"#)])
        XCTAssertEqual(bytes.udp(1, 2, [0xFF])?.matched, .up)
        let chars = try Classifier(rules: [ClassificationRule(name: "u", proto: .udp, up: #"\x{e9}"#, utf8: true)])
        XCTAssertEqual(chars.udp(1, 2, "\u{E9}")?.matched, .up)
        XCTAssertNil(chars.udp(1, 2, [0xE9]))
    }

    func testEmptyRuleSet() throws {
        let c = try Classifier(rules: [])
        XCTAssertNil(c.tcp(1, 2, "x", "y"))
        XCTAssertNil(c.udp(1, 2, "x"))
        XCTAssertTrue(c.rules.isEmpty)
    }
}
