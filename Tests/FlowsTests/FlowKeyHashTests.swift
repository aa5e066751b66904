import Flows
import PacketCore
import XCTest

/// The flow table takes a bucket from the low bits of `FlowKey.tableHash`. Keys that differ in one
/// field only, as real traffic makes them (one client's connections to one server, DNS queries from
/// one resolver, a port scan, the hosts of one subnet), must still spread over the buckets: a hash
/// that sends them to a few buckets turns every lookup into a scan of the run they fill.
final class FlowKeyHashTests: XCTestCase {
    /// Distinct values of the low 12 bits over 4096 keys. Uniformly random buckets give 4096·(1 − 1/e)
    /// ≈ 2589 (standard deviation ≈ 19); these families under these seeds fill 2,552 to 2,631, and the
    /// bound sits three deviations below the random figure. (The old hash filled 1 or 2,048.)
    func spread(_ keys: [FlowKey], seed: UInt64) -> Int {
        Set(keys.map { $0.tableHash(seed: seed) & 4095 }).count
    }

    func assertSpreads(_ name: String, _ make: (Int) -> FlowKey, file: StaticString = #filePath, line: UInt = #line) {
        let keys = (0 ..< 4096).map(make)
        XCTAssertEqual(Set(keys).count, 4096, "\(name): the keys must differ", file: file, line: line)
        for seed: UInt64 in [1, 0x9E37_79B9_7F4A_7C15, 0x0123_4567_89AB_CDEF] {
            XCTAssertGreaterThan(spread(keys, seed: seed), 2530, "\(name), seed \(seed)", file: file, line: line)
        }
    }

    func testKeysDifferingInOneFieldSpreadOverTheBuckets() {
        let low = IPAddress(ipv4: 0x0A00_0001), high = IPAddress(ipv4: 0xC0A8_0001)
        let v6a = IPAddress("2001:db8::1")!, v6b = IPAddress("2001:db8::2")!
        func key(_ a: IPAddress, _ ap: UInt16, _ b: IPAddress, _ bp: UInt16, proto: UInt8 = 6, vlan: UInt16 = FlowKey.noVLAN) -> FlowKey {
            FlowKey(address1: a, port1: ap, address2: b, port2: bp, ipProtocol: proto, vlan: vlan)
        }
        // Endpoint 1 is the lower address: its port is port1, the other's port2.
        assertSpreads("port1 only") { key(low, UInt16(1024 + $0), high, 443) }
        assertSpreads("port2 only") { key(low, 53, high, UInt16(1024 + $0), proto: 17) }
        assertSpreads("IPv4 address 1 only") { key(IPAddress(ipv4: 0x0A00_0000 | UInt32($0)), 40000, high, 80) }
        assertSpreads("IPv4 address 2 only") { key(low, 40000, IPAddress(ipv4: 0xC0A8_0000 | UInt32($0)), 80) }
        assertSpreads("IPv6 interface identifier only") {
            key(IPAddress(high: v6a.high, low: UInt64($0), isIPv6: true), 40000, v6b, 80)
        }
        assertSpreads("IPv6 port1 only") { key(v6a, UInt16(1024 + $0), v6b, 443) }
        assertSpreads("VLAN only") { key(low, 40000, high, 80, vlan: UInt16($0)) }
    }

    /// One client's connections to one server through the table: backward-shift removal keeps every
    /// other key findable.
    func testRemovalsAmongOneClientsConnectionsKeepTheRestFindable() {
        var config = FlowTableConfig()
        config.maxFlows = 30_000
        let table = FlowTable(config: config)
        let client = IPAddress(ipv4: 0x0A00_0001), server = IPAddress(ipv4: 0xC0A8_0001)
        let keys = (0 ..< 20_000).map { FlowKey(address1: client, port1: UInt16(1024 + $0), address2: server, port2: 443, ipProtocol: 6) }
        var slots: [Int] = []
        for k in keys { slots.append(table.insert(k, time: Timestamp(nanoseconds: 1_000_000_000), timeoutClass: 0)) }
        for i in stride(from: 0, to: keys.count, by: 3) { table.remove(slots[i]) }
        for (i, k) in keys.enumerated() {
            if i % 3 == 0 { XCTAssertNil(table.find(k)) } else { XCTAssertEqual(table.find(k), slots[i]) }
        }
        XCTAssertEqual(table.count, 20_000 - 6_667)
    }

    /// Pairs of keys built so that the first address's halves fold to the same word before any multiply
    /// (`high ^ low`, `high·C ^ low` or `high ^ low·C` equal, C the constant the hashes multiply by): with the
    /// seed only XORed in, such pairs collided in full under every seed. Under random seeds they must not.
    func testCollisionsDependOnTheSeed() {
        let constant: UInt64 = 0x9E37_79B9_7F4A_7C15
        // The inverse of the odd constant modulo 2^64 (Newton's iteration doubles the correct bits).
        var inverse = constant
        for _ in 0 ..< 5 { inverse = inverse &* (2 &- constant &* inverse) }
        XCTAssertEqual(constant &* inverse, 1)
        var rng = SystemRandomNumberGenerator()
        for _ in 0 ..< 200 {
            let h1 = rng.next() as UInt64, l1 = rng.next() as UInt64, h2 = rng.next() as UInt64
            let server = IPAddress("2001:db8::80")!
            for l2 in [l1 ^ h1 ^ h2, (h1 &* constant) ^ l1 ^ (h2 &* constant), (h1 ^ (l1 &* constant) ^ h2) &* inverse] {
                let a = IPAddress(high: h1, low: l1, isIPv6: true), b = IPAddress(high: h2, low: l2, isIPv6: true)
                let seed = UInt64.random(in: 1 ... .max)
                XCTAssertNotEqual(a.tableHash(seed: seed), b.tableHash(seed: seed), "addresses \(a), \(b)")
                let ka = FlowKey(address1: a, port1: 40000, address2: server, port2: 443, ipProtocol: 6)
                let kb = FlowKey(address1: b, port1: 40000, address2: server, port2: 443, ipProtocol: 6)
                XCTAssertNotEqual(ka.tableHash(seed: seed), kb.tableHash(seed: seed), "flows from \(a), \(b)")
            }
        }
    }
}
