import PacketCore
import Wire
import XCTest

final class DecoderTests: XCTestCase {
    func decode(_ bytes: [UInt8], _ linkType: LinkType, originalLength: Int? = nil, verify: Bool = true) -> (DecodedPacket, PacketDecoder) {
        var decoder = PacketDecoder(verifyChecksums: verify)
        var packet = DecodedPacket()
        bytes.withUnsafeBytes { raw in
            _ = decoder.decode(raw, originalLength: originalLength ?? raw.count, linkType: linkType, into: &packet)
        }
        return (packet, decoder)
    }

    /// A TCP SYN with Linux's usual options (MSS, SACK-permitted, timestamps,
    /// NOP, window scale): the bytes are checked against the layout of
    /// RFC 791 §3.1 and RFC 9293 §3.1, then decoded back.
    func testByteExactTCPSynOverEthernet() {
        var header = PacketBuilder.IPv4(source: Fixtures.v4a, destination: Fixtures.v4b)
        header.identification = 0x1C46
        header.dontFragment = true
        var tcp = PacketBuilder.TCP(sourcePort: 0xC350, destinationPort: 443, sequence: 0x0102_0304, flags: [.syn])
        tcp.window = 64240
        tcp.options = [.mss(1460), .sackPermitted, .timestamp(value: 0xAABB_CCDD, echo: 0), .nop, .windowScale(7)]
        let bytes = PacketBuilder.frame(network: .ipv4(header), transport: .tcp(tcp))
        // Ethernet 14 + IPv4 20 + TCP 40.
        XCTAssertEqual(bytes.count, 74)
        XCTAssertEqual(Array(bytes[12 ..< 24]), [0x08, 0x00, 0x45, 0x00, 0x00, 0x3C, 0x1C, 0x46, 0x40, 0x00, 0x40, 0x06])
        XCTAssertEqual(Array(bytes[26 ..< 34]), [192, 0, 2, 1, 198, 51, 100, 7])
        XCTAssertEqual(Array(bytes[34 ..< 48]), [0xC3, 0x50, 0x01, 0xBB, 1, 2, 3, 4, 0, 0, 0, 0, 0xA0, 0x02])
        XCTAssertEqual(Array(bytes[54 ..< 74]), [2, 4, 0x05, 0xB4, 4, 2, 8, 10, 0xAA, 0xBB, 0xCC, 0xDD, 0, 0, 0, 0, 1, 3, 3, 7])

        let (p, d) = decode(bytes, .ethernet)
        XCTAssertEqual(p.anomaly, .none)
        XCTAssertEqual(d.counters.total, 0)
        XCTAssertEqual(p.network, .ipv4)
        XCTAssertEqual(p.transport, .tcp)
        XCTAssertEqual(p.source, Fixtures.v4a)
        XCTAssertEqual(p.destination, Fixtures.v4b)
        XCTAssertEqual(p.sourcePort, 50000)
        XCTAssertEqual(p.destinationPort, 443)
        XCTAssertEqual(p.tcpSequence, 0x0102_0304)
        XCTAssertEqual(p.tcpFlags, [.syn])
        XCTAssertEqual(p.tcpWindow, 64240)
        XCTAssertTrue(p.dontFragment)
        XCTAssertEqual(p.ipIdentification, 0x1C46)
        XCTAssertTrue(p.tcpOptions.hasMSS)
        XCTAssertEqual(p.tcpOptions.mss, 1460)
        XCTAssertTrue(p.tcpOptions.sackPermitted)
        XCTAssertEqual(p.tcpOptions.windowScale, 7)
        XCTAssertEqual(p.tcpOptions.timestampValue, 0xAABB_CCDD)
        XCTAssertEqual(p.payloadLength, 0)
        XCTAssertEqual(p.payloadOffset, 74)
    }

