import CaptureTools
import FlowCore
import Capture
import Engine
import Foundation
import PacketCore
import TestSupport
import TrafficGen
import XCTest

/// Bad input never crashes the flow engine: every corpus capture, and generated traffic with random
/// byte corruption and truncation, run through the whole pipeline (decode, defragment, reassemble).
final class EngineRobustnessTests: XCTestCase {
    func testEveryCorpusCaptureRunsThroughTheEngine() throws {
        let root = try Corpus.require(".")
        let names = ((FileManager.default.enumerator(atPath: root.path)?.allObjects as? [String]) ?? [])
            .filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
        var packets: UInt64 = 0, flows: UInt64 = 0
        for name in names {
            var collected = 0
            guard let engine = try? Pipeline.run(files: [root.appendingPathComponent(name).path], sink: StreamCollector { _ in collected += 1 }) else { continue }
            packets += engine.counters.packets
            flows += engine.counters.flowsCreated
            XCTAssertEqual(UInt64(collected), engine.counters.flowsCreated, name)
        }
        print("engine robustness: \(names.count) corpus captures, \(packets) packets, \(flows) flows, each created flow destroyed once")
        XCTAssertGreaterThan(packets, 50_000)
    }

    /// Seeded so a failure reproduces; `FLOWTAP_FUZZ_SEEDS=N` runs more seeds.
    func testCorruptedAndTruncatedPacketsNeverTrap() {
        let seeds = Int(ProcessInfo.processInfo.environment["FLOWTAP_FUZZ_SEEDS"] ?? "") ?? 3
        for seed in 0 ..< UInt64(seeds) { corrupt(seed: seed) }
    }

    func corrupt(seed: UInt64) {
        var options = TrafficGenerator.Options()
        options.sessions = 300
        options.seed = 3
        options.impairments = .mix
        var frames: [(Timestamp, [UInt8])] = []
        _ = TrafficGenerator(options: options).generate { frames.append(($0, $1)) }
        var rng = SeededRandom(seed: seed)
        var destroyed = 0
        let engine = FlowEngine(sink: StreamCollector { _ in destroyed += 1 })
        for round in 0 ..< 8 {
            for (time, frame) in frames {
                var bytes = frame
                // Flip a few bytes anywhere, most often in the headers.
                for _ in 0 ..< Int.random(in: 0 ... 4, using: &rng) {
                    let i = Int.random(in: 0 ..< min(bytes.count, Bool.random(using: &rng) ? 80 : bytes.count), using: &rng)
                    bytes[i] = UInt8.random(in: 0 ... 255, using: &rng)
                }
                let cut = round % 3 == 0 ? Int.random(in: 0 ... bytes.count, using: &rng) : bytes.count
                bytes.withUnsafeBytes { raw in
                    engine.process(PacketRecord(timestamp: Timestamp(nanoseconds: time.nanoseconds + Int64(round) * 1_000_000_000_000),
                                                originalLength: bytes.count, linkType: .ethernet, interfaceID: 0,
                                                bytes: UnsafeRawBufferPointer(rebasing: raw[0 ..< cut])))
                }
            }
        }
        engine.finish()
        XCTAssertEqual(UInt64(destroyed), engine.counters.flowsCreated)
        XCTAssertGreaterThan(engine.anomalies.total, 0)
    }
}
