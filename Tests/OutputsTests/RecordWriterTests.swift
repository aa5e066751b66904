import Foundation
import Outputs
import XCTest

final class RecordWriterTests: XCTestCase {
    func temporaryPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-records-\(getpid())-\(name)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent("out.jsonl").path
    }

    func testRecordsReachTheFileInOrderPastTheBuffer() throws {
        let path = temporaryPath("order")
        let writer = try RecordWriter(path: path)
        var expected = ""
        // More than one 1 MiB buffer, so records are written out mid-run and at the end.
        for i in 0 ..< 40_000 {
            let line = "{\"n\":\(i),\"pad\":\"\(String(repeating: "x", count: i % 50))\"}\n"
            writer.write(line)
            expected += line
        }
        try writer.finish()
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), expected)
        XCTAssertEqual(writer.bytesWritten, UInt64(expected.utf8.count))
    }

    func testAnOutputThatIsAnInputIsRefusedAndLeftIntact() throws {
        let path = temporaryPath("input")
        try "keep me".write(toFile: path, atomically: true, encoding: .utf8)
        // The same file under another name (a symbolic link) is the same input.
        let link = path + ".link"
        try? FileManager.default.removeItem(atPath: link)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: path)
        for output in [path, link] {
            XCTAssertThrowsError(try RecordWriter(path: output, inputs: ["/nonexistent", path])) { error in
                XCTAssertTrue("\(error)".contains("is also the input"), "\(error)")
            }
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "keep me")
    }

    func testAWriteErrorIsKeptAndReportedWithTheOutputName() throws {
        guard FileManager.default.fileExists(atPath: "/dev/full") else { throw XCTSkip("no /dev/full on this system") }
        let writer = try RecordWriter(path: "/dev/full")
        writer.write(String(repeating: "y", count: 2 << 20) + "\n")
        XCTAssertNotNil(writer.writeError)
        XCTAssertThrowsError(try writer.finish()) { error in
            XCTAssertTrue("\(error)".contains("cannot write /dev/full"), "\(error)")
        }
    }
}
