import Classify
import Foundation
import XCTest

/// Rule order, ports, inspection depth, empty buffers, text modes, and the
/// RE2 → Vectorscan rewrite, each on small synthetic rule sets.
final class ClassifierSemanticsTests: XCTestCase {
    // MARK: Order

    func testNiceThenNameThenRegexBeforePortOnly() throws {
        let rules = [
            ClassificationRule(name: "b", proto: .tcp, up: "^x", down: "^y", nice: 50),
            ClassificationRule(name: "a", proto: .tcp, up: "^x", down: "^y", nice: 50),
            ClassificationRule(name: "0first", proto: .tcp, up: "^x", down: "^y", nice: 60),
            ClassificationRule(name: "port", proto: .tcp, nice: 40, ports: [7 ... 7]),
        ]
        let c = try Classifier(rules: rules)
        // nice 40's port-only rule beats every nice 50 regex rule.
        XCTAssertEqual(c.name(c.tcp(7, 1000, "x", "y")), "port")
        // Same nice: byte order of the name ("a" < "b"), not input order;
        // the name order does not cross nice levels ("0first" is nice 60).
        XCTAssertEqual(c.name(c.tcp(8, 1000, "x", "y")), "a")
        XCTAssertEqual(c.name(c.tcp(8, 1000, "y", "x")), "a")

        // Within one level regex rules come before port-only ones, even a
        // port-only rule whose name sorts first.
        let level = try Classifier(rules: [
            ClassificationRule(name: "zz_regex", proto: .tcp, up: "^x", down: "^y"),
            ClassificationRule(name: "aa_port", proto: .tcp),
        ])
        XCTAssertEqual(level.name(level.tcp(1, 2, "x", "y")), "zz_regex")
        XCTAssertEqual(level.name(level.tcp(1, 2, "q", "y")), "aa_port")
    }

    func testNameOrderIsBytewise() throws {
        // Uppercase sorts before lowercase in byte order ('Z' 0x5A < 'a' 0x61),
        // and a prefix before its extensions, as in std::map<std::string>.
        let c = try Classifier(rules: [
            ClassificationRule(name: "abc", proto: .tcp, up: "x", down: ""),
            ClassificationRule(name: "ab", proto: .tcp, up: "x", down: ""),
            ClassificationRule(name: "Zed", proto: .tcp, up: "x", down: ""),
        ])
        XCTAssertEqual(c.name(c.tcp(1, 2, "x", "")), "Zed")
        let d = try Classifier(rules: [
            ClassificationRule(name: "abc", proto: .tcp, up: "x", down: ""),
            ClassificationRule(name: "ab", proto: .tcp, up: "x", down: ""),
        ])
        XCTAssertEqual(d.name(d.tcp(1, 2, "x", "")), "ab")
    }

    func testDuplicateNamesKeepInputOrder() throws {
        let c = try Classifier(rules: [
            ClassificationRule(name: "same", interface: "one", proto: .udp),
            ClassificationRule(name: "same", interface: "two", proto: .udp),
        ])
        XCTAssertEqual(c.udp(1, 2, "")?.ruleIndex, 0)
    }

    func testRuleWithOnlyOneSideIsPortOnly() throws {
        // SF-TAP: a TCP rule with only `up` (and no port) takes every flow at
        // its level, without looking at the bytes.
        let c = try Classifier(rules: [
            ClassificationRule(name: "only_up", proto: .tcp, up: "^never$", nice: 100),
            ClassificationRule(name: "later", proto: .tcp, up: ".*", down: ".*", nice: 101),
        ])
        let result = c.tcp(1, 2, "anything", "at all")
        XCTAssertEqual(c.name(result), "only_up")
        XCTAssertEqual(result?.first, .unmatched)
        XCTAssertEqual(result?.second, .unmatched)
        // Only `down` likewise; for UDP, `down` alone is port-only too.
        let d = try Classifier(rules: [
            ClassificationRule(name: "only_down", proto: .tcp, down: "^never$"),
            ClassificationRule(name: "udp_down", proto: .udp, down: "^never$"),
        ])
        XCTAssertEqual(d.name(d.tcp(1, 2, "x", "y")), "only_down")
        XCTAssertEqual(d.udp(1, 2, "x")?.matched, .unmatched)
        XCTAssertEqual(d.name(d.udp(1, 2, "x")), "udp_down")
    }

