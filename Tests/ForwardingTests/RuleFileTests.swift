import Forwarding
import PacketCore
import TestSupport
import XCTest

final class RuleFileTests: XCTestCase {
    /// gForwarder's own sample (config.txt.sample), as its README shows it.
    func testGForwarderSampleReadsAsItsAuthorMeantIt() throws {
        let set = try ForwardRuleSet.parse("10.2.2.3 8086 10.2.2.3 A\n10.2.2.5 9996 10.2.2.3 A\n", file: "config.txt", keepSourceByDefault: false)
        XCTAssertEqual(set.format, .gforwarder)
        XCTAssertEqual(set.rules.count, 2)
        XCTAssertEqual(set.rules[1].sources, [IPPrefix(Substring("10.2.2.5"))!])
        XCTAssertEqual(set.rules[1].ports, 9996 ... 9996)
        XCTAssertEqual(set.rules[1].destinations, [ForwardDestination(address: IPAddress("10.2.2.3")!, port: 9996)])
        XCTAssertEqual(set.rules[1].priority, "A")
        XCTAssertEqual(set.firstMatch(source: IPAddress("10.2.2.5")!, port: 9996, kind: .netflow9), 1)
        XCTAssertNil(set.firstMatch(source: IPAddress("10.2.2.5")!, port: 8086, kind: .netflow9))
        XCTAssertTrue(set.defaultDestinations.isEmpty)
    }

    func testGForwarderErrorsNameTheLine() {
        let cases: [(String, Int, String)] = [
            ("10.0.0.1 2055 10.0.0.2 A\n\n# comment\n10.0.0.1 70000 10.0.0.2 A\n", 4, "not a UDP port"),
            ("10.0.0.1 2055 10.0.0.2 A\n10.0.0.1 2055\n", 2, "4 words"),
            ("10.0.0.1 2055 10.0.0.300 A\n", 1, "not an IP address"),
        ]
        for (text, line, words) in cases {
            XCTAssertThrowsError(try ForwardRuleSet.parse(text, file: "r.txt", keepSourceByDefault: false)) { error in
                let e = error as! RuleFileError
                XCTAssertEqual(e.line, line, "\(e)")
                XCTAssertTrue(e.description.hasPrefix("r.txt:\(line): "), e.description)
                XCTAssertTrue(e.description.contains(words), e.description)
            }
        }
        XCTAssertThrowsError(try ForwardRuleSet.parse("2001:db8::1 514 10.0.0.2 A\n", file: "r.txt", keepSourceByDefault: true)) { error in
            XCTAssertTrue("\(error)".contains("r.txt:1: keeping the source address needs the collector in the exporter's family"), "\(error)")
        }
    }

    func testYAMLRulesWithPrefixesRangesKindsReplicationAndSampling() throws {
        let yaml = """
        keep_source: true
        default: [10.9.0.1:514]
        rules:
          - name: routers
            from: [10.1.0.0/24, 10.1.1.7]
            port: 2055
            kind: [netflow9, ipfix]
            to: [10.2.0.2:2055, {address: 10.3.0.2:9995, sample: 10}]
          - name: v6 syslog
            from: 2001:db8::/48
            port: 514-515
            to: ["[2001:db8:2::2]:514"]
            keep_source: false
          - name: anything else
            to: 10.2.0.2:6343
        """
        let set = try ForwardRuleSet.parse(yaml, file: "f.yaml", keepSourceByDefault: false)
        XCTAssertEqual(set.format, .yaml)
        XCTAssertEqual(set.rules.map(\.name), ["routers", "v6 syslog", "anything else"])
        XCTAssertEqual(set.rules[0].destinations.map(\.sampleEvery), [1, 10])
        XCTAssertEqual(set.rules[0].destinations.map(\.keepSource), [true, true])
        XCTAssertEqual(set.rules[0].destinations[1].port, 9995)
        XCTAssertFalse(set.rules[1].destinations[0].keepSource)
        XCTAssertEqual(set.defaultDestinations.map(\.endpoint), ["10.9.0.1:514"])
        let router = IPAddress("10.1.0.77")!
        XCTAssertEqual(set.firstMatch(source: router, port: 2055, kind: .ipfix), 0)
        XCTAssertEqual(set.firstMatch(source: router, port: 2055, kind: .syslog), 2, "kind not listed: on to the catch-all")
        XCTAssertEqual(set.firstMatch(source: IPAddress("10.1.1.7")!, port: 2055, kind: .netflow9), 0)
        XCTAssertEqual(set.firstMatch(source: IPAddress("2001:db8:0:5::1")!, port: 515, kind: .syslog), 1)
        // The catch-all keeps sources and sends to IPv4 only: 'any' narrows to IPv4 exporters.
        XCTAssertNil(set.firstMatch(source: IPAddress("2001:db9::1")!, port: 9, kind: .other))
        XCTAssertEqual(set.firstMatch(source: IPAddress("192.0.2.1")!, port: 9, kind: .other), 2)
    }

