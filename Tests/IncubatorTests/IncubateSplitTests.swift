#if canImport(Glibc)
import Glibc
#endif
import Capture
import Crypto
import Engine
import Foundation
import Incubator
import PacketCore
import TestSupport
import TrafficGen
import Wire
import XCTest

/// `flowtap incubate -r` on generated impaired traffic: every flow whole on one cell, and the cells'
/// streams together exactly the unsplit capture's.
final class IncubateSplitTests: XCTestCase {
    static let flowtap = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path

    func scratch(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-incubate-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: url)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func generate(_ path: String, sessions: Int, seed: UInt64, impaired: Bool) throws {
        var options = TrafficGenerator.Options()
        options.sessions = sessions
        options.seed = seed
        options.ipv6Fraction = 0.3
        options.vlanFraction = 0.2
        if impaired { options.impairments = .mix }
        let writer = try PcapWriter(path: path, linkType: .ethernet)
        _ = try TrafficGenerator(options: options).generate { try writer.write(timestamp: $0, bytes: $1) }
        try writer.flush()
    }

    /// SHA-256 of every frame in a capture, as a multiset.
    static func frames(_ path: String) throws -> [String: Int] {
        var out: [String: Int] = [:]
        let reader = try CaptureFileReader(path: path)
        while let record = try reader.next() {
            out[SHA256.hash(data: Data(record.bytes)).description, default: 0] += 1
        }
        return out
    }

