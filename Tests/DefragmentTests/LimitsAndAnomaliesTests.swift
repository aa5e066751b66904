import Defragment
import PacketCore
import Wire
import XCTest

/// Timeouts in packet time, every cap, the consistency checks (teardrop and
/// friends), tiny fragments, and bad input that must never trap.
final class LimitsAndAnomaliesTests: XCTestCase {
    let second: Int64 = 1_000_000_000

    func fragment(_ offset: Int, _ length: Int, more: Bool, fill: UInt8 = 0x11, ipv6: Bool = false, id: UInt32 = 1) -> [UInt8] {
        FragmentFactory.build(FragmentSpec(offset: offset, data: Array(repeating: fill, count: length), more: more), ipv6: ipv6, id: id)
    }

    func assertBalanced(_ counters: DefragmentCounters, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(counters.fragmentsAccountedFor, counters.fragments, "every fragment is held, reassembled, discarded or dropped", file: file, line: line)
    }

    // MARK: - Timeouts

    func testTimeoutIsPacketTimeCountedFromTheFirstFragment() {
        for ipv6 in [false, true] {
            let h = Harness()
            XCTAssertEqual(h.feed(fragment(0, 16, more: true, ipv6: ipv6, id: 1), at: 0), .incomplete)
            // Exactly the timeout later is still in time; only "more than" expires.
            XCTAssertNotNil(h.feed(fragment(16, 8, more: false, ipv6: ipv6, id: 1), at: 30 * second).datagram)

            XCTAssertEqual(h.feed(fragment(0, 16, more: true, ipv6: ipv6, id: 2), at: 100 * second), .incomplete)
            XCTAssertEqual(h.feed(fragment(16, 8, more: false, ipv6: ipv6, id: 2), at: 130 * second + 1), .incomplete, "held part expired; this one starts over")
            XCTAssertEqual(h.counters.datagramsExpired, 1)
            XCTAssertEqual(h.counters.fragmentsDiscarded, 1)
            XCTAssertEqual(h.counters.datagramsHeld, 1)
            XCTAssertEqual(h.counters.bytesHeld, 1024)

            // A trickle does not keep a datagram alive: the clock runs from the first fragment.
            XCTAssertEqual(h.feed(fragment(0, 8, more: true, ipv6: ipv6, id: 3), at: 200 * second), .incomplete)
            XCTAssertEqual(h.feed(fragment(8, 8, more: true, ipv6: ipv6, id: 3), at: 220 * second), .incomplete)
            XCTAssertEqual(h.feed(fragment(16, 8, more: false, ipv6: ipv6, id: 3), at: 240 * second), .incomplete)
            XCTAssertEqual(h.counters.datagramsExpired, 3, "id 2's restart and id 3 expired")

            h.defrag.expire(now: Timestamp(nanoseconds: 240 * second + 30 * second))
            XCTAssertEqual(h.counters.datagramsHeld, 1, "not yet: 30 s exactly")
            h.defrag.expire(now: Timestamp(nanoseconds: 240 * second + 30 * second + 1))
            XCTAssertEqual(h.counters.datagramsExpired, 4)
            XCTAssertEqual(h.counters.datagramsHeld, 0)
            XCTAssertEqual(h.counters.bytesHeld, 0)
            XCTAssertEqual(h.counters.fragmentsHeld, 0)
            XCTAssertEqual(h.counters.datagramsCompleted, 1)
            assertBalanced(h.counters)
        }
    }

    func testConfiguredTimeout() {
        var config = DefragmentConfig()
        config.timeoutNanoseconds = 2 * second
        let h = Harness(config)
        XCTAssertEqual(h.feed(fragment(0, 16, more: true), at: 10 * second), .incomplete)
        XCTAssertEqual(h.feed(fragment(16, 8, more: false), at: 12 * second + 1), .incomplete)
        XCTAssertEqual(h.counters.datagramsExpired, 1)
    }

    // MARK: - Caps under floods

