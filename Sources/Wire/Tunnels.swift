import PacketCore

/// Encapsulations `PacketDecoder` can see through when `decapsulateTunnels` is on.
public enum TunnelKind: UInt8, Sendable {
    case none
    /// IPv4 or IPv6 directly inside IP (protocols 4 and 41; RFC 2003, RFC 4213).
    case ipInIP
    /// GRE (RFC 2784/2890; version 1 as PPTP uses it, RFC 2637), also over UDP port 4754 (RFC 8086).
    case gre
    /// VXLAN, UDP port 4789 (RFC 7348).
    case vxlan
    /// Geneve, UDP port 6081 (RFC 8926).
    case geneve
    /// GTP-U G-PDUs, UDP port 2152 (3GPP TS 29.281).
    case gtpU
}

extension PacketDecoder {
    /// Decodes the packet inside an IP-protocol tunnel (IP-in-IP, GRE) whose header starts at `offset`.
    /// Returns false when `proto` is not a tunnel this decoder follows.
    mutating func decapsulateIPProtocol(_ proto: UInt8, _ bytes: UnsafeRawBufferPointer, at offset: Int, end: Int, snapCut: Bool, _ packet: inout DecodedPacket) -> Bool {
        switch proto {
        case 4, 41:
            enterTunnel(.ipInIP, &packet)
            let inner = bytes.slice(0, end)
            if proto == 4 { decodeIPv4(inner, at: offset, snapCut: snapCut, &packet) } else { decodeIPv6(inner, at: offset, snapCut: snapCut, &packet) }
            return true
        case 47:
            return decapsulateGRE(bytes.slice(0, end), at: offset, snapCut: snapCut, &packet)
        default:
            return false
        }
    }

    /// Decodes the packet inside a UDP tunnel whose UDP payload starts at `offset`. Returns false when the ports name none.
    mutating func decapsulateUDP(_ bytes: UnsafeRawBufferPointer, at offset: Int, end: Int, snapCut: Bool, _ packet: inout DecodedPacket) -> Bool {
        let inner = bytes.slice(0, end)
        let sp = packet.sourcePort, dp = packet.destinationPort
        if dp == 4789 || sp == 4789 {
            // RFC 7348 §5: 8 bytes, the I flag (0x08) set, then an Ethernet frame.
            guard offset + 8 + 14 <= end, bytes[offset] & 0x08 != 0 else { return false }
            enterTunnel(.vxlan, &packet)
            decodeEtherType(inner.beUInt16(at: offset + 20), inner, at: offset + 22, snapCut: snapCut, &packet)
            return true
        }
        if dp == 6081 || sp == 6081 {
            // RFC 8926 §3.4: version 0, options length in 4-byte words, protocol type.
            guard offset + 8 <= end, bytes[offset] >> 6 == 0 else { return false }
            let headerLength = 8 + Int(bytes[offset] & 0x3F) * 4
            guard offset + headerLength <= end else { return false }
            enterTunnel(.geneve, &packet)
            decodeTunnelPayload(protocolType: inner.beUInt16(at: offset + 2), inner, at: offset + headerLength, snapCut: snapCut, &packet)
            return true
        }
        if dp == 2152 || sp == 2152 {
            return decapsulateGTPU(inner, at: offset, snapCut: snapCut, &packet)
        }
        if dp == 4754 || sp == 4754 {
            return decapsulateGRE(inner, at: offset, snapCut: snapCut, &packet)
        }
        return false
    }

    private mutating func enterTunnel(_ kind: TunnelKind, _ packet: inout DecodedPacket) {
        if packet.tunnelDepth == 0 { packet.tunnel = kind }
        packet.tunnelDepth &+= 1
        // The inner packet replaces the outer one's transport fields.
        packet.transport = .none
        packet.sourcePort = 0
        packet.destinationPort = 0
        packet.isFragment = false
        packet.moreFragments = false
        packet.fragmentOffset = 0
    }

