import Abstraction
import Foundation
import Synchronization
import XCTest

/// `FileEventOutputs` buffers each file and flushes at a threshold; an event larger than its
/// buffer goes straight out. Whatever the sizes, each file must hold exactly the events published to
/// it, in order, and files shared by several instances must hold each instance's events whole.
final class FileEventOutputsTests: XCTestCase {
    private var directory = ""

    override func setUp() {
        directory = "/tmp/flowtap-file-outputs-\(getpid())-\(UInt32.random(in: 0 ... .max))"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Bytes bodies are cut from, so that each event's body differs.
    private static let pattern: [UInt8] = {
        var generator = SystemRandomNumberGenerator()
        return (0 ..< 710_000).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
    }()

    /// Sizes around the flush threshold and the buffer's capacity, and far past both.
    private static func size(_ generator: inout SystemRandomNumberGenerator) -> Int {
        switch Int.random(in: 0 ..< 10, using: &generator) {
        case 0: return 0
        case 1: return Int.random(in: 60_000 ... 70_000, using: &generator)
        case 2: return Int.random(in: 250_000 ... 270_000, using: &generator)
        case 3: return Int.random(in: 300_000 ... 700_000, using: &generator)
        default: return Int.random(in: 1 ... 3_000, using: &generator)
        }
    }

    func testEachFileHoldsItsEventsInOrder() throws {
        var generator = SystemRandomNumberGenerator()
        let outputs = FileEventOutputs(directory: directory)
        let paths = ["tcp/http", "udp/dns", "icmp/icmp"]
        let indices = try paths.map { try outputs.output($0) }
        var expected = [[UInt8]](repeating: [], count: paths.count)
        for event in 0 ..< 400 {
            let i = Int.random(in: 0 ..< paths.count, using: &generator)
            let header = Array("event=\(event),len=\(Self.size(&generator))\n".utf8)
            let length = Self.size(&generator), start = Int.random(in: 0 ..< 4096, using: &generator)
            let body = Array(Self.pattern[start ..< start + length])
            try header.withUnsafeBytes { h in try body.withUnsafeBytes { b in try outputs.publish(indices[i], header: h, body: b) } }
            expected[i] += header + body
        }
        try outputs.close()
        for (i, path) in paths.enumerated() {
            let written = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + path))
            XCTAssertEqual(written.count, expected[i].count, path)
            XCTAssertTrue(written == Data(expected[i]), "\(path) differs from the events published to it")
            XCTAssertEqual(outputs.summary[i].2, UInt64(expected[i].count), path)
        }
    }

    func testSharedFileKeepsEveryInstancesEventsWhole() throws {
        let files = OutputFileSet(directory: directory)
        // Each instance is used by one thread only, as each shard uses its own.
        nonisolated(unsafe) let writers = [FileEventOutputs(sharing: files), FileEventOutputs(sharing: files)]
        let outputs = try writers.map { try $0.output("tcp/http") }
        let published = [150, 150]
        let failures = Mutex<[String]>([])
        // Each writer on its own thread, as shards run: their flushes and large events race for the file.
        DispatchQueue.concurrentPerform(iterations: 2) { w in
            var generator = SystemRandomNumberGenerator()
            for sequence in 0 ..< published[w] {
                let length = Self.size(&generator)
                // Header: writer, sequence and body length as three little-endian UInt32s.
                var header: [UInt8] = []
                for v in [UInt32(w), UInt32(sequence), UInt32(length)] { withUnsafeBytes(of: v.littleEndian) { header += $0 } }
                let body = [UInt8](repeating: UInt8(truncatingIfNeeded: sequence &* 7 &+ w), count: length)
                do {
                    try header.withUnsafeBytes { h in try body.withUnsafeBytes { b in try writers[w].publish(outputs[w], header: h, body: b) } }
                } catch {
                    failures.withLock { $0.append("writer \(w): \(error)") }
                }
            }
            do { try writers[w].close() } catch { failures.withLock { $0.append("writer \(w): \(error)") } }
        }
        XCTAssertEqual(failures.withLock { $0 }, [])
        files.closeAll()
        let written = [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/tcp/http")))
        var at = 0, seen = [0, 0]
        func word(_ offset: Int) -> Int {
            Int(UInt32(written[offset]) | UInt32(written[offset + 1]) << 8 | UInt32(written[offset + 2]) << 16 | UInt32(written[offset + 3]) << 24)
        }
        while at < written.count {
            XCTAssertLessThanOrEqual(at + 12, written.count, "a header is cut at byte \(at)")
            guard at + 12 <= written.count else { break }
            let w = word(at), sequence = word(at + 4), length = word(at + 8)
            XCTAssertTrue(w == 0 || w == 1, "not a header at byte \(at)")
            guard w == 0 || w == 1, at + 12 + length <= written.count else { XCTFail("event cut at byte \(at)"); break }
            XCTAssertEqual(sequence, seen[w], "writer \(w)'s events out of order at byte \(at)")
            let fill = UInt8(truncatingIfNeeded: sequence &* 7 &+ w)
            XCTAssertTrue(written[(at + 12) ..< (at + 12 + length)].allSatisfy { $0 == fill }, "body of writer \(w)'s event \(sequence) differs")
            seen[w] += 1
            at += 12 + length
        }
        XCTAssertEqual(seen, published)
    }
}
