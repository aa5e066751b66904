import Engine
import FlowCore
import Foundation
import Outputs
import TestSupport
import XCTest

/// One record model: every `analyze` record carries the shared fields of its flow, equal to that flow's
/// `flows` record (flow_id, src/dest, proto, community_id, vlan), so records join per flow.
final class RecordModelTests: XCTestCase {
    static let shared = ["src_ip", "src_port", "dest_ip", "dest_port", "proto", "community_id", "vlan"]

    static func records(_ file: String, flows: Bool) throws -> [[String: Any]] {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-model-\(getpid())-\(flows).json").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let writer = try RecordWriter(path: out)
        if flows {
            _ = try FlowsSession(engineConfig: FlowEngineConfig()).run(files: [file], output: writer)
        } else {
            _ = try AnalyzeSession(settings: nil, engineConfig: FlowEngineConfig()).run(files: [file], output: writer)
        }
        try writer.finish()
        return try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    /// For each analyze record: its flow's flows record, and whether the shared fields agree. Returns the
    /// number of records checked.
    @discardableResult
    func checkJoin(_ file: String, file sourceFile: StaticString = #filePath, line: UInt = #line) throws -> Int {
        let analyzed = try Self.records(file, flows: false)
        var flows: [Int: [String: Any]] = [:]
        for r in try Self.records(file, flows: true) {
            let id = try XCTUnwrap(r["flow_id"] as? Int)
            XCTAssertNil(flows[id], "\(file): flow_id \(id) given to two flows", file: sourceFile, line: line)
            flows[id] = r
        }
        for r in analyzed {
            let type = r["event_type"] as? String ?? "?"
            XCTAssertEqual(r["type"] as? String, type, file: sourceFile, line: line)
            XCTAssertNotNil(r["timestamp"] as? String, "\(file): \(type) record without timestamp", file: sourceFile, line: line)
            XCTAssertNotNil(r["time"] as? Double, "\(file): \(type) record without time", file: sourceFile, line: line)
            guard let id = r["flow_id"] as? Int, let flow = flows[id] else {
                XCTFail("\(file): \(type) record whose flow_id \(String(describing: r["flow_id"])) is no flow's", file: sourceFile, line: line)
                continue
            }
            for key in Self.shared {
                XCTAssertEqual(r[key].map { "\($0)" }, flow[key].map { "\($0)" }, "\(file): \(type) record, flow \(id), \(key)",
                               file: sourceFile, line: line)
            }
        }
        return analyzed.count
    }

    func testAnalyzeRecordsJoinTheirFlowRecordsOnImpairedTraffic() throws {
        for seed: UInt64 in [31, 32] {
            let path = try FlowExportTests.generatedCapture(sessions: 800, seed: seed, vlanFraction: 0.2)
            defer { try? FileManager.default.removeItem(atPath: path) }
            let n = try checkJoin(path)
            print("seed \(seed): \(n) analyze records joined to their flow records")
            XCTAssertGreaterThan(n, 560)
        }
    }

    func testAnalyzeRecordsJoinTheirFlowRecordsOnTheCorpus() throws {
        let dir = try Corpus.require("ndpi-4.2/pcap")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
        var total = 0
        for name in files { total += try checkJoin(dir.appendingPathComponent(name).path) }
        print("nDPI corpus: \(files.count) captures, \(total) analyze records joined to their flow records")
        XCTAssertGreaterThan(total, 1000)
    }

    /// Zeek's methods.pcap (responses whose requests the capture lacks have no "client" object) and the nDPI
    /// captures: every record still names both endpoints and joins its flow.
    func testEveryRecordHasItsEndpoints() throws {
        let methods = try Corpus.require("zeek/testing/btest/Traces/http/methods.pcap")
        let records = try Self.records(methods.path, flows: false)
        let withoutClient = records.filter { $0["event_type"] as? String == "http" && $0["client"] == nil }
        print("methods.pcap: \(records.count) records, \(withoutClient.count) HTTP records without a request")
        XCTAssertGreaterThan(withoutClient.count, 0)
        for r in records {
            XCTAssertNotNil(r["src_ip"] as? String, "\(r)")
            XCTAssertNotNil(r["dest_ip"] as? String, "\(r)")
            XCTAssertNotNil(r["src_port"] as? Int, "\(r)")
        }
        try checkJoin(methods.path)
    }
}
