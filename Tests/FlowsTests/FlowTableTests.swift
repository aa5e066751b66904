import Flows
import PacketCore
import XCTest

final class FlowTableTests: XCTestCase {
    func key(_ i: Int) -> FlowKey {
        FlowKey.make(source: IPAddress(ipv4: 0x0A00_0000 | UInt32(i % 5000)), sourcePort: UInt16(1024 + i / 5000),
                     destination: IPAddress(ipv4: 0xC0A8_0001), destinationPort: 80, ipProtocol: 6).key
    }

    func testKeysAreTheSameInBothDirectionsAndOrderedLikeSFTap() {
        let a = IPAddress("192.168.0.2")!, b = IPAddress("192.168.0.1")!
        let (k1, first1) = FlowKey.make(source: a, sourcePort: 80, destination: b, destinationPort: 62918, ipProtocol: 6)
        let (k2, first2) = FlowKey.make(source: b, sourcePort: 62918, destination: a, destinationPort: 80, ipProtocol: 6)
        XCTAssertEqual(k1, k2)
        XCTAssertEqual(k1.address1, b)
        XCTAssertEqual(k1.port1, 62918)
        XCTAssertFalse(first1)
        XCTAssertTrue(first2)
        // Equal addresses: the lower port is endpoint 1.
        let (k3, first3) = FlowKey.make(source: a, sourcePort: 9000, destination: a, destinationPort: 53, ipProtocol: 17)
        XCTAssertEqual(k3.port1, 53)
        XCTAssertFalse(first3)
        // The VLAN and hop separate otherwise equal flows.
        XCTAssertNotEqual(FlowKey.make(source: a, sourcePort: 1, destination: b, destinationPort: 2, ipProtocol: 6, vlan: 10).key,
                          FlowKey.make(source: a, sourcePort: 1, destination: b, destinationPort: 2, ipProtocol: 6, vlan: 11).key)
    }

    /// The reference's balance test vectors (sftap-reference §3).
    func testSFTapBalanceHashVectors() {
        let k1 = FlowKey.make(source: IPAddress("192.168.0.1")!, sourcePort: 62918, destination: IPAddress("192.168.0.2")!, destinationPort: 80, ipProtocol: 6).key
        XCTAssertEqual(k1.sftapHash, 0xF595)
        XCTAssertEqual(Int(k1.sftapHash) & 3, 1)
        let k2 = FlowKey.make(source: IPAddress("192.168.24.54")!, sourcePort: 59547, destination: IPAddress("216.58.221.196")!, destinationPort: 80, ipProtocol: 6).key
        XCTAssertEqual(k2.sftapHash, 0x35AB)
        XCTAssertEqual(Int(k2.sftapHash) & 3, 3)
    }

    func testRandomInsertFindRemoveAgreesWithADictionary() {
        var config = FlowTableConfig()
        config.maxFlows = 20_000
        let table = FlowTable(config: config)
        var reference: [FlowKey: Int] = [:]
        var rng = SystemRandomNumberGenerator()
        for step in 0 ..< 200_000 {
            let k = key(Int.random(in: 0 ..< 30_000, using: &rng))
            if let slot = reference[k] {
                XCTAssertEqual(table.find(k), slot)
                if step % 3 == 0 {
                    table.remove(slot)
                    reference[k] = nil
                    XCTAssertNil(table.find(k))
                }
            } else {
                XCTAssertNil(table.find(k))
                if !table.isFull {
                    reference[k] = table.insert(k, time: Timestamp(nanoseconds: Int64(step)), timeoutClass: 0)
                }
            }
            XCTAssertEqual(table.count, reference.count)
        }
        for (k, slot) in reference { XCTAssertEqual(table.find(k), slot) }
    }

    func testIdleExpiryFollowsPacketTimeAndClass() {
        var config = FlowTableConfig()
        config.idleTimeouts = [10, 100]
        let table = FlowTable(config: config)
        let a = table.insert(key(1), time: Timestamp(nanoseconds: 0), timeoutClass: 0)
        let b = table.insert(key(2), time: Timestamp(nanoseconds: 0), timeoutClass: 1)
        let c = table.insert(key(3), time: Timestamp(nanoseconds: 5), timeoutClass: 0)
        table.touch(a, time: Timestamp(nanoseconds: 8))
        XCTAssertNil(table.expired(now: Timestamp(nanoseconds: 15)))
        XCTAssertEqual(table.expired(now: Timestamp(nanoseconds: 16)), c)
        table.remove(c)
        XCTAssertNil(table.expired(now: Timestamp(nanoseconds: 18)))
        XCTAssertEqual(table.expired(now: Timestamp(nanoseconds: 19)), a)
        table.remove(a)
        XCTAssertNil(table.expired(now: Timestamp(nanoseconds: 100)))
        XCTAssertEqual(table.expired(now: Timestamp(nanoseconds: 101)), b)
        table.setTimeoutClass(b, 0)
        XCTAssertEqual(table.leastRecentlyActive, b)
    }
}
