import Sharding
import SFTapCodec
import Abstraction
import FlowCore
import Capture
import Engine
import Foundation
import PacketCore
import SFTapConfig
import TestSupport
import TrafficGen
import Wire
import Flows
import XCTest

/// The sharded pipeline gives every flow exactly the events one engine gives it: the same
/// CREATED / DATA / DESTROYED sequence with the same bytes, whatever the number of shards.
/// Only the interleaving of different flows in a file may differ.
final class ShardedRunnerTests: XCTestCase {
    private var directories: [String] = []

    override func tearDown() {
        for d in directories { try? FileManager.default.removeItem(atPath: d) }
    }

    private func temporaryDirectory() -> String {
        let d = NSTemporaryDirectory() + "flowtap-shards-\(UUID().uuidString)"
        directories.append(d)
        return d
    }

    private func settings() throws -> SFTapSettings {
        var root = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { root.deleteLastPathComponent() }
        return try SFTapSettings.load(path: root.appendingPathComponent("examples/flowtap.yaml").path, currentDirectory: "/tmp")
    }

    /// A capture with every impairment: reordering, retransmission, overlaps, IPv4/IPv6 fragments, VLANs, mid-stream starts.
    private func capture() throws -> String {
        let path = temporaryDirectory() + ".pcap"
        directories.append(path)
        try ImpairedCapture.write(to: path, sessions: 1200, seed: 77)
        return path
    }

    /// Every event of every file under `directory`, grouped per flow (file + flow identity), in order.
    private func eventsPerFlow(_ directory: String) throws -> [String: [String]] {
        var flows: [String: [String]] = [:]
        let files = try XCTUnwrap(FileManager.default.subpathsOfDirectory(atPath: directory)).filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: directory + "/" + $0, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
        XCTAssertFalse(files.isEmpty)
        for file in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + file))
            var reader = SFTapEventReader()
            var errors = 0
            data.withUnsafeBytes { bytes in
                reader.feed(bytes, event: { e, body in
                    let flow = "\(file) \(e.address1) \(e.address2) \(e.port1) \(e.port2) \(e.vlan) \(e.hop) \(e.transport)"
                    let event = "\(e.kind) \(String(describing: e.fromFirst)) \(e.match) \(e.reason) \(e.length) \(e.time.nanoseconds) \(Array(body).hashValue)"
                    flows[flow, default: []].append(event)
                }, error: { _ in errors += 1 })
            }
            reader.finish { _ in errors += 1 }
            XCTAssertEqual(errors, 0, "\(file) is not a clean event stream")
        }
        return flows
    }

    private func abstract(_ path: String, shards: Int) throws -> (String, FlowEngineCounters, [FlowEngineCounters]) {
        let directory = temporaryDirectory()
        let files = OutputFileSet(directory: directory)
        let outputs = (0 ..< shards).map { _ in FileEventOutputs(sharing: files) }
        let settings = try settings()
        let abstractors = try outputs.map { try Abstractor(settings: settings, outputs: $0) }
        var total = FlowEngineCounters()
        var perShard: [FlowEngineCounters] = []
        if shards == 1 {
            total = try Pipeline.run(files: [path], sink: abstractors[0]).counters
            perShard = [total]
        } else {
            let runner = Pipeline(sinks: abstractors)
            try runner.run(files: [path])
            for engine in runner.engines {
                total.add(engine.counters)
                perShard.append(engine.counters)
            }
        }
        for o in outputs { try o.close() }
        files.closeAll()
        return (directory, total, perShard)
    }

    func testEveryFlowGetsTheSameEventsWithThreeShards() throws {
        let path = try capture()
        let (one, single, _) = try abstract(path, shards: 1)
        let (three, sharded, shards) = try abstract(path, shards: 3)
        XCTAssertEqual(sharded.packets, single.packets)
        XCTAssertEqual(sharded.flowsCreated, single.flowsCreated)
        XCTAssertEqual(sharded.reassembledDatagrams, single.reassembledDatagrams, "every fragment met its datagram's other fragments")
        XCTAssertGreaterThan(single.reassembledDatagrams, 0)
        for (i, s) in shards.enumerated() {
            XCTAssertGreaterThan(s.packets, single.packets / 6, "shard \(i) got \(s.packets) of \(single.packets) packets")
        }
        let expected = try eventsPerFlow(one), got = try eventsPerFlow(three)
        XCTAssertGreaterThan(expected.count, 1000)
        XCTAssertEqual(Set(got.keys), Set(expected.keys))
        var differing = 0
        for (flow, events) in expected where got[flow] != events {
            differing += 1
            if differing <= 3 { print("differs: \(flow)\n  1 shard:  \(events.suffix(3))\n  3 shards: \((got[flow] ?? []).suffix(3))") }
        }
        XCTAssertEqual(differing, 0, "flows whose events differ between 1 and 3 shards")
    }

    func testAMissingFileStopsTheWorkersAndReportsTheFile() throws {
        let path = try capture()
        let settings = try settings()
        let outputs = FileEventOutputs(directory: temporaryDirectory())
        let runner = Pipeline(sinks: [try Abstractor(settings: settings, outputs: outputs), try Abstractor(settings: settings, outputs: outputs)])
        XCTAssertThrowsError(try runner.run(files: [path, "/nonexistent/capture.pcap"])) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/capture.pcap"), "\(error)")
        }
        // The first file was processed in full before the error, and every flow was ended.
        XCTAssertGreaterThan(runner.engines.map(\.counters.packets).reduce(0, +), 0)
        XCTAssertEqual(runner.engines.map(\.table.count).reduce(0, +), 0)
    }
}