    /// Every fixture decodes back to what was built, with valid checksums.
    func testBuilderRoundTripAcrossLinksNetworksAndTransports() {
        let all = Fixtures.all
        XCTAssertGreaterThan(all.count, 100)
        for fixture in all {
            let (p, d) = decode(fixture.bytes, fixture.link.linkType)
            XCTAssertEqual(p.anomaly, .none, fixture.name)
            XCTAssertEqual(d.counters.total, 0, fixture.name)
            switch fixture.network {
            case .ipv4(let h):
                XCTAssertEqual(p.network, .ipv4, fixture.name)
                XCTAssertEqual(p.source, h.source, fixture.name)
                XCTAssertEqual(p.ipHeaderLength, 20 + h.options.count, fixture.name)
            case .ipv6(let h):
                XCTAssertEqual(p.network, .ipv6, fixture.name)
                XCTAssertEqual(p.destination, h.destination, fixture.name)
                XCTAssertEqual(Int(p.ipv6ExtensionCount), h.extensions.count, fixture.name)
            }
            if case .ethernet(_, _, let vlans) = fixture.link {
                XCTAssertEqual(Int(p.vlanDepth), vlans.count, fixture.name)
                for (i, tag) in vlans.enumerated() { XCTAssertEqual(p.vlanIDs[i], tag.id, fixture.name) }
            }
            switch fixture.transport {
            case .tcp(let t):
                XCTAssertEqual(p.transport, .tcp, fixture.name)
                XCTAssertEqual(p.sourcePort, t.sourcePort, fixture.name)
                XCTAssertEqual(p.tcpSequence, t.sequence, fixture.name)
                XCTAssertEqual(p.payloadLength, 18, fixture.name)
                if t.options.contains(where: { if case .sack = $0 { true } else { false } }) {
                    XCTAssertEqual(p.tcpOptions.sackBlockCount, 2, fixture.name)
                    XCTAssertEqual(p.tcpOptions.sackBlocks[1].left, 300, fixture.name)
                }
            case .udp(let s, let dst):
                XCTAssertEqual(p.transport, .udp, fixture.name)
                XCTAssertEqual(p.sourcePort, s, fixture.name)
                XCTAssertEqual(p.destinationPort, dst, fixture.name)
                XCTAssertEqual(p.payloadLength, 18, fixture.name)
            case .icmp(let type, _, _):
                XCTAssertEqual(p.transport, .icmp, fixture.name)
                XCTAssertEqual(p.icmpType, type, fixture.name)
            case .icmpv6(let type, _, _):
                XCTAssertEqual(p.transport, .icmpv6, fixture.name)
                XCTAssertEqual(p.icmpType, type, fixture.name)
            case .raw: break
            }
            XCTAssertEqual(Array(fixture.bytes[p.payloadOffset ..< p.payloadOffset + p.payloadCapturedLength]).suffix(18),
                           Array("GET / HTTP/1.1\r\n\r\n".utf8)[...], fixture.name)
        }
    }

    /// Every strict prefix of every fixture is a truncation, never a trap.
    func testTruncationSweep() {
        var prefixes = 0
        for fixture in Fixtures.all {
            fixture.bytes.withUnsafeBytes { raw in
                var decoder = PacketDecoder(verifyChecksums: true)
                var packet = DecodedPacket()
                for length in 0 ..< raw.count {
                    decoder.decode(UnsafeRawBufferPointer(rebasing: raw[0 ..< length]), originalLength: raw.count,
                                   linkType: fixture.link.linkType, into: &packet)
                    prefixes += 1
                    if !packet.isTruncated {
                        XCTFail("\(fixture.name): prefix \(length)/\(raw.count) gave \(packet.anomaly.name)")
                        return
                    }
                }
            }
        }
        XCTAssertGreaterThan(prefixes, 10_000)
    }

    func testChecksumErrorsAreCounted() {
        var bytes = PacketBuilder.frame(network: .ipv4(.init(source: Fixtures.v4a, destination: Fixtures.v4b)),
                                        transport: .udp(sourcePort: 1, destinationPort: 2), payload: [1, 2, 3])
        bytes[bytes.count - 1] ^= 0xFF
        var (p, d) = decode(bytes, .ethernet)
        XCTAssertEqual(p.anomaly, .udpBadChecksum)
        XCTAssertEqual(d.counters[.udpBadChecksum], 1)
        bytes[24] ^= 0x01 // IPv4 header checksum
        (p, d) = decode(bytes, .ethernet)
        XCTAssertTrue(p.has(.ipv4BadChecksum))
        (p, d) = decode(bytes, .ethernet, verify: false)
        XCTAssertEqual(p.anomaly, .none)
    }

