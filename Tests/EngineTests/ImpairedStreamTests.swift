import CaptureTools
import FlowCore
import Capture
import Engine
import Flows
import Foundation
import PacketCore
import TrafficGen
import XCTest

/// Generated traffic with every impairment mixed in, through the whole flow
/// engine: each session's streams must come out byte-identical to what its
/// sender wrote (the generator's manifest).
final class ImpairedStreamTests: XCTestCase {
    struct Tally {
        var sessions = 0, identical = 0
        var failures: [String] = []
    }

    func check(options: TrafficGenerator.Options, config: FlowEngineConfig = FlowEngineConfig(), file: StaticString = #filePath, line: UInt = #line) -> (Tally, FlowEngine<StreamCollector>) {
        var finished: [FlowKey: [StreamCollector.Flow]] = [:]
        let engine = FlowEngine(config: config, sink: StreamCollector { finished[$0.view.key, default: []].append($0) })
        var records: [TrafficGenerator.SessionRecord] = []
        _ = TrafficGenerator(options: options).generate({ time, frame in
            frame.withUnsafeBytes { raw in
                engine.process(PacketRecord(timestamp: time, originalLength: raw.count, linkType: .ethernet, interfaceID: 0, bytes: raw))
            }
        }, sessions: { records.append($0) })
        engine.finish()
        var tally = Tally()
        for record in records {
            let s = record.session
            let proto: UInt8 = switch record.transport {
            case .tcp: 6
            case .udp: 17
            case .icmp: s.client.isIPv6 ? 58 : 1
            }
            let ports: (UInt16, UInt16) = record.transport == .icmp ? (0, 0) : (s.clientPort, s.serverPort)
            let (key, clientFirst) = FlowKey.make(source: s.client, sourcePort: ports.0, destination: s.server, destinationPort: ports.1,
                                                  ipProtocol: proto, vlan: s.vlan ?? FlowKey.noVLAN)
            tally.sessions += 1
            guard let flows = finished[key], flows.count == 1, let flow = flows.first else {
                tally.failures.append("session \(s.id) \(s.kind) \(record.impairments): \(finished[key]?.count ?? 0) flows")
                continue
            }
            var fromClient = flow.streams[clientFirst ? 0 : 1], fromServer = flow.streams[clientFirst ? 1 : 0]
            if record.transport == .icmp {
                // FlowTap delivers whole ICMP messages; the manifest lists the echo payloads after the 8-byte header.
                func payloads(_ bytes: [UInt8], _ lengths: [Int]) -> [UInt8] {
                    var out: [UInt8] = [], offset = 0
                    for length in lengths { out += bytes[min(offset + 8, offset + length) ..< offset + length]; offset += length }
                    return out
                }
                fromClient = payloads(fromClient, flow.datagrams[clientFirst ? 0 : 1])
                fromServer = payloads(fromServer, flow.datagrams[clientFirst ? 1 : 0])
            }
            var ok = fromClient == record.stream(fromClient: true) && fromServer == record.stream(fromClient: false)
            if record.transport != .tcp {
                ok = ok && flow.datagrams[clientFirst ? 0 : 1].count == record.datagrams(fromClient: true).count
                    && flow.datagrams[clientFirst ? 1 : 0].count == record.datagrams(fromClient: false).count
            }
            if ok && flow.gapBytes == [0, 0] {
                tally.identical += 1
            } else {
                tally.failures.append("session \(s.id) \(s.kind) \(record.impairments): client \(fromClient.count)/\(record.stream(fromClient: true).count) server \(fromServer.count)/\(record.stream(fromClient: false).count) gaps \(flow.gapBytes) reason \(flow.reason.name)")
            }
        }
        return (tally, engine)
    }

    func testEveryImpairedStreamIsByteIdentical() {
        var options = TrafficGenerator.Options()
        options.sessions = 3000
        options.seed = 7
        options.sessionsPerSecond = 500
        options.ipv6Fraction = 0.3
        options.vlanFraction = 0.2
        options.impairments = .mix
        let (tally, engine) = check(options: options)
        let t = engine.tcp.counters, c = engine.counters
        print("impaired streams: \(tally.identical)/\(tally.sessions) sessions byte-identical; fragments \(c.fragments) → datagrams \(c.reassembledDatagrams), retransmitted \(t.retransmittedBytes) B, out-of-order segments \(t.outOfOrderSegments), mid-stream pickups \(t.midstreamPickups), resets \(c.destroyed[1]), gaps \(t.gaps)")
        for f in tally.failures.prefix(20) { print("  " + f) }
        XCTAssertEqual(tally.identical, tally.sessions)
        XCTAssertGreaterThan(c.reassembledDatagrams, 0)
        XCTAssertGreaterThan(t.outOfOrderSegments, 0)
        XCTAssertGreaterThan(t.midstreamPickups, 0)
        XCTAssertGreaterThan(c.destroyed[1], 0)
    }

    /// Captures that start mid-stream inside a reordered burst: the first data segment seen is not the
    /// first sent. The held stream start still delivers every byte; without it the start is lost.
    func testReorderedMidstreamStartsAreWhole() {
        var options = TrafficGenerator.Options()
        options.sessions = 2000
        options.seed = 23
        options.impairments = .init(reorder: 0.3, midstream: 0.3)
        options.impairments.reorderMidstreamStart = true
        let (tally, engine) = check(options: options)
        print("reordered mid-stream starts: \(tally.identical)/\(tally.sessions) sessions byte-identical, starts moved back \(engine.tcp.counters.midstreamStartsMovedBack), pickups \(engine.tcp.counters.midstreamPickups)")
        for f in tally.failures.prefix(10) { print("  " + f) }
        XCTAssertEqual(tally.identical, tally.sessions)
        XCTAssertGreaterThan(engine.tcp.counters.midstreamStartsMovedBack, 0)
        var noHold = FlowEngineConfig()
        noHold.tcp.midstreamHoldNanoseconds = 0
        let (before, _) = check(options: options, config: noHold)
        print("without the hold: \(before.identical)/\(before.sessions)")
        XCTAssertEqual(before.identical, 1985)
    }

    /// Impairments one at a time, so a failure names its cause.
    func testEachImpairmentAlone() {
        let single: [(String, TrafficGenerator.Impairments)] = [
            ("reorder", .init(reorder: 0.5)), ("retransmit", .init(retransmit: 0.3)), ("overlap", .init(overlap: 0.3)),
            ("fragment", .init(fragment: 0.3)), ("midstream", .init(midstream: 0.5)), ("no FIN", .init(noFIN: 0.5)),
            ("rst", .init(rst: 0.5)), ("sequence wrap", .init(sequenceWrap: 1)),
        ]
        for (name, impairments) in single {
            var options = TrafficGenerator.Options()
            options.sessions = 400
            options.seed = 11
            options.impairments = impairments
            let (tally, _) = check(options: options)
            XCTAssertEqual(tally.identical, tally.sessions, "\(name): \(tally.failures.prefix(3))")
        }
    }
}
