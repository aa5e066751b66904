#if canImport(Glibc)
import Glibc
#endif
import Capture
import Foundation
import Incubator
import PacketCore
import TestSupport
import Wire
import XCTest

/// Bad input never stops the incubator: fragments that never complete stay within the table's bounds,
/// malformed and truncated frames are all delivered somewhere and counted.
final class IncubatorRobustnessTests: XCTestCase {
    func nullCells(_ n: Int) throws -> CellOutputs {
        try CellOutputs((0 ..< n).map { _ in try CellSpec(parsing: "file:/dev/null") })
    }

    /// A million non-first fragments, every one of another datagram, none ever completed.
    func testAFragmentFloodStaysWithinItsBounds() throws {
        let bounds = FragmentCells(capacity: 4096, maxHeldBytes: 1 << 20, maxHeldPerDatagram: 8, holdSeconds: 0.5)
        let incubator = Incubator(outputs: try nullCells(3), fragments: bounds)
        var header = PacketBuilder.IPv4(source: IPAddress("10.0.0.1")!, destination: IPAddress("10.0.0.2")!)
        header.fragmentOffset = 1480
        header.protocolOverride = 17
        var frame = PacketBuilder.wrap(link: .ethernet(), datagram: PacketBuilder.ip(.ipv4(header), protocol: 17, payload: [UInt8](repeating: 0, count: 16)))
        let count = 1_000_000
        for i in 0 ..< count {
            // A new identification and source each time: 2^16 × 256 distinct datagrams.
            frame[14 + 4] = UInt8(truncatingIfNeeded: i >> 8)
            frame[14 + 5] = UInt8(truncatingIfNeeded: i)
            frame[14 + 15] = UInt8(truncatingIfNeeded: i >> 16)
            frame.withUnsafeBytes {
                incubator.process(PacketRecord(timestamp: Timestamp(nanoseconds: 1_700_000_000_000_000_000 + Int64(i) * 1000), originalLength: $0.count,
                                               linkType: .ethernet, interfaceID: 0, bytes: $0))
            }
        }
        incubator.finish()
        let f = incubator.fragments.counters
        let delivered = incubator.outputs.counters.reduce(UInt64(0)) { $0 + $1.frames }
        print("fragment flood: \(count) fragments; held \(f.held), hold full \(f.holdFull), sent without their first \(f.withoutFirst), peak held bytes \(f.peakHeldBytes), peak remembered \(f.peakRemembered)")
        XCTAssertEqual(delivered, UInt64(count), "every fragment delivered to some cell")
        XCTAssertEqual(f.withoutFirst, UInt64(count))
        XCTAssertLessThanOrEqual(f.peakHeldBytes, 1 << 20)
        XCTAssertGreaterThan(f.holdFull, 0, "the flood filled the hold")
        XCTAssertEqual(incubator.fragments.heldCount, 0)
    }

    /// Random and cut frames: each is delivered to a cell (non-IP ones to cell 0) or counted, none traps.
    func testMalformedAndTruncatedFramesAreDeliveredAndCounted() throws {
        let incubator = Incubator(outputs: try nullCells(4))
        var random = SeededRandom(seed: 99)
        let good = PacketBuilder.frame(network: .ipv6(.init(source: IPAddress("2001:db8::1")!, destination: IPAddress("2001:db8::2")!)),
                                       transport: .tcp(.init(sourcePort: 1, destinationPort: 2, sequence: 1, acknowledgement: 0, flags: [.syn])), payload: [1, 2, 3])
        var frames: [[UInt8]] = []
        for cut in 0 ... good.count { frames.append(Array(good.prefix(cut))) }
        for _ in 0 ..< 5000 {
            var f = good
            for _ in 0 ..< 4 { f[Int(random.next() % UInt64(f.count))] = UInt8(truncatingIfNeeded: random.next()) }
            frames.append(f)
            frames.append((0 ..< Int(random.next() % 200)).map { _ in UInt8(truncatingIfNeeded: random.next()) })
        }
        for f in frames {
            f.withUnsafeBytes { incubator.process(PacketRecord(timestamp: Timestamp(seconds: 1, microseconds: 0), originalLength: $0.count, linkType: .ethernet, interfaceID: 0, bytes: $0)) }
        }
        incubator.finish()
        let delivered = incubator.outputs.counters.reduce(UInt64(0)) { $0 + $1.frames }
        XCTAssertEqual(delivered + incubator.fragments.counters.held - incubator.fragments.counters.releasedWithFirst
                       - incubator.fragments.counters.withoutFirst, UInt64(frames.count))
        XCTAssertEqual(delivered, UInt64(frames.count))
        XCTAssertGreaterThan(incubator.counters.nonIP, 0)
    }
}
