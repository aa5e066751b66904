import Foundation
import TestSupport
import XCTest

/// `--http` on every long-running command but abstract (MetricsEndpointTests): the command started as a
/// user starts it, traffic sent on loopback, and `flowtap_packets_total` against what was sent and
/// against the command's own final summary.
final class CommandEndpointsTests: XCTestCase {
    func directory(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-endpoint-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: url)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    func requireRoot() throws {
        guard getuid() == 0 else { throw OracleMissing.error("live capture on lo needs root") }
    }

    /// Sends `count` datagrams to 127.0.0.1:`port`, a little apart (no receive buffer overflows), each
    /// from its own source port when `sourcePorts` is given (one flow each), else from the kernel's pick.
    func send(_ count: Int, port: UInt16, payload: [UInt8], sourcePorts: UInt16? = nil) {
        for i in 0 ..< count {
            Loopback.sendUDP(payload, port: port, sourcePort: sourcePorts.map { $0 + UInt16(i) })
            usleep(1000)
        }
    }

    func number(_ text: String, after label: String) -> Int? {
        guard let range = text.range(of: label + #" (\d+)"#, options: .regularExpression) else { return nil }
        return Int(text[range].split(separator: " ").last!)
    }

    /// A NetFlow v5 datagram with one flow record (RFC-less but Cisco-documented layout: 24 + 48 bytes).
    static func netflow5() -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 72)
        d[1] = 5; d[3] = 1                                  // version 5, one record
        d[8] = 0x65; d[9] = 0x53; d[10] = 0xF1; d[11] = 0x00 // unix seconds
        d[24 ..< 28] = [10, 0, 0, 1]; d[28 ..< 32] = [10, 0, 0, 2]
        d[43] = 3; d[47] = 180                              // 3 packets, 180 bytes
        d[56] = 0x30; d[57] = 0x39; d[58] = 0; d[59] = 80   // ports 12345 → 80
        d[62] = 6                                           // TCP
        return d
    }

    func testCollectCountsWhatArrivedAndAgreesWithItsSummary() throws {
        let dir = try directory("collect")
        let port = UInt16(30000 + Int(getpid()) % 20000)
        let command = try RunningCommand(["collect", "--listen", "127.0.0.1:\(port)", "-o", dir.appendingPathComponent("records.json").path], directory: dir)
        defer { command.stop() }
        send(200, port: port, payload: Self.netflow5())
        let status = try command.waitForStatus { ($0["packets"] as? Int) == 200 }
        XCTAssertEqual(status["packets"] as? Int, 200)
        usleep(600_000)
        let metrics = try command.get("/metrics").text
        XCTAssertEqual(samples(metrics, "flowtap_collect_datagrams_total")["{protocol=\"netflow5\"}"], 200)
        XCTAssertEqual(samples(metrics, "flowtap_collect_records_total")[""], 200)
        XCTAssertEqual(command.stop(), 0, command.errors)
        XCTAssertEqual(number(command.errors, after: "datagrams received"), 200, command.errors)
        let talkers = status["top_talkers"] as? [[String: Any]]
        XCTAssertEqual(talkers?.first?["name"] as? String, "127.0.0.1", "the exporter is the talker")
    }

    func testForwardCountsPerDestinationAndAgreesWithItsSummary() throws {
        let dir = try directory("forward")
        let port = UInt16(30000 + (Int(getpid()) + 7) % 20000)
        let rules = dir.appendingPathComponent("rules.yaml").path
        try "default: drop\nrules:\n  - name: everything\n    to: [127.0.0.1:9]\n".write(toFile: rules, atomically: true, encoding: .utf8)
        let command = try RunningCommand(["forward", "--rules", rules, "--listen", "127.0.0.1:\(port)"], directory: dir)
        defer { command.stop() }
        send(150, port: port, payload: Array("<13>Dec  3 11:00:00 host app: hello".utf8))
        let status = try command.waitForStatus { ($0["packets"] as? Int) == 150 }
        XCTAssertEqual(status["packets"] as? Int, 150)
        usleep(600_000)
        let metrics = try command.get("/metrics").text
        XCTAssertEqual(samples(metrics, "flowtap_forward_rule_datagrams_total")["{rule=\"everything\"}"], 150)
        let forwarded = samples(metrics, "flowtap_forward_datagrams_total").values.reduce(0, +)
        let lost = samples(metrics, "flowtap_forward_destination_dropped_total").values.reduce(0, +)
        XCTAssertEqual(forwarded + lost, 150, "every datagram forwarded or counted as lost")
        let tables = (status["tables"] as? [[String: Any]])?.compactMap { $0["title"] as? String }
        XCTAssertEqual(tables, ["Rules", "Destinations"])
        XCTAssertEqual(command.stop(), 0, command.errors)
        XCTAssertEqual(number(command.errors, after: "datagrams received"), 150, command.errors)
    }

    /// `flows -i` and `analyze -i` (the same sharded pipeline, here with two threads for analyze).
    func testFlowsAndAnalyzeLiveCountWhatTheFilterLetsThrough() throws {
        try requireRoot()
        for (offset, arguments) in [["flows"], ["analyze", "--threads", "2"]].enumerated() {
            let dir = try directory(arguments[0])
            let port = UInt16(30000 + (Int(getpid()) + 13 + offset) % 20000)
            let command = try RunningCommand(arguments + ["-i", "lo", "-o", dir.appendingPathComponent("records.json").path, "udp and dst port \(port)"], directory: dir)
            defer { command.stop() }
            usleep(300_000)
            send(120, port: port, payload: Array(repeating: 0x41, count: 100), sourcePorts: port &+ 1000)
            let status = try command.waitForStatus { ($0["packets"] as? Int) == 120 && ($0["active_flows"] as? Int) == 120 }
            XCTAssertEqual(status["packets"] as? Int, 120, "\(arguments)")
            // Each datagram leaves from its own source port: 120 one-packet flows.
            XCTAssertEqual(status["active_flows"] as? Int, 120, "\(arguments)")
            let flows = try XCTUnwrap(status["top_flows"] as? [[String: Any]])
            XCTAssertEqual(flows.count, 10)
            XCTAssertEqual(flows.first?["packets"] as? Int, 1)
            XCTAssertEqual(flows.first?["proto"] as? String, "udp")
            let talkers = try XCTUnwrap(status["top_talkers"] as? [[String: Any]])
            XCTAssertEqual(talkers.first?["name"] as? String, "127.0.0.1")
            XCTAssertEqual(talkers.first?["flows"] as? Int, 240, "both endpoints of each flow are 127.0.0.1 (\(arguments))")
            XCTAssertEqual(command.stop(), 0, command.errors)
            XCTAssertEqual(number(command.errors, after: "packets"), 120, command.errors)
        }
    }

    /// Two shards started while traffic flows: until the second capture handle joins the fanout group it
    /// receives every frame the first one does, and those copies must not reach a shard (each datagram
    /// below comes from its own source port, so a copy shows as a second record of its flow).
    func testTwoShardsStartedUnderTrafficSeeEachFrameOnce() throws {
        try requireRoot()
        let dir = try directory("startup")
        let port = UInt16(30000 + (Int(getpid()) + 29) % 20000)
        let sender = LoopbackFlood(port: port)
        sender.start()
        let command = try RunningCommand(["flows", "--threads", "2", "-i", "lo", "-o", dir.appendingPathComponent("records.json").path,
                                          "udp and dst port \(port)"], directory: dir)
        defer { command.stop() }
        _ = try command.waitForStatus { ($0["packets"] as? Int ?? 0) > 2000 }
        sender.stop()
        usleep(300_000)
        XCTAssertEqual(command.stop(), 0, command.errors)
        let text = try String(contentsOf: dir.appendingPathComponent("records.json"), encoding: .utf8)
        var seen: [Int: Int] = [:]
        for line in text.split(separator: "\n") {
            guard let record = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let source = record["src_port"] as? Int else { continue }
            seen[source, default: 0] += 1
        }
        XCTAssertGreaterThan(seen.count, 2000, "records of the datagrams sent")
        let twice = seen.filter { $0.value > 1 }
        XCTAssertTrue(twice.isEmpty, "\(twice.count) datagrams made two flows, e.g. source ports \(twice.keys.sorted().prefix(5))")
    }

    func testIncubateTapCountsPerCell() throws {
        try requireRoot()
        let dir = try directory("incubate")
        let port = UInt16(30000 + (Int(getpid()) + 19) % 20000)
        let cells = (0 ..< 2).map { "file:" + dir.appendingPathComponent("cell\($0).pcap").path }
        let command = try RunningCommand(["incubate", "-i", "lo", "--cell", cells[0], "--cell", cells[1], "udp and dst port \(port)"], directory: dir)
        defer { command.stop() }
        usleep(300_000)
        send(90, port: port, payload: Array(repeating: 0x42, count: 64))
        let status = try command.waitForStatus(seconds: 10) { ($0["packets"] as? Int) == 90 }
        XCTAssertEqual(status["packets"] as? Int, 90)
        usleep(600_000)
        let metrics = try command.get("/metrics").text
        XCTAssertEqual(samples(metrics, "flowtap_cell_frames_total").values.reduce(0, +), 90, "every frame to a cell")
        XCTAssertEqual(command.stop(), 0, command.errors)
        XCTAssertEqual(number(command.errors, after: "frames in"), 90, command.errors)
    }
}