    /// Every stream `flowtap streams -o` writes, by its name without the flow number, with its bytes' digest.
    static func streams(_ capture: String, _ directory: URL) throws -> [String: Int] {
        try? FileManager.default.removeItem(at: directory)
        let (output, errors, status) = try Corpus.runCapturingErrors(flowtap, ["streams", "-r", capture, "-o", directory.path, "--quiet"])
        guard status == 0 else { throw OracleMissing.error("flowtap streams failed: \(errors)") }
        _ = output
        var out: [String: Int] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
            let data = try Data(contentsOf: directory.appendingPathComponent(name))
            let key = name.split(separator: "-", maxSplits: 1).last.map(String.init) ?? name
            out[key + " " + SHA256.hash(data: data).description, default: 0] += 1
        }
        return out
    }

    func testOfflineSplitKeepsEveryFlowWholeOnOneCell() throws {
        for seed: UInt64 in [3, 41] {
            let dir = try scratch("split\(seed)")
            defer { try? FileManager.default.removeItem(at: dir) }
            let input = dir.appendingPathComponent("input.pcap").path
            try Self.generate(input, sessions: 1500, seed: seed, impaired: true)
            let cells = (0 ..< 3).map { dir.appendingPathComponent("c\($0).pcap").path }
            let (_, summary, status) = try Corpus.runCapturingErrors(Self.flowtap, ["incubate", "-r", input, "--quiet"] + cells.flatMap { ["--cell", "file:\($0)"] })
            XCTAssertEqual(status, 0, summary)
            print(summary)
            // The cells hold exactly the input's frames.
            var together: [String: Int] = [:]
            for cell in cells { together.merge(try Self.frames(cell), uniquingKeysWith: +) }
            XCTAssertEqual(together, try Self.frames(input))
            // Each cell's streams are whole: together they equal the unsplit capture's, stream for stream.
            let whole = try Self.streams(input, dir.appendingPathComponent("streams-all"))
            var union: [String: Int] = [:]
            var perCell: [[String: Int]] = []
            for (i, cell) in cells.enumerated() {
                let s = try Self.streams(cell, dir.appendingPathComponent("streams-\(i)"))
                perCell.append(s)
                union.merge(s, uniquingKeysWith: +)
            }
            XCTAssertGreaterThan(whole.count, 2000)
            XCTAssertEqual(union.count, whole.count, "seed \(seed)")
            let missing = Set(whole.keys).subtracting(union.keys).sorted().prefix(3)
            let extra = Set(union.keys).subtracting(whole.keys).sorted().prefix(3)
            XCTAssertEqual(union, whole, "seed \(seed): missing \(missing), unexpected \(extra)")
            XCTAssertTrue(perCell.allSatisfy { $0.count > whole.count / 6 }, "every cell gets a share")
            XCTAssertTrue(summary.contains("sent without their first 0"), summary)
        }
    }

    /// 10,000 sessions over 4 cells: flows per cell within ±15% of an even share.
    func testBalanceOverFourCells() throws {
        let dir = try scratch("balance")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("input.pcap").path
        try Self.generate(input, sessions: 10_000, seed: 5, impaired: false)
        var specs: [CellSpec] = []
        for i in 0 ..< 4 { specs.append(try CellSpec(parsing: "file:" + dir.appendingPathComponent("c\(i).pcap").path)) }
        _ = try IncubateSession(cells: specs).run(files: [input])
        var flows: [Int] = []
        for i in 0 ..< 4 {
            let (output, _, status) = try Corpus.runCapturingErrors(Self.flowtap, ["streams", "-r", dir.appendingPathComponent("c\(i).pcap").path, "--quiet"])
            XCTAssertEqual(status, 0)
            flows.append(output.split(separator: "\n").count)
        }
        let total = flows.reduce(0, +)
        print("flows per cell: \(flows) of \(total)")
        XCTAssertGreaterThanOrEqual(total, 10_000)
        for n in flows { XCTAssertEqual(Double(n), Double(total) / 4, accuracy: Double(total) / 4 * 0.15, "\(flows)") }
    }

    /// The original incubator's choice, reproduced: ports 62918 and 80 with 4 cells is cell 1.
    func testSFTapHashReproducesTheOriginal() throws {
        XCTAssertEqual(CellHash.sftap(sourcePort: 62918, destinationPort: 80, cells: 4), 1)
        XCTAssertEqual(CellHash.sftap(sourcePort: 80, destinationPort: 62918, cells: 4), 1)
        let dir = try scratch("sftap")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("input.pcap").path
        let writer = try PcapWriter(path: input, linkType: .ethernet)
        let frame = PacketBuilder.frame(network: .ipv4(.init(source: IPAddress("10.0.0.1")!, destination: IPAddress("10.0.0.2")!)),
                                        transport: .tcp(.init(sourcePort: 62918, destinationPort: 80, sequence: 1, acknowledgement: 0, flags: [.syn])))
        try writer.write(timestamp: Timestamp(seconds: 1, microseconds: 0), bytes: frame)
        try writer.flush()
        var session = IncubateSession(cells: try (0 ..< 4).map { try CellSpec(parsing: "file:" + dir.appendingPathComponent("c\($0).pcap").path) })
        session.selection = .sftap
        let summary = try session.run(files: [input])
        XCTAssertTrue(summary.contains("cell 1 file:\(dir.path)/c1.pcap: frames 1 "), summary)
    }

    /// Fragments in every order: a non-first fragment before its first is held and follows it; one whose
    /// first never comes goes to its address pair's cell at the end, counted.
    func testFragmentsFollowTheirFlowInAnyOrder() throws {
        let dir = try scratch("fragments")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("input.pcap").path
        let writer = try PcapWriter(path: input, linkType: .ethernet)
        var time: Int64 = 0
        func write(_ frame: [UInt8]) throws {
            time += 1000
            try writer.write(timestamp: Timestamp(seconds: 100, microseconds: time), bytes: frame)
        }
        var expected: [Int: UInt16] = [:]
        for i in 0 ..< 200 {
            let source = IPAddress(ipv4: 0x0A00_0000 | UInt32(i)), destination = IPAddress("192.0.2.1")!
            let segment = PacketBuilder.segment(.udp(sourcePort: UInt16(20000 + i), destinationPort: 53), payload: [UInt8](repeating: UInt8(i & 0xFF), count: 3000),
                                                source: source, destination: destination)
            var header = PacketBuilder.IPv4(source: source, destination: destination)
            header.identification = UInt16(i)
            let datagram = PacketBuilder.ip(.ipv4(header), protocol: 17, payload: segment)
            var pieces = PacketBuilder.fragmentIPv4(datagram, maxPayload: 1000).map { PacketBuilder.wrap(link: .ethernet(), datagram: $0) }
            // The unfragmented reply of the same flow decides which cell the flow is on.
            let reply = PacketBuilder.frame(network: .ipv4(.init(source: destination, destination: source)),
                                            transport: .udp(sourcePort: 53, destinationPort: UInt16(20000 + i)), payload: [1, 2, 3])
            if i % 3 == 0 { pieces.reverse() }                 // first fragment last
            if i % 3 == 1 { pieces.swapAt(0, pieces.count - 1) }
            for p in pieces { try write(p) }
            try write(reply)
            expected[i] = UInt16(20000 + i)
        }
        // A datagram whose first fragment never comes.
        var orphan = PacketBuilder.IPv4(source: IPAddress("10.9.9.9")!, destination: IPAddress("192.0.2.1")!)
        orphan.identification = 777
        orphan.fragmentOffset = 1480
        orphan.protocolOverride = 17
        try write(PacketBuilder.wrap(link: .ethernet(), datagram: PacketBuilder.ip(.ipv4(orphan), protocol: 17, payload: [UInt8](repeating: 9, count: 100))))
        try writer.flush()

        let cells = (0 ..< 4).map { dir.appendingPathComponent("c\($0).pcap").path }
        let summary = try IncubateSession(cells: try cells.map { try CellSpec(parsing: "file:\($0)") }).run(files: [input])
        print(summary)
        // On every cell, each (source address, identification) has all of its fragments and the reply.
        var decoder = PacketDecoder()
        var packet = DecodedPacket()
        var cellOf: [UInt32: Set<Int>] = [:]
        var fragmentsSeen = 0
        for (c, cell) in cells.enumerated() {
            let reader = try CaptureFileReader(path: cell)
            while let record = try reader.next() {
                decoder.decode(record.bytes, originalLength: record.originalLength, linkType: record.linkType, into: &packet)
                let client = packet.isFragment ? packet.source.ipv4Value : (packet.sourcePort == 53 ? packet.destination.ipv4Value : packet.source.ipv4Value)
                if packet.isFragment { fragmentsSeen += 1 }
                cellOf[client, default: []].insert(c)
            }
        }
        XCTAssertEqual(fragmentsSeen, 200 * 4 + 1)
        for i in 0 ..< 200 { XCTAssertEqual(cellOf[0x0A00_0000 | UInt32(i)]?.count, 1, "flow \(i) is on cells \(cellOf[0x0A00_0000 | UInt32(i)] ?? [])") }
        XCTAssertTrue(summary.contains("sent without their first 1 "), summary)
        XCTAssertTrue(summary.contains("held for their first"), summary)
    }
}