    /// RFC 2784 §2.1 / RFC 2890 §2: checksum, key and sequence words are optional; version 1 (RFC 2637 §4.1)
    /// always has a key and may carry an acknowledgement.
    private mutating func decapsulateGRE(_ bytes: UnsafeRawBufferPointer, at offset: Int, snapCut: Bool, _ packet: inout DecodedPacket) -> Bool {
        guard offset + 4 <= bytes.count else { return false }
        let flags = bytes.beUInt16(at: offset)
        let version = flags & 0x7
        guard version <= 1, flags & 0x4000 == 0 else { return false } // no source routing
        var length = 4
        if flags & 0x8000 != 0 { length += 4 } // checksum + reserved
        if flags & 0x2000 != 0 { length += 4 } // key (call ID in version 1)
        if flags & 0x1000 != 0 { length += 4 } // sequence
        if version == 1 && flags & 0x0080 != 0 { length += 4 } // acknowledgement
        guard offset + length <= bytes.count else { return false }
        enterTunnel(.gre, &packet)
        decodeTunnelPayload(protocolType: bytes.beUInt16(at: offset + 2), bytes, at: offset + length, snapCut: snapCut, &packet)
        return true
    }

    /// 3GPP TS 29.281 §5.1: version 1, protocol type GTP, message type 255 (G-PDU); a 4-byte optional
    /// field when any of E, S, PN is set, then extension headers (length in 4-byte units, next type last).
    private mutating func decapsulateGTPU(_ bytes: UnsafeRawBufferPointer, at offset: Int, snapCut: Bool, _ packet: inout DecodedPacket) -> Bool {
        guard offset + 8 <= bytes.count else { return false }
        let flags = bytes[offset]
        guard flags >> 5 == 1, flags & 0x10 != 0, bytes[offset + 1] == 0xFF else { return false }
        var cursor = offset + 8
        if flags & 0x07 != 0 {
            guard cursor + 4 <= bytes.count else { return false }
            var next = bytes[cursor + 3]
            cursor += 4
            var count = 0
            while flags & 0x04 != 0 && next != 0 {
                guard cursor < bytes.count, count < 8 else { return false }
                let length = Int(bytes[cursor]) * 4
                guard length > 0, cursor + length <= bytes.count else { return false }
                next = bytes[cursor + length - 1]
                cursor += length
                count += 1
            }
        }
        guard cursor < bytes.count else { return false }
        enterTunnel(.gtpU, &packet)
        switch bytes[cursor] >> 4 {
        case 4: decodeIPv4(bytes, at: cursor, snapCut: snapCut, &packet)
        case 6: decodeIPv6(bytes, at: cursor, snapCut: snapCut, &packet)
        default: packet.network = .other
        }
        return true
    }

    /// What a GRE or Geneve protocol type names: IP, Ethernet (0x6558), PPP (0x880B), or ERSPAN type II.
    private mutating func decodeTunnelPayload(protocolType: UInt16, _ bytes: UnsafeRawBufferPointer, at offset: Int, snapCut: Bool, _ packet: inout DecodedPacket) {
        switch protocolType {
        case EtherType.ipv4: decodeIPv4(bytes, at: offset, snapCut: snapCut, &packet)
        case EtherType.ipv6: decodeIPv6(bytes, at: offset, snapCut: snapCut, &packet)
        case 0x6558:
            guard offset + 14 <= bytes.count else {
                flag(.truncatedLinkHeader, &packet)
                return
            }
            decodeEtherType(bytes.beUInt16(at: offset + 12), bytes, at: offset + 14, snapCut: snapCut, &packet)
        case 0x880B: decodePPP(bytes, at: offset, snapCut: snapCut, &packet)
        case 0x88BE:
            // ERSPAN type II: an 8-byte header, then the mirrored Ethernet frame.
            guard offset + 8 + 14 <= bytes.count else {
                flag(.truncatedLinkHeader, &packet)
                return
            }
            decodeEtherType(bytes.beUInt16(at: offset + 20), bytes, at: offset + 22, snapCut: snapCut, &packet)
        default:
            packet.network = .other
        }
    }
}
