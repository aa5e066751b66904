@testable import Defragment
import PacketCore
import XCTest

/// The reassembly index takes a bucket from the low bits of `DatagramKey.tableHash`. Fragments of one
/// source's datagrams to one destination differ only in the identification (a counter on most
/// hosts), so those keys must spread over the buckets, and which keys collide must depend on the seed.
final class DatagramKeyHashTests: XCTestCase {
    func key(_ source: IPAddress, _ destination: IPAddress, id: UInt32, proto: UInt8 = 17, vlan: UInt16 = 0) -> DatagramKey {
        DatagramKey(source: source, destination: destination, identification: id, vlan: vlan, proto: proto)
    }

    /// Distinct low 12 bits over 4096 keys: uniformly random buckets give 4096·(1 − 1/e) ≈ 2589
    /// (standard deviation ≈ 19); the bound sits three deviations below.
    func assertSpreads(_ name: String, _ make: (Int) -> DatagramKey, line: UInt = #line) {
        let keys = (0 ..< 4096).map(make)
        XCTAssertEqual(Set(keys).count, 4096, "\(name): the keys must differ", line: line)
        for seed: UInt64 in [1, 0x9E37_79B9_7F4A_7C15, 0x0123_4567_89AB_CDEF, .random(in: 1 ... .max)] {
            let filled = Set(keys.map { $0.tableHash(seed: seed) & 4095 }).count
            XCTAssertGreaterThan(filled, 2530, "\(name), seed \(seed)", line: line)
        }
    }

    func testKeysDifferingInOneFieldSpreadOverTheBuckets() {
        let a = IPAddress(ipv4: 0x0A00_0001), b = IPAddress(ipv4: 0xC0A8_0001)
        let v6a = IPAddress("2001:db8::1")!, v6b = IPAddress("2001:db8::2")!
        assertSpreads("IPv4 identification only") { key(a, b, id: UInt32($0)) }
        assertSpreads("IPv4 identification, one per 256") { key(a, b, id: UInt32($0) << 8) }
        assertSpreads("IPv6 identification only") { key(v6a, v6b, id: UInt32($0), proto: 0) }
        assertSpreads("IPv4 source only") { key(IPAddress(ipv4: 0x0A00_0000 | UInt32($0)), b, id: 7) }
        assertSpreads("IPv6 interface identifier only") { key(IPAddress(high: v6a.high, low: UInt64($0), isIPv6: true), v6b, id: 7, proto: 0) }
        assertSpreads("VLAN only") { key(a, b, id: 7, vlan: UInt16($0)) }
    }

    /// Keys whose source halves fold to the same word before any multiply collided under every seed
    /// with a hash that XORs the seed onto a product; here they must not (checked under random seeds).
    func testCollisionsDependOnTheSeed() {
        var rng = SystemRandomNumberGenerator()
        let destination = IPAddress("2001:db8::80")!
        for _ in 0 ..< 500 {
            let h1 = rng.next() as UInt64, l1 = rng.next() as UInt64, h2 = rng.next() as UInt64
            let x = key(IPAddress(high: h1, low: l1, isIPv6: true), destination, id: 9, proto: 0)
            let y = key(IPAddress(high: h2, low: l1 ^ h1 ^ h2, isIPv6: true), destination, id: 9, proto: 0)
            let seed = UInt64.random(in: 1 ... .max)
            XCTAssertNotEqual(x.tableHash(seed: seed), y.tableHash(seed: seed))
        }
    }

    /// The table finds what it holds and nothing else, with every key of one source in it.
    func testFixedTableFindsEveryKeyOfOneSource() {
        let a = IPAddress(ipv4: 0x0A00_0001), b = IPAddress(ipv4: 0xC0A8_0001)
        var table = FixedTable<DatagramKey>(maximumCount: 4096, placeholder: DatagramKey())
        defer { table.deallocate() }
        for id in 0 ..< 4096 { XCTAssertNotNil(table.insert(key(a, b, id: UInt32(id)), value: Int32(id))) }
        for id in stride(from: 0, to: 4096, by: 2) { table.remove(at: table.find(key(a, b, id: UInt32(id)))!) }
        for id in 0 ..< 4096 {
            let bucket = table.find(key(a, b, id: UInt32(id)))
            if id % 2 == 0 { XCTAssertNil(bucket, "id \(id)") } else { XCTAssertEqual(bucket.map { table.value(at: $0) }, Int32(id)) }
        }
        XCTAssertNil(table.find(key(a, b, id: 5000)))
        XCTAssertEqual(table.count, 2048)
    }
}
