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

    /// The activity lists against a model: random inserts, touches, class changes and removals, then
    /// every flow drained in expiry order must come out least recently active first within its class,
    /// as the model orders them.
    func testActivityOrderAgreesWithAModel() {
        var config = FlowTableConfig()
        config.maxFlows = 2_000
        config.idleTimeouts = [1, 1, 1]
        var rng = SystemRandomNumberGenerator()
        for _ in 0 ..< 20 {
            let table = FlowTable(config: config)
            // Per class, slots from least to most recently active.
            var model: [[Int]] = [[], [], []]
            var live: [Int: FlowKey] = [:]
            var time: Int64 = 0
            for _ in 0 ..< 5_000 {
                time += 1
                let action = Int.random(in: 0 ..< 10, using: &rng)
                if action < 3 || live.isEmpty {
                    let k = key(Int.random(in: 0 ..< 100_000, using: &rng))
                    guard table.find(k) == nil, !table.isFull else { continue }
                    let c = Int.random(in: 0 ..< 3, using: &rng)
                    let slot = table.insert(k, time: Timestamp(nanoseconds: time), timeoutClass: UInt8(c))
                    model[c].append(slot)
                    live[slot] = k
                    continue
                }
                let slot = live.keys.randomElement(using: &rng)!
                let c = model.firstIndex { $0.contains(slot) }!
                switch action {
                case 3 ..< 8:
                    table.touch(slot, time: Timestamp(nanoseconds: time))
                    model[c].removeAll { $0 == slot }
                    model[c].append(slot)
                case 8:
                    let to = Int.random(in: 0 ..< 3, using: &rng)
                    table.setTimeoutClass(slot, UInt8(to))
                    if to != c {
                        model[c].removeAll { $0 == slot }
                        model[to].append(slot)
                    }
                default:
                    table.remove(slot)
                    model[c].removeAll { $0 == slot }
                    live[slot] = nil
                }
            }
            XCTAssertEqual(table.count, live.count)
            // Everything is idle long after: drain in expiry order, which visits class 0's list first.
            var drained: [[Int]] = [[], [], []]
            while let slot = table.expired(now: Timestamp(nanoseconds: time + 10)) {
                drained[Int(table.entries[slot].timeoutClass)].append(slot)
                table.remove(slot)
            }
            XCTAssertEqual(drained, model)
            XCTAssertEqual(table.count, 0)
        }
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
