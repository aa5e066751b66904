import Foundation
import SFTapConfig
import TestSupport
import XCTest

final class SFTapConfigTests: XCTestCase {
    /// The original SF-TAP example configuration (flow-abstractor's examples/fabs.yaml, BSD-3-Clause), in
    /// the shared corpus at `sftap/fabs.yaml`.
    func fabsPath() throws -> String {
        try Corpus.require("sftap/fabs.yaml").path
    }

    func testTheOriginalExampleLoadsUnchanged() throws {
        let s = try SFTapSettings.load(path: try fabsPath(), currentDirectory: "/nonexistent")
        XCTAssertEqual(s.global.home, "/tmp/sf-tap")
        XCTAssertEqual(s.global.timeout, 30)
        XCTAssertEqual(s.global.tcpThreads, 2)
        XCTAssertEqual(s.loopback7Interface, "loopback7")
        XCTAssertEqual(s.loopback7Format, .text)
        XCTAssertEqual(s.pcapInterface, "pcap")
        XCTAssertEqual(s.icmp?.format, .binary)
        XCTAssertEqual(s.tcpDefault?.interface, "default")
        XCTAssertEqual(s.udpDefault?.interface, "default")
        // Rules in alphabetical order, as the original's std::map iterates them.
        XCTAssertEqual(s.rules.map(\.name), ["dns_tcp", "dns_udp", "ftp", "http", "http_client", "http_proxy", "irc", "pop", "smtp", "ssh", "ssl",
                                             "syslog_tcp", "syslog_udp", "torrent_dht", "torrent_tracker", "websocket"])
        let http = try XCTUnwrap(s.rules.first { $0.name == "http" })
        // The pattern text arrives exactly as written between the single quotes (backslashes kept).
        XCTAssertEqual(http.up?.hasPrefix("^"), true)
        XCTAssertEqual(http.up?.contains(#"HTTP/1\.(0\r?\n"#), true)
        XCTAssertEqual(http.nice, 100)
        XCTAssertFalse(http.utf8)
        XCTAssertTrue(http.body)
        XCTAssertEqual(s.rules.first { $0.name == "pop" }?.interface, "smtp")
        XCTAssertEqual(s.rules.first { $0.name == "dns_udp" }?.ports, [53 ... 53, 5353 ... 5353, 5355 ... 5355])
        XCTAssertEqual(s.rules.first { $0.name == "dns_tcp" }?.format, .binary)
        XCTAssertEqual(s.rules.first { $0.name == "ssl" }?.up?.contains(#"\x16\x03"#), true)
    }

    func testValuesStayRawStrings() throws {
        let c = try SFTapConfig.parse("global:\n  lru: yes\n  timeout: 030\nhttp:\n  nice: 0x10\n", file: "t.yaml")
        XCTAssertEqual(c["global"]?["lru"]?.text, "yes")
        XCTAssertEqual(c["global"]?["timeout"]?.text, "030")
        XCTAssertEqual(c["http"]?["nice"]?.text, "0x10")
    }

    func assertError(_ yaml: String, contains parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        do {
            let config = try SFTapConfig.parse(yaml, file: "broken.yaml")
            _ = try SFTapSettings(config, currentDirectory: "/")
            XCTFail("expected an error", file: file, line: line)
        } catch {
            let text = "\(error)"
            XCTAssertFalse(text.contains("\n"), "one line: \(text)", file: file, line: line)
            for part in parts { XCTAssertTrue(text.contains(part), "'\(part)' missing in: \(text)", file: file, line: line) }
        }
    }

    func testBrokenConfigsNameTheLineAndKey() {
        assertError("http:\n  proto: TCP\n  nice: high\n", contains: ["broken.yaml:3", "section 'http'", "key 'nice'", "whole number"])
        assertError("http:\n  proto: SCTP\n", contains: ["broken.yaml:2", "key 'proto'", "TCP, UDP"])
        assertError("global:\n  lru: maybe\n", contains: ["broken.yaml:2", "key 'lru'", "yes or no"])
        assertError("dns:\n  proto: UDP\n  port: 53,abc\n", contains: ["broken.yaml:3", "key 'port'", "53,5353"])
        assertError("http:\n  proto: TCP\n  format: xml\n", contains: ["key 'format'", "text or binary"])
        assertError("http:\n  proto: TCP\n  up: [a, b]\n", contains: ["broken.yaml:3", "key 'up'", "single value"])
        assertError("http: [1, 2]\n", contains: ["section 'http'", "key: value"])
        assertError("http:\n  proto: TCP\n   nice: 1\n", contains: ["broken.yaml:3", "not valid YAML"])
        assertError("- a\n- b\n", contains: ["top level must be a map"])
        assertError("", contains: ["empty"])
        assertError("global:\n  timeout: 0\n", contains: ["key 'timeout'", "out of range"])
        assertError("x:\n  proto: TCP\n  if: a/b\n", contains: ["key 'if'", "without '/'"])
    }

    /// The typos SF-TAP users make, which the original silently ignores: an error naming file:line and the
    /// key meant; with `lenient`, SF-TAP's ignore-and-warn.
    func testUnknownKeysAreErrorsThatSuggestTheKeyMeant() throws {
        assertError("global:\n  tcp_thread: 2\n", contains: ["broken.yaml:2", "section 'global'", "key 'tcp_thread'", "did you mean 'tcp_threads'", "--lenient"])
        assertError("dns:\n  proto: UDP\n  ports: 53\n", contains: ["broken.yaml:3", "section 'dns'", "key 'ports'", "did you mean 'port'"])
        assertError("http:\n  prto: TCP\n  up: '^GET'\n", contains: ["broken.yaml:2", "key 'prto'", "did you mean 'proto'"])
        assertError("loopback7:\n  fromat: binary\n", contains: ["key 'fromat'", "did you mean 'format'"])
        assertError("pcap:\n  interface: pcap\n", contains: ["key 'interface'", "known keys: if"])
        // Lenient: the typo is ignored, reported with its line, and the rest of the config still applies.
        let text = "global:\n  tcp_thread: 2\n  timeout: 30\ndns:\n  proto: UDP\n  ports: 53\n"
        let s = try SFTapSettings(SFTapConfig.parse(text, file: "t.yaml"), currentDirectory: "/", lenient: true)
        XCTAssertNil(s.global.tcpThreads)
        XCTAssertEqual(s.global.timeout, 30)
        XCTAssertEqual(s.rules.map(\.name), ["dns"])
        XCTAssertEqual(s.rules.first?.ports.isEmpty, true)
        XCTAssertEqual(s.ignored.map(\.line).sorted(), [2, 6])
        XCTAssertTrue(s.ignored.contains { $0.why.contains("'tcp_thread'") && $0.why.contains("did you mean 'tcp_threads'") })
        // Every key FlowTap's examples and SF-TAP's own fabs.yaml use is known.
        var root = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { root.deleteLastPathComponent() }
        XCTAssertNoThrow(try SFTapSettings.load(path: root.appendingPathComponent("examples/flowtap.yaml").path, currentDirectory: "/"))
        XCTAssertNoThrow(try SFTapSettings.load(path: try fabsPath(), currentDirectory: "/"))
    }

    func testRulesWithoutProtoAreIgnoredAndReported() throws {
        let s = try SFTapSettings(SFTapConfig.parse("orphan:\n  up: '^x'\nhttp:\n  proto: TCP\n", file: "t.yaml"), currentDirectory: "/here")
        XCTAssertEqual(s.rules.map(\.name), ["http"])
        XCTAssertEqual(s.ignored.map(\.section), ["orphan"])
        XCTAssertEqual(s.global.home, "/here")
        XCTAssertEqual(s.global.hopLimit, 4)
    }

    func testGarbageInputNeverTraps() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("ab:- \n\t'\"[]{}#|>&*!%@`,?0123456789yesno\\".utf8)
        for _ in 0 ..< 2000 {
            let bytes = (0 ..< Int.random(in: 0 ..< 200, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            if let config = try? SFTapConfig.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml") {
                _ = try? SFTapSettings(config, currentDirectory: "/")
            }
        }
    }
}
