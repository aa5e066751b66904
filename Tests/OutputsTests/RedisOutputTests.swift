import Foundation
import Outputs
import TestSupport
import XCTest

/// Records into a real redis-server (Debian's, started on a free loopback port): every record stored
/// byte for byte and in order, per-type keys, lists; a server stopped mid-run neither crashes nor stalls
/// the writer, which reconnects when it returns and counts what was lost in between.
final class RedisOutputTests: XCTestCase {
    static func records(_ count: Int, seed: UInt64) -> [String] {
        let types = ["http", "dns", "tls"]
        var state = seed
        return (0 ..< count).map { i in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            // Quotes, backslashes and non-ASCII text travel as they are.
            return "{\"timestamp\":\"2023-11-14T22:13:20.000000+00:00\",\"event_type\":\"\(types[i % 3])\",\"n\":\(i),\"text\":\"é \\\"q\\\" \\\\ \(String(repeating: "y", count: Int(state >> 40) % 300))\"}\n"
        }
    }

    func url(_ server: RedisServer, _ rest: String) throws -> RecordDestination {
        try RecordDestination.parse("redis://127.0.0.1:\(server.port)\(rest)")
    }

    func testStreamListAndTypedKeysHoldTheFileRecordsByteForByte() throws {
        let server = try RedisServer()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-redis-file-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = Self.records(5000, seed: 7)
        let writer = try RecordWriter(destinations: [.file(path), try url(server, "?key=all"), try url(server, "/3?key=list&mode=list"),
                                                     try url(server, "?key=t:{type}&maxlen=0")], inputs: ["x"])
        for r in records { writer.write(r) }
        try writer.finish()
        XCTAssertEqual(writer.recordsDropped, 0, writer.summary)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, records.count)
        XCTAssertEqual(try server.integer(["XLEN", "all"]), lines.count)
        XCTAssertEqual(try server.streamRecords("all"), lines)
        XCTAssertEqual(try server.integer(["LLEN", "list"], database: 3), lines.count)
        XCTAssertEqual(try server.command(["LRANGE", "list", "0", "-1"], database: 3).split(separator: "\n").map(String.init), lines)
        for type in ["http", "dns", "tls"] {
            XCTAssertEqual(try server.streamRecords("t:\(type)"), lines.filter { $0.contains("\"event_type\":\"\(type)\"") }, type)
        }
        XCTAssertTrue(writer.summary.contains("5000 records stored, 0 dropped"), writer.summary)
    }

    /// The server is stopped (SIGTERM) a second into a steady stream of records and started again a second
    /// later on the same port and data: the writer never blocks long, reconnects, and every record is
    /// either stored (once, intact, in order) or counted as dropped.
    func testServerStoppedMidRunLosesOnlyWhatItCounts() throws {
        let server = try RedisServer()
        var options = RecordOutputOptions()
        options.waitWhenFull = false
        options.queueBytes = 1 << 20
        options.drainSeconds = 10
        let writer = try RecordWriter(destinations: [try url(server, "?key=s")], options: options)
        let records = Self.records(40_000, seed: 11)
        let start = Date()
        var longestWrite = 0.0
        var stopped = false, restarted = false
        for (i, r) in records.enumerated() {
            let before = Date()
            writer.write(r)
            longestWrite = max(longestWrite, Date().timeIntervalSince(before))
            if i % 100 == 99 { usleep(10_000) } // ~10,000 records/s for ~4 s
            let elapsed = Date().timeIntervalSince(start)
            if !stopped && elapsed > 1 { server.stop(); stopped = true }
            if stopped && !restarted && elapsed > 2 { try server.start(); restarted = true }
        }
        try writer.finish()
        let stored = try server.streamRecords("s")
        let summary = writer.summary
        print(summary, "longest write \(longestWrite) s")
        XCTAssertTrue(stopped && restarted)
        XCTAssertLessThan(longestWrite, 0.5, "a write waited on the dead server")
        // Stored records are a subsequence of the written ones: in order, none twice, none altered.
        let lines = records.map { String($0.dropLast()) }
        var next = 0
        for s in stored {
            guard let at = lines[next...].firstIndex(of: s) else { return XCTFail("stored record not written, or out of order: \(s.prefix(80))") }
            next = at + 1
        }
        let lost = records.count - stored.count
        let dropped = Int(writer.recordsDropped)
        XCTAssertGreaterThan(lost, 0, "the stop lost nothing: the test did not stop the server in time")
        XCTAssertTrue(summary.contains("connections 2"), summary)
        // A record whose reply never came back is counted as dropped though the server may have kept it
        // before it stopped: at most one batch (512) is such.
        XCTAssertLessThanOrEqual(lost, dropped)
        XCTAssertLessThanOrEqual(dropped - lost, 512, summary)
    }

    /// With `wait` (capture files), a server that is away at first costs nothing: records wait for it.
    func testWaitingLosesNothingWhileTheServerIsAway() throws {
        let server = try RedisServer()
        server.stop()
        var options = RecordOutputOptions()
        options.waitWhenFull = true
        options.queueBytes = 1 << 16
        let writer = try RecordWriter(destinations: [try url(server, "?key=w&mode=list")], options: options)
        let restart = Thread { usleep(1_500_000); try? server.start() }
        restart.start()
        let records = Self.records(3000, seed: 12)
        for r in records { writer.write(r) }
        try writer.finish()
        XCTAssertEqual(writer.recordsDropped, 0, writer.summary)
        XCTAssertEqual(try server.integer(["LLEN", "w"]), records.count)
    }

    func testURLsAreReadAndMistakesNamed() throws {
        guard case .redis(let t) = try RecordDestination.parse("redis://u:p%40ss@[::1]:6380/2?key=a:%7Btype%7D&mode=list&maxlen=5") else {
            return XCTFail("not redis")
        }
        XCTAssertEqual(t.host, "::1")
        XCTAssertEqual(t.port, 6380)
        XCTAssertEqual(t.database, 2)
        XCTAssertEqual(t.user, "u")
        XCTAssertEqual(t.password, "p%40ss")
        XCTAssertEqual(t.key, "a:{type}")
        XCTAssertTrue(t.keyPerType)
        XCTAssertEqual(t.mode, .list)
        XCTAssertEqual(t.maxLength, 5)
        XCTAssertFalse(t.description.contains("p%40ss"), "the password is not printed")
        XCTAssertEqual(try RecordDestination.parse("-"), .standardOutput)
        XCTAssertEqual(try RecordDestination.parse("out.json"), .file("out.json"))
        for (bad, said) in [("redis://host", "no port"), ("redis://h:0", "not 1-65535"), ("redis://h:1?mode=queue", "not stream, list or publish"),
                            ("redis://h:1?colour=red", "unknown parameter 'colour'"), ("redis://:secret@h:x", "not 1-65535"),
                            ("kafka://h:1", "unknown output scheme"), ("redis://h:1/x", "database")] {
            XCTAssertThrowsError(try RecordDestination.parse(bad), bad) { error in
                XCTAssertTrue("\(error)".contains(said), "\(bad): \(error)")
                XCTAssertFalse("\(error)".contains("secret"), "\(bad): \(error)")
            }
        }
    }
}
