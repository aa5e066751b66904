import Reassembly
@testable import Reassembly
import XCTest

/// Floods of tiny out-of-order segments: memory stays within the direction cap and the pool,
/// the list work stays linear in segments, other flows' streams come out whole, and every
/// skipped hole is counted.
final class ReassemblyBoundsTests: XCTestCase {
    /// A well-behaved flow beside the flood: a 20 KiB stream in 1,000-byte segments with
    /// neighbouring pairs swapped (a hole at every other segment, filled one segment later).
    struct PoliteFlow {
        let slot: Int
        let stream: [UInt8]
        var segments: [(UInt32, Range<Int>)] = []
        var sent = 0
        init(slot: Int) {
            self.slot = slot
            stream = (0 ..< 20_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ slot) }
            var order = stride(from: 0, to: stream.count, by: 1000).map { $0 ..< min($0 + 1000, stream.count) }
            for i in stride(from: 0, to: order.count - 1, by: 2) { order.swapAt(i, i + 1) }
            segments = order.map { (1001 + UInt32($0.lowerBound), $0) }
        }
        var done: Bool { sent == segments.count }
        mutating func sendNext(_ r: inout TCPReassembler, _ c: inout Collector, time: Int64) {
            if sent == 0 {
                _ = [UInt8]().withUnsafeBytes { r.segment(slot: slot, fromFirst: true, flags: SYN, sequence: 1000, acknowledgement: 0, payload: $0, time: time, receiver: &c) }
            }
            let (sequence, range) = segments[sent]
            stream[range].withUnsafeBytes { _ = r.segment(slot: slot, fromFirst: true, flags: ACK, sequence: sequence, acknowledgement: 0, payload: $0, time: time, receiver: &c) }
            sent += 1
        }
    }

    /// Per-slot collectors, as the flow engine gives each flow its own receiver.
    func flood(flows: Int, segmentsPerFlow: Int, polite: Int, config: TCPReassemblyConfig, order: (Int) -> Int)
        -> (r: TCPReassembler, floodGaps: Int, politeStreams: [([UInt8], [UInt8], Int)]) {
        var r = TCPReassembler(config: config)
        r.reserve(slots: flows + polite)
        var floodCollector = Collector()
        var politeFlows = (0 ..< polite).map { PoliteFlow(slot: flows + $0) }
        var politeCollectors = [Collector](repeating: Collector(), count: polite)
        for slot in 0 ..< flows + polite { r.open(slot: slot) }
        let byte: [UInt8] = [0x61]
        let total = flows * segmentsPerFlow
        let politeEvery = max(1, total / max(1, polite * 20))
        var time: Int64 = 1_000_000
        byte.withUnsafeBytes { one in
            for i in 0 ..< total {
                let slot = i % flows, k = order(i / flows)
                if i / flows == 0 {
                    _ = [UInt8]().withUnsafeBytes { r.segment(slot: slot, fromFirst: true, flags: SYN, sequence: 0, acknowledgement: 0, payload: $0, time: time, receiver: &floodCollector) }
                }
                // Byte 1 never comes: every 1-byte segment after it sits behind a hole of its own.
                _ = r.segment(slot: slot, fromFirst: true, flags: ACK, sequence: 2 + 2 * UInt32(k), acknowledgement: 0, payload: one, time: time, receiver: &floodCollector)
                if i % politeEvery == 0 {
                    for p in politeFlows.indices where !politeFlows[p].done {
                        politeFlows[p].sendNext(&r, &politeCollectors[p], time: time)
                        break
                    }
                }
                time += 1000
            }
        }
        for p in politeFlows.indices { while !politeFlows[p].done { politeFlows[p].sendNext(&r, &politeCollectors[p], time: time) } }
        XCTAssertLessThanOrEqual(r.peakBufferedBytes, config.maxBufferedBytesTotal)
        let gaps = floodCollector.gaps[0]
        let results = politeFlows.indices.map { (politeCollectors[$0].streams[0], politeFlows[$0].stream, politeCollectors[$0].gaps[0]) }
        for slot in 0 ..< flows + polite { r.flush(slot: slot, time: time, receiver: &floodCollector); r.close(slot: slot) }
        XCTAssertEqual(r.bufferedBytes, 0)
        return (r, gaps, results)
    }

    func testOneByteFloodIntoOneFlowStaysWithinTheDirectionCap() {
        let config = TCPReassemblyConfig()
        let capPages = config.maxBufferedBytesPerDirection / SegmentPool.pageSize
        let segments = 200_000
        // Ascending (the usual flood), descending, and scattered over a window the size of the cap.
        let orders: [(String, (Int) -> Int)] = [
            ("ascending", { $0 }), ("descending", { segments - 1 - $0 }),
            ("scattered", { ($0 / capPages) * capPages + ($0 * 7919) % capPages }),
        ]
        for (name, order) in orders {
            let (r, gaps, polite) = flood(flows: 1, segmentsPerFlow: segments, polite: 3, config: config, order: order)
            print("1-byte flood into one flow (\(name)): \(segments) segments, peak pool \(r.peakBufferedBytes) B, direction cap skips \(r.counters.directionCapSkips), gaps \(r.counters.gaps), nodes walked \(r.nodesWalked) (\(String(format: "%.2f", Double(r.nodesWalked) / Double(segments))) per segment)")
            // The flood holds at most its direction cap of pool memory (plus the polite flows' few pages).
            XCTAssertLessThanOrEqual(r.peakBufferedBytes, config.maxBufferedBytesPerDirection + 3 * 8 * SegmentPool.pageSize, name)
            XCTAssertGreaterThan(r.counters.directionCapSkips, 0, name)
            XCTAssertGreaterThan(gaps, 0, name)
            XCTAssertEqual(r.counters.memcapDrops, 0, name)
            // A list never exceeds the cap, so no segment walks further than that.
            XCTAssertLessThanOrEqual(r.nodesWalked, UInt64(segments) * UInt64(capPages), name)
            if name != "scattered" { XCTAssertEqual(r.nodesWalked, 0, name) }
            for (got, want, gap) in polite {
                XCTAssertEqual(got, want, name)
                XCTAssertEqual(gap, 0, name)
            }
        }
    }

    func testOneByteFloodIntoTenThousandFlowsLeavesOtherFlowsWhole() {
        let config = TCPReassemblyConfig()
        // 10,000 flows × 150 one-byte segments, each behind its own hole: 1.5M pages wanted, 1M in the pool.
        let (r, gaps, polite) = flood(flows: 10_000, segmentsPerFlow: 150, polite: 50, config: config, order: { $0 })
        print("1-byte flood into 10,000 flows: peak pool \(r.peakBufferedBytes >> 20) MiB of \(config.maxBufferedBytesTotal >> 20) MiB, pressure skips \(r.counters.pressureSkips), memcap drops \(r.counters.memcapDrops), gaps \(r.counters.gaps) (\(gaps) B), nodes walked \(r.nodesWalked)")
        XCTAssertGreaterThan(r.counters.pressureSkips, 0)
        XCTAssertEqual(r.counters.memcapDrops, 0)
        XCTAssertLessThanOrEqual(r.peakBufferedBytes, config.maxBufferedBytesTotal)
        // Every segment lies beyond its flow's buffered data: appended at the tail, no walk.
        XCTAssertEqual(r.nodesWalked, 0)
        XCTAssertEqual(polite.filter { $0.0 == $0.1 && $0.2 == 0 }.count, 50)
    }
}
