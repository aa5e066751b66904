import PacketCore

extension PacketDecoder {
    /// RFC 791 §3.1. Honors IHL (options are walked for well-formedness),
    /// total length (Ethernet padding is ignored), and the fragment fields.
    mutating func decodeIPv4(_ bytes: UnsafeRawBufferPointer, at offset: Int, snapCut: Bool, _ packet: inout DecodedPacket) {
        packet.networkOffset = offset
        guard offset + 20 <= bytes.count else {
            flag(.truncatedIPv4, &packet)
            return
        }
        let versionIHL = bytes[offset]
        guard versionIHL >> 4 == 4 else {
            flag(.ipv4BadVersion, &packet)
            return
        }
        // The fixed 20 bytes are present: keep what they say even if the rest is bad.
        packet.network = .ipv4
        let headerLength = Int(versionIHL & 0x0F) * 4
        let totalLength = Int(bytes.beUInt16(at: offset + 2))
        packet.ipTotalLength = totalLength
        packet.ipIdentification = UInt32(bytes.beUInt16(at: offset + 4))
        let fragmentField = bytes.beUInt16(at: offset + 6)
        packet.dontFragment = fragmentField & 0x4000 != 0
        packet.moreFragments = fragmentField & 0x2000 != 0
        packet.fragmentOffset = Int(fragmentField & 0x1FFF) * 8
        packet.isFragment = packet.moreFragments || packet.fragmentOffset != 0
        packet.ttl = bytes[offset + 8]
        packet.ipProtocol = bytes[offset + 9]
        packet.source = IPAddress.ipv4(bytes, at: offset + 12)
        packet.destination = IPAddress.ipv4(bytes, at: offset + 16)
        packet.ipHeaderLength = max(20, headerLength)
        guard headerLength >= 20 else {
            flag(.ipv4BadHeaderLength, &packet)
            return
        }
        guard offset + headerLength <= bytes.count else {
            flag(snapCut ? .ipv4CapturedShort : .truncatedIPv4, &packet)
            return
        }

        if headerLength > 20 { walkIPv4Options(bytes, from: offset + 20, to: offset + headerLength, &packet) }
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
