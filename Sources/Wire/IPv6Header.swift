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

/// The IPv6 fixed header's fields (RFC 8200 §3), as byte offsets from its first byte.
public enum IPv6Header {
    /// Version in the high nibble of the first byte.
    public static let version = 0
    public static let payloadLength = 4
    public static let nextHeader = 6
    public static let hopLimit = 7
    public static let source = 8
    public static let destination = 24
    /// The fixed header; extension headers follow it.
    public static let length = 40
}

extension PacketDecoder {
    /// RFC 8200 §3 fixed header, then the extension header chain (§4) to the transport.
    mutating func decodeIPv6(_ bytes: UnsafeRawBufferPointer, at offset: Int, snapCut: Bool, _ packet: inout DecodedPacket) {
        packet.networkOffset = offset
        guard offset + IPv6Header.length <= bytes.count else {
            flag(.truncatedIPv6, &packet)
            return
        }
        guard bytes[offset + IPv6Header.version] >> 4 == 6 else {
            flag(.ipv6BadVersion, &packet)
            return
        }
        packet.network = .ipv6
        let payloadLength = Int(bytes.beUInt16(at: offset + IPv6Header.payloadLength))
        packet.ipTotalLength = IPv6Header.length + payloadLength
        packet.ttl = bytes[offset + IPv6Header.hopLimit]
        packet.source = IPAddress.ipv6(bytes, at: offset + IPv6Header.source)
        packet.destination = IPAddress.ipv6(bytes, at: offset + IPv6Header.destination)

        // Jumbograms (payload length 0 with a hop-by-hop Jumbo option) are not followed:
        // the datagram is taken to end at the captured bytes.
        var end = offset + IPv6Header.length + payloadLength
        if end > bytes.count {
            flag(snapCut ? .ipv6CapturedShort : .ipv6BadPayloadLength, &packet)
            end = bytes.count
        }
        var next = bytes[offset + IPv6Header.nextHeader]
        var cursor = offset + IPv6Header.length
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
            if offset + IPv6Header.length + payloadLength == cursor { flag(.fragmentZeroLength, &packet) }
            if packet.fragmentOffset + (offset + IPv6Header.length + payloadLength - cursor) > 65535 { flag(.fragmentTooLarge, &packet) }
        }
        if next == IPv6NextHeader.noNextHeader { return }
        decodeTransport(
            bytes, protocol: next, at: cursor, end: end,
            claimedLength: offset + IPv6Header.length + payloadLength - cursor, snapCut: snapCut, &packet)
    }
}
