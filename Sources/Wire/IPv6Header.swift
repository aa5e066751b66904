import PacketCore

/// IPv6 extension header numbers (RFC 8200 §4, RFC 4302, RFC 6275).
public enum IPv6NextHeader {
    public static let hopByHop: UInt8 = 0
    public static let routing: UInt8 = 43
    public static let fragment: UInt8 = 44
    public static let authentication: UInt8 = 51
    public static let noNextHeader: UInt8 = 59
    public static let destinationOptions: UInt8 = 60
    public static let mobility: UInt8 = 135
}

extension PacketDecoder {
    /// RFC 8200 §3 fixed header, then the extension header chain (§4) to the transport.
    mutating func decodeIPv6(_ bytes: UnsafeRawBufferPointer, at offset: Int, snapCut: Bool, _ packet: inout DecodedPacket) {
        packet.networkOffset = offset
        guard offset + 40 <= bytes.count else {
            flag(.truncatedIPv6, &packet)
            return
        }
        guard bytes[offset] >> 4 == 6 else {
            flag(.ipv6BadVersion, &packet)
            return
        }
        packet.network = .ipv6
        let payloadLength = Int(bytes.beUInt16(at: offset + 4))
        packet.ipTotalLength = 40 + payloadLength
        packet.ttl = bytes[offset + 7]
        packet.source = IPAddress.ipv6(bytes, at: offset + 8)
        packet.destination = IPAddress.ipv6(bytes, at: offset + 24)

        // Jumbograms (payload length 0 with a hop-by-hop Jumbo option) are not followed:
        // the datagram is taken to end at the captured bytes.
        var end = offset + 40 + payloadLength
        if end > bytes.count {
            flag(snapCut ? .ipv6CapturedShort : .ipv6BadPayloadLength, &packet)
            end = bytes.count
        }
        var next = bytes[offset + 6]
        var cursor = offset + 40
        var count = 0
        walk: while true {
            switch next {
            case IPv6NextHeader.hopByHop, IPv6NextHeader.routing, IPv6NextHeader.destinationOptions,
                 IPv6NextHeader.mobility, IPv6NextHeader.fragment, IPv6NextHeader.authentication:
                break
            default:
                break walk
            }
            guard count < maxIPv6Extensions else {
                flag(.ipv6TooManyExtensions, &packet)
                packet.ipProtocol = next
                packet.ipHeaderLength = cursor - offset
                packet.transport = .other
                return
            }
            if next == IPv6NextHeader.hopByHop && count > 0 { flag(.ipv6HopByHopNotFirst, &packet) }
            guard cursor + 8 <= end else {
                flag(.ipv6TruncatedExtension, &packet)
                packet.ipProtocol = next
                packet.ipHeaderLength = cursor - offset
                return
            }
            let headerLength: Int
            switch next {
            case IPv6NextHeader.fragment:
                // RFC 8200 §4.5: always 8 bytes.
                headerLength = 8
                let field = bytes.beUInt16(at: cursor + 2)
                packet.fragmentOffset = Int(field & 0xFFF8)
                packet.moreFragments = field & 1 != 0
                packet.isFragment = true
                packet.ipIdentification = bytes.beUInt32(at: cursor + 4)
                packet.ipv6FragmentHeaderOffset = cursor
            case IPv6NextHeader.authentication:
                // RFC 4302 §2.2: length in 4-byte units, minus 2.
                headerLength = (Int(bytes[cursor + 1]) + 2) * 4
            default:
                // RFC 8200 §4.3–4.6: length in 8-byte units, not counting the first 8.
                headerLength = (Int(bytes[cursor + 1]) + 1) * 8
            }
            guard cursor + headerLength <= end else {
                flag(.ipv6TruncatedExtension, &packet)
                packet.ipProtocol = next
                packet.ipHeaderLength = cursor - offset
                return
            }
            next = bytes[cursor]
            cursor += headerLength
            count += 1
            // A non-first fragment carries no upper-layer header.
            if packet.isFragment && packet.fragmentOffset != 0 { break walk }
        }
        packet.ipv6ExtensionCount = UInt8(truncatingIfNeeded: count)
        packet.ipProtocol = next
        packet.ipHeaderLength = cursor - offset
        if packet.isFragment {
            if offset + 40 + payloadLength == cursor { flag(.fragmentZeroLength, &packet) }
            if packet.fragmentOffset + (offset + 40 + payloadLength - cursor) > 65535 { flag(.fragmentTooLarge, &packet) }
        }
        if next == IPv6NextHeader.noNextHeader { return }
        decodeTransport(
            bytes, protocol: next, at: cursor, end: end,
            claimedLength: offset + 40 + payloadLength - cursor, snapCut: snapCut, &packet)
    }
}
