import Capture
import CaptureTools
import Engine
import Filters
import FlowCore
import Flows
import Outputs
import Foundation
import PacketCore
import TestSupport
import TrafficGen
import Wire
import XCTest

/// The one pipeline every flow command runs, driven with a sink that only records what it is given:
/// the same events per flow whatever the shard count, the filter before any shard, and the packet
/// count.
final class PipelineTests: XCTestCase {
    /// Records every event as text, per flow (keyed by the flow's identity, not its per-shard id).
    final class RecordingSink: FlowEventSink {
        var events: [String: [String]] = [:]
        var created = 0, destroyed = 0

        static func name(_ key: FlowKey) -> String {
            "\(key.address1) \(key.port1) \(key.address2) \(key.port2) \(key.ipProtocol) \(key.vlan) \(key.hop)"
        }

        func flowCreated(_ flow: FlowView, time: Timestamp) {
            created += 1
            events[Self.name(flow.key), default: []].append("C \(time.nanoseconds)")
        }

        func flowData(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
            events[Self.name(flow.key), default: []].append("D \(fromFirst) \(bytes.count) \(Array(bytes).hashValue) \(time.nanoseconds)")
        }

        func flowGap(_ flow: FlowView, fromFirst: Bool, length: Int, time: Timestamp) {
            events[Self.name(flow.key), default: []].append("G \(fromFirst) \(length)")
        }

        func flowDestroyed(_ flow: FlowView, reason: DestroyReason, time: Timestamp) {
            destroyed += 1
            events[Self.name(flow.key), default: []].append("X \(reason.name) \(time.nanoseconds)")
        }
    }

    nonisolated(unsafe) static var capturePath: String?

    /// 600 impaired sessions (IPv4/IPv6, VLANs, fragments, reordering), written once.
    func capture() throws -> String {
        if let path = Self.capturePath { return path }
        let path = NSTemporaryDirectory() + "flowtap-pipeline-\(getpid()).pcap"
        try ImpairedCapture.write(to: path, sessions: 600, seed: 2026)
        Self.capturePath = path
        return path
    }

    func run(shards: Int, filter: String? = nil, limit: UInt64? = nil) throws -> (Pipeline<RecordingSink>, [String: [String]]) {
        let pipeline = Pipeline(sinks: (0 ..< shards).map { _ in RecordingSink() })
        if let filter { pipeline.filter = try BPFFilter(expression: filter, linkType: .ethernet) }
        pipeline.packetLimit = limit
        try pipeline.run(files: [try capture()])
        var merged: [String: [String]] = [:]
        for engine in pipeline.engines {
            for (flow, events) in engine.sink.events {
                XCTAssertNil(merged[flow], "flow \(flow) reached two shards")
                merged[flow] = events
            }
        }
        return (pipeline, merged)
    }

    func testEveryFlowGetsTheSameEventsOnOneAndOnThreeShards() throws {
        let (one, single) = try run(shards: 1)
        let (three, sharded) = try run(shards: 3)
        XCTAssertEqual(single.count, 600)
        XCTAssertEqual(Set(single.keys), Set(sharded.keys))
        for (flow, events) in single { XCTAssertEqual(sharded[flow], events, flow) }
        XCTAssertEqual(one.counters.packets, three.counters.packets)
        XCTAssertEqual(one.packetsRead, three.packetsRead)
        // Every shard worked, and every flow created was destroyed once.
        for engine in three.engines { XCTAssertGreaterThan(engine.counters.packets, 0) }
        XCTAssertEqual(three.engines.map(\.sink.created).reduce(0, +), three.engines.map(\.sink.destroyed).reduce(0, +))
    }

    /// The filter runs before any shard: the flows it keeps get exactly the events they get unfiltered,
    /// the others get none, and what it rejected is counted. ("ip" keeps untagged IPv4, fragments included.)
    func testTheFilterKeepsWholeFlowsAndCountsTheRest() throws {
        let (all, unfiltered) = try run(shards: 1)
        let untaggedIPv4 = Set(unfiltered.keys.filter { !$0.contains(":") && $0.split(separator: " ")[5] == "\(FlowKey.noVLAN)" })
        XCTAssertFalse(untaggedIPv4.isEmpty)
        XCTAssertLessThan(untaggedIPv4.count, unfiltered.count)
        for shards in [1, 2] {
            let (pipeline, kept) = try run(shards: shards, filter: "ip")
            XCTAssertEqual(Set(kept.keys), untaggedIPv4, "\(shards) shards")
            for (flow, events) in kept { XCTAssertEqual(events, unfiltered[flow], flow) }
            XCTAssertEqual(pipeline.packetsRead, all.packetsRead)
            XCTAssertGreaterThan(pipeline.packetsFilteredOut, 0)
            XCTAssertEqual(pipeline.packetsRead - pipeline.packetsFilteredOut, pipeline.counters.packets)
        }
    }

    func testThePacketCountStopsTheInputAndEndsEveryFlow() throws {
        for shards in [1, 3] {
            let (pipeline, _) = try run(shards: shards, limit: 1000)
            XCTAssertEqual(pipeline.counters.packets, 1000, "\(shards) shards")
            let created = pipeline.engines.map(\.sink.created).reduce(0, +)
            XCTAssertGreaterThan(created, 0)
            XCTAssertEqual(created, pipeline.engines.map(\.sink.destroyed).reduce(0, +))
        }
    }
}

