import PacketCore

/// Decodes link, network and transport headers into a caller-owned `DecodedPacket`.
///
/// Invariants:
/// - Every read is preceded by a length check against the captured bytes;
///   wire arithmetic uses wrapping operators, so no input traps.
/// - No allocation or `String` per packet; problems become `Anomaly` codes,
///   counted in `counters`. The first one is also kept in the packet.
/// - Limits: `maxVLANDepth` tags (default 4, at most `DecodedPacket.maxVLANTags`),
///   `maxIPv6Extensions` extension headers (default 8), 4 MPLS labels.
public struct PacketDecoder: Sendable {
    /// Verify IPv4 header, TCP, UDP and ICMP checksums (counted as anomalies).
    public var verifyChecksums: Bool
    public var maxVLANDepth: Int
    public var maxIPv6Extensions: Int
    /// Decode the packet inside IP-in-IP, GRE, VXLAN, Geneve and GTP-U tunnels (off: report the outer packet, as tcpdump does).
    public var decapsulateTunnels = false
    /// At most this many tunnels are opened; a deeper one is reported as it is.
    public var maxTunnelDepth = 3
    public var counters = AnomalyCounters()

    public init(verifyChecksums: Bool = false, maxVLANDepth: Int = 4, maxIPv6Extensions: Int = 8) {
        self.verifyChecksums = verifyChecksums
        self.maxVLANDepth = min(max(0, maxVLANDepth), DecodedPacket.maxVLANTags)
        self.maxIPv6Extensions = max(0, maxIPv6Extensions)
    }

    /// Decodes one packet.
    /// - Parameters:
    ///   - bytes: the captured bytes.
    ///   - originalLength: the length on the wire, which tells a snaplen cut
    ///     from a lying length field; pass `bytes.count` when unknown.
    ///   - linkType: the capture's link type for this packet.
    /// - Returns: the first anomaly, `.none` for a clean packet.
    @discardableResult
    public mutating func decode(
        _ bytes: UnsafeRawBufferPointer,
        originalLength: Int,
        linkType: LinkType,
        into packet: inout DecodedPacket
    ) -> Anomaly {
        packet.reset(linkType: linkType, capturedLength: bytes.count)
        let snapCut = originalLength > bytes.count
        switch linkType {
        case .ethernet:
            guard bytes.count >= 14 else { return flag(.truncatedLinkHeader, &packet) }
            decodeEtherType(bytes.beUInt16(at: 12), bytes, at: 14, snapCut: snapCut, &packet)
        case .raw, .rawBSD12, .rawBSD14:
            decodeRawIP(bytes, at: 0, snapCut: snapCut, &packet)
        case .ipv4, .ipv6:
            // Like tcpdump, trust the version nibble over the link type's promise.
            decodeRawIP(bytes, at: 0, snapCut: snapCut, &packet)
        case .slip:
            guard bytes.count >= 16 else { return flag(.truncatedLinkHeader, &packet) }
            decodeRawIP(bytes, at: 16, snapCut: snapCut, &packet)
        case .ppp, .pppSerial:
            decodePPP(bytes, at: 0, snapCut: snapCut, &packet)
        case .frameRelay:
            decodeFrameRelay(bytes, snapCut: snapCut, &packet)
        case .ciscoHDLC:
            guard bytes.count >= 4 else { return flag(.truncatedLinkHeader, &packet) }
            decodeEtherType(bytes.beUInt16(at: 2), bytes, at: 4, snapCut: snapCut, &packet)
        case .null, .loop:
            guard bytes.count >= 4 else { return flag(.truncatedLinkHeader, &packet) }
            // DLT_NULL is in the writer's byte order; a value above 0xFFFF means the other one.
            var family = linkType == .loop ? bytes.beUInt32(at: 0) : bytes.leUInt32(at: 0)
            if family > 0xFFFF { family = family.byteSwapped }
            switch family {
            case 2: decodeIPv4(bytes, at: 4, snapCut: snapCut, &packet)
            case 10, 24, 28, 30: decodeIPv6(bytes, at: 4, snapCut: snapCut, &packet)
            default: return flag(.unknownLoopbackFamily, &packet)
            }
        case .linuxSLL:
            guard bytes.count >= 16 else { return flag(.truncatedLinkHeader, &packet) }
            decodeEtherType(bytes.beUInt16(at: 14), bytes, at: 16, snapCut: snapCut, &packet)
        case .linuxSLL2:
            guard bytes.count >= 20 else { return flag(.truncatedLinkHeader, &packet) }
            decodeEtherType(bytes.beUInt16(at: 0), bytes, at: 20, snapCut: snapCut, &packet)
        default:
            return flag(.unknownLinkType, &packet)
        }
        return packet.anomaly
    }

