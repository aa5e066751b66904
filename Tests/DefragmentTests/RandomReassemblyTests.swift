import Defragment
import PacketCore
import Wire
import XCTest

/// Seeded impairment simulation: UDP and TCP datagrams (IPv4 with options,
/// IPv6 with extension headers before and after the Fragment header),
/// fragmented at random sizes, shuffled, partly duplicated, interleaved with
/// each other and with unfragmented traffic. Every reassembled datagram must
/// be byte-identical to the one that was fragmented.
final class RandomReassemblyTests: XCTestCase {
    struct Original {
        var datagram: [UInt8]
        var fragments: [[UInt8]]
        var link: PacketBuilder.Link
        var transport: TransportLayer
        var payload: [UInt8]
        var atomic: Bool
    }

    static let ipv4Options: [[UInt8]] = [
        [1, 1, 1, 1],                       // NOPs
        [0x94, 4, 0, 0],                    // Router Alert (RFC 2113)
        [7, 7, 4, 0, 0, 0, 0],              // Record Route, one slot
        [0x44, 12, 5, 0] + [UInt8](repeating: 0, count: 8), // Timestamp (RFC 791)
    ]

    func makeOriginal(_ rng: inout SeededRandom, ipv6: Bool, source: IPAddress, destination: IPAddress, id: UInt32, vlan: UInt16) -> Original {
        let big = rng.chance(3)
        let payload = rng.bytes(big ? Int.random(in: 20000 ... 60000, using: &rng) : Int.random(in: 1 ... 3000, using: &rng))
        let isTCP = rng.chance(50)
        let transport: PacketBuilder.Transport
        if isTCP {
            var tcp = PacketBuilder.TCP(sourcePort: UInt16.random(in: 1024 ... 65535, using: &rng), destinationPort: 80,
                                        sequence: UInt32.random(in: 0 ... .max, using: &rng), acknowledgement: 1, flags: [.ack, .psh])
            if rng.chance(50) { tcp.options = [.nop, .nop, .timestamp(value: 1, echo: 2)] }
            transport = .tcp(tcp)
        } else {
            transport = .udp(sourcePort: UInt16.random(in: 1024 ... 65535, using: &rng), destinationPort: 53)
        }
        let proto = isTCP ? IPProtocol.tcp : IPProtocol.udp
        let segment = PacketBuilder.segment(transport, payload: payload, source: source, destination: destination)
        let link: PacketBuilder.Link = vlan != 0
            ? .ethernet(vlans: [PacketBuilder.VLANTag(id: vlan)])
            : (rng.chance(50) ? .none : .ethernet())

        // Fragment count, then the per-fragment size (a multiple of 8).
        let atomic = ipv6 && rng.chance(5)
        var pieces = Int.random(in: 2 ... (big ? 50 : 20), using: &rng)
        if atomic { pieces = 1 }
        func step(_ length: Int) -> Int { atomic ? length + 8 : max(8, (length + pieces - 1) / pieces + 7) / 8 * 8 }

        if !ipv6 {
            var header = PacketBuilder.IPv4(source: source, destination: destination)
            header.identification = UInt16(truncatingIfNeeded: id)
            header.ttl = UInt8.random(in: 1 ... 255, using: &rng)
            header.tos = UInt8.random(in: 0 ... 255, using: &rng)
            var options: [UInt8] = []
            for option in Self.ipv4Options where rng.chance(30) && options.count + option.count <= 40 { options += option }
            header.options = options
            let datagram = PacketBuilder.ip(.ipv4(header), protocol: proto, payload: segment)
            var fragments = PacketBuilder.fragmentIPv4(datagram, maxPayload: step(segment.count))
            if fragments.count == 1 { fragments = PacketBuilder.fragmentIPv4(datagram, maxPayload: 8 * ((segment.count - 1) / 8)) }
            return Original(datagram: datagram, fragments: fragments, link: link, transport: isTCP ? .tcp : .udp, payload: payload, atomic: false)
        }
        var header = PacketBuilder.IPv6(source: source, destination: destination)
        header.flowLabel = UInt32.random(in: 0 ... 0xFFFFF, using: &rng)
        header.hopLimit = UInt8.random(in: 1 ... 255, using: &rng)
        if rng.chance(40) { header.extensions.append(.hopByHop(options: [5, 2, 0, 0])) }   // Router Alert (RFC 2711)
        if rng.chance(40) { header.extensions.append(.destinationOptions()) }
        if rng.chance(40) { header.extensions.append(.routing(type: 4, segmentsLeft: 0, data: [0, 0, 0, 0])) }
        var fragmentable = segment
        var first = proto
        if rng.chance(30) {
            // Destination Options after the Fragment header: part of the fragmentable data.
            fragmentable = [proto, 0, 1, 4, 0, 0, 0, 0] + segment
            first = IPv6NextHeader.destinationOptions
        }
        let datagram = PacketBuilder.ip(.ipv6(header), protocol: first, payload: fragmentable)
        let fragments = PacketBuilder.fragmentIPv6(header, protocol: first, payload: fragmentable, maxPayload: step(fragmentable.count), identification: id)
        return Original(datagram: datagram, fragments: fragments, link: link, transport: isTCP ? .tcp : .udp, payload: payload, atomic: atomic)
    }