    func testYAMLErrorsNameFileLineAndKey() {
        let cases: [(String, Int, String)] = [
            ("rules:\n  - from: 10.0.0.0/33\n    to: 10.0.0.1:514\n", 2, "not an address or prefix"),
            ("rules:\n  - port: 514\n    to: 10.0.0.1:514\n    colour: red\n", 4, "unknown key 'colour'"),
            ("rules:\n  - port: 514-600\n    to: 10.0.0.1\n", 3, "must name one"),
            ("rules:\n  - kind: smtp\n    to: 10.0.0.1:25\n", 2, "not a payload kind"),
            ("rules:\n  - port: 514\n", 2, "has no 'to:'"),
            ("rules:\n  - to: 10.0.0.1:514\n    sample: 0\n", 3, "'sample' takes N"),
            ("rules:\n  - from: 2001:db8::/32\n    to: 10.0.0.1:514\n    keep_source: true\n", 2, "cannot keep an address of the other family"),
            ("rules: [\n", 2, "valid YAML"),
        ]
        for (text, line, words) in cases {
            XCTAssertThrowsError(try ForwardRuleSet.parse(text, file: "f.yaml", keepSourceByDefault: false), words) { error in
                let e = error as! RuleFileError
                XCTAssertEqual(e.line, line, "\(e)")
                XCTAssertTrue(e.description.contains(words), e.description)
            }
        }
    }

    /// The index answers exactly as a scan of every rule, on random rule sets of thousands of rules.
    func testRuleIndexAgreesWithTheLinearScan() {
        var random = SeededRandom(seed: 7)
        for round in 0 ..< 4 {
            var rules: [ForwardRule] = []
            let count = [50, 500, 3000, 5000][round]
            func address(_ v6: Bool) -> IPAddress {
                v6 ? IPAddress(high: 0x2001_0DB8_0000_0000 | random.next() % 4 << 16 | random.next() % 8, low: random.next() % 16, isIPv6: true)
                    : IPAddress(ipv4: 0x0A00_0000 | UInt32(random.next() % 4) << 16 | UInt32(random.next() % 4) << 8 | UInt32(random.next() % 16))
            }
            for n in 0 ..< count {
                var sources: [IPPrefix] = []
                for _ in 0 ..< Int(random.next() % 3) {
                    let v6 = random.next() % 4 == 0
                    sources.append(IPPrefix(address(v6), length: v6 ? [128, 64, 48, 0][Int(random.next() % 4)] : [32, 24, 16, 8, 30][Int(random.next() % 5)]))
                }
                let low = UInt16(500 + random.next() % 20)
                let ports: ClosedRange<UInt16> = [low ... low, low ... low + UInt16(random.next() % 5), 0 ... 65535][Int(random.next() % 3)]
                let kinds: UInt8 = random.next() % 3 == 0 ? UInt8(random.next() % 64) : 0
                rules.append(ForwardRule(name: "r\(n)", line: n + 1, sources: sources, ports: ports, kinds: kinds,
                                         destinations: [ForwardDestination(address: IPAddress("10.9.9.9")!, port: 9)]))
            }
            let set = ForwardRuleSet(file: "random", format: .yaml, rules: rules)
            let index = RuleIndex(rules)
            var matched = 0
            for _ in 0 ..< 20_000 {
                let source = address(random.next() % 4 == 0)
                let port = UInt16(495 + random.next() % 30)
                let kind = PayloadKind(rawValue: UInt8(random.next() % 6))!
                let expected = set.firstMatch(source: source, port: port, kind: kind)
                XCTAssertEqual(index.firstMatch(source: source, port: port, kind: kind), expected, "\(source) \(port) \(kind)")
                if expected != nil { matched += 1 }
            }
            XCTAssertGreaterThan(matched, 1000, "the random rules should match often enough to test the order")
        }
    }

    func testPayloadKinds() {
        func kind(_ bytes: [UInt8]) -> PayloadKind { bytes.withUnsafeBytes { PayloadKind.of($0) } }
        XCTAssertEqual(kind(Array("<34>1 2003-10-11T22:14:15.003Z host su - ID47 - hi".utf8)), .syslog)
        XCTAssertEqual(kind(Array("<13>Oct 11 22:14:15 host hi".utf8)), .syslog)
        XCTAssertEqual(kind(Array("<x>".utf8)), .other)
        XCTAssertEqual(kind([0, 5, 0, 1] + Array(repeating: 0, count: 20 + 48)), .netflow5)
        XCTAssertEqual(kind([0, 5, 0, 2] + Array(repeating: 0, count: 20 + 48)), .other, "length disagrees with the count")
        XCTAssertEqual(kind([0, 9, 0, 1] + Array(repeating: 0, count: 16)), .netflow9)
        XCTAssertEqual(kind([0, 10, 0, 16] + Array(repeating: 0, count: 12)), .ipfix)
        XCTAssertEqual(kind([0, 10, 0, 17] + Array(repeating: 0, count: 12)), .other)
        XCTAssertEqual(kind([0, 0, 0, 5, 0, 0, 0, 1, 10, 0, 0, 1]), .sflow)
        XCTAssertEqual(kind([]), .other)
    }
}
