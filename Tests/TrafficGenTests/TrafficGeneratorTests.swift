import Foundation
import PacketCore
import TrafficGen
import XCTest

/// Determinism, compatibility with the bundled sample, and bounded memory.
final class TrafficGeneratorTests: XCTestCase {
    static func generate(_ options: TrafficGenerator.Options) -> (frames: [(Timestamp, [UInt8])], records: [TrafficGenerator.SessionRecord], summary: TrafficGenerator.Summary) {
        var frames: [(Timestamp, [UInt8])] = []
        var records: [TrafficGenerator.SessionRecord] = []
        let summary = TrafficGenerator(options: options).generate({ frames.append(($0, $1)) }, sessions: { records.append($0) })
        return (frames, records, summary)
    }

    static func options(sessions: Int, seed: UInt64, impairments: TrafficGenerator.Impairments = .none) -> TrafficGenerator.Options {
        var options = TrafficGenerator.Options()
        options.sessions = sessions
        options.seed = seed
        options.impairments = impairments
        return options
    }

    /// With no impairments the generator writes exactly what it wrote before
    /// impairments existed: `samples/sample.pcap` is `--sessions 40 --seed 1`.
    func testUnimpairedOutputIsTheBundledSample() throws {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { url.deleteLastPathComponent() }
        let sample = url.appendingPathComponent("samples/sample.pcap").path
        guard let expected = FileManager.default.contents(atPath: sample) else { throw XCTSkip("\(sample) not found") }
        let path = Temporary.path(".pcap")
        defer { unlink(path) }
        let summary = try TrafficGenerator(options: Self.options(sessions: 40, seed: 1)).write(to: path)
        XCTAssertEqual(summary.sessions, 40)
        XCTAssertEqual(FileManager.default.contents(atPath: path), expected)
        XCTAssertEqual(summary.impairments.lateSegments + summary.impairments.duplicateSegments
            + summary.impairments.overlappingSegments + summary.impairments.fragmentedDatagrams, 0)
    }

    func testSameSeedGivesSameBytesAndManifest() {
        let options = Self.options(sessions: 300, seed: 7, impairments: .mix)
        let a = Self.generate(options), b = Self.generate(options)
        XCTAssertEqual(a.frames.count, b.frames.count)
        XCTAssertTrue(zip(a.frames, b.frames).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }, "frames differ between runs")
        XCTAssertEqual(a.records.map { $0.jsonLine() }, b.records.map { $0.jsonLine() })
        XCTAssertEqual(a.summary.impairments, b.summary.impairments)

        let c = Self.generate(Self.options(sessions: 300, seed: 8, impairments: .mix))
        XCTAssertFalse(a.frames.count == c.frames.count && zip(a.frames, c.frames).allSatisfy { $0.1 == $1.1 }, "another seed gave the same capture")
    }

    /// Impairments change packets, never the sessions: same endpoints, kinds and payloads for a seed.
    func testImpairmentsKeepSessionsAndPayloads() {
        let plain = Self.generate(Self.options(sessions: 200, seed: 3))
        let impaired = Self.generate(Self.options(sessions: 200, seed: 3, impairments: .init(
            reorder: 0.5, retransmit: 0.5, overlap: 0.5, fragment: 0.5, midstream: 0.5, noFIN: 0.2, rst: 0.2, sequenceWrap: 0.5)))
        XCTAssertEqual(plain.records.count, impaired.records.count)
        for (p, i) in zip(plain.records, impaired.records) {
            XCTAssertEqual(p.session.kind, i.session.kind)
            XCTAssertEqual(p.session.client, i.session.client)
            XCTAssertEqual(p.session.server, i.session.server)
            XCTAssertEqual(p.session.clientPort, i.session.clientPort)
            XCTAssertEqual(p.session.vlan, i.session.vlan)
            XCTAssertEqual(p.stream(fromClient: true), i.stream(fromClient: true))
            XCTAssertEqual(p.stream(fromClient: false), i.stream(fromClient: false))
            XCTAssertEqual(p.impairments, [])
        }
        XCTAssertGreaterThan(impaired.records.filter { !$0.impairments.isEmpty }.count, 100)
        XCTAssertGreaterThan(impaired.summary.packets, plain.summary.packets)
    }

    func testPacketsAreInTimeOrderAndRecordsInSessionOrder() {
        let run = Self.generate(Self.options(sessions: 500, seed: 11, impairments: .mix))
        XCTAssertEqual(run.records.map(\.id), Array(0 ..< 500))
        XCTAssertTrue(zip(run.frames, run.frames.dropFirst()).allSatisfy { !($1.0 < $0.0) }, "timestamps go backwards")
        XCTAssertEqual(run.records.reduce(0) { $0 + $1.packets }, run.frames.count)
        XCTAssertEqual(run.summary.packets, run.frames.count)
        for record in run.records { XCTAssertFalse(record.lastPacket < record.firstPacket) }
    }

    /// What is held in memory depends on the sessions open at once (rate ×
    /// duration), not on the capture length.
    func testPendingPacketsStayBoundedAsTheCaptureGrows() {
        var options = Self.options(sessions: 1500, seed: 5, impairments: .mix)
        options.sessionsPerSecond = 2000
        var small = 0
        let smallSummary = TrafficGenerator(options: options).generate { _, _ in small += 1 }
        options.sessions = 6000
        var large = 0
        let largeSummary = TrafficGenerator(options: options).generate { _, _ in large += 1 }
        XCTAssertGreaterThan(large, 3 * small)
        XCTAssertLessThan(largeSummary.peakPendingPackets, smallSummary.peakPendingPackets * 3 / 2 + 500)
        XCTAssertLessThan(largeSummary.peakPendingPackets, large / 5)
    }
}