    func testDefaultRulesAreOnlyTriedLast() throws {
        // A default section is never part of a level, whatever its nice,
        // ports or patterns.
        let rules = [
            ClassificationRule(name: "tcp_default", proto: .tcp, up: ".*", down: ".*", nice: 0),
            ClassificationRule(name: "udp_default", proto: .udp, nice: 0),
            ClassificationRule(name: "web", proto: .tcp, nice: 500, ports: [80 ... 80]),
            ClassificationRule(name: "dns", proto: .udp, nice: 500, ports: [53 ... 53]),
        ]
        let c = try Classifier(rules: rules, tcpDefault: 0, udpDefault: 1)
        XCTAssertEqual(c.name(c.tcp(1, 80, "x", "y")), "web")
        let fallback = c.tcp(1, 81, "x", "y")
        XCTAssertEqual(c.name(fallback), "tcp_default")
        XCTAssertEqual(fallback?.first, .unmatched)
        XCTAssertEqual(c.name(c.udp(1, 53, "x")), "dns")
        XCTAssertEqual(c.name(c.udp(1, 54, "x")), "udp_default")
        // Without the indices the same sections are ordinary rules.
        let plain = try Classifier(rules: rules)
        XCTAssertEqual(plain.name(plain.tcp(1, 80, "x", "y")), "tcp_default")
        XCTAssertEqual(plain.tcp(1, 80, "x", "y")?.first, .up)
    }

    // MARK: Ports

    func testPortListsMatchEitherEndpointInclusively() throws {
        // `port: 100,200,300-310`
        let ports: [ClosedRange<UInt16>] = [100 ... 100, 200 ... 200, 300 ... 310]
        let c = try Classifier(rules: [
            ClassificationRule(name: "listed", proto: .tcp, up: "^x", down: "", ports: ports),
            ClassificationRule(name: "listed_udp", proto: .udp, up: "^x", ports: ports),
            ClassificationRule(name: "udp_port_only", proto: .udp, nice: 200, ports: ports),
        ])
        for port: UInt16 in [100, 200, 300, 305, 310] {
            XCTAssertEqual(c.name(c.tcp(port, 40000, "x", "")), "listed", "port1 \(port)")
            XCTAssertEqual(c.name(c.tcp(40000, port, "", "x")), "listed", "port2 \(port)")
            XCTAssertEqual(c.name(c.udp(port, 40000, "x")), "listed_udp", "udp \(port)")
            XCTAssertEqual(c.name(c.udp(40000, port, "y")), "udp_port_only", "udp port-only \(port)")
        }
        for port: UInt16 in [0, 99, 101, 199, 201, 299, 311, 65535] {
            XCTAssertNil(c.tcp(port, 40000, "x", ""), "port \(port)")
            XCTAssertNil(c.udp(40000, port, "x"), "udp \(port)")
        }
        // Right ports, wrong bytes.
        XCTAssertNil(c.tcp(100, 200, "y", ""))
    }

    func testEmptyPortListMeansAnyPortAndFullRangeWorks() throws {
        let c = try Classifier(rules: [
            ClassificationRule(name: "all", proto: .tcp, ports: [0 ... 65535]),
            ClassificationRule(name: "any", proto: .udp),
        ])
        XCTAssertEqual(c.name(c.tcp(0, 0, [], [])), "all")
        XCTAssertEqual(c.name(c.tcp(65535, 65535, [], [])), "all")
        XCTAssertEqual(c.name(c.udp(12345, 54321, [])), "any")
    }

    // MARK: Inspection depth

    func testOnlyTheFirst4096BytesOfEachDirectionCount() throws {
        let c = try Classifier(rules: [ClassificationRule(name: "deep", proto: .tcp, up: "^HELLO", down: "MARKER")])
        let marker = Array("MARKER".utf8)
        func reply(markerAt offset: Int) -> [UInt8] {
            var bytes = [UInt8](repeating: 0x2E, count: offset) + marker
            bytes += [UInt8](repeating: 0x2E, count: 2000)
            return bytes
        }
        let hello = Array("HELLO".utf8)
        XCTAssertNil(c.tcp(1, 2, hello, reply(markerAt: 5000)), "match at byte 5000 is past the limit")
        XCTAssertEqual(c.name(c.tcp(1, 2, hello, reply(markerAt: 4000))), "deep")
        // Ending exactly at byte 4096 counts; straddling it does not.
        XCTAssertEqual(c.name(c.tcp(1, 2, hello, reply(markerAt: 4096 - marker.count))), "deep")
        XCTAssertNil(c.tcp(1, 2, hello, reply(markerAt: 4096 - marker.count + 1)))
        // Same for endpoint 1's direction.
        XCTAssertNil(c.tcp(1, 2, reply(markerAt: 5000), hello))
        XCTAssertEqual(c.tcp(1, 2, reply(markerAt: 100), hello)?.first, .down)
        // '$' sees the end of the examined bytes, not of the buffer.
        let end = try Classifier(rules: [ClassificationRule(name: "end", proto: .tcp, up: "x$", down: "")])
        XCTAssertEqual(end.name(end.tcp(1, 2, [UInt8](repeating: 0x78, count: 9000), [])), "end")
    }