    /// One source sends a million first fragments with distinct ids that never complete.
    func testMillionFragmentFloodFromOneSourceStaysUnderThePerSourceCap() {
        var config = DefragmentConfig()
        config.maxBytesPerSource = 64 << 10
        config.maxTotalBytes = 1 << 20
        let defrag = Defragmenter(config: config)
        var frame = fragment(0, 512, more: true, ipv6: true, id: 0)
        var decoder = PacketDecoder()
        var packet = DecodedPacket()
        frame.withUnsafeBytes { _ = decoder.decode($0, originalLength: $0.count, linkType: .raw, into: &packet) }
        XCTAssertTrue(packet.isFragment)
        let idAt = packet.ipv6FragmentHeaderOffset + 4
        var held = 0, refused = 0, other = 0
        for i in 0 ..< 1_000_000 {
            let result: DefragmentResult = frame.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: UInt32(i).bigEndian, toByteOffset: idAt, as: UInt32.self)
                return defrag.process(packet, bytes: UnsafeRawBufferPointer(raw), vlan: 0, timestamp: Timestamp(nanoseconds: Int64(i) * 1000))
            }
            switch result {
            case .incomplete: held += 1
            case .dropped(.sourceLimit): refused += 1
            default: other += 1
            }
            if i & 0xFFF == 0 {
                XCTAssertLessThanOrEqual(defrag.bytesHeld(source: Addresses.v6a), 64 << 10)
                XCTAssertLessThanOrEqual(defrag.counters.bytesHeld, 1 << 20)
            }
        }
        let counters = defrag.counters
        XCTAssertEqual(held, 64, "64 KiB of 1 KiB pages")
        XCTAssertEqual(refused, 1_000_000 - 64)
        XCTAssertEqual(other, 0)
        XCTAssertEqual(counters.drops[.sourceLimit], UInt64(refused))
        XCTAssertEqual(counters.bytesHeld, 64 << 10)
        XCTAssertEqual(counters.peakBytesHeld, 64 << 10)
        XCTAssertEqual(defrag.bytesHeld(source: Addresses.v6a), 64 << 10)
        XCTAssertEqual(counters.datagramsHeld, 64)
        assertBalanced(counters)
    }

    /// A million first fragments from distinct sources over 100 s of packet
    /// time: memory stays at the total cap, expiry makes room, and once the
    /// flood has aged out a real datagram gets through.
    func testMillionFragmentFloodFromManySourcesStaysUnderTheTotalCapAndRecovers() {
        var config = DefragmentConfig()
        config.maxDatagrams = 2048
        config.maxTotalBytes = 1 << 20
        config.maxBytesPerSource = 64 << 10
        let defrag = Defragmenter(config: config)
        var frame = fragment(0, 1000, more: true)
        var decoder = PacketDecoder()
        var packet = DecodedPacket()
        frame.withUnsafeBytes { _ = decoder.decode($0, originalLength: $0.count, linkType: .raw, into: &packet) }
        var maxHeld = 0
        for i in 0 ..< 1_000_000 {
            _ = frame.withUnsafeMutableBytes { raw in
                // Source 10.x.y.z and id vary; the header checksum is not checked here.
                raw.storeBytes(of: (0x0A00_0000 | UInt32(i)).bigEndian, toByteOffset: 12, as: UInt32.self)
                raw.storeBytes(of: UInt16(truncatingIfNeeded: i).bigEndian, toByteOffset: 4, as: UInt16.self)
                return defrag.process(packet, bytes: UnsafeRawBufferPointer(raw), vlan: 0, timestamp: Timestamp(nanoseconds: Int64(i) * 100_000))
            }
            if i & 0x3FF == 0 {
                let held = defrag.counters.bytesHeld
                maxHeld = max(maxHeld, held)
                XCTAssertLessThanOrEqual(held, 1 << 20)
                XCTAssertLessThanOrEqual(defrag.counters.datagramsHeld, 2048)
            }
        }
        let counters = defrag.counters
        XCTAssertEqual(counters.peakBytesHeld, 1 << 20, "the cap is reached, never passed")
        XCTAssertLessThanOrEqual(counters.peakDatagramsHeld, 1024)
        XCTAssertGreaterThan(counters.drops[.memoryLimit], 900_000)
        XCTAssertGreaterThan(counters.datagramsExpired, 1024, "expiry made room repeatedly")
        XCTAssertEqual(counters.drops.total, counters.drops[.memoryLimit])
        assertBalanced(counters)

        // After the flood has aged out, a real datagram is reassembled.
        let end: Int64 = 1_000_000 * 100_000 + 31 * second
        let first = fragment(0, 16, more: true, fill: 0x61, id: 0xBEEF)
        let last = fragment(16, 8, more: false, fill: 0x62, id: 0xBEEF)
        var result: [UInt8]?
        for (index, bytes) in [first, last].enumerated() {
            bytes.withUnsafeBytes { raw in
                _ = decoder.decode(raw, originalLength: raw.count, linkType: .raw, into: &packet)
                if case .complete(let datagram) = defrag.process(packet, bytes: raw, vlan: 0, timestamp: Timestamp(nanoseconds: end + Int64(index))) {
                    result = Array(datagram)
                }
            }
        }
        XCTAssertEqual(result.map(reassembledPayload), Array(repeating: 0x61, count: 16) + Array(repeating: 0x62, count: 8))
    }

    func testDatagramLimitRefusesNewDatagramsUntilOldOnesExpire() {
        var config = DefragmentConfig()
        config.maxDatagrams = 2
        let h = Harness(config)
        XCTAssertEqual(h.feed(fragment(0, 8, more: true, id: 1), at: 0), .incomplete)
        XCTAssertEqual(h.feed(fragment(0, 8, more: true, id: 2), at: 1), .incomplete)
        XCTAssertEqual(h.feed(fragment(0, 8, more: true, id: 3), at: 2), .dropped(.datagramLimit))
        // Held datagrams still take fragments.
        XCTAssertEqual(h.feed(fragment(8, 8, more: true, id: 2), at: 3), .incomplete)
        XCTAssertEqual(h.feed(fragment(0, 8, more: true, id: 3), at: 31 * second), .incomplete)
        XCTAssertEqual(h.counters.drops[.datagramLimit], 1)
        XCTAssertEqual(h.counters.datagramsExpired, 2)
        assertBalanced(h.counters)
    }

    func testFragmentLimitAbandonsTheDatagramAndCountsDuplicates() {
        var config = DefragmentConfig()
        config.maxFragmentsPerDatagram = 4
        let h = Harness(config)
        for i in 0 ..< 4 { XCTAssertEqual(h.feed(fragment(i * 8, 8, more: true)), .incomplete) }
        XCTAssertEqual(h.feed(fragment(32, 8, more: false)), .dropped(.fragmentLimit))
        XCTAssertEqual(h.counters.datagramsAbandoned, 1)
        XCTAssertEqual(h.counters.fragmentsDiscarded, 4)
        XCTAssertEqual(h.counters.bytesHeld, 0)
        // Duplicates count too: the same fragment five times.
        for _ in 0 ..< 4 { XCTAssertEqual(h.feed(fragment(0, 8, more: true, id: 2)), .incomplete) }
        XCTAssertEqual(h.feed(fragment(0, 8, more: true, id: 2)), .dropped(.fragmentLimit))
        XCTAssertEqual(h.counters.overlaps, 3)
        XCTAssertEqual(h.counters.overlapsWithDifferentData, 0)
        assertBalanced(h.counters)
    }

    func testTotalBytesCapAbandonsTheDatagramThatDoesNotFit() {
        var config = DefragmentConfig()
        config.maxTotalBytes = 4 << 10
        let h = Harness(config)
        XCTAssertEqual(h.feed(fragment(0, 2048, more: true, id: 1)), .incomplete)
        XCTAssertEqual(h.feed(fragment(0, 1024, more: true, id: 2)), .incomplete)
        XCTAssertEqual(h.counters.bytesHeld, 3 << 10)
        // id 2 needs two more pages; one is free.
        XCTAssertEqual(h.feed(fragment(1024, 2048, more: true, id: 2)), .dropped(.memoryLimit))
        XCTAssertEqual(h.counters.bytesHeld, 2 << 10)
        XCTAssertEqual(h.counters.datagramsAbandoned, 1)
        // id 1 completes with what is left.
        XCTAssertNotNil(h.feed(fragment(2048, 1024, more: false, id: 1)).datagram)
        XCTAssertEqual(h.counters.bytesHeld, 0)
        XCTAssertEqual(h.counters.peakBytesHeld, 3 << 10)
        assertBalanced(h.counters)
    }

    func testReassemblyNeverExceeds65535Bytes() {
        let h = Harness()
        // Past the largest possible data end, refused before any state is made.
        XCTAssertEqual(h.feed(fragment(65528, 8, more: false)), .dropped(.tooLarge))
        XCTAssertEqual(h.feed(fragment(65528, 16, more: false, ipv6: true)), .dropped(.tooLarge))
        // With a 60-byte header (40 bytes of options) the data may end at 65475: both arrival orders.
        let options = [UInt8](repeating: 1, count: 40)
        let first = FragmentFactory.ipv4(FragmentSpec(offset: 0, data: Array(repeating: 1, count: 8), more: true), id: 5, options: options)
        let late = fragment(65464, 16, more: false, id: 5)
        XCTAssertEqual(h.feed(first), .incomplete)
        XCTAssertEqual(h.feed(late), .dropped(.tooLarge))
        XCTAssertEqual(h.feed(late), .incomplete)
        XCTAssertEqual(h.feed(first), .dropped(.tooLarge))
        XCTAssertEqual(h.counters.datagramsAbandoned, 2)
        XCTAssertEqual(h.counters.bytesHeld, 0)

        // The largest legal IPv4 datagram (20-byte header, 65515 data bytes) reassembles.
        var config = DefragmentConfig()
        config.maxFragmentsPerDatagram = 64
        let big = Harness(config)
        var result: Outcome = .incomplete
        var offset = 0
        while offset < 65515 {
            let length = min(1480, 65515 - offset)
            result = big.feed(fragment(offset, length, more: offset + length < 65515, fill: UInt8(truncatingIfNeeded: offset / 1480), id: 9))
            offset += length
        }
        XCTAssertEqual(result.datagram?.count, 65535)
    }

    func testUnfragmentablePartLongerThanTheCapIsRefused() {
        let h = Harness()
        let long: [PacketBuilder.IPv6Extension] = [.hopByHop(options: Array(repeating: 0, count: 300))]
        let later = FragmentFactory.ipv6(FragmentSpec(offset: 8, data: Array(repeating: 2, count: 8), more: false), id: 3, extensions: long)
        let first = FragmentFactory.ipv6(FragmentSpec(offset: 0, data: Array(repeating: 1, count: 8), more: true), id: 3, extensions: long)
        XCTAssertEqual(h.feed(later), .incomplete)
        XCTAssertEqual(h.feed(first), .dropped(.headerTooLong))
        XCTAssertEqual(h.counters.datagramsAbandoned, 1)

        var config = DefragmentConfig()
        config.maxUnfragmentableBytes = 512
        let roomy = Harness(config)
        XCTAssertEqual(roomy.feed(later), .incomplete)
        let datagram = roomy.feed(first).datagram
        XCTAssertEqual(datagram.map { Array($0.suffix(16)) }, Array(repeating: 1, count: 8) + Array(repeating: 2, count: 8))
    }

    // MARK: - Consistency: teardrop and length conflicts

    func testTeardropAndLengthConflictsAbandonTheDatagram() {
        for ipv6 in [false, true] {
            let h = Harness()
            // Classic teardrop: a last fragment ending inside held data.
            XCTAssertEqual(h.feed(fragment(0, 40, more: true, ipv6: ipv6, id: 1)), .incomplete)
            XCTAssertEqual(h.feed(fragment(24, 4, more: false, ipv6: ipv6, id: 1)), .dropped(.teardrop))
            // An overlapping fragment running past the known end.
            XCTAssertEqual(h.feed(fragment(8, 8, more: false, ipv6: ipv6, id: 2)), .incomplete)
            XCTAssertEqual(h.feed(fragment(8, 16, more: true, ipv6: ipv6, id: 2)), .dropped(.teardrop))
            // A last fragment ending before held data, without overlap.
            XCTAssertEqual(h.feed(fragment(24, 8, more: true, ipv6: ipv6, id: 3)), .incomplete)
            XCTAssertEqual(h.feed(fragment(8, 8, more: false, ipv6: ipv6, id: 3)), .dropped(.lengthConflict))
            // Data past the known end, without overlap.
            XCTAssertEqual(h.feed(fragment(8, 8, more: false, ipv6: ipv6, id: 4)), .incomplete)
            XCTAssertEqual(h.feed(fragment(16, 8, more: true, ipv6: ipv6, id: 4)), .dropped(.lengthConflict))
            // Two last fragments with different ends.
            XCTAssertEqual(h.feed(fragment(8, 8, more: false, ipv6: ipv6, id: 5)), .incomplete)
            XCTAssertEqual(h.feed(fragment(16, 8, more: false, ipv6: ipv6, id: 5)), .dropped(.lengthConflict))
            // The same last fragment twice is fine.
            XCTAssertEqual(h.feed(fragment(8, 8, more: false, ipv6: ipv6, id: 6)), .incomplete)
            XCTAssertEqual(h.feed(fragment(8, 8, more: false, ipv6: ipv6, id: 6)), .incomplete)
            XCTAssertNotNil(h.feed(fragment(0, 8, more: true, ipv6: ipv6, id: 6)).datagram)

            let c = h.counters
            XCTAssertEqual(c.drops[.teardrop], 2)
            XCTAssertEqual(c.drops[.lengthConflict], 3)
            XCTAssertEqual(c.datagramsAbandoned, 5)
            XCTAssertEqual(c.datagramsHeld, 0)
            XCTAssertEqual(c.bytesHeld, 0)
            assertBalanced(c)
        }
    }

    // MARK: - Tiny, unaligned, zero-length and atomic fragments

    func testTinyFragmentsAreCountedAndStillReassembled() {
        let h = Harness()
        // A TCP first fragment of 8 bytes cannot hold the 20-byte header (RFC 1858 §3.1).
        let tcp = FragmentFactory.ipv4(FragmentSpec(offset: 0, data: Array(repeating: 0, count: 8), more: true), id: 1, proto: IPProtocol.tcp)
        XCTAssertEqual(h.feed(tcp), .incomplete)
        XCTAssertEqual(h.counters.tinyFragments, 1)
        let rest = FragmentFactory.ipv4(FragmentSpec(offset: 8, data: Array(repeating: 0, count: 100), more: false), id: 1, proto: IPProtocol.tcp)
        XCTAssertNotNil(h.feed(rest).datagram)
        XCTAssertEqual(h.counters.tinyFragments, 1, "a short last fragment is not tiny")

        // A non-last fragment under the threshold (64 by default).
        XCTAssertEqual(h.feed(fragment(8, 56, more: true, id: 2)), .incomplete)
        XCTAssertEqual(h.counters.tinyFragments, 2)
        XCTAssertEqual(h.feed(fragment(64, 64, more: true, id: 2)), .incomplete)
        XCTAssertEqual(h.counters.tinyFragments, 2)

        // IPv6: the header chain after the Fragment header does not reach TCP (RFC 7112).
        let chainCut = FragmentFactory.ipv6(FragmentSpec(offset: 0, data: [IPProtocol.tcp, 0, 1, 4, 0, 0, 0, 0] + Array(repeating: 0, count: 64), more: true),
                                            id: 3, proto: IPv6NextHeader.destinationOptions)
        XCTAssertEqual(h.feed(chainCut), .incomplete)
        XCTAssertEqual(h.counters.tinyFragments, 2, "72 bytes hold the 8-byte option header and 20 bytes of TCP")
        // A 64-byte Destination Options header (one PadN) fills the fragment: no room for TCP.
        let chainShort = FragmentFactory.ipv6(FragmentSpec(offset: 0, data: [IPProtocol.tcp, 7, 1, 62] + Array(repeating: 0, count: 60), more: true),
                                              id: 4, proto: IPv6NextHeader.destinationOptions)
        XCTAssertEqual(h.feed(chainShort), .incomplete)
        XCTAssertEqual(h.counters.tinyFragments, 3)

        var config = DefragmentConfig()
        config.tinyFragmentBytes = 0
        let quiet = Harness(config)
        XCTAssertEqual(quiet.feed(fragment(8, 8, more: true)), .incomplete)
        XCTAssertEqual(quiet.counters.tinyFragments, 0)
        XCTAssertEqual(quiet.feed(tcp), .incomplete)
        XCTAssertEqual(quiet.counters.tinyFragments, 1, "the header check stays on")
    }

    func testUnalignedAndZeroLengthFragments() {
        let h = Harness()
        // IPv4: a non-last fragment of 12 bytes is cut to 8, as Linux does.
        XCTAssertEqual(h.feed(fragment(0, 12, more: true, fill: 0x61, id: 1)), .incomplete)
        let datagram = h.feed(fragment(8, 8, more: false, fill: 0x62, id: 1)).datagram
        XCTAssertEqual(datagram.map(reassembledPayload), Array(repeating: 0x61, count: 8) + Array(repeating: 0x62, count: 8))
        // IPv6 discards it (RFC 8200 §4.5).
        XCTAssertEqual(h.feed(fragment(0, 12, more: true, ipv6: true, id: 2)), .dropped(.unaligned))
        XCTAssertEqual(h.counters.unalignedFragments, 2)
        // No data at all; and a 4-byte IPv4 non-last fragment, which cutting empties.
        XCTAssertEqual(h.feed(fragment(8, 0, more: true, id: 3)), .dropped(.zeroLength))
        XCTAssertEqual(h.feed(fragment(8, 0, more: false, ipv6: true, id: 3)), .dropped(.zeroLength))
        XCTAssertEqual(h.feed(fragment(8, 4, more: true, id: 3)), .dropped(.zeroLength))
        XCTAssertEqual(h.counters.datagramsHeld, 0)
        assertBalanced(h.counters)
    }

    func testAtomicFragmentIsReturnedAloneWithoutDisturbingHeldDatagrams() {
        let h = Harness()
        XCTAssertEqual(h.feed(fragment(0, 8, more: true, fill: 0x61, ipv6: true, id: 5)), .incomplete)
        var header = PacketBuilder.IPv6(source: Addresses.v6a, destination: Addresses.v6b)
        header.extensions = [.destinationOptions()]
        let payload = [UInt8](repeating: 0x7A, count: 30)
        let atomic = FragmentFactory.ipv6(FragmentSpec(offset: 0, data: payload, more: false), id: 5, extensions: header.extensions)
        XCTAssertEqual(h.feed(atomic).datagram, PacketBuilder.ip(.ipv6(header), protocol: 253, payload: payload))
        XCTAssertEqual(h.counters.atomicFragments, 1)
        let rest = h.feed(fragment(8, 8, more: false, fill: 0x62, ipv6: true, id: 5)).datagram
        XCTAssertEqual(rest.map(reassembledPayload), Array(repeating: 0x61, count: 8) + Array(repeating: 0x62, count: 8))
        assertBalanced(h.counters)
    }

    // MARK: - Bad input

    func testNonFragmentsAndInconsistentPacketStructsAreRefused() {
        let defrag = Defragmenter()
        var decoder = PacketDecoder()
        var packet = DecodedPacket()
        let whole = PacketBuilder.ip(.ipv4(PacketBuilder.IPv4(source: Addresses.v4a, destination: Addresses.v4b)), protocol: 253, payload: [1, 2, 3])
        whole.withUnsafeBytes { raw in
            decoder.decode(raw, originalLength: raw.count, linkType: .raw, into: &packet)
            guard case .dropped(.notFragment) = defrag.process(packet, bytes: raw, vlan: 0, timestamp: .zero) else { return XCTFail("accepted a whole packet") }
        }
        // An IPv6 fragment whose struct points the Fragment header at the wrong place.
        let frame = fragment(0, 16, more: true, ipv6: true)
        frame.withUnsafeBytes { raw in
            decoder.decode(raw, originalLength: raw.count, linkType: .raw, into: &packet)
            packet.ipv6FragmentHeaderOffset += 8
            guard case .dropped(.malformed) = defrag.process(packet, bytes: raw, vlan: 0, timestamp: .zero) else { return XCTFail("followed a wrong offset") }
            packet.networkOffset = raw.count + 3
            guard case .dropped(.notFragment) = defrag.process(packet, bytes: raw, vlan: 0, timestamp: .zero) else { return XCTFail("read past the end") }
        }
        XCTAssertEqual(defrag.counters.drops[.notFragment], 2)
        XCTAssertEqual(defrag.counters.drops[.malformed], 1)
    }

    /// Every prefix of a fragment captured short (snaplen) is refused, never held.
    func testTruncationSweep() {
        var header6 = PacketBuilder.IPv6(source: Addresses.v6a, destination: Addresses.v6b)
        header6.extensions = [.hopByHop(options: [5, 2, 0, 0]), .routing(), .fragment(offset: 0, more: true, identification: 77)]
        var header4 = PacketBuilder.IPv4(source: Addresses.v4a, destination: Addresses.v4b)
        header4.moreFragments = true
        header4.options = [0x94, 4, 0, 0]
        let frames: [(PacketBuilder.Link, [UInt8])] = [
            (.ethernet(vlans: [PacketBuilder.VLANTag(id: 7)]), PacketBuilder.ip(.ipv4(header4), protocol: IPProtocol.udp, payload: Array(repeating: 3, count: 64))),
            (.linuxSLL, PacketBuilder.ip(.ipv6(header6), protocol: IPProtocol.udp, payload: Array(repeating: 4, count: 64))),
        ]
        for (link, datagram) in frames {
            let frame = PacketBuilder.wrap(link: link, datagram: datagram)
            let defrag = Defragmenter()
            var decoder = PacketDecoder()
            var packet = DecodedPacket()
            for cut in 0 ... frame.count {
                frame.withUnsafeBytes { whole in
                    let raw = UnsafeRawBufferPointer(rebasing: whole[0 ..< cut])
                    decoder.decode(raw, originalLength: frame.count, linkType: link.linkType, into: &packet)
                    guard packet.isFragment else { return }
                    let result = defrag.process(packet, bytes: raw, vlan: 0, timestamp: Timestamp(nanoseconds: Int64(cut)))
                    switch result {
                    case .dropped(.truncated): XCTAssertLessThan(cut, frame.count)
                    case .incomplete: XCTAssertEqual(cut, frame.count, "held a fragment cut at \(cut)")
                    default: XCTFail("cut \(cut): \(result)")
                    }
                }
            }
            XCTAssertEqual(defrag.counters.datagramsHeld, 1)
            XCTAssertGreaterThan(defrag.counters.drops[.truncated], 20)
        }
    }

    /// Random bytes, forged packet structs and mutated fragments: nothing traps, the books balance, the caps hold.
    func testGarbageAndMutationSweepNeverTraps() {
        var rng = SeededRandom(seed: 0xBAD_F00D)
        var config = DefragmentConfig()
        config.maxTotalBytes = 64 << 10
        config.maxBytesPerSource = 16 << 10
        config.maxDatagrams = 64
        let h = Harness(config)
        var valid: [[UInt8]] = []
        for id in 0 ..< 8 {
            valid.append(FragmentFactory.ipv4(FragmentSpec(offset: 8 * id, data: rng.bytes(24), more: id < 7), id: 1, options: [1, 1, 0x94, 4, 0, 0]))
            valid.append(FragmentFactory.ipv6(FragmentSpec(offset: 8 * id, data: rng.bytes(24), more: id < 7), id: 1,
                                              extensions: [.hopByHop(options: [5, 2, 0, 0]), .destinationOptions()]))
        }
        for step in 0 ..< 30000 {
            let now = Int64(step) * 1_000_000
            var bytes: [UInt8]
            switch step % 3 {
            case 0:
                bytes = rng.bytes(Int.random(in: 0 ... 120, using: &rng))
                if !bytes.isEmpty { bytes[0] = rng.chance(50) ? 0x45 : 0x60 }
                if bytes.count > 6 && rng.chance(50) { bytes[6] |= 0x20 }
            case 1:
                bytes = valid[Int.random(in: 0 ..< valid.count, using: &rng)]
                for _ in 0 ..< Int.random(in: 1 ... 3, using: &rng) {
                    bytes[Int.random(in: 0 ..< bytes.count, using: &rng)] = UInt8.random(in: 0 ... 255, using: &rng)
                }
            default:
                bytes = valid[Int.random(in: 0 ..< valid.count, using: &rng)]
                bytes = Array(bytes.prefix(Int.random(in: 0 ... bytes.count, using: &rng)))
            }
            h.feed(bytes, at: now)
            // A forged struct over the same bytes.
            var forged = DecodedPacket()
            forged.network = [NetworkLayer.ipv4, .ipv6, .none, .arp][Int.random(in: 0 ..< 4, using: &rng)]
            forged.networkOffset = Int.random(in: -4 ... bytes.count + 4, using: &rng)
            forged.ipv6FragmentHeaderOffset = Int.random(in: -4 ... bytes.count + 4, using: &rng)
            forged.isFragment = true
            _ = bytes.withUnsafeBytes { h.defrag.process(forged, bytes: $0, vlan: 0, timestamp: Timestamp(nanoseconds: now)) }
            if step & 0xFF == 0 {
                XCTAssertLessThanOrEqual(h.counters.bytesHeld, 64 << 10)
                XCTAssertLessThanOrEqual(h.counters.datagramsHeld, 64)
            }
        }
        assertBalanced(h.counters)
        XCTAssertGreaterThan(h.counters.drops[.malformed] + h.counters.drops[.truncated], 100)
        XCTAssertGreaterThan(h.counters.fragmentsReassembled + UInt64(h.counters.fragmentsHeld) + h.counters.fragmentsDiscarded, 100, "mutated fragments reach the table too")
        print("garbage sweep: \(h.counters.fragments) fragments, drops \(h.counters.drops.nonZero.map { "\($0.0.name)=\($0.1)" }.joined(separator: " ")), completed \(h.counters.datagramsCompleted)")
    }
}
