import Capture
import Foundation
import PacketCore
import TrafficGen
import XCTest

/// Impaired captures, read back through `CaptureFileReader` and `PacketDecoder`
/// and rebuilt by the naive `ReferenceModel`.
final class ImpairmentTests: XCTestCase {
    /// High rates so a couple of thousand sessions see every impairment many times.
    static let heavy = TrafficGenerator.Impairments(reorder: 0.2, retransmit: 0.1, overlap: 0.1, fragment: 0.1,
                                                     midstream: 0.15, noFIN: 0.1, rst: 0.1, sequenceWrap: 0.2)

    struct Run {
        var path: String
        var records: [TrafficGenerator.SessionRecord]
        var summary: TrafficGenerator.Summary
        var model: ReferenceModel
    }

    /// Generated once and shared: the capture file is removed at process exit.
    nonisolated(unsafe) static var cached: Run?

    static func run() throws -> Run {
        if let cached { return cached }
        var options = TrafficGenerator.Options()
        options.sessions = 2000
        options.seed = 42
        options.ipv6Fraction = 0.3
        options.vlanFraction = 0.2
        options.impairments = heavy
        let path = Temporary.path(".pcap")
        var records: [TrafficGenerator.SessionRecord] = []
        let writer = try PcapWriter(path: path, linkType: .ethernet)
        let summary = try TrafficGenerator(options: options).generate({ try writer.write(timestamp: $0, bytes: $1) },
                                                                      sessions: { records.append($0) })
        try writer.flush()
        let run = Run(path: path, records: records, summary: summary, model: try ReferenceModel(path: path, records: records))
        atexit { if let path = ImpairmentTests.cached?.path { unlink(path) } }
        cached = run
        return run
    }

    func testImpairedCaptureDecodesWithoutAnomalies() throws {
        let run = try Self.run()
        XCTAssertEqual(run.model.packets, run.summary.packets)
        XCTAssertEqual(run.model.anomalies, [:], "decoder anomalies with checksums verified")
        XCTAssertEqual(run.model.badTransportChecksums, 0, "transport checksums over reassembled datagrams")
        XCTAssertEqual(run.model.unmatched, 0, "datagrams that belong to no session, or carry the wrong VLAN")
    }

    /// The reference reassembler, which knows nothing of how the capture was
    /// made, rebuilds exactly the streams and datagrams the manifest expects.
    func testReferenceReassemblyGivesTheExpectedStreams() throws {
        let run = try Self.run()
        var tcpSessions = 0
        for record in run.records {
            switch record.transport {
            case .tcp:
                tcpSessions += 1
                guard let connection = run.model.tcp[record.id] else {
                    XCTFail("session \(record.id): no packets")
                    continue
                }
                for (side, direction) in [(true, connection.client), (false, connection.server)] {
                    let (stream, complete) = direction.stream
                    XCTAssertTrue(complete, "session \(record.id) \(side ? "client" : "server"): hole in the stream")
                    XCTAssertEqual(direction.conflicts, 0, "session \(record.id): overlapping bytes differ")
                    XCTAssertEqual(stream, record.stream(fromClient: side),
                                   "session \(record.id) \(side ? "client" : "server") \(record.impairments.map(\.rawValue))")
                }
            case .udp, .icmp:
                let lists = run.model.datagrams[record.id]
                XCTAssertEqual(lists?.client ?? [], record.datagrams(fromClient: true), "session \(record.id)")
                XCTAssertEqual(lists?.server ?? [], record.datagrams(fromClient: false), "session \(record.id)")
            }
        }
        XCTAssertGreaterThan(tcpSessions, 500)
    }

    /// Every impairment the generator reports is one a decoder can see, and no more.
    func testObservedImpairmentsEqualTheGeneratorsCounts() throws {
        let run = try Self.run()
        let seen = run.model.counts, made = run.summary.impairments
        XCTAssertEqual(seen.dataSegments, made.dataSegments, "original data segments")
        XCTAssertEqual(seen.lateSegments, made.lateSegments, "reordered")
        XCTAssertEqual(seen.duplicateSegments, made.duplicateSegments, "retransmitted")
        XCTAssertEqual(seen.overlappingSegments, made.overlappingSegments, "overlapping re-cuts")
        XCTAssertEqual(seen.fragmentCandidates, made.fragmentCandidates, "fragmentable")
        XCTAssertEqual(seen.fragmentedDatagrams, made.fragmentedDatagrams, "fragmented")
        XCTAssertEqual(seen.fragments, made.fragments, "fragments")
        XCTAssertEqual(seen.shuffledDatagrams, made.shuffledDatagrams, "fragments out of order")
    }

