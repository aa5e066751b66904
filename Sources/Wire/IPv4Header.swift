import PacketCore

/// The IPv4 header's fields (RFC 791 §3.1), as byte offsets from its first byte: the one place the
/// decoder, the shard hash's quick path and the builder take them from.
public enum IPv4Header {
    /// Version (high nibble) and IHL, the header length in 32-bit words (low nibble).
    public static let versionAndLength = 0
    public static let totalLength = 2
    public static let identification = 4
    /// Flags (DF 0x4000, MF 0x2000) and the fragment offset in 8-byte units (0x1FFF).
    public static let flagsAndFragmentOffset = 6
    public static let ttl = 8
    public static let `protocol` = 9
    public static let checksum = 10
    public static let source = 12
    public static let destination = 16
    /// The header without options; IHL may say up to 60.
    public static let minimumLength = 20

    public static let dontFragment: UInt16 = 0x4000
    public static let moreFragments: UInt16 = 0x2000
    public static let fragmentOffsetMask: UInt16 = 0x1FFF
}

extension PacketDecoder {
    /// RFC 791 §3.1. Honors IHL (options are walked for well-formedness),
    /// total length (Ethernet padding is ignored), and the fragment fields.
    mutating func decodeIPv4(_ bytes: UnsafeRawBufferPointer, at offset: Int, snapCut: Bool, _ packet: inout DecodedPacket) {
        packet.networkOffset = offset
        guard offset + IPv4Header.minimumLength <= bytes.count else {
            flag(.truncatedIPv4, &packet)
            return
        }
        let versionIHL = bytes[offset + IPv4Header.versionAndLength]
        guard versionIHL >> 4 == 4 else {
            flag(.ipv4BadVersion, &packet)
            return
        }
        // The fixed 20 bytes are present: keep what they say even if the rest is bad.
        packet.network = .ipv4
        let headerLength = Int(versionIHL & 0x0F) * 4
        var totalLength = Int(bytes.beUInt16(at: offset + IPv4Header.totalLength))
        // A frame captured on the sending host before segmentation offload (TSO/GSO) split it carries
        // total length 0: its length is what was captured, as Wireshark reads it (counted).
        if totalLength == 0 && bytes.count - offset > headerLength {
            totalLength = min(65535, bytes.count - offset)
            flag(.ipv4ZeroTotalLength, &packet)
        }
        packet.ipTotalLength = totalLength
        packet.ipIdentification = UInt32(bytes.beUInt16(at: offset + IPv4Header.identification))
        let fragmentField = bytes.beUInt16(at: offset + IPv4Header.flagsAndFragmentOffset)
        packet.dontFragment = fragmentField & IPv4Header.dontFragment != 0
        packet.moreFragments = fragmentField & IPv4Header.moreFragments != 0
        packet.fragmentOffset = Int(fragmentField & IPv4Header.fragmentOffsetMask) * 8
        packet.isFragment = packet.moreFragments || packet.fragmentOffset != 0
        packet.ttl = bytes[offset + IPv4Header.ttl]
        packet.ipProtocol = bytes[offset + IPv4Header.protocol]
        packet.source = IPAddress.ipv4(bytes, at: offset + IPv4Header.source)
        packet.destination = IPAddress.ipv4(bytes, at: offset + IPv4Header.destination)
        packet.ipHeaderLength = max(IPv4Header.minimumLength, headerLength)
        guard headerLength >= IPv4Header.minimumLength else {
            flag(.ipv4BadHeaderLength, &packet)
            return
        }
        guard offset + headerLength <= bytes.count else {
            flag(snapCut ? .ipv4CapturedShort : .truncatedIPv4, &packet)
            return
        }

        if headerLength > IPv4Header.minimumLength { walkIPv4Options(bytes, from: offset + IPv4Header.minimumLength, to: offset + headerLength, &packet) }
        if verifyChecksums {
            let sum = InternetChecksum.finish(InternetChecksum.add(bytes.slice(offset, headerLength)))
            if sum != 0 { flag(.ipv4BadChecksum, &packet) }
        }
        guard totalLength >= headerLength else {
            flag(.ipv4BadTotalLength, &packet)
            return
        }
        // The datagram ends at its total length; bytes beyond are link padding.
        var end = offset + totalLength
        if end > bytes.count {
            flag(snapCut ? .ipv4CapturedShort : .ipv4BadTotalLength, &packet)
            end = bytes.count
        }
        if packet.isFragment {
            if totalLength == headerLength { flag(.fragmentZeroLength, &packet) }
            if packet.fragmentOffset + totalLength - headerLength > 65535 { flag(.fragmentTooLarge, &packet) }
        }
        let payloadLength = totalLength - headerLength
        decodeTransport(
            bytes, protocol: packet.ipProtocol, at: offset + headerLength, end: end,
            claimedLength: payloadLength, snapCut: snapCut, &packet)
    }

    /// RFC 791 option format: type 0 ends, type 1 is one byte, others carry a length ≥ 2.
    mutating func walkIPv4Options(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int, _ packet: inout DecodedPacket) {
        var i = start
        while i < end {
            let kind = bytes[i]
            if kind == 0 { return }
            if kind == 1 {
                i += 1
                continue
            }
            guard i + 1 < end else {
                flag(.ipv4BadOption, &packet)
                return
            }
            let length = Int(bytes[i + 1])
            guard length >= 2, i + length <= end else {
                flag(.ipv4BadOption, &packet)
                return
            }
            i += length
        }
    }
}