    /// Records an anomaly: counted always, kept in the packet if it is the first.
    @inlinable @inline(__always)
    @discardableResult
    mutating func flag(_ anomaly: Anomaly, _ packet: inout DecodedPacket) -> Anomaly {
        counters.record(anomaly)
        packet.anomalyBits |= 1 << UInt64(anomaly.rawValue)
        if packet.anomaly == .none { packet.anomaly = anomaly }
        return packet.anomaly
    }

    /// RFC 2427: a Q.922 address (2–4 bytes, last byte has EA=1), UI control 0x03,
    /// optional 0x00 pad, then an NLPID: 0xCC IPv4, 0x8E IPv6, 0x80 SNAP (OUI + EtherType);
    /// or, in Cisco's variant, an EtherType right after the address.
    mutating func decodeFrameRelay(_ bytes: UnsafeRawBufferPointer, snapCut: Bool, _ packet: inout DecodedPacket) {
        var offset = 0
        while offset < min(bytes.count, 4) && bytes[offset] & 1 == 0 { offset += 1 }
        offset += 1
        guard offset + 2 <= bytes.count else {
            flag(.truncatedLinkHeader, &packet)
            return
        }
        // Cisco's encapsulation puts an EtherType right after the address.
        if bytes[offset] != 0x03 {
            decodeEtherType(bytes.beUInt16(at: offset), bytes, at: offset + 2, snapCut: snapCut, &packet)
            return
        }
        offset += 1
        if bytes[offset] == 0x00 { offset += 1 }
        guard offset < bytes.count else {
            flag(.truncatedLinkHeader, &packet)
            return
        }
        switch bytes[offset] {
        case 0xCC: decodeIPv4(bytes, at: offset + 1, snapCut: snapCut, &packet)
        case 0x8E: decodeIPv6(bytes, at: offset + 1, snapCut: snapCut, &packet)
        case 0x80:
            guard offset + 6 <= bytes.count else {
                flag(.truncatedLinkHeader, &packet)
                return
            }
            decodeEtherType(bytes.beUInt16(at: offset + 4), bytes, at: offset + 6, snapCut: snapCut, &packet)
        default: packet.network = .other
        }
    }

    /// A PPP frame: RFC 1662 address/control (0xFF 0x03) may be absent, and RFC 1661 §6.5
    /// protocol-field compression allows a 1-byte protocol (odd values).
    mutating func decodePPP(_ bytes: UnsafeRawBufferPointer, at start: Int, snapCut: Bool, _ packet: inout DecodedPacket) {
        var offset = start
        if offset + 2 <= bytes.count && bytes[offset] == 0xFF && bytes[offset + 1] == 0x03 { offset += 2 }
        guard offset < bytes.count else {
            flag(.truncatedLinkHeader, &packet)
            return
        }
        var pppProtocol = UInt16(bytes[offset])
        if pppProtocol & 1 == 0 {
            guard offset + 2 <= bytes.count else {
                flag(.truncatedLinkHeader, &packet)
                return
            }
            pppProtocol = bytes.beUInt16(at: offset)
            offset += 2
        } else {
            offset += 1
        }
        decodePPPProtocol(pppProtocol, bytes, at: offset, snapCut: snapCut, &packet)
    }

    /// PPP protocol numbers (RFC 1661 §2, IANA PPP DLL protocol numbers).
    mutating func decodePPPProtocol(_ pppProtocol: UInt16, _ bytes: UnsafeRawBufferPointer, at offset: Int, snapCut: Bool, _ packet: inout DecodedPacket) {
        switch pppProtocol {
        case 0x0021: decodeIPv4(bytes, at: offset, snapCut: snapCut, &packet)
        case 0x0057: decodeIPv6(bytes, at: offset, snapCut: snapCut, &packet)
        case 0x0281, 0x0283: decodeMPLS(bytes, at: offset, snapCut: snapCut, &packet)
        default: packet.network = .other
        }
    }

    mutating func decodeRawIP(_ bytes: UnsafeRawBufferPointer, at offset: Int, snapCut: Bool, _ packet: inout DecodedPacket) {
        guard offset < bytes.count else {
            flag(.truncatedIPv4, &packet)
            return
        }
        switch bytes[offset] >> 4 {
        case 4: decodeIPv4(bytes, at: offset, snapCut: snapCut, &packet)
        case 6: decodeIPv6(bytes, at: offset, snapCut: snapCut, &packet)
        default: flag(.ipv4BadVersion, &packet)
        }
    }
}