    /// Requested chances turn into roughly those rates (binomial, four standard deviations).
    func testImpairmentRatesAreNearTheRequestedOnes() throws {
        let run = try Self.run()
        let c = run.summary.impairments
        func near(_ count: Int, of trials: Int, _ p: Double, _ name: String, low: Double = 1) {
            XCTAssertGreaterThan(trials, 200, name)
            let rate = Double(count) / Double(trials)
            let sigma = (p * (1 - p) / Double(trials)).squareRoot()
            XCTAssertTrue(rate <= p + 4 * sigma && rate >= p * low - 4 * sigma,
                          "\(name): \(count) of \(trials) = \(rate), asked for \(p)")
        }
        let h = Self.heavy
        // A delay can be undone by a later one, so reordering shows slightly under its chance.
        near(c.lateSegments, of: c.reorderCandidates, h.reorder, "reorder", low: 0.8)
        near(c.duplicateSegments, of: c.dataSegments, h.retransmit, "retransmit")
        near(c.overlappingSegments, of: c.overlapCandidates, h.overlap, "overlap")
        near(c.fragmentedDatagrams, of: c.fragmentCandidates, h.fragment, "fragment")
        near(c.shuffledDatagrams, of: c.fragmentedDatagrams, 0.5, "fragments shuffled")
        near(c.midstreamSessions, of: c.tcpSessions, h.midstream, "midstream")
        near(c.rstSessions, of: c.tcpSessions, h.rst, "rst")
        near(c.noFINSessions, of: c.tcpSessions, h.noFIN, "no FIN")
        near(c.wrappedSessions, of: c.tcpSessions, h.sequenceWrap, "sequence wrap")
        XCTAssertGreaterThanOrEqual(c.fragments, 2 * c.fragmentedDatagrams)
        XCTAssertLessThanOrEqual(c.fragments, 4 * c.fragmentedDatagrams)
    }

    /// Handshake, ending and sequence-wrap impairments are what the manifest says.
    func testSessionLevelImpairmentsMatchTheRecords() throws {
        let run = try Self.run()
        var fragmentedIPv6 = 0
        for record in run.records where record.transport == .tcp {
            guard let connection = run.model.tcp[record.id] else { continue }
            let has = Set(record.impairments)
            let name = "session \(record.id) \(record.impairments.map(\.rawValue))"
            XCTAssertEqual(connection.client.sawSYN, has.isDisjoint(with: [.noSYN, .noSYNACK, .noHandshake]), name)
            XCTAssertEqual(connection.server.sawSYN, has.isDisjoint(with: [.noSYNACK, .noHandshake]), name)
            XCTAssertEqual(connection.client.sawRST || connection.server.sawRST, has.contains(.rst), name)
            XCTAssertEqual(connection.client.sawFIN, !has.contains(.rst) && !has.contains(.noFIN), name)
            XCTAssertEqual(connection.server.sawFIN, !has.contains(.rst) && !has.contains(.noFIN), name)
            if has.contains(.sequenceWrap) {
                // The ISN (base − 1) plus the SYN and the data passes 2^32.
                let wraps = [(connection.client, true), (connection.server, false)].contains { direction, side in
                    guard let base = direction.base, !record.stream(fromClient: side).isEmpty else { return false }
                    return UInt64(base &- 1) + 1 + UInt64(record.stream(fromClient: side).count) >= 1 << 32
                }
                XCTAssertTrue(wraps, name)
            }
            if has.contains(.fragment) && record.session.client.isIPv6 { fragmentedIPv6 += 1 }
        }
        XCTAssertGreaterThan(fragmentedIPv6, 5, "IPv6 fragment headers exercised")
    }
}