/// A limit that is hit is said in the summary, not only counted.
final class AnalyzeLimitTests: XCTestCase {
    func testFlowsOverTheAnalyzersLimitAreSaidInTheSummary() throws {
        var root = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { root.deleteLastPathComponent() }
        let sample = root.appendingPathComponent("samples/sample.pcap").path
        let path = NSTemporaryDirectory() + "flowtap-limit-\(getpid()).jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        var session = AnalyzeSession(settings: nil, engineConfig: FlowEngineConfig())
        session.analyzerFlows = 2
        let writer = try RecordWriter(path: path)
        let summary = try session.run(files: [sample], output: writer)
        try writer.finish()
        let records = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        let tls = records.filter { $0.contains("\"type\":\"tls\"") }.count
        // The sample holds 5 TLS flows, at most 3 open at once: with room for 2, one is not analyzed, and
        // every flow is either a record or counted in the summary.
        XCTAssertEqual(tls, 4)
        XCTAssertTrue(summary.contains("TLS flows over the analyzer's 2-flow limit, not analyzed: 1"), summary)
        XCTAssertTrue(summary.contains("TLS flows 5"), summary)
        XCTAssertFalse(try AnalyzeSession(settings: nil, engineConfig: FlowEngineConfig())
            .run(files: [sample], output: try RecordWriter(path: "/dev/null")).contains("limit"))
    }
}

/// Segmentation offload: a sender's capture holds TCP segments larger than the MTU with IPv4 total
/// length 0. Their bytes belong in the stream (tshark follows them whole), not holes.
final class SegmentationOffloadTests: XCTestCase {
    func testSegmentsWithTotalLengthZeroFillTheStream() throws {
        let client = IPAddress("10.1.0.1")!, server = IPAddress("10.1.0.2")!
        let path = NSTemporaryDirectory() + "flowtap-tso-\(getpid()).pcap"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path, linkType: .ethernet)
        var t: Int64 = 1_700_000_000_000_000_000
        func send(_ from: IPAddress, _ to: IPAddress, _ sport: UInt16, _ dport: UInt16, seq: UInt32, ack: UInt32, flags: TCPFlags,
                  payload: [UInt8] = [], tso: Bool = false) throws {
            var frame = PacketBuilder.frame(network: .ipv4(.init(source: from, destination: to)),
                                            transport: .tcp(.init(sourcePort: sport, destinationPort: dport, sequence: seq, acknowledgement: ack, flags: flags)),
                                            payload: payload)
            if tso {
                frame[14 + IPv4Header.totalLength] = 0
                frame[14 + IPv4Header.totalLength + 1] = 0
            }
            t += 1_000_000
            try writer.write(timestamp: Timestamp(nanoseconds: t), bytes: frame)
        }
        let data = (0 ..< 20_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try send(client, server, 40000, 80, seq: 100, ack: 0, flags: [.syn])
        try send(server, client, 80, 40000, seq: 500, ack: 101, flags: [.syn, .ack])
        try send(client, server, 40000, 80, seq: 101, ack: 501, flags: [.ack])
        var seq: UInt32 = 101
        for start in stride(from: 0, to: data.count, by: 8000) {
            let chunk = Array(data[start ..< min(data.count, start + 8000)])
            try send(client, server, 40000, 80, seq: seq, ack: 501, flags: [.ack, .psh], payload: chunk, tso: true)
            seq += UInt32(chunk.count)
        }
        try send(client, server, 40000, 80, seq: seq, ack: 501, flags: [.fin, .ack])
        try send(server, client, 80, 40000, seq: 501, ack: seq + 1, flags: [.fin, .ack])
        try send(client, server, 40000, 80, seq: seq + 1, ack: 502, flags: [.ack])
        try writer.flush()

        var flows: [StreamCollector.Flow] = []
        let engine = try Pipeline.run(files: [path], sink: StreamCollector { flows.append($0) })
        XCTAssertEqual(flows.count, 1)
        let flow = try XCTUnwrap(flows.first)
        // 10.1.0.1 is the lower address: endpoint 1 is the client.
        XCTAssertEqual(flow.streams[0], data)
        XCTAssertEqual(flow.gapBytes, [0, 0])
        XCTAssertEqual(flow.reason, .normal)
        XCTAssertEqual(engine.tcp.counters.gaps, 0)
    }
}

/// `streams` keeps datagram lengths for a bounded number of datagrams per direction, and counts all.
final class StreamCollectorBoundTests: XCTestCase {
    func testDatagramListIsBoundedAndEveryDatagramCounted() throws {
        var finished: [StreamCollector.Flow] = []
        let engine = FlowEngine(config: FlowEngineConfig(), sink: StreamCollector { finished.append($0) })
        let frame = PacketBuilder.frame(network: .ipv4(.init(source: IPAddress("10.3.0.1")!, destination: IPAddress("10.3.0.2")!)),
                                        transport: .udp(sourcePort: 5000, destinationPort: 6000), payload: [0x41])
        let count = StreamCollector.maxListedDatagrams + 4_464
        frame.withUnsafeBytes { bytes in
            for i in 0 ..< count {
                engine.process(PacketRecord(timestamp: Timestamp(nanoseconds: 1_700_000_000_000_000_000 + Int64(i) * 1000), originalLength: bytes.count,
                                            linkType: .ethernet, interfaceID: 0, bytes: bytes))
            }
        }
        engine.finish()
        let flow = try XCTUnwrap(finished.first)
        XCTAssertEqual(flow.datagramCount, [count, 0])
        XCTAssertEqual(flow.datagrams[0].count, StreamCollector.maxListedDatagrams)
        XCTAssertEqual(flow.streams[0].count, count)
        XCTAssertTrue(flow.summaryLine.contains("\"datagrams1\":\(count),\"datagrams2\":0"), flow.summaryLine)
    }
}
