import Foundation
import TestSupport
import XCTest

/// `--http` as an operator meets it: Prometheus's own checker on `/metrics`, and the counters
/// against the command's final statistics.
final class MetricsEndpointTests: XCTestCase {
    /// `abstract` in sockets mode with a capture pushed into its pcap socket: `promtool check metrics`
    /// accepts the exposition, the packet and flow counters equal what the final statistics line says,
    /// the per-socket event counters add up to the abstractor's, and the status JSON says the same.
    func testAbstractMetricsPassPromtoolAndAgreeWithTheFinalStatistics() throws {
        guard let promtool = Corpus.tool("promtool") else { throw OracleMissing.error("promtool not installed (Debian package prometheus)") }
        let fixture = try AbstractFixture(name: "metrics")
        let (capture, packets) = try fixture.capture(sessions: 300, seed: 17)
        let command = try RunningCommand(["abstract", "-c", fixture.config, "--stats-interval", "0"], directory: fixture.directory)
        defer { command.stop() }
        fixture.waitForSocket("pcap")
        try inject(capture, into: fixture.home + "/pcap")
        let status = try command.waitForStatus { ($0["packets"] as? Int) == packets }
        XCTAssertEqual(status["packets"] as? Int, packets, "the status reaches every injected packet")
        usleep(600_000) // one more publication after the last packet
        let metrics = try command.get("/metrics")
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.head.contains("text/plain; version=0.0.4"), metrics.head)
        let exposition = metrics.text
        let metricsFile = fixture.directory.appendingPathComponent("metrics.txt").path
        try exposition.write(toFile: metricsFile, atomically: true, encoding: .utf8)
        let (lint, lintStatus) = try Corpus.run("/bin/sh", ["-c", "\(promtool) check metrics < \(metricsFile) 2>&1"])
        XCTAssertEqual(lintStatus, 0, "promtool check metrics: \(lint)")

        XCTAssertEqual(samples(exposition, "flowtap_packets_total")["{input=\"injected\"}"], Double(packets))
        XCTAssertEqual(samples(exposition, "flowtap_injected_packets_total")[""], Double(packets))
        let created = try XCTUnwrap(samples(exposition, "flowtap_flows_created_total")[""])
        let events = try XCTUnwrap(samples(exposition, "flowtap_abstract_events_total")[""])
        let perSocket = samples(exposition, "flowtap_events_total").values.reduce(0, +)
        XCTAssertEqual(perSocket, events, "events written to the sockets add up to the events made")
        XCTAssertGreaterThan(try XCTUnwrap(samples(exposition, "process_cpu_seconds_total")[""]), 0)
        XCTAssertGreaterThan(try XCTUnwrap(samples(exposition, "process_resident_memory_bytes")[""]), 1_000_000)

        XCTAssertEqual(command.stop(), 0, command.errors)
        // final: packets N (injected N), flows F, classified C, events E; …
        let final = try XCTUnwrap(command.errors.split(separator: "\n").first { $0.hasPrefix("final: ") }, command.errors)
        func number(after label: String) -> Double? {
            guard let range = final.range(of: label + #" (\d+)"#, options: .regularExpression) else { return nil }
            return Double(final[range].split(separator: " ").last!)
        }
        XCTAssertEqual(number(after: "packets"), Double(packets), String(final))
        XCTAssertEqual(number(after: "injected"), Double(packets), String(final))
        XCTAssertEqual(number(after: "flows"), created, "flows created: /metrics against \(final)")
        // Flows still open are ended at shutdown, after the last scrape: their DESTROYED events come later.
        let finalEvents = try XCTUnwrap(number(after: "events"))
        XCTAssertGreaterThanOrEqual(finalEvents, events)
        XCTAssertLessThanOrEqual(finalEvents - events, created, "at most one DESTROYED event per flow after the scrape")
    }

    /// The status document has what the dashboard draws, and every path but the three answers 404;
    /// other methods 405.
    func testStatusDocumentAndUnknownPaths() throws {
        let fixture = try AbstractFixture(name: "status")
        let (capture, packets) = try fixture.capture(sessions: 120, seed: 4)
        let command = try RunningCommand(["abstract", "-c", fixture.config, "--stats-interval", "0"], directory: fixture.directory)
        defer { command.stop() }
        fixture.waitForSocket("pcap")
        try inject(capture, into: fixture.home + "/pcap")
        let status = try command.waitForStatus { ($0["packets"] as? Int) == packets && (($0["history"] as? [Any])?.count ?? 0) >= 2 }
        XCTAssertEqual(status["command"] as? String, "abstract")
        let talkers = try XCTUnwrap(status["top_talkers"] as? [[String: Any]])
        XCTAssertFalse(talkers.isEmpty)
        XCTAssertLessThanOrEqual(talkers.count, 10)
        let bytes = talkers.compactMap { $0["bytes"] as? Int }
        XCTAssertEqual(bytes, bytes.sorted(by: >), "talkers largest first")
        let protocols = try XCTUnwrap(status["protocols"] as? [[String: Any]])
        XCTAssertEqual(protocols.compactMap { $0["packets"] as? Int }.reduce(0, +) <= packets, true)
        XCTAssertEqual(Set(protocols.compactMap { $0["name"] as? String }).isSuperset(of: ["tcp", "udp"]), true, "\(protocols)")
        let flows = try XCTUnwrap(status["top_flows"] as? [[String: Any]])
        XCTAssertFalse(flows.isEmpty)
        let tables = try XCTUnwrap(status["tables"] as? [[String: Any]])
        XCTAssertEqual(tables.first?["title"] as? String, "SF-TAP interface sockets under \(fixture.home)")
        let sockets = (tables.first?["rows"] as? [[String]])?.map { $0[0] } ?? []
        XCTAssertTrue(sockets.contains("tcp/http") && sockets.contains("udp/dns"), "\(sockets)")

        // The document against its published schema (docs/api/status.schema.json), with Python's jsonschema.
        if let python = Corpus.tool("python3") {
            var root = URL(fileURLWithPath: #filePath)
            for _ in 0 ..< 3 { root.deleteLastPathComponent() }
            let document = fixture.directory.appendingPathComponent("status.json").path
            try Data(try command.get("/api/v1/status").body).write(to: URL(fileURLWithPath: document))
            let script = "import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1]))); print('valid')"
            let (output, valid) = try Corpus.run("/bin/sh", ["-c", "\(python) -c \"\(script)\" \(root.path)/docs/api/status.schema.json \(document) 2>&1"])
            XCTAssertEqual(valid, 0, output)
            XCTAssertTrue(output.contains("valid"), output)
        } else if OracleMissing.required {
            throw OracleMissing.error("python3 not installed")
        }

        XCTAssertEqual(try command.get("/nothing/here").status, 404)
        XCTAssertEqual(try command.get("/metrics/../etc/passwd").status, 404)
        let post = try HTTPProbe.request(port: command.port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        XCTAssertEqual(post.status, 405)
        XCTAssertTrue(post.head.contains("Allow: GET, HEAD"), post.head)
        let head = try HTTPProbe.request(port: command.port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(head.status, 200)
        XCTAssertTrue(head.body.isEmpty)
        let page = try command.get("/")
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(page.text.contains("api/v1/status"))
        XCTAssertFalse(page.text.contains("http://") || page.text.contains("https://"), "the dashboard loads nothing from elsewhere")
    }
}