    func runScenario(seed: UInt64, datagramCount: Int) {
        var rng = SeededRandom(seed: seed)
        var originals: [Original] = []
        var nextID: UInt32 = 0x100
        while originals.count < datagramCount {
            let ipv6 = rng.chance(50)
            let source = ipv6 ? IPAddress(high: 0x2001_0DB8_0000_0000, low: UInt64.random(in: 1 ... 8, using: &rng), isIPv6: true)
                              : IPAddress(ipv4: 0x0A00_0000 | UInt32.random(in: 1 ... 8, using: &rng))
            let destination = ipv6 ? Addresses.v6b : Addresses.v4b
            nextID &+= 1
            if rng.chance(20) {
                // The same key on two VLANs: must stay two datagrams.
                originals.append(makeOriginal(&rng, ipv6: ipv6, source: source, destination: destination, id: nextID, vlan: 10))
                originals.append(makeOriginal(&rng, ipv6: ipv6, source: source, destination: destination, id: nextID, vlan: 20))
            } else {
                originals.append(makeOriginal(&rng, ipv6: ipv6, source: source, destination: destination, id: nextID, vlan: 0))
            }
        }

        // (datagram index or -1 for other traffic, frame)
        var events: [(Int, [UInt8], LinkType)] = []
        for (index, original) in originals.enumerated() {
            XCTAssertLessThanOrEqual(original.fragments.count, 50)
            for fragment in original.fragments {
                let frame = PacketBuilder.wrap(link: original.link, datagram: fragment)
                events.append((index, frame, original.link.linkType))
                if rng.chance(10) { events.append((index, frame, original.link.linkType)) }
            }
            if rng.chance(50) {
                var header = PacketBuilder.IPv4(source: Addresses.v4a, destination: Addresses.v4b)
                header.identification = UInt16(truncatingIfNeeded: nextID)
                let frame = PacketBuilder.frame(network: .ipv4(header), transport: .udp(sourcePort: 1, destinationPort: 2), payload: rng.bytes(40))
                events.append((-1, frame, .ethernet))
            }
        }
        events.shuffle(using: &rng)

        let harness = Harness()
        var completions = [Int](repeating: 0, count: originals.count)
        var verifier = PacketDecoder(verifyChecksums: true)
        var decoded = DecodedPacket()
        for (step, (index, frame, link)) in events.enumerated() {
            let outcome = harness.feed(frame, link: link, at: 1_000_000_000 + Int64(step) * 1000)
            if index < 0 {
                XCTAssertEqual(outcome, .notFragment)
                continue
            }
            switch outcome {
            case .incomplete:
                continue
            case .notFragment, .dropped:
                XCTFail("seed \(seed) datagram \(index): \(outcome)")
            case .complete(let datagram):
                completions[index] += 1
                let original = originals[index]
                XCTAssertEqual(datagram, original.datagram, "seed \(seed) datagram \(index) is not byte-identical")
                datagram.withUnsafeBytes { _ = verifier.decode($0, originalLength: $0.count, linkType: .raw, into: &decoded) }
                XCTAssertEqual(decoded.anomaly, .none, "seed \(seed) datagram \(index)")
                XCTAssertFalse(decoded.isFragment)
                XCTAssertEqual(decoded.transport, original.transport)
                XCTAssertEqual(decoded.payloadLength, original.payload.count)
                if decoded.payloadOffset + decoded.payloadLength <= datagram.count {
                    XCTAssertEqual(Array(datagram[decoded.payloadOffset ..< decoded.payloadOffset + decoded.payloadLength]), original.payload)
                }
            }
        }
        for (index, count) in completions.enumerated() {
            XCTAssertGreaterThanOrEqual(count, 1, "seed \(seed) datagram \(index) never completed")
        }
        let counters = harness.counters
        XCTAssertEqual(counters.drops.total, 0, "\(counters.drops.nonZero)")
        XCTAssertEqual(counters.overlapsWithDifferentData, 0)
        XCTAssertEqual(Int(counters.datagramsCompleted + counters.atomicFragments), completions.reduce(0, +))
        XCTAssertEqual(verifier.counters.total, 0)
        // Late duplicates start datagrams that never complete; they expire.
        harness.defrag.expire(now: Timestamp(nanoseconds: 1_000_000_000 + Int64(events.count) * 1000 + 31_000_000_000))
        XCTAssertEqual(harness.counters.datagramsHeld, 0)
        XCTAssertEqual(harness.counters.bytesHeld, 0)
        XCTAssertEqual(harness.counters.fragmentsHeld, 0)
        XCTAssertEqual(harness.counters.datagramsExpired, UInt64(counters.datagramsHeld))
        print("seed \(seed): \(originals.count) datagrams, \(events.count) frames, \(counters.datagramsCompleted) reassembled, \(counters.atomicFragments) atomic, \(counters.overlaps) duplicate overlaps, \(counters.tinyFragments) tiny")
    }

