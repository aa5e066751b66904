import Foundation
@testable import Outputs
import PacketCore
import XCTest

/// Rotated record files: a new file at the size or the interval, no record split across files, the files
/// in name order equal to one unrotated file, gzip of closed files, and SIGHUP reopening.
final class RotationTests: XCTestCase {
    func directory(_ name: String) -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-rotation-\(getpid())-\(name)")
        try? FileManager.default.removeItem(at: dir)
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Records of varied sizes (20 to ~2,000 bytes), seeded.
    static func records(_ count: Int, seed: UInt64) -> [String] {
        var state = seed
        return (0 ..< count).map { i in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let pad = Int(state >> 33) % 2000
            return "{\"event_type\":\"test\",\"n\":\(i),\"pad\":\"\(String(repeating: "x", count: pad))\"}\n"
        }
    }

    func files(_ dir: URL, suffix: String) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil).filter { $0.lastPathComponent.hasSuffix(suffix) }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    func testSizeRotationSplitsOnlyBetweenRecordsAndConcatenatesToTheWhole() throws {
        for (seed, limit) in [(UInt64(1), UInt64(64 << 10)), (2, 10_000), (3, 3_000)] {
            let dir = directory("size-\(seed)")
            let records = Self.records(3000, seed: seed)
            var options = RecordOutputOptions()
            options.rotation.maxBytes = limit
            let writer = try RecordWriter(destinations: [.file(dir.appendingPathComponent("r.json").path)], options: options)
            for r in records { writer.write(r) }
            try writer.finish()
            let parts = try files(dir, suffix: ".json")
            XCTAssertEqual(parts.map(\.path), writer.filesWritten[0])
            let whole = records.joined()
            XCTAssertGreaterThanOrEqual(parts.count, Int(UInt64(whole.utf8.count) / limit), "limit \(limit)")
            var joined = ""
            for part in parts {
                let text = try String(contentsOf: part, encoding: .utf8)
                XCTAssertTrue(text.hasSuffix("\n"), "\(part.lastPathComponent) ends inside a record")
                let lines = text.split(separator: "\n")
                // A file passes the limit only when it holds a single record larger than the limit.
                XCTAssertTrue(UInt64(text.utf8.count) <= limit || lines.count == 1, "\(part.lastPathComponent): \(text.utf8.count) bytes")
                for line in lines { XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(line.utf8))) }
                joined += text
            }
            XCTAssertEqual(joined, whole, "limit \(limit)")
            print("rotate-size \(limit): \(records.count) records, \(whole.utf8.count) bytes in \(parts.count) files")
        }
    }

    /// Records handed over many at a time (`write(lines:)`, as shards do) rotate between records and
    /// are counted one by one, exactly as when written one at a time.
    func testChunksOfRecordsRotateAndCountAsSingleRecords() throws {
        let records = Self.records(2000, seed: 9)
        var chunks: [String] = []
        var chunk = ""
        for (i, r) in records.enumerated() {
            chunk += r
            if i % 37 == 36 || chunk.utf8.count > 30_000 { chunks.append(chunk); chunk = "" }
        }
        chunks.append(chunk)
        for limit: UInt64? in [nil, 20_000] {
            let one = directory("one-\(limit ?? 0)"), many = directory("many-\(limit ?? 0)")
            var options = RecordOutputOptions()
            options.rotation.maxBytes = limit
            let single = try RecordWriter(destinations: [.file(one.appendingPathComponent("r.json").path)], options: options)
            let chunked = try RecordWriter(destinations: [.file(many.appendingPathComponent("r.json").path)], options: options)
            for r in records { single.write(r) }
            for c in chunks {
                var c = c
                let count = c.utf8.filter { $0 == UInt8(ascii: "\n") }.count
                c.withUTF8 { chunked.write(lines: UnsafeRawBufferPointer($0), records: count) }
            }
            XCTAssertEqual(chunked.statistics[0].records, UInt64(records.count))
            XCTAssertEqual(chunked.statistics[0].records, single.statistics[0].records)
            try single.finish()
            try chunked.finish()
            let a = try files(one, suffix: ".json"), b = try files(many, suffix: ".json")
            XCTAssertEqual(a.count, b.count, "limit \(String(describing: limit))")
            for (x, y) in zip(a, b) { XCTAssertEqual(try Data(contentsOf: x), try Data(contentsOf: y), y.lastPathComponent) }
        }
    }

    func testIntervalRotationStartsFilesAsTimePasses() throws {
        let dir = directory("interval")
        var options = RecordOutputOptions()
        options.rotation.interval = 0.2
        let writer = try RecordWriter(destinations: [.file(dir.appendingPathComponent("r.json").path)], options: options)
        let records = Self.records(30, seed: 9)
        for r in records {
            writer.write(r)
            usleep(50_000)
        }
        try writer.finish()
        let parts = try files(dir, suffix: ".json")
        // 30 records 50 ms apart: about 1.5 s, a file per 0.2 s.
        XCTAssertGreaterThanOrEqual(parts.count, 5)
        XCTAssertLessThanOrEqual(parts.count, 9)
        XCTAssertEqual(try parts.map { try String(contentsOf: $0, encoding: .utf8) }.joined(), records.joined())
    }

    func testClosedFilesAreCompressedWhole() throws {
        let dir = directory("gzip")
        var options = RecordOutputOptions()
        options.rotation.maxBytes = 50_000
        options.rotation.gzip = true
        let writer = try RecordWriter(destinations: [.file(dir.appendingPathComponent("r.json").path)], options: options)
        let records = Self.records(2000, seed: 4)
        for r in records { writer.write(r) }
        try writer.finish()
        XCTAssertTrue(try files(dir, suffix: ".json").isEmpty, "uncompressed files removed")
        let parts = try files(dir, suffix: ".json.gz")
        XCTAssertGreaterThan(parts.count, 10)
        var joined = Data()
        for part in parts {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/gzip")
            p.arguments = ["-dc", part.path]
            let pipe = Pipe()
            p.standardOutput = pipe
            try p.run()
            joined += pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, part.lastPathComponent)
        }
        XCTAssertEqual(String(decoding: joined, as: UTF8.self), records.joined())
    }

    /// logrotate moves the file away and sends SIGHUP: later records go to a new file at the path.
    func testHangupReopensTheFile() throws {
        let dir = directory("hup")
        let path = dir.appendingPathComponent("r.json").path
        HangupSignal.install()
        defer { signal(SIGHUP, SIG_DFL) }
        let writer = try RecordWriter(destinations: [.file(path)])
        let records = Self.records(20, seed: 5)
        for r in records[..<10] { writer.write(r) }
        writer.flush()
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        raise(SIGHUP)
        for r in records[10...] { writer.write(r) }
        try writer.finish()
        XCTAssertEqual(try String(contentsOfFile: path + ".1", encoding: .utf8), records[..<10].joined())
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), records[10...].joined())
    }

    func testRotatedNamesSortInWritingOrder() {
        let t = Timestamp(seconds: 1_700_000_000, microseconds: 0)
        XCTAssertEqual(RecordFile.rotatedName("/x/records.json", time: t, sequence: 1), "/x/records-20231114T221320Z-000001.json")
        XCTAssertEqual(RecordFile.rotatedName("flows", time: t, sequence: 12), "flows-20231114T221320Z-000012")
        XCTAssertEqual(RecordFile.rotatedName("/a.b/eve", time: t, sequence: 3), "/a.b/eve-20231114T221320Z-000003")
        XCTAssertEqual(RecordFile.rotatedName("/x/.hidden", time: t, sequence: 2), "/x/.hidden-20231114T221320Z-000002")
    }
}
