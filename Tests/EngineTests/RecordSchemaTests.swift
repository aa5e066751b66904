import Foundation
import TestSupport
import XCTest

/// Every record FlowTap writes validates against its JSON Schema in docs/schema (checked by
/// scripts/validate-records.py with the Python jsonschema package): analyze, flows and streams on the
/// sample, the nDPI corpus and impaired generated traffic; collect on the corpus's NetFlow and sFlow captures.
final class RecordSchemaTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var flowtap: String { URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path }

    /// Runs the validator on `records`; returns per type (records, failures) and what it said.
    func validate(_ records: String) throws -> (counts: [String: (Int, Int)], errors: String, status: Int32) {
        guard let python = Corpus.tool("python3") else { throw OracleMissing.error("python3 not installed") }
        guard (try? Corpus.run(python, ["-c", "import jsonschema"]))?.1 == 0 else { throw OracleMissing.error("the Python jsonschema package is not installed") }
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-schema-\(getpid()).json")
        try records.write(to: input, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: input) }
        let (out, errors, status) = try Corpus.runCapturingErrors("/bin/sh", ["-c", "\(python) \(Self.repository.path)/scripts/validate-records.py < \(input.path)"])
        var counts: [String: (Int, Int)] = [:]
        for line in out.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 3, let n = Int(parts[1]), let bad = Int(parts[2]) { counts[String(parts[0])] = (n, bad) }
        }
        return (counts, errors, status)
    }

    func run(_ arguments: [String]) throws -> String {
        guard FileManager.default.isExecutableFile(atPath: Self.flowtap) else { throw OracleMissing.error("flowtap executable not built") }
        let (out, status) = try Corpus.run(Self.flowtap, arguments)
        XCTAssertEqual(status, 0, arguments.joined(separator: " "))
        return out
    }

    func testEveryRecordValidatesAgainstItsSchema() throws {
        let ndpi = try Corpus.require("ndpi-4.2/pcap")
        let captures = try FileManager.default.contentsOfDirectory(atPath: ndpi.path).filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }
            .sorted().map { ndpi.appendingPathComponent($0).path }
        let generated = try FlowExportTests.generatedCapture(sessions: 600, seed: 77, vlanFraction: 0.2)
        defer { try? FileManager.default.removeItem(atPath: generated) }
        let inputs = [Self.repository.appendingPathComponent("samples/sample.pcap").path, generated] + captures
        var records = ""
        for command in ["analyze", "flows", "streams"] {
            for input in inputs { records += try run([command, "-r", input]) }
        }
        let tcpdump = try Corpus.require("tcpdump/tests")
        for name in ["sflow-print-v6.pcap", "sflow_multiple_counter_30_pdus.pcap"] { records += try run(["collect", "-r", tcpdump.appendingPathComponent(name).path]) }
        for name in ["netflowv9.pcap", "netflow-fritz.pcap"] { records += try run(["collect", "-r", ndpi.appendingPathComponent(name).path]) }

        let (counts, errors, status) = try validate(records)
        print(counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.0)" }.joined(separator: ", "))
        XCTAssertEqual(status, 0, errors)
        for type in ["http", "dns", "tls", "quic", "flow", "stream", "netflow", "sflow"] {
            XCTAssertGreaterThan(counts[type]?.0 ?? 0, 0, "no \(type) records were checked")
            XCTAssertEqual(counts[type]?.1, 0, "\(type): \(errors)")
        }
    }

    /// The check can fail: records with a broken shared field, a string status, or no schema are refused.
    func testBrokenRecordsAreRefused() throws {
        let good = try run(["analyze", "-r", Self.repository.appendingPathComponent("samples/sample.pcap").path])
        let http = try XCTUnwrap(good.split(separator: "\n").first { $0.contains("\"event_type\":\"http\"") })
        XCTAssertEqual(try validate(String(http) + "\n").status, 0)
        for broken in [http.replacingOccurrences(of: "\"community_id\":\"1:", with: "\"community_id\":\"2:"),
                       http.replacingOccurrences(of: "\"status\":200", with: "\"status\":\"200\""),
                       http.replacingOccurrences(of: "\"flow_id\":", with: "\"flow_id\":-"),
                       http.replacingOccurrences(of: "\"event_type\":\"http\"", with: "\"event_type\":\"gopher\"")] {
            XCTAssertNotEqual(String(broken), String(http))
            XCTAssertEqual(try validate(broken + "\n").status, 1, String(broken.prefix(200)))
        }
    }
}