    func testShuffledDuplicatedInterleavedDatagramsReassembleByteIdentical() {
        for seed: UInt64 in [1, 0xF00D, 0xC0FFEE] {
            runScenario(seed: seed, datagramCount: 150)
        }
    }

    /// The same (source, destination, protocol, id) on two VLANs, fragments interleaved.
    func testSameIdentificationOnTwoVLANsDoesNotMerge() {
        let harness = Harness()
        var frames: [[UInt8]] = []
        for (vlan, fill) in [(UInt16(10), UInt8(ascii: "a")), (20, UInt8(ascii: "b"))] {
            let specs = [FragmentSpec(offset: 0, data: Array(repeating: fill, count: 16), more: true),
                         FragmentSpec(offset: 16, data: Array(repeating: fill, count: 8), more: false)]
            for spec in specs {
                frames.append(PacketBuilder.wrap(link: .ethernet(vlans: [PacketBuilder.VLANTag(id: vlan)]), datagram: FragmentFactory.ipv4(spec, id: 99)))
            }
        }
        // a0, b0, a1, b1
        XCTAssertEqual(harness.feed(frames[0], link: .ethernet), .incomplete)
        XCTAssertEqual(harness.feed(frames[2], link: .ethernet), .incomplete)
        XCTAssertEqual(harness.counters.datagramsHeld, 2)
        XCTAssertEqual(harness.feed(frames[1], link: .ethernet).datagram.map(reassembledPayload), Array(repeating: UInt8(ascii: "a"), count: 24))
        XCTAssertEqual(harness.feed(frames[3], link: .ethernet).datagram.map(reassembledPayload), Array(repeating: UInt8(ascii: "b"), count: 24))
        XCTAssertEqual(harness.counters.overlaps, 0)
    }
}
