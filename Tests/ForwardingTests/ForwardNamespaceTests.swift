#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PacketCore
import TestSupport
import XCTest

/// `flowtap forward` between namespaces (scripts/forward-netns.sh): exporters → forwarder → collectors,
/// the exporters' traffic replayed with tcpreplay, nfcapd and a UDP sink as the collectors.
final class ForwardNamespaceTests: XCTestCase {
    struct Tools {
        var ip: String, tcpreplay: String, nfcapd: String, nfdump: String, python: String
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let flowtap = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path

    func tools() throws -> Tools {
        guard getuid() == 0 else { throw OracleMissing.error("network namespaces and raw sockets need root") }
        guard let ip = Corpus.tool("ip"), let tcpreplay = Corpus.tool("tcpreplay"), let nfcapd = Corpus.tool("nfcapd"),
              let nfdump = Corpus.tool("nfdump"), let python = Corpus.tool("python3") else {
            throw OracleMissing.error("ip, tcpreplay, nfcapd, nfdump and python3 are needed")
        }
        return Tools(ip: ip, tcpreplay: tcpreplay, nfcapd: nfcapd, nfdump: nfdump, python: python)
    }

    /// A topology named for this process, torn down after.
    final class Topology {
        let name: String
        init() throws {
            name = "ft\(getpid() % 100_000)"
            let script = ForwardNamespaceTests.repository.appendingPathComponent("scripts/forward-netns.sh").path
            _ = try? Corpus.run(script, ["down", name])
            let (output, status) = try Corpus.run(script, ["up", name])
            guard status == 0 else { throw OracleMissing.error("could not build the namespaces: \(output)") }
        }
        deinit { _ = try? Corpus.run(ForwardNamespaceTests.repository.appendingPathComponent("scripts/forward-netns.sh").path, ["down", name]) }
        var exporters: String { "\(name)-e" }
        var forwarder: String { "\(name)-f" }
        var collectors: String { "\(name)-c" }
        var exporterInterface: String { "\(name)e0" }
    }

    static func start(_ namespace: String, _ arguments: [String], ip: String, output: String? = nil, errors: String? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ip)
        p.arguments = ["netns", "exec", namespace] + arguments
        p.standardOutput = Corpus.outputHandle(output ?? "/dev/null")
        p.standardError = Corpus.outputHandle(errors ?? "/dev/null")
        try p.run()
        return p
    }

    static func stop(_ p: Process, signal: Int32 = SIGTERM) {
        kill(p.processIdentifier, signal)
        p.waitUntilExit()
    }

