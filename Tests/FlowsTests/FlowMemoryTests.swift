import Flows
import PacketCore
import Reassembly
import XCTest

/// What each flow costs in memory, so a regression in per-flow size fails here (not timed).
final class FlowMemoryTests: XCTestCase {
    /// Distinct keys, every fourth over IPv6, some VLAN-tagged.
    func key(_ i: Int) -> FlowKey {
        let v6 = i % 4 == 0
        let client = v6 ? IPAddress(high: 0x2001_0DB8_0000_0001, low: UInt64(i), isIPv6: true) : IPAddress(ipv4: 0x0A00_0000 | UInt32(i))
        let server = v6 ? IPAddress(high: 0x2001_0DB8_0000_0002, low: 1, isIPv6: true) : IPAddress(ipv4: 0xC0A8_0001)
        return FlowKey.make(source: client, sourcePort: UInt16(truncatingIfNeeded: 1024 &+ i), destination: server, destinationPort: 443,
                            ipProtocol: 6, vlan: i % 7 == 0 ? UInt16(i % 4000) : FlowKey.noVLAN).key
    }

    /// A table holding N flows reserves at most 96 bytes per flow: an 80-byte entry (the key's 41 bytes,
    /// LRU links, id, creation and last-activity times) plus the hash index, 4 bytes per bucket and at most
    /// half full, so up to 16 bytes per flow just after it doubles.
    func testFlowTableReservesAtMost104BytesPerFlow() {
        let n = 200_000
        var config = FlowTableConfig()
        config.maxFlows = n
        let table = FlowTable(config: config)
        var slots: [Int] = []
        for i in 0 ..< n { slots.append(table.insert(key(i), time: Timestamp(nanoseconds: Int64(i)), timeoutClass: 0)) }
        XCTAssertEqual(table.count, n)
        XCTAssertTrue(table.isFull)
        let perFlow = Double(table.reservedBytes) / Double(n)
        print("flow table: \(table.reservedBytes) bytes reserved for \(n) flows, \(perFlow) per flow; entry \(MemoryLayout<FlowTable.Entry>.stride) bytes")
        XCTAssertLessThanOrEqual(perFlow, 104)
        // The compact layout keeps every key intact.
        for i in stride(from: 0, to: n, by: 997) {
            XCTAssertEqual(table.find(key(i)), slots[i])
            XCTAssertEqual(table.entries[slots[i]].key, key(i))
        }
        // Removing and re-inserting reuses slots: only the free list (4 bytes a slot) was added.
        let reserved = table.reservedBytes
        for i in 0 ..< 1000 { table.remove(slots[i]) }
        for i in 0 ..< 1000 { _ = table.insert(key(n + i), time: Timestamp(nanoseconds: Int64(n + i)), timeoutClass: 1) }
        XCTAssertEqual(table.count, n)
        XCTAssertLessThanOrEqual(table.reservedBytes - reserved, 2 * 1000 * 4)
    }

    /// TCP reassembly keeps 80 bytes per connection (two 40-byte directions), reserved once for the slots.
    func testReassemblyReservesAtMost80BytesPerConnection() {
        XCTAssertLessThanOrEqual(TCPReassembler.bytesPerSlot, 80)
        let n = 50_000
        var reassembler = TCPReassembler()
        reassembler.reserve(slots: n)
        for slot in 0 ..< n { reassembler.open(slot: slot) }
        XCTAssertLessThanOrEqual(Double(reassembler.slotBytesReserved) / Double(n), 80)
    }

    /// The key's packed storage gives back the addresses it was made of, families included.
    func testKeyAddressesRoundTripWithTheirFamilies() {
        let v4 = IPAddress(ipv4: 0x0A00_0001)
        let v6Same = IPAddress(high: v4.high, low: v4.low, isIPv6: true)
        let other = IPAddress(high: 0x2001_0DB8_0000_0000, low: 5, isIPv6: true)
        var k = FlowKey(address1: v4, port1: 1, address2: other, port2: 2, ipProtocol: 17, vlan: 7, hop: 1)
        XCTAssertEqual(k.address1, v4)
        XCTAssertEqual(k.address2, other)
        XCTAssertFalse(k.isIPv6)
        // Same 16 bytes, other family: another flow.
        let k6 = FlowKey(address1: v6Same, port1: 1, address2: other, port2: 2, ipProtocol: 17, vlan: 7, hop: 1)
        XCTAssertNotEqual(k, k6)
        XCTAssertTrue(k6.isIPv6)
        k.address1 = v6Same
        XCTAssertEqual(k, k6)
        k.address2 = v4
        XCTAssertEqual(k.address2, v4)
        XCTAssertEqual(k.address1, v6Same)
        XCTAssertEqual([Int(k.port1), Int(k.port2), Int(k.vlan), Int(k.hop), Int(k.ipProtocol)], [1, 2, 7, 1, 17])
    }
}
