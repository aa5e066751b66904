import CaptureTools
import Engine
import PacketCore
import XCTest

final class TalkerTableTests: XCTestCase {
    func testCountsGrowAndOverflowToUntracked() {
        var table = TalkerTable(maxEntries: 5000)
        var reference: [IPAddress: (UInt64, UInt64)] = [:]
        var rng = SystemRandomNumberGenerator()
        for i in 0 ..< 60_000 {
            let n = UInt64.random(in: 0 ..< 4000, using: &rng)
            let address = i % 3 == 0 ? IPAddress(high: 0x2001_0DB8 << 32, low: n, isIPv6: true) : IPAddress(ipv4: UInt32(n))
            table.count(address, bytes: i)
            reference[address, default: (0, 0)].0 += 1
            reference[address, default: (0, 0)].1 += UInt64(i)
        }
        // Up to 8000 distinct addresses were offered; 5000 fit.
        XCTAssertEqual(table.count, 5000)
        var trackedPackets: UInt64 = 0
        for (address, talker) in table.entries {
            XCTAssertEqual(talker.packets, reference[address]?.0)
            XCTAssertEqual(talker.bytes, reference[address]?.1)
            trackedPackets += talker.packets
        }
        XCTAssertEqual(trackedPackets + table.untrackedPackets, 60_000)
        XCTAssertGreaterThan(table.untrackedPackets, 0)
        // IPv4 10.0.0.1 and an IPv6 address with the same 16 bytes are different keys.
        var small = TalkerTable(maxEntries: 10)
        small.count(IPAddress(ipv4: 1), bytes: 1)
        small.count(IPAddress(high: IPAddress(ipv4: 1).high, low: 0, isIPv6: true), bytes: 2)
        XCTAssertEqual(small.count, 2)
        XCTAssertEqual(small[IPAddress(ipv4: 1)]?.bytes, 1)
    }
}
