import PacketCore

/// EtherType values (IEEE 802 numbers) that FlowTap follows.
public enum EtherType {
    public static let ipv4: UInt16 = 0x0800
    public static let arp: UInt16 = 0x0806
    public static let vlan: UInt16 = 0x8100
    public static let qinq: UInt16 = 0x88A8
    /// Pre-standard QinQ outer tag used by some switches.
    public static let qinqLegacy: UInt16 = 0x9100
    public static let ipv6: UInt16 = 0x86DD
    public static let mplsUnicast: UInt16 = 0x8847
    public static let mplsMulticast: UInt16 = 0x8848
    public static let pppoeSession: UInt16 = 0x8864
}

extension PacketDecoder {
    /// Follows 802.1Q/802.1ad/0x9100 tags, MPLS and PPPoE session headers to the network layer.
    mutating func decodeEtherType(_ type: UInt16, _ bytes: UnsafeRawBufferPointer, at start: Int, snapCut: Bool, _ packet: inout DecodedPacket) {
        var etherType = type
        var offset = start
        // 802.1Q / 802.1ad tags: 2 bytes TCI (VID in the low 12 bits), 2 bytes next type.
        while etherType == EtherType.vlan || etherType == EtherType.qinq || etherType == EtherType.qinqLegacy {
            guard Int(packet.vlanDepth) < maxVLANDepth else {
                flag(.vlanTooDeep, &packet)
                packet.etherType = etherType
                packet.network = .other
                return
            }
            guard offset + 4 <= bytes.count else {
                flag(.truncatedVLAN, &packet)
                return
            }
            packet.vlanIDs[Int(packet.vlanDepth)] = bytes.beUInt16(at: offset) & 0x0FFF
            packet.vlanDepth &+= 1
            etherType = bytes.beUInt16(at: offset + 2)
            offset += 4
        }
        packet.etherType = etherType
        packet.networkOffset = offset
        switch etherType {
        case EtherType.ipv4:
            decodeIPv4(bytes, at: offset, snapCut: snapCut, &packet)
        case EtherType.ipv6:
            decodeIPv6(bytes, at: offset, snapCut: snapCut, &packet)
        case EtherType.arp:
            packet.network = .arp
        case EtherType.mplsUnicast, EtherType.mplsMulticast:
            decodeMPLS(bytes, at: offset, snapCut: snapCut, &packet)
        case EtherType.pppoeSession:
            // RFC 2516 §4: a 6-byte PPPoE header, then a PPP frame.
            guard offset + 6 <= bytes.count else {
                flag(.truncatedLinkHeader, &packet)
                return
            }
            packet.isPPPoE = true
            // The PPPoE length field bounds the frame; bytes after it are Ethernet padding.
            let end = offset + 6 + Int(bytes.beUInt16(at: offset + 4))
            if end < bytes.count {
                decodePPP(bytes.slice(0, end), at: offset + 6, snapCut: snapCut, &packet)
            } else {
                decodePPP(bytes, at: offset + 6, snapCut: snapCut || end > bytes.count, &packet)
            }
        default:
            packet.network = .other
        }
    }

    /// RFC 3032 label stack: 4 bytes a label until the bottom-of-stack bit; IP version by nibble.
    mutating func decodeMPLS(_ bytes: UnsafeRawBufferPointer, at start: Int, snapCut: Bool, _ packet: inout DecodedPacket) {
        var offset = start
        while true {
            guard packet.mplsDepth < 4 else {
                packet.network = .other
                return
            }
            guard offset + 4 <= bytes.count else {
                flag(.truncatedLinkHeader, &packet)
                return
            }
            let entry = bytes.beUInt32(at: offset)
            packet.mplsDepth &+= 1
            offset += 4
            if entry & 0x100 != 0 { break }
        }
        guard offset < bytes.count else {
            flag(.truncatedIPv4, &packet)
            return
        }
        switch bytes[offset] >> 4 {
        case 4: decodeIPv4(bytes, at: offset, snapCut: snapCut, &packet)
        case 6: decodeIPv6(bytes, at: offset, snapCut: snapCut, &packet)
        default: packet.network = .other
        }
    }
}