    func testUDPExaminesTheWholeDatagram() throws {
        let c = try Classifier(rules: [ClassificationRule(name: "deep", proto: .udp, up: "MARKER")])
        let payload = [UInt8](repeating: 0x2E, count: 60000) + Array("MARKER".utf8)
        XCTAssertEqual(c.udp(1, 2, payload)?.matched, .up)
    }

    // MARK: Empty buffers

    func testEmptyBuffersMatchEmptyMatchingPatterns() throws {
        let c = try Classifier(rules: [
            ClassificationRule(name: "catch", proto: .tcp, up: ".*", down: "^.?"),
        ])
        let result = c.tcp(1, 2, [], [])
        XCTAssertEqual(c.name(result), "catch")
        XCTAssertEqual(result?.first, .up)
        XCTAssertEqual(result?.second, .down)
        // One empty side: '^.?' takes the empty side whichever endpoint it is.
        let d = try Classifier(rules: [ClassificationRule(name: "one_sided", proto: .tcp, up: "^<1>", down: "^.?")])
        XCTAssertEqual(d.tcp(1, 2, "<1>x", "")?.first, .up)
        XCTAssertEqual(d.tcp(1, 2, "", "<1>x")?.first, .down)
        // A pattern that needs a byte does not match an empty buffer.
        let e = try Classifier(rules: [ClassificationRule(name: "needs_byte", proto: .tcp, up: "^.", down: "^.")])
        XCTAssertNil(e.tcp(1, 2, [], []))
        XCTAssertNil(e.tcp(1, 2, [1], []))
        XCTAssertNotNil(e.tcp(1, 2, [1], [2]))
        // UDP, empty datagram.
        let u = try Classifier(rules: [ClassificationRule(name: "u", proto: .udp, up: ".*")])
        XCTAssertEqual(u.udp(1, 2, [])?.matched, .up)
    }

    func testPartialMatchIsUnanchoredUnlessCaret() throws {
        let c = try Classifier(rules: [
            ClassificationRule(name: "anchored", proto: .udp, up: "^abc"),
            ClassificationRule(name: "floating", proto: .udp, up: "xyz", nice: 200),
        ])
        XCTAssertEqual(c.name(c.udp(1, 2, "abcdef")), "anchored")
        XCTAssertNil(c.udp(1, 2, "zabc"))
        XCTAssertEqual(c.name(c.udp(1, 2, "...xyz...")), "floating")
    }

    func testDotMatchesNewlineAndEveryByte() throws {
        let c = try Classifier(rules: [ClassificationRule(name: "dot", proto: .udp, up: "^a.b$")])
        for byte: UInt8 in [0x00, 0x0A, 0x0D, 0x7F, 0x80, 0xFF] {
            XCTAssertEqual(c.udp(1, 2, [0x61, byte, 0x62])?.matched, .up, "byte \(byte)")
        }
    }

    // MARK: Text modes

