import Engine
import FlowCore
import Foundation
import Outputs
import TestSupport
import XCTest

/// `flowtap flows -i lo` with one and two worker threads: every loopback TCP connection made while it
/// captures is one complete record when SIGINT stops it.
final class LiveFlowsTests: XCTestCase {
    /// What `flowtap COMMAND -i lo --threads N 'tcp port PORT'` writes while 20 HTTP exchanges cross the
    /// loopback, stopped by SIGINT.
    static func liveRecords(_ command: [String], threads: Int, port: UInt16) throws -> String {
        guard geteuid() == 0 else { throw OracleMissing.error("live capture needs root") }
        let flowtap = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path
        guard FileManager.default.isExecutableFile(atPath: flowtap) else { throw OracleMissing.error("flowtap executable not built") }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-live-\(getpid())-\(port).json").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: flowtap)
        process.arguments = command + ["-i", "lo", "--threads", String(threads), "-o", out, "tcp port \(port)"]
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        usleep(1_000_000)
        try ShardedLiveCaptureTests.exchanges(port: port, count: 20)
        usleep(300_000)
        process.interrupt()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        return try String(contentsOfFile: out, encoding: .utf8)
    }

    func testLoopbackConnectionsBecomeCompleteRecords() throws {
        for threads in [1, 2] {
            let port = UInt16(20_000 + Int(getpid()) % 20_000 + threads)
            let text = try Self.liveRecords(["flows"], threads: threads, port: port)
            let records = try text.split(separator: "\n").map {
                try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
            let complete = records.filter { r in
                let f = r["flow"] as? [String: Any] ?? [:]
                return r["dest_port"] as? Int == Int(port) && f["conn_state"] as? String == "SF" && r["app_proto"] as? String == "http"
                    && (f["pkts_toserver"] as? Int ?? 0) >= 4 && (f["payload_bytes_toclient"] as? Int ?? 0) > 60
            }
            let ids = Set(records.compactMap { $0["flow_id"] as? Int })
            print("flows -i lo --threads \(threads): \(records.count) records, \(complete.count) complete, \(ids.count) distinct flow IDs")
            XCTAssertEqual(records.count, 20)
            XCTAssertEqual(complete.count, 20)
            XCTAssertEqual(ids.count, 20)
        }
    }
}

/// `flows --threads N` writes the same record for every flow as one thread, `flow_id` included (it is
/// computed from the flow, not from a thread's counter), on impaired generated traffic.
final class FlowsThreadsTests: XCTestCase {
    func testRecordsDoNotDependOnTheThreadCount() throws {
        let path = try FlowExportTests.generatedCapture(sessions: 1500, seed: 95, vlanFraction: 0.1)
        defer { try? FileManager.default.removeItem(atPath: path) }
        func records(_ shards: Int) throws -> [String: String] {
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-threads-\(getpid())-\(shards).json").path
            defer { try? FileManager.default.removeItem(atPath: out) }
            var session = FlowsSession(engineConfig: FlowEngineConfig())
            session.shards = shards
            let writer = try RecordWriter(path: out)
            _ = try session.run(files: [path], output: writer)
            try writer.finish()
            var byFlow: [String: String] = [:]
            var ids: Set<Int> = []
            for line in try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n") {
                let r = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                let id = try XCTUnwrap(r["flow_id"] as? Int)
                ids.insert(id)
                let text = String(decoding: try JSONSerialization.data(withJSONObject: r, options: .sortedKeys), as: UTF8.self)
                byFlow["\(id)|\(r["src_ip"]!)|\(r["src_port"] ?? "")|\(r["dest_ip"]!)|\(r["dest_port"] ?? "")|\(r["proto"]!)|\(r["vlan"] ?? "")|\(r["timestamp"]!)"] = text
            }
            XCTAssertEqual(ids.count, byFlow.count, "flow IDs unique with \(shards) threads")
            return byFlow
        }
        let one = try records(1)
        for shards in [2, 3] {
            let many = try records(shards)
            let same = one.filter { many[$0.key] == $0.value }.count
            print("flows --threads \(shards): \(many.count) records, \(same) of \(one.count) equal to one thread's")
            XCTAssertEqual(many.count, one.count)
            XCTAssertEqual(same, one.count)
        }
    }
}

/// `analyze --threads N` writes the same records as one thread, and `analyze -i lo` (1 and 2 threads)
/// writes every loopback HTTP exchange it sees.
final class AnalyzeThreadsTests: XCTestCase {
    func testRecordsDoNotDependOnTheThreadCount() throws {
        let path = try FlowExportTests.generatedCapture(sessions: 1500, seed: 96, vlanFraction: 0.1)
        defer { try? FileManager.default.removeItem(atPath: path) }
        func lines(_ shards: Int) throws -> [String] {
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-analyze-threads-\(getpid())-\(shards).json").path
            defer { try? FileManager.default.removeItem(atPath: out) }
            var session = AnalyzeSession(settings: nil, engineConfig: FlowEngineConfig())
            session.shards = shards
            let writer = try RecordWriter(path: out)
            _ = try session.run(files: [path], output: writer)
            try writer.finish()
            return try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map(String.init).sorted()
        }
        let one = try lines(1)
        XCTAssertGreaterThanOrEqual(one.count, 1138)
        for shards in [2, 3] {
            let many = try lines(shards)
            print("analyze --threads \(shards): \(many.count) records, one thread \(one.count)")
            XCTAssertEqual(many, one)
        }
    }

    /// The same on every nDPI capture: with 2 threads each capture's records, flow_id included, equal one thread's.
    func testRecordsDoNotDependOnTheThreadCountOnTheCorpus() throws {
        let dir = try Corpus.require("ndpi-4.2/pcap")
        var total = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() where name.hasSuffix(".pcap") || name.hasSuffix(".pcapng") {
            func lines(_ shards: Int) throws -> [String] {
                let out = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-analyze-corpus-\(getpid())-\(shards).json").path
                defer { try? FileManager.default.removeItem(atPath: out) }
                var session = AnalyzeSession(settings: nil, engineConfig: FlowEngineConfig())
                session.shards = shards
                let writer = try RecordWriter(path: out)
                _ = try session.run(files: [dir.appendingPathComponent(name).path], output: writer)
                try writer.finish()
                return try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map(String.init).sorted()
            }
            let one = try lines(1)
            XCTAssertEqual(try lines(2), one, name)
            total += one.count
        }
        print("nDPI corpus: \(total) records, the same with 1 and 2 threads")
        XCTAssertGreaterThan(total, 1000)
    }

    func testLiveLoopbackExchangesBecomeRecords() throws {
        for threads in [1, 2] {
            let port = UInt16(20_000 + Int(getpid()) % 20_000 + 10 + threads)
            let text = try LiveFlowsTests.liveRecords(["analyze"], threads: threads, port: port)
            let uris = Set(text.split(separator: "\n").compactMap { line -> String? in
                guard let r = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], r["type"] as? String == "http" else { return nil }
                return ((r["client"] as? [String: Any])?["method"] as? [String: Any])?["uri"] as? String
            })
            print("analyze -i lo --threads \(threads): \(uris.count) distinct request URIs")
            XCTAssertEqual(uris, Set((0 ..< 20).map { "/item/\($0)" }))
        }
    }
}