    /// A frame captured before segmentation offload split it carries IPv4 total length 0: its payload
    /// is what was captured (as Wireshark reads it), counted as an anomaly, not dropped.
    func testTotalLengthZeroIsTheCapturedLength() {
        let payload = (0 ..< 3000).map { UInt8(truncatingIfNeeded: $0) }
        var bytes = PacketBuilder.frame(network: .ipv4(.init(source: Fixtures.v4a, destination: Fixtures.v4b)),
                                        transport: .tcp(.init(sourcePort: 1, destinationPort: 2)), payload: payload)
        bytes[14 + IPv4Header.totalLength] = 0
        bytes[14 + IPv4Header.totalLength + 1] = 0
        let (p, decoder) = decode(bytes, .ethernet, verify: false)
        XCTAssertEqual(p.anomaly, .ipv4ZeroTotalLength)
        XCTAssertEqual(decoder.counters[.ipv4ZeroTotalLength], 1)
        XCTAssertEqual(p.ipTotalLength, 3040)
        XCTAssertEqual(p.payloadLength, 3000)
        XCTAssertEqual(p.payloadCapturedLength, 3000)
        // A bare header with total length 0 stays a bad total length.
        var bare = PacketBuilder.frame(network: .ipv4(.init(source: Fixtures.v4a, destination: Fixtures.v4b)),
                                       transport: .tcp(.init(sourcePort: 1, destinationPort: 2)))
        bare = Array(bare[0 ..< 34])
        bare[14 + IPv4Header.totalLength] = 0
        bare[14 + IPv4Header.totalLength + 1] = 0
        XCTAssertEqual(decode(bare, .ethernet, verify: false).0.anomaly, .ipv4BadTotalLength)
    }

    func testEthernetPaddingIsNotPayload() {
        var bytes = PacketBuilder.frame(network: .ipv4(.init(source: Fixtures.v4a, destination: Fixtures.v4b)),
                                        transport: .tcp(.init(sourcePort: 1, destinationPort: 2)))
        bytes += [UInt8](repeating: 0, count: 6) // pad to 60 bytes
        let (p, _) = decode(bytes, .ethernet)
        XCTAssertEqual(p.anomaly, .none)
        XCTAssertEqual(p.payloadLength, 0)
        XCTAssertEqual(p.payloadCapturedLength, 0)
    }

    func testFragmentsAreRecognisedAndOnlyTheFirstCarriesPorts() {
        let header = PacketBuilder.IPv4(source: Fixtures.v4a, destination: Fixtures.v4b)
        let payload = [UInt8](repeating: 0x41, count: 3000)
        let segment = PacketBuilder.segment(.udp(sourcePort: 1000, destinationPort: 2000), payload: payload, source: header.source, destination: header.destination)
        var h = header
        h.identification = 77
        let datagram = PacketBuilder.ip(.ipv4(h), protocol: IPProtocol.udp, payload: segment)
        let fragments = PacketBuilder.fragmentIPv4(datagram, maxPayload: 1480)
        XCTAssertEqual(fragments.count, 3)
        for (i, fragment) in fragments.enumerated() {
            let (p, _) = decode(fragment, .raw)
            XCTAssertTrue(p.isFragment)
            XCTAssertEqual(p.ipIdentification, 77)
            XCTAssertEqual(p.fragmentOffset, i * 1480)
            XCTAssertEqual(p.moreFragments, i < 2)
            XCTAssertEqual(p.transport, i == 0 ? .udp : .none)
            if i == 0 { XCTAssertEqual(p.sourcePort, 1000) }
        }
        let v6 = PacketBuilder.IPv6(source: Fixtures.v6a, destination: Fixtures.v6b)
        let v6segment = PacketBuilder.segment(.udp(sourcePort: 1000, destinationPort: 2000), payload: payload, source: v6.source, destination: v6.destination)
        let v6fragments = PacketBuilder.fragmentIPv6(v6, protocol: IPProtocol.udp, payload: v6segment, maxPayload: 1232, identification: 0xDEAD_BEEF)
        XCTAssertEqual(v6fragments.count, 3)
        for (i, fragment) in v6fragments.enumerated() {
            let (p, _) = decode(fragment, .raw)
            XCTAssertEqual(p.network, .ipv6)
            XCTAssertTrue(p.isFragment)
            XCTAssertEqual(p.ipIdentification, 0xDEAD_BEEF)
            XCTAssertEqual(p.fragmentOffset, i * 1232)
            XCTAssertEqual(p.ipProtocol, IPProtocol.udp)
            XCTAssertEqual(p.transport, i == 0 ? .udp : .none)
        }
    }