    func testUTF8ModeReadsCharactersByteModeReadsBytes() throws {
        let c = try Classifier(rules: [
            ClassificationRule(name: "chars", proto: .udp, up: "^.$", utf8: true, ports: [1 ... 1]),
            ClassificationRule(name: "bytes", proto: .udp, up: "^.$", utf8: false, ports: [2 ... 2]),
            ClassificationRule(name: "bytes2", proto: .udp, up: "^..$", utf8: false, ports: [3 ... 3]),
        ])
        let eAcute: [UInt8] = [0xC3, 0xA9]  // "é" in UTF-8
        XCTAssertEqual(c.name(c.udp(1, 9, eAcute)), "chars")
        XCTAssertNil(c.udp(2, 9, eAcute), "byte mode: two bytes are two characters")
        XCTAssertEqual(c.name(c.udp(3, 9, eAcute)), "bytes2")
        // Latin-1 "é" is one byte: one character in byte mode; not UTF-8.
        XCTAssertEqual(c.name(c.udp(2, 9, [0xE9])), "bytes")
        XCTAssertNil(c.udp(1, 9, [0xE9]))

        // A literal non-ASCII character in the pattern: UTF-8 in both modes,
        // so byte mode matches its two bytes as a sequence.
        let d = try Classifier(rules: [
            ClassificationRule(name: "u", proto: .udp, up: "^caf\u{E9}$", utf8: true, ports: [1 ... 1]),
            ClassificationRule(name: "b", proto: .udp, up: "^caf\u{E9}$", utf8: false, ports: [2 ... 2]),
        ])
        XCTAssertEqual(d.name(d.udp(1, 9, "caf\u{E9}")), "u")
        XCTAssertEqual(d.name(d.udp(2, 9, "caf\u{E9}")), "b")
    }

    func testUTF8PatternsStopAtTheFirstInvalidByte() throws {
        // Documented: utf8 patterns see the well-formed prefix only; byte
        // patterns in the same classifier see everything.
        let c = try Classifier(rules: [
            ClassificationRule(name: "u_head", proto: .udp, up: "^GET", utf8: true, ports: [1 ... 1]),
            ClassificationRule(name: "u_tail", proto: .udp, up: "tail", utf8: true, ports: [2 ... 2]),
            ClassificationRule(name: "b_tail", proto: .udp, up: "tail", utf8: false, ports: [3 ... 3]),
        ])
        let data = Array("GET ".utf8) + [0xFF] + Array(" tail".utf8)
        XCTAssertEqual(c.name(c.udp(1, 9, data)), "u_head")
        XCTAssertNil(c.udp(2, 9, data))
        XCTAssertEqual(c.name(c.udp(3, 9, data)), "b_tail")
        XCTAssertEqual(c.name(c.udp(2, 9, "valid tail \u{1F600}")), "u_tail")
        // Overlong "/" (C0 AF) and a surrogate (ED A0 80) are not UTF-8.
        XCTAssertNil(c.udp(2, 9, [0xC0, 0xAF] + Array("tail".utf8)))
        XCTAssertNil(c.udp(2, 9, [0xED, 0xA0, 0x80] + Array("tail".utf8)))
    }

    func testSamePatternInBothModesIsTwoPatterns() throws {
        let c = try Classifier(rules: [
            ClassificationRule(name: "u", proto: .tcp, up: "^.$", down: ".*", utf8: true, ports: [1 ... 1]),
            ClassificationRule(name: "b", proto: .tcp, up: "^.$", down: ".*", utf8: false, ports: [2 ... 2]),
        ])
        XCTAssertEqual(c.name(c.tcp(1, 9, [0xC3, 0xA9], [])), "u")
        XCTAssertNil(c.tcp(2, 9, [0xC3, 0xA9], []))
        XCTAssertEqual(c.name(c.tcp(2, 9, [0xE9], [])), "b")
    }

    // MARK: RE2 dialect