    /// Every flow as nfdump reads it from nfcapd's files in `directory`, with the exporter's address.
    static func nfdumpFlows(_ nfdump: String, _ directory: String) throws -> [ExporterTraffic.Flow] {
        let (text, status) = try Corpus.run(nfdump, ["-q", "-N", "-R", directory, "-o", "fmt:%ra|%sa|%da|%sp|%dp|%pr|%pkt|%byt"])
        guard status == 0 else { throw OracleMissing.error("nfdump failed: \(text)") }
        return text.split(separator: "\n").map { line in
            ExporterTraffic.Flow(text: line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "|"))
        }
    }

    struct Run {
        var summary: String
        var flows: [String: [ExporterTraffic.Flow]] = [:]
        /// Per sink endpoint: (sender address, sender port, payload hex) lines.
        var datagrams: [String: [String]] = [:]
    }

    /// Replays `traffic` through a forwarder run with `arguments` (rules written from `rules`), nfcapd on
    /// each of `nfcapds` (10.2.0.x:2055) and the UDP sink on `sinks`.
    func run(_ traffic: ExporterTraffic, rules: String, arguments: [String], nfcapds: [String], sinks: [String]) throws -> Run {
        let t = try tools()
        _ = try Corpus.run("/usr/sbin/sysctl", ["-q", "-w", "net.core.rmem_max=33554432"])
        let topology = try Topology()
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-forward-netns-\(getpid())")
        try? FileManager.default.removeItem(at: scratch)
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let capture = scratch.appendingPathComponent("exporters.pcap").path
        try traffic.writeCapture(to: capture)
        let rulesPath = scratch.appendingPathComponent(rules.contains("rules:") ? "rules.yaml" : "config.txt").path
        try rules.write(toFile: rulesPath, atomically: true, encoding: .utf8)

        var collectors: [(String, Process)] = []
        for address in nfcapds {
            let directory = scratch.appendingPathComponent("nfcapd-\(address)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            collectors.append((directory, try Self.start(topology.collectors, [t.nfcapd, "-w", directory, "-b", address, "-p", "2055", "-B", "16000000"], ip: t.ip)))
        }
        let sinkOutput = scratch.appendingPathComponent("sink.txt").path
        let sink = try Self.start(topology.collectors, [t.python, Self.repository.appendingPathComponent("scripts/udp-sink.py").path] + sinks, ip: t.ip, output: sinkOutput)
        let forwarderErrors = scratch.appendingPathComponent("forward.err").path
        let tapArguments = arguments.map { $0 == "{tap}" ? "\(topology.name)f0" : $0 }
        let forwarder = try Self.start(topology.forwarder, [Self.flowtap, "forward", "--rules", rulesPath] + tapArguments, ip: t.ip, errors: forwarderErrors)
        usleep(800_000)
        let (replayed, status) = try Corpus.run(t.ip, ["netns", "exec", topology.exporters, t.tcpreplay, "-q", "-i", topology.exporterInterface, "--pps", "2000", capture])
        XCTAssertEqual(status, 0, replayed)
        usleep(700_000)
        Self.stop(forwarder, signal: SIGINT)
        Self.stop(sink)
        for (_, p) in collectors { Self.stop(p) }
        var result = Run(summary: (try? String(contentsOfFile: forwarderErrors, encoding: .utf8)) ?? "")
        for (i, (directory, _)) in collectors.enumerated() { result.flows[nfcapds[i]] = try Self.nfdumpFlows(t.nfdump, directory) }
        for line in ((try? String(contentsOfFile: sinkOutput, encoding: .utf8)) ?? "").split(separator: "\n") where line != "ready" {
            let fields = line.split(separator: " ")
            result.datagrams[String(fields[0]), default: []].append(fields[1 ... 3].joined(separator: " "))
        }
        return result
    }

    /// The same flows, or the first differences (a full dump of 1,000 flows helps nobody).
    func assertSameFlows(_ got: [ExporterTraffic.Flow]?, _ expected: [ExporterTraffic.Flow], _ what: String, line: UInt = #line) {
        let got = (got ?? []).sorted(), expected = expected.sorted()
        guard got != expected else { return }
        let missing = Array(Set(expected).subtracting(got)).sorted().prefix(4).map(\.text)
        let extra = Array(Set(got).subtracting(expected)).sorted().prefix(4).map(\.text)
        XCTFail("\(what): nfdump read \(got.count) flows, \(expected.count) were exported; missing \(missing), unexpected \(extra)", line: line)
    }

    /// The same datagrams in the same order, or where they first differ.
    func assertSameDatagrams(_ got: [String]?, _ expected: [String], _ what: String, line: UInt = #line) {
        let got = got ?? []
        guard got != expected else { return }
        let first = (0 ..< min(got.count, expected.count)).first { got[$0] != expected[$0] } ?? min(got.count, expected.count)
        XCTFail("\(what): \(got.count) datagrams arrived, \(expected.count) sent; first difference at \(first): \(got.indices.contains(first) ? String(got[first].prefix(80)) : "none") instead of \(expected.indices.contains(first) ? String(expected[first].prefix(80)) : "none")", line: line)
    }

    static func line(_ d: ExporterTraffic.Datagram) -> String {
        "\(d.exporter) \(d.sourcePort) " + d.payload.map { String(format: "%02x", $0) }.joined()
    }

    /// gForwarder's rule lines and --keep-source: 20 IPv4 exporters (NetFlow v9, all with template 256
    /// in three layouts, and syslog) and 2 IPv6 syslog exporters. nfcapd decodes every flow with its
    /// exporter's address; every syslog datagram arrives from its exporter's address and port.
    func testGForwarderRulesKeepingSourcesDeliverEveryDatagram() throws {
        let traffic = ExporterTraffic(v4: 20, v6: 2)
        var rules = "# exporter  port  collector  priority\n"
        for e in 0 ..< 20 {
            rules += "10.1.0.\(11 + e) 2055 10.2.0.2 A\n10.1.0.\(11 + e) 514 10.2.0.2 A\n"
        }
        rules += "fd00:1::11 514 fd00:2::2 A\nfd00:1::12 514 fd00:2::2 A\n"
        let run = try run(traffic, rules: rules, arguments: ["--listen", "0.0.0.0:2055", "--listen", "0.0.0.0:514", "--listen", "[::]:514", "--keep-source"],
                          nfcapds: ["10.2.0.2"], sinks: ["10.2.0.2:514", "[fd00:2::2]:514"])
        print(run.summary)
        XCTAssertEqual(traffic.flows.count, 1000)
        assertSameFlows(run.flows["10.2.0.2"], traffic.flows, "nfcapd")
        let syslog = traffic.datagrams.filter { $0.destinationPort == 514 }
        assertSameDatagrams(run.datagrams["10.2.0.2:514"], syslog.filter { !$0.exporter.isIPv6 }.map(Self.line), "IPv4 syslog")
        assertSameDatagrams(run.datagrams["[fd00:2::2]:514"], syslog.filter { $0.exporter.isIPv6 }.map(Self.line), "IPv6 syslog")
        XCTAssertTrue(run.summary.contains("datagrams received \(traffic.datagrams.count) "), run.summary)
        XCTAssertTrue(run.summary.contains("forwarded \(traffic.datagrams.count) "), run.summary)
        XCTAssertTrue(run.summary.contains("dropped by the kernel (receive buffer or capture ring full) 0;"), run.summary)
    }

    /// Tap mode: no socket bound, the datagrams taken from the forwarder's interface; the same delivery.
    func testTapModeDeliversEveryDatagramKeepingSources() throws { try tap(threads: 1) }

    /// The same with two capture rings in a fanout group chosen by address pair.
    func testTapModeWithTwoThreadsDeliversEveryDatagram() throws { try tap(threads: 2) }

    func tap(threads: Int) throws {
        let traffic = ExporterTraffic(v4: 20, v6: 2)
        var rules = ""
        for e in 0 ..< 20 { rules += "10.1.0.\(11 + e) 2055 10.2.0.2 A\n10.1.0.\(11 + e) 514 10.2.0.2 A\n" }
        rules += "fd00:1::11 514 fd00:2::2 A\nfd00:1::12 514 fd00:2::2 A\n"
        let run = try run(traffic, rules: rules, arguments: ["-i", "{tap}", "--keep-source", "--threads", String(threads)],
                          nfcapds: ["10.2.0.2"], sinks: ["10.2.0.2:514", "[fd00:2::2]:514"])
        print(run.summary)
        assertSameFlows(run.flows["10.2.0.2"], traffic.flows, "nfcapd")
        let syslog = traffic.datagrams.filter { $0.destinationPort == 514 }
        // One thread keeps the arrival order; several keep each exporter's order (an address pair stays on
        // one thread), while different exporters' datagrams may interleave differently.
        func ordered(_ lines: [String]?) -> [String: [String]] {
            threads == 1 ? ["all": lines ?? []] : Dictionary(grouping: lines ?? []) { String($0.split(separator: " ")[0]) }
        }
        XCTAssertEqual(ordered(run.datagrams["10.2.0.2:514"]), ordered(syslog.filter { !$0.exporter.isIPv6 }.map(Self.line)), "IPv4 syslog")
        XCTAssertEqual(ordered(run.datagrams["[fd00:2::2]:514"]), ordered(syslog.filter { $0.exporter.isIPv6 }.map(Self.line)), "IPv6 syslog")
        XCTAssertTrue(run.summary.contains("tap: packets \(traffic.datagrams.count); not UDP 0, IP fragments (not reassembled; skipped) 0"), run.summary)
        XCTAssertTrue(run.summary.contains("forwarded \(traffic.datagrams.count) "), run.summary)
    }

    /// YAML rules with prefixes: NetFlow replicated to two nfcapds keeping sources, syslog to one sink in
    /// full and to another 1 in 3 (exactly the 1st, 4th, … matched), IPv6 syslog by prefix.
    func testYAMLPrefixesReplicationAndSampling() throws {
        let traffic = ExporterTraffic(v4: 20, v6: 2)
        let rules = """
        keep_source: true
        rules:
          - name: routers
            from: 10.1.0.0/24
            port: 2055
            kind: netflow9
            to: [10.2.0.2:2055, 10.2.0.3:2055]
          - name: v4 syslog
            from: [10.1.0.0/27]
            port: 514
            to: [10.2.0.2:514, {address: 10.2.0.3:514, sample: 3}]
          - name: v6 syslog
            from: fd00:1::/64
            port: 514
            kind: syslog
            to: "[fd00:2::3]:514"
        """
        let run = try run(traffic, rules: rules, arguments: ["--listen", "0.0.0.0:2055", "--listen", "0.0.0.0:514", "--listen", "[::]:514"],
                          nfcapds: ["10.2.0.2", "10.2.0.3"], sinks: ["10.2.0.2:514", "10.2.0.3:514", "[fd00:2::3]:514"])
        print(run.summary)
        assertSameFlows(run.flows["10.2.0.2"], traffic.flows, "first nfcapd")
        assertSameFlows(run.flows["10.2.0.3"], traffic.flows, "second nfcapd")
        let v4 = traffic.datagrams.filter { $0.destinationPort == 514 && !$0.exporter.isIPv6 }.map(Self.line)
        assertSameDatagrams(run.datagrams["10.2.0.2:514"], v4, "IPv4 syslog")
        assertSameDatagrams(run.datagrams["10.2.0.3:514"], stride(from: 0, to: v4.count, by: 3).map { v4[$0] }, "IPv4 syslog, 1 in 3")
        assertSameDatagrams(run.datagrams["[fd00:2::3]:514"], traffic.datagrams.filter { $0.exporter.isIPv6 }.map(Self.line), "IPv6 syslog")
        XCTAssertTrue(run.summary.contains("sampled out \(v4.count - (v4.count + 2) / 3)"), run.summary)
    }

    /// The control: the same rules without keep-source. nfcapd sees one exporter (the forwarder) whose
    /// template 256 keeps changing layout, so flows are lost or decoded wrong; the forwarder warns once per
    /// exporter that this would happen.
    func testWithoutKeepSourceTemplatesCollideAndTheForwarderSaysSo() throws {
        let traffic = ExporterTraffic(v4: 20, v6: 0)
        let rules = (0 ..< 20).map { "10.1.0.\(11 + $0) 2055 10.2.0.2 A\n" }.joined()
        let run = try run(traffic, rules: rules, arguments: ["--listen", "0.0.0.0:2055"], nfcapds: ["10.2.0.2"], sinks: [])
        let flows = run.flows["10.2.0.2"] ?? []
        XCTAssertTrue(flows.allSatisfy { $0.text.hasPrefix("10.2.0.254|") }, "every flow now comes from the forwarder's address")
        let correct = Set(traffic.flows.map { $0.text.split(separator: "|").dropFirst().joined(separator: "|") })
        let decodedRight = flows.filter { correct.contains($0.text.split(separator: "|").dropFirst().joined(separator: "|")) }.count
        print("without keep-source: nfdump read \(flows.count) flows, \(decodedRight) of them as exported (of \(traffic.flows.count))")
        // This run's traffic gives 868 flows read and 480 right, every time (one thread, tcpreplay's order).
        XCTAssertLessThan(decodedRight, traffic.flows.count * 6 / 10)
        let warnings = run.summary.split(separator: "\n").filter { $0.hasPrefix("warning: netflow9 from ") }
        XCTAssertEqual(warnings.count, 20, run.summary)
    }
}
