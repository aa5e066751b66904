import Capture
import Engine
import Filters
import FlowCore
import Flows
import Foundation
import PacketCore
import TestSupport
import TrafficGen
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
        var options = TrafficGenerator.Options()
        options.sessions = 600
        options.seed = 2026
        options.ipv6Fraction = 0.3
        options.vlanFraction = 0.2
        options.impairments = .mix
        let path = NSTemporaryDirectory() + "flowtap-pipeline-\(getpid()).pcap"
        let writer = try PcapWriter(path: path, linkType: .ethernet)
        _ = try TrafficGenerator(options: options).generate { try writer.write(timestamp: $0, bytes: $1) }
        try writer.flush()
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