    func testDollarMeansEndOfTextAsInRE2() throws {
        func matches(_ pattern: String, _ text: String) throws -> Bool {
            let c = try Classifier(rules: [ClassificationRule(name: "p", proto: .udp, up: pattern)])
            return c.udp(1, 2, text) != nil
        }
        // Vectorscan's own '$' would also match before a final newline.
        XCTAssertFalse(try matches("e$", "abe\n"))
        XCTAssertTrue(try matches("e$", "abe"))
        XCTAssertFalse(try matches(#"^d.*:q.*e$"#, Payload.dhtPing + "\n"))
        // '$' that is not an anchor stays as it is.
        XCTAssertTrue(try matches("[$]", "a$b"))
        XCTAssertTrue(try matches("[]$]", "$"))
        XCTAssertTrue(try matches("[^]$]", "x"))
        XCTAssertFalse(try matches("^[^]$]$", "$"))
        XCTAssertTrue(try matches("[[:digit:]$]", "$"))
        XCTAssertTrue(try matches(#"\$5"#, "costs $5"))
        XCTAssertTrue(try matches(#"\Qa$b\E"#, "xa$by"))
        // Multi-line mode keeps '$' as end of line.
        XCTAssertTrue(try matches("(?m)e$", "e\nx"))
        XCTAssertTrue(try matches("(?sm:e$)", "e\nx"))
        XCTAssertFalse(try matches("(?i)e$", "E\nx"))
        XCTAssertTrue(try matches("(?i)e$", "xE"))
    }

    func testRE2SyntaxThatVectorscanShares() throws {
        let c = try Classifier(rules: [
            ClassificationRule(name: "named", proto: .udp, up: #"^(?P<verb>[A-Z]+) "#, ports: [1 ... 1]),
            ClassificationRule(name: "hex", proto: .udp, up: #"^\x16\x03[\x00-\x03]"#, ports: [2 ... 2]),
            ClassificationRule(name: "class", proto: .udp, up: #"^[[:alpha:]]+\d{2}\b"#, ports: [3 ... 3]),
            ClassificationRule(name: "caseless", proto: .udp, up: "(?i)^get ", ports: [4 ... 4]),
        ])
        XCTAssertEqual(c.name(c.udp(1, 9, "GET /")), "named")
        XCTAssertEqual(c.name(c.udp(2, 9, [0x16, 0x03, 0x02])), "hex")
        XCTAssertNil(c.udp(2, 9, [0x16, 0x03, 0x04]))
        XCTAssertEqual(c.name(c.udp(3, 9, "abc12 x")), "class")
        XCTAssertEqual(c.name(c.udp(4, 9, "gEt /")), "caseless")
    }

    // MARK: Sharing and volume

    func testCompiledRulesAreSharedAcrossThreads() throws {
        let compiled = try CompiledRules(
            rules: try FabsExample.rules(),
            tcpDefault: try FabsExample.index("tcp_default"),
            udpDefault: try FabsExample.index("udp_default"))
        let request = Array(Payload.httpRequest.utf8), response = Array(Payload.httpResponse.utf8)
        let failures = Counter(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            // One classifier per thread over the shared databases.
            guard let classifier = try? Classifier(compiled: compiled) else {
                failures.add(1)
                return
            }
            for _ in 0 ..< 2000 where classifier.name(classifier.tcp(1, 80, request, response)) != "http" {
                failures.add(1)
            }
        }
        XCTAssertEqual(failures.value, 0)
    }

    func testHundredThousandFlows() throws {
        let c = try FabsExample.classifier()
        let flows: [([UInt8], [UInt8], UInt16, String)] = [
            (Array(Payload.httpRequest.utf8), Array(Payload.httpResponse.utf8), 80, "http"),
            (Payload.clientHello, Payload.serverHello, 443, "ssl"),
            (Array(Payload.sshClient.utf8), Array(Payload.sshServer.utf8), 22, "ssh"),
            (Payload.dnsQueryTCP, Payload.dnsResponseTCP, 53, "dns_tcp"),
            (Array(Payload.ehlo.utf8), Array(Payload.smtpGreeting.utf8), 25, "smtp"),
            ([UInt8](repeating: 0xAB, count: 8000), [UInt8](repeating: 0xCD, count: 5000), 9999, "tcp_default"),
        ]
        var counts = [String: Int]()
        var rng = SystemRandomNumberGenerator()
        for i in 0 ..< 100_000 {
            let flow = flows[i % flows.count]
            // Random bytes too, to exercise arbitrary input.
            if i % 7 == 0 {
                let noise = (0 ..< Int.random(in: 0 ..< 300, using: &rng)).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
                _ = c.tcp(UInt16.random(in: 0 ... 65535, using: &rng), flow.2, noise, flow.1)
                _ = c.udp(UInt16.random(in: 0 ... 65535, using: &rng), flow.2, noise)
                continue
            }
            let name = c.name(c.tcp(40000, flow.2, flow.0, flow.1)) ?? "nil"
            counts[name, default: 0] += 1
            if name != flow.3 {
                XCTFail("flow \(i): \(name), expected \(flow.3)")
                break
            }
        }
        XCTAssertEqual(counts.values.reduce(0, +), 100_000 - (100_000 + 6) / 7)
        XCTAssertEqual(c.scanFailures, 0)
    }
}

/// A tiny lock-protected counter for the threading test.
private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count: Int
    init(_ value: Int) { count = value }
    func add(_ n: Int) { lock.lock(); count += n; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
