@testable import Engine
import PacketCore
import TestSupport
import XCTest

/// The talkers' open-addressing table against a dictionary: every host's sums, through growth, with
/// IPv4 and IPv6 addresses that share their bits.
final class HostSumsTests: XCTestCase {
    func testSumsEqualADictionarysThroughGrowth() {
        var random = SeededRandom(seed: 31)
        var table = HostSums(capacity: 4)
        var expected: [IPAddress: (UInt64, UInt64)] = [:]
        var hosts: [IPAddress] = []
        for n in 0 ..< 6_000 {
            let v = UInt32.random(in: 0 ... 2_000, using: &random)
            // Every third host is the IPv6 address whose bits hold the same number as an IPv4 one.
            hosts.append(n % 3 == 0 ? IPAddress(high: UInt64(v) << 32, low: 0, isIPv6: true) : IPAddress(ipv4: v))
        }
        for (n, host) in hosts.enumerated() {
            let bytes = UInt64(n % 1500 + 60)
            table.add(host, packets: 1, bytes: bytes)
            expected[host, default: (0, 0)].0 += 1
            expected[host, default: (0, 0)].1 += bytes
        }
        XCTAssertEqual(table.count, expected.count)
        var seen = 0
        table.forEach { address, sum in
            seen += 1
            XCTAssertEqual(expected[address]?.0, sum.packets, "\(address)")
            XCTAssertEqual(expected[address]?.1, sum.bytes, "\(address)")
        }
        XCTAssertEqual(seen, expected.count)
        for host in expected.keys { XCTAssertTrue(table.contains(host), "\(host)") }
        XCTAssertFalse(table.contains(IPAddress(ipv4: 3_000_000)))
        XCTAssertFalse(table.contains(IPAddress(high: 9, low: 9, isIPv6: true)))
    }
}
