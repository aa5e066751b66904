import Capture
import Engine
import Foundation
import PacketCore
import TestSupport
import Wire
import XCTest

/// Every capture in the corpus is read and decoded without a trap; this
/// includes tcpdump's malformed "crash" captures (`*oobr*`, `*overflow*`, `*asan*`, cve…).
final class CorpusRobustnessTests: XCTestCase {
    func captures(in dir: URL) -> [URL] {
        let names = (FileManager.default.enumerator(atPath: dir.path)?.allObjects as? [String]) ?? []
        return names.filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") || $0.hasSuffix(".cap") }
            .sorted().map { dir.appendingPathComponent($0) }
    }

    func testEveryCorpusCaptureReadsWithoutATrap() throws {
        let root = try Corpus.require(".")
        var files = 0, malformedNamed = 0, packets = 0, unreadable = 0, truncatedFiles = 0
        var decoder = PacketDecoder(verifyChecksums: true)
        var packet = DecodedPacket()
        for url in captures(in: root) {
            files += 1
            let name = url.lastPathComponent
            if ["oobr", "overflow", "asan", "cve", "crash", "heapoverflow", "bad"].contains(where: { name.contains($0) }) { malformedNamed += 1 }
            guard let reader = try? CaptureFileReader(path: url.path) else {
                unreadable += 1
                continue
            }
            do {
                while let record = try reader.next() {
                    decoder.decode(record.bytes, originalLength: record.originalLength, linkType: record.linkType, into: &packet)
                    packets += 1
                }
            } catch {
                unreadable += 1
            }
            if reader.truncatedTail > 0 { truncatedFiles += 1 }
        }
        print("corpus robustness: \(files) capture files (\(malformedNamed) named as malformed), \(packets) packets decoded, \(unreadable) rejected with an error, \(truncatedFiles) ending inside a record; anomalies \(decoder.counters.total)")
        // Pinned at the shared corpus: every capture read, every packet decoded, the 5 files libpcap also rejects.
        XCTAssertEqual(files, 762)
        XCTAssertEqual(malformedNamed, 141)
        XCTAssertEqual(packets, 54_075)
        XCTAssertEqual(unreadable, 5)
    }

    /// The corpus's deliberately invalid savefiles are rejected with an error that says why.
    func testInvalidSavefilesAreRejectedWithReasons() throws {
        let dir = try Corpus.require("libpcap/tests")
        let cases = [
            ("pcap-invalid-version-1.pcap", "version"), ("pcap-invalid-version-2.pcap", "version"),
            ("pcapng-invalid-vers-1.pcapng", "version"), ("pcapng-invalid-vers-2.pcapng", "version"),
            ("shb-option-too-long.pcapng", "does not match"),
        ]
        for (name, reason) in cases {
            let reader = try CaptureFileReader(path: dir.appendingPathComponent(name).path)
            XCTAssertThrowsError(try reader.next(), name) { error in
                XCTAssertTrue("\(error)".contains(reason), "\(name): \(error)")
                XCTAssertTrue("\(error)".contains(name), "\(name): \(error)")
            }
        }
    }
}