    func testMalformedHeadersBecomeAnomalies() {
        // IHL below 5.
        var bytes = PacketBuilder.ip(.ipv4(.init(source: Fixtures.v4a, destination: Fixtures.v4b)), protocol: 6, payload: [])
        bytes[0] = 0x44
        XCTAssertEqual(decode(bytes, .raw, verify: false).0.anomaly, .ipv4BadHeaderLength)
        // Total length larger than the packet, without a snaplen cut.
        bytes = PacketBuilder.ip(.ipv4(.init(source: Fixtures.v4a, destination: Fixtures.v4b)), protocol: 6, payload: [])
        bytes[3] = 200
        XCTAssertEqual(decode(bytes, .raw, verify: false).0.anomaly, .ipv4BadTotalLength)
        // TCP data offset below 5.
        bytes = PacketBuilder.frame(link: .none, network: .ipv4(.init(source: Fixtures.v4a, destination: Fixtures.v4b)),
                                    transport: .tcp(.init(sourcePort: 1, destinationPort: 2)))
        bytes[32] = 0x20
        XCTAssertEqual(decode(bytes, .raw, verify: false).0.anomaly, .tcpBadDataOffset)
        // UDP length below 8.
        bytes = PacketBuilder.frame(link: .none, network: .ipv4(.init(source: Fixtures.v4a, destination: Fixtures.v4b)),
                                    transport: .udp(sourcePort: 1, destinationPort: 2), payload: [1])
        bytes[25] = 3
        XCTAssertEqual(decode(bytes, .raw, verify: false).0.anomaly, .udpBadLength)
        // Five VLAN tags exceed the default depth of four.
        let tags = (1 ... 5).map { PacketBuilder.VLANTag(id: UInt16($0)) }
        bytes = PacketBuilder.frame(link: .ethernet(vlans: tags), network: .ipv4(.init(source: Fixtures.v4a, destination: Fixtures.v4b)),
                                    transport: .udp(sourcePort: 1, destinationPort: 2))
        XCTAssertEqual(decode(bytes, .ethernet).0.anomaly, .vlanTooDeep)
        // Nine IPv6 extension headers exceed the default limit of eight.
        var v6 = PacketBuilder.IPv6(source: Fixtures.v6a, destination: Fixtures.v6b)
        v6.extensions = [.hopByHop()] + [PacketBuilder.IPv6Extension](repeating: .destinationOptions(), count: 8)
        bytes = PacketBuilder.frame(link: .none, network: .ipv6(v6), transport: .udp(sourcePort: 1, destinationPort: 2))
        XCTAssertEqual(decode(bytes, .raw).0.anomaly, .ipv6TooManyExtensions)
        // A TCP option whose length runs past the header.
        var tcp = PacketBuilder.TCP(sourcePort: 1, destinationPort: 2)
        tcp.options = [.mss(1460)]
        bytes = PacketBuilder.frame(link: .none, network: .ipv4(.init(source: Fixtures.v4a, destination: Fixtures.v4b)), transport: .tcp(tcp))
        bytes[41] = 40
        XCTAssertEqual(decode(bytes, .raw, verify: false).0.anomaly, .tcpBadOption)
    }

    /// Random bytes under every link type: never a trap, and the counters add up.
    func testRandomBytesNeverTrap() {
        var state: UInt64 = 0x1234_5678_9ABC_DEF1
        var decoder = PacketDecoder(verifyChecksums: true)
        var packet = DecodedPacket()
        let linkTypes: [LinkType] = [.ethernet, .raw, .null, .loop, .linuxSLL, .linuxSLL2, .ppp, .slip, .ciscoHDLC, .frameRelay, .ipv4, .ipv6]
        var bytes = [UInt8](repeating: 0, count: 256)
        for round in 0 ..< 50_000 {
            for i in bytes.indices {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                bytes[i] = UInt8(truncatingIfNeeded: state >> 33)
            }
            // Bias toward plausible headers so deeper code is reached.
            if round % 2 == 0 { bytes[14] = 0x45; bytes[12] = 0x08; bytes[13] = 0x00 }
            if round % 3 == 0 { bytes[0] = 0x60 }
            let length = Int(state % 256)
            bytes.withUnsafeBytes { raw in
                decoder.decode(UnsafeRawBufferPointer(rebasing: raw[0 ..< length]), originalLength: length,
                               linkType: linkTypes[round % linkTypes.count], into: &packet)
            }
        }
        XCTAssertGreaterThan(decoder.counters.total, 0)
    }
}
