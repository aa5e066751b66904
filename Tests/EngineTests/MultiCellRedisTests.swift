import Foundation
import TestSupport
import XCTest

/// docs/outputs.md's several-cells example, run: `incubate` splits an impaired capture into three file
/// cells, each cell's `analyze` writes to one real redis-server (per-type streams), and the streams hold
/// exactly the records one `analyze` of the whole capture writes to a file, byte for byte, `flow_id` included.
/// With IP fragments arriving before their first, the incubator holds them and writes them after it, so
/// a datagram completes at another frame and a record's times can differ by the frames' spacing: that
/// capture is compared without the time fields.
final class MultiCellRedisTests: XCTestCase {
    static var flowtap: String { URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path }

    func testCellsFeedingOneRedisHoldTheSingleRunsRecords() throws {
        let path = try FlowExportTests.generatedCapture(sessions: 900, seed: 63, vlanFraction: 0.2, fragments: false)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try cells(input: path, exact: true)
        let mixed = try FlowExportTests.generatedCapture(sessions: 900, seed: 64, vlanFraction: 0.2)
        defer { try? FileManager.default.removeItem(atPath: mixed) }
        try cells(input: mixed, exact: false)
    }

    func cells(input: String, exact: Bool) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.flowtap) else { throw OracleMissing.error("flowtap executable not built") }
        let server = try RedisServer()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-cells-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        let cells = (0 ..< 3).map { dir.appendingPathComponent("cell\($0).pcap").path }
        XCTAssertEqual(try Corpus.run(Self.flowtap, ["incubate", "-r", input] + cells.flatMap { ["--cell", "file:\($0)"] }).1, 0)
        let url = "redis://127.0.0.1:\(server.port)?key=flowtap:{type}"
        let runs = try cells.map { cell -> Process in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Self.flowtap)
            p.arguments = ["analyze", "-r", cell, "-o", url, "--quiet"]
            p.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try p.run()
            return p
        }
        for p in runs { p.waitUntilExit(); XCTAssertEqual(p.terminationStatus, 0) }

        let whole = dir.appendingPathComponent("whole.json").path
        XCTAssertEqual(try Corpus.run(Self.flowtap, ["analyze", "-r", input, "-o", whole, "--quiet"]).1, 0)
        let expected = try String(contentsOfFile: whole, encoding: .utf8).split(separator: "\n").map(String.init).sorted()
        var stored: [String] = []
        for type in ["http", "dns", "tls", "quic"] { stored += try server.streamRecords("flowtap:\(type)") }
        let differing = stored.filter { !Set(expected).contains($0) }.count
        print("3 cells → one Redis: \(stored.count) records; one analyze: \(expected.count); \(differing) differ (exact: \(exact))")
        XCTAssertGreaterThan(expected.count, 600)
        if exact {
            XCTAssertEqual(stored.sorted(), expected)
        } else {
            XCTAssertEqual(try stored.map { try AnalyzeNamespaceTests.timeless(Substring($0)) }.sorted(), try expected.map { try AnalyzeNamespaceTests.timeless(Substring($0)) }.sorted())
        }
    }
}
