import Capture
import Foundation
import PacketCore
import TestSupport
import XCTest

/// A mapped reader (the sharded pipeline hands its records to workers by reference) yields exactly
/// the records, errors and truncated tails of the reading one, on every corpus capture.
final class MappedReaderTests: XCTestCase {
    private struct Outcome: Equatable {
        var records: [String] = []
        var error: String?
        var truncatedTail = 0
    }

    private func read(_ path: String, mapped: Bool) -> Outcome {
        var outcome = Outcome()
        do {
            let reader = try mapped ? CaptureFileReader(path: path, mapped: true) : CaptureFileReader(path: path)
            if mapped { XCTAssertTrue(reader.recordsStayValid || reader.totalBytes == 0, path) }
            while let r = try reader.next() {
                outcome.records.append("\(r.timestamp.nanoseconds) \(r.originalLength) \(r.linkType.rawValue) \(r.interfaceID) \(Array(r.bytes).hashValue)")
            }
            outcome.truncatedTail = reader.truncatedTail
        } catch {
            outcome.error = "\(error)"
        }
        return outcome
    }

    func testMappedReaderEqualsReadingReaderOnTheCorpus() throws {
        let root = try Corpus.require(".")
        let names = ((FileManager.default.enumerator(atPath: root.path)?.allObjects as? [String]) ?? [])
            .filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
        XCTAssertGreaterThan(names.count, 100)
        var packets = 0
        for name in names {
            let path = root.appendingPathComponent(name).path
            let plain = read(path, mapped: false), mapped = read(path, mapped: true)
            XCTAssertEqual(mapped, plain, name)
            packets += plain.records.count
        }
        XCTAssertGreaterThan(packets, 10_000)
        print("mapped and read records agree on \(names.count) captures, \(packets) packets")
    }
}