/// The reader's quick shard (addresses read straight off the frame) agrees with the shard of the
/// fully decoded packet on every corpus packet it answers for, tunnels and fragments included.
final class ShardHashTests: XCTestCase {
    func testQuickShardAgreesWithTheDecoderOnTheCorpus() throws {
        let root = try Corpus.require(".")
        let names = ((FileManager.default.enumerator(atPath: root.path)?.allObjects as? [String]) ?? [])
            .filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
        var decoder = PacketDecoder()
        decoder.decapsulateTunnels = true
        var packet = DecodedPacket()
        var answered = 0, checked = 0
        for name in names {
            guard let reader = try? CaptureFileReader(path: root.appendingPathComponent(name).path) else { continue }
            while let record = try? reader.next() {
                decoder.decode(record.bytes, originalLength: record.originalLength, linkType: record.linkType, into: &packet)
                guard packet.isIP else { continue }
                checked += 1
                for shards in [2, 3, 7] {
                    for vlanInKey in [true, false] {
                        guard let quick = ShardHash.quickShard(record.bytes, linkType: record.linkType, vlanInKey: vlanInKey, shards: shards) else { continue }
                        answered += 1
                        XCTAssertEqual(quick, ShardHash.shard(of: packet, vlanInKey: vlanInKey, shards: shards), "\(name)")
                    }
                }
            }
        }
        // Pinned at what this corpus gives: every IP packet checked, and the quick path answering 89% of
        // the 6 questions asked of each (the rest: tunnels, MPLS, PPPoE, other link types, short frames).
        XCTAssertEqual(checked, 49_786)
        XCTAssertGreaterThanOrEqual(answered, 267_108)
        print("quick shard agreed with the decoder on \(answered) answers over \(checked) IP packets")
    }

    func testBothDirectionsShareAShardAndShardsAreEven() {
        var random = SeededRandom(seed: 5)
        var counts = [Int](repeating: 0, count: 3)
        for _ in 0 ..< 30_000 {
            let a = IPAddress(ipv4: UInt32.random(in: 0x0A00_0000 ... 0x0A00_FFFF, using: &random))
            let b = IPAddress(ipv4: UInt32.random(in: 0xC633_6400 ... 0xC633_64FF, using: &random))
            let s = ShardHash.shard(a, b, vlan: FlowKey.noVLAN, shards: 3)
            XCTAssertEqual(s, ShardHash.shard(b, a, vlan: FlowKey.noVLAN, shards: 3))
            counts[s] += 1
        }
        // Shard 0 (on the reading thread) takes 85% of an even share, the others split the rest evenly.
        XCTAssertEqual(Double(counts[0]) / 30_000, 0.85 / 3, accuracy: 0.02, "\(counts)")
        XCTAssertEqual(Double(counts[1]) / 30_000, (1 - 0.85 / 3) / 2, accuracy: 0.02, "\(counts)")
        XCTAssertEqual(Double(counts[2]) / 30_000, (1 - 0.85 / 3) / 2, accuracy: 0.02, "\(counts)")
    }

    /// The split's multiply-and-shift against the division it stands for, done in 128 bits per hash: the
    /// hashes on and either side of every shard boundary and a stride over the whole range, for every
    /// shard count up to 64 and a few far beyond.
    func testSplitAgreesWithExactSharesAtEveryBoundary() {
        for n in Array(1 ... 64) + [100, 1000, 65_536] {
            let split = ShardHash.Split(shards: n)
            let range = UInt64(1) << 32
            let first = n > 1 ? max(1, range * 85 / (100 * UInt64(n))) : range
            // The exact shard of h: 0 below `first`, else 1 + floor((h - first)(n - 1) / (range - first)).
            func exact(_ h: UInt64) -> Int {
                guard h >= first else { return 0 }
                let (high, low) = (h - first).multipliedFullWidth(by: UInt64(n - 1))
                return 1 + Int((range - first).dividingFullWidth((high, low)).quotient)
            }
            var hashes: [UInt64] = [0, range - 1]
            if n > 1 {
                for k in 0 ..< min(n, 70) {
                    // The lowest hash of shard 1 + k by the exact formula, and its neighbours.
                    let start = first + ((range - first) * UInt64(k) + UInt64(n - 2)) / UInt64(n - 1)
                    hashes += [start &- 1, start, start + 1].filter { $0 < range }
                }
            }
            hashes += stride(from: UInt64(0), to: range, by: 1_000_003)
            var disagreements = 0
            for h in hashes {
                let s = split.pick(h)
                XCTAssert((0 ..< n).contains(s), "n \(n): hash \(h) went to shard \(s)")
                if s != exact(h) { disagreements += 1 }
            }
            XCTAssertEqual(disagreements, 0, "n \(n): \(disagreements) of \(hashes.count) hashes off their exact shard")
        }
    }
}
