import CaptureTools
import Capture
import Engine
import Filters
import Foundation
import PacketCore
import TestSupport
import XCTest

/// `flowtap filter` against libpcap's own filter tests (`filter_apply.json`,
/// from libpcap's TESTrun) and against tcpdump run on the same capture.
final class FilterApplyCorpusTests: XCTestCase {
    struct Block: Decodable {
        var expr: String
        var name: String
        var results: [Int]
        var savefile: String
    }

    func linkType(of path: String) throws -> LinkType? {
        let reader = try CaptureFileReader(path: path)
        _ = try reader.next()
        return reader.linkTypes.first
    }

    func testFilterKeepsWhatLibpcapTestsExpectOnEthernetCaptures() throws {
        let dir = try Corpus.require("libpcap")
        let blocks = try JSONDecoder().decode([Block].self, from: Data(contentsOf: dir.appendingPathComponent("filter_apply.json")))
        let tcpdump = Corpus.tool("tcpdump")
        var ethernetBlocks = 0, accepted = 0, agreeing = 0, packets = 0, tcpdumpAgreeing = 0
        var rejectedByLibpcap: [String] = []
        var disagreements: [String] = []
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-filter-\(getpid()).pcap").path
        defer { unlink(out) }
        for block in blocks {
            let input = dir.appendingPathComponent("tests").appendingPathComponent(block.savefile).path
            guard FileManager.default.fileExists(atPath: input), try linkType(of: input) == .ethernet else { continue }
            ethernetBlocks += 1
            // Per-packet verdicts from the library.
            let filter: BPFFilter
            do { filter = try BPFFilter(expression: block.expr, linkType: .ethernet) } catch {
                rejectedByLibpcap.append(block.expr)
                continue
            }
            accepted += 1
            let reader = try CaptureFileReader(path: input)
            var verdicts: [Int] = []
            while let record = try reader.next() {
                verdicts.append(Int(try filter.verdict(bytes: record.bytes, originalLength: record.originalLength, linkType: record.linkType)))
            }
            packets += verdicts.count
            // The command's runner writes exactly the kept packets.
            let summary = try FilterRunner(expression: block.expr, output: out).run(files: [input])
            let expectedKept = block.results.filter { $0 != 0 }.count
            let written = try countPackets(out)
            if verdicts.map({ $0 != 0 }) == block.results.map({ $0 != 0 }) && summary.kept == UInt64(expectedKept) && written == expectedKept {
                agreeing += 1
            } else {
                disagreements.append("\(block.name) '\(block.expr)': expected \(block.results), got \(verdicts), wrote \(written)")
            }
            if let tcpdump {
                let tcpdumpOut = out + ".tcpdump"
                defer { unlink(tcpdumpOut) }
                let (_, status) = try Corpus.run(tcpdump, ["-r", input, "-w", tcpdumpOut, block.expr])
                if status == 0, try countPackets(tcpdumpOut) == written { tcpdumpAgreeing += 1 }
                else { disagreements.append("\(block.name) '\(block.expr)': tcpdump kept a different count (status \(status))") }
            }
        }
        print("filter vs libpcap tests: \(ethernetBlocks) Ethernet blocks, \(accepted) expressions accepted by this libpcap, \(agreeing) agree on all \(packets) packet verdicts; tcpdump agrees on \(tcpdumpAgreeing)\(tcpdump == nil ? " (tcpdump not installed)" : ""); rejected: \(rejectedByLibpcap)")
        for d in disagreements { print("  " + d) }
        XCTAssertGreaterThan(accepted, 50)
        XCTAssertEqual(disagreements, [])
    }

    func countPackets(_ path: String) throws -> Int {
        let reader = try CaptureFileReader(path: path)
        var n = 0
        while try reader.next() != nil { n += 1 }
        return n
    }

    func testBadExpressionIsRejectedWithLibpcapsMessage() {
        XCTAssertThrowsError(try BPFFilter(expression: "tcp port eighty", linkType: .ethernet)) { error in
            XCTAssertTrue("\(error)".contains("tcp port eighty"), "\(error)")
            XCTAssertTrue("\(error)".contains("eighty"), "\(error)")
        }
    }

    /// A pcapng input that mixes link types needs a pcapng output; pcap output says so.
    func testMixedLinkTypesNeedPcapng() throws {
        let dir = FileManager.default.temporaryDirectory
        let mixed = dir.appendingPathComponent("flowtap-mixed-\(getpid()).pcapng").path
        defer { unlink(mixed) }
        let writer = try PcapngWriter(path: mixed)
        let ipPacket: [UInt8] = [0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
        try ipPacket.withUnsafeBytes { raw in
            try writer.write(timestamp: .zero, originalLength: 20, linkType: .raw, bytes: raw)
        }
        let frame: [UInt8] = [UInt8](repeating: 0, count: 12) + [0x08, 0x00] + ipPacket
        try frame.withUnsafeBytes { raw in
            try writer.write(timestamp: .zero, originalLength: frame.count, linkType: .ethernet, bytes: raw)
        }
        try writer.flush()
        let pcapOut = dir.appendingPathComponent("flowtap-mixed-\(getpid()).pcap").path
        defer { unlink(pcapOut) }
        XCTAssertThrowsError(try FilterRunner(expression: "ip", output: pcapOut).run(files: [mixed])) { error in
            XCTAssertTrue("\(error)".contains("pcapng"), "\(error)")
        }
        let pcapngOut = dir.appendingPathComponent("flowtap-mixed-out-\(getpid()).pcapng").path
        defer { unlink(pcapngOut) }
        let summary = try FilterRunner(expression: "ip", output: pcapngOut).run(files: [mixed])
        XCTAssertEqual(summary.kept, 2)
        XCTAssertEqual(try countPackets(pcapngOut), 2)
    }
}
