import PacketCore

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
public enum IPProtocol {
    public static let icmp: UInt8 = 1
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
    public static let icmpv6: UInt8 = 58

    /// The name records give a protocol, as Suricata's EVE writes it: TCP, UDP, ICMP, IPv6-ICMP, else the number.
    public static func name(_ p: UInt8) -> String {
        switch p {
        case tcp: "TCP"
        case udp: "UDP"
        case icmp: "ICMP"
        case icmpv6: "IPv6-ICMP"
        default: String(p)
        }
    }
}

extension PacketDecoder {
    /// Decodes the transport header that starts at `offset`.
    /// - Parameters:
    ///   - end: where the IP datagram's captured bytes end.
    ///   - claimedLength: the transport length the IP header claims.
    mutating func decodeTransport(
        _ bytes: UnsafeRawBufferPointer, protocol proto: UInt8, at offset: Int, end: Int,
        claimedLength: Int, snapCut: Bool, _ packet: inout DecodedPacket
    ) {
        packet.transportOffset = offset
        packet.payloadOffset = offset
        packet.payloadLength = max(0, claimedLength)
        packet.payloadCapturedLength = max(0, end - offset)
        // A non-first fragment continues the datagram's payload; there is no header to read.
        if packet.isFragment && packet.fragmentOffset != 0 { return }
        let complete = !packet.isFragment && end - offset == claimedLength
        switch proto {
        case IPProtocol.tcp: decodeTCP(bytes, at: offset, end: end, claimedLength: claimedLength, complete: complete, &packet)
        case IPProtocol.udp: decodeUDP(bytes, at: offset, end: end, claimedLength: claimedLength, complete: complete, snapCut: snapCut, &packet)
        case IPProtocol.icmp, IPProtocol.icmpv6:
            guard offset + 4 <= end else {
                flag(packet.isFragment ? .fragmentTiny : .truncatedICMP, &packet)
                return
            }
            packet.transport = proto == IPProtocol.icmp ? .icmp : .icmpv6
            packet.icmpType = bytes[offset]
            packet.icmpCode = bytes[offset + 1]
            if verifyChecksums && complete {
                var sum = InternetChecksum.add(bytes.slice(offset, claimedLength))
                if proto == IPProtocol.icmpv6 {
                    sum &+= InternetChecksum.pseudoHeader(
                        source: packet.source, destination: packet.destination,
                        protocol: IPProtocol.icmpv6, length: claimedLength)
                }
                if InternetChecksum.finish(sum) != 0 { flag(.icmpBadChecksum, &packet) }
            }
        default:
            if decapsulateTunnels && !packet.isFragment && Int(packet.tunnelDepth) < maxTunnelDepth
                && decapsulateIPProtocol(proto, bytes, at: offset, end: end, snapCut: snapCut, &packet) {
                return
            }
            packet.transport = .other
        }
    }

    @inline(__always)
    func readPorts(_ bytes: UnsafeRawBufferPointer, at offset: Int, _ packet: inout DecodedPacket) {
        packet.sourcePort = bytes.beUInt16(at: offset)
        packet.destinationPort = bytes.beUInt16(at: offset + 2)
    }

    /// RFC 768.
    mutating func decodeUDP(
        _ bytes: UnsafeRawBufferPointer, at offset: Int, end: Int, claimedLength: Int,
        complete: Bool, snapCut: Bool, _ packet: inout DecodedPacket
    ) {
        guard offset + 8 <= end else {
            // Ports are kept when they were captured, as tcpdump prints them.
            if offset + 4 <= end { readPorts(bytes, at: offset, &packet) }
            flag(packet.isFragment ? .fragmentTiny : .truncatedUDP, &packet)
            return
        }
        packet.transport = .udp
        packet.sourcePort = bytes.beUInt16(at: offset + UDPHeader.sourcePort)
        packet.destinationPort = bytes.beUInt16(at: offset + UDPHeader.destinationPort)
        var udpLength = Int(bytes.beUInt16(at: offset + UDPHeader.length))
        // RFC 2675 §4: a zero UDP length in an IPv6 jumbogram means "use the IP length".
        if udpLength == 0 && packet.network == .ipv6 { udpLength = claimedLength }
        if udpLength < 8 || (!packet.isFragment && udpLength > claimedLength) {
            flag(.udpBadLength, &packet)
            udpLength = max(8, min(udpLength, claimedLength))
        }
        packet.payloadOffset = offset + 8
        packet.payloadLength = udpLength - 8
        packet.payloadCapturedLength = max(0, min(end, offset + udpLength) - packet.payloadOffset)
        let checksum = bytes.beUInt16(at: offset + UDPHeader.checksum)
        if verifyChecksums && complete && udpLength == claimedLength && !(checksum == 0 && packet.network == .ipv4) {
            var sum = InternetChecksum.pseudoHeader(
                source: packet.source, destination: packet.destination, protocol: IPProtocol.udp, length: udpLength)
            sum = InternetChecksum.add(bytes.slice(offset, udpLength), to: sum)
            if InternetChecksum.finish(sum) != 0 { flag(.udpBadChecksum, &packet) }
        }
        if decapsulateTunnels && !packet.isFragment && Int(packet.tunnelDepth) < maxTunnelDepth {
            _ = decapsulateUDP(bytes, at: packet.payloadOffset, end: packet.payloadOffset + packet.payloadCapturedLength, snapCut: snapCut, &packet)
        }
    }

    /// RFC 9293 §3.1 header and §3.2 options.
    mutating func decodeTCP(
        _ bytes: UnsafeRawBufferPointer, at offset: Int, end: Int, claimedLength: Int,
        complete: Bool, _ packet: inout DecodedPacket
    ) {
        guard offset + TCPHeader.minimumLength <= end else {
            if offset + 4 <= end { readPorts(bytes, at: offset, &packet) }
            flag(packet.isFragment ? .fragmentTiny : .truncatedTCP, &packet)
            return
        }
        packet.sourcePort = bytes.beUInt16(at: offset + TCPHeader.sourcePort)
        packet.destinationPort = bytes.beUInt16(at: offset + TCPHeader.destinationPort)
        packet.tcpSequence = bytes.beUInt32(at: offset + TCPHeader.sequence)
        packet.tcpAcknowledgement = bytes.beUInt32(at: offset + TCPHeader.acknowledgement)
        let headerLength = Int(bytes[offset + TCPHeader.dataOffset] >> 4) * 4
        packet.tcpFlags = TCPFlags(rawValue: bytes[offset + TCPHeader.flags])
        packet.tcpWindow = bytes.beUInt16(at: offset + TCPHeader.window)
        packet.transport = .tcp
        guard headerLength >= TCPHeader.minimumLength, headerLength <= claimedLength || packet.isFragment else {
            flag(.tcpBadDataOffset, &packet)
            packet.tcpHeaderLength = TCPHeader.minimumLength
            packet.payloadOffset = offset + TCPHeader.minimumLength
            packet.payloadLength = 0
            packet.payloadCapturedLength = 0
            return
        }
        packet.tcpHeaderLength = headerLength
        packet.payloadOffset = offset + headerLength
        packet.payloadLength = claimedLength - headerLength
        guard offset + headerLength <= end else {
            // Options cut off: no payload bytes were captured.
            packet.payloadOffset = end
            packet.payloadCapturedLength = 0
            flag(packet.isFragment ? .fragmentTiny : .truncatedTCP, &packet)
            return
        }
        let flags = packet.tcpFlags
        if flags.contains(.syn) && (flags.contains(.fin) || flags.contains(.rst)) { flag(.tcpBadFlags, &packet) }
        if headerLength > 20 { decodeTCPOptions(bytes, from: offset + 20, to: offset + headerLength, &packet) }
        packet.payloadCapturedLength = end - packet.payloadOffset
        if verifyChecksums && complete {
            var sum = InternetChecksum.pseudoHeader(
                source: packet.source, destination: packet.destination, protocol: IPProtocol.tcp, length: claimedLength)
            sum = InternetChecksum.add(bytes.slice(offset, claimedLength), to: sum)
            if InternetChecksum.finish(sum) != 0 { flag(.tcpBadChecksum, &packet) }
        }
    }

    /// MSS (2), window scale (3), SACK-permitted (4), SACK (5), timestamps (8); others skipped by length.
    mutating func decodeTCPOptions(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int, _ packet: inout DecodedPacket) {
        var i = start
        while i < end {
            let kind = bytes[i]
            if kind == 0 { return }
            if kind == 1 {
                i += 1
                continue
            }
            guard i + 1 < end else {
                flag(.tcpBadOption, &packet)
                return
            }
            let length = Int(bytes[i + 1])
            guard length >= 2, i + length <= end else {
                flag(.tcpBadOption, &packet)
                return
            }
            switch (kind, length) {
            case (2, 4):
                packet.tcpOptions.hasMSS = true
                packet.tcpOptions.mss = bytes.beUInt16(at: i + 2)
            case (3, 3):
                packet.tcpOptions.hasWindowScale = true
                packet.tcpOptions.windowScale = bytes[i + 2]
            case (4, 2):
                packet.tcpOptions.sackPermitted = true
            case (5, _) where (length - 2) % 8 == 0 && length >= 10:
                var block = i + 2
                while block + 8 <= i + length && Int(packet.tcpOptions.sackBlockCount) < TCPOptions.maxSACKBlocks {
                    packet.tcpOptions.sackBlocks[Int(packet.tcpOptions.sackBlockCount)] =
                        (bytes.beUInt32(at: block), bytes.beUInt32(at: block + 4))
                    packet.tcpOptions.sackBlockCount &+= 1
                    block += 8
                }
            case (8, 10):
                packet.tcpOptions.hasTimestamp = true
                packet.tcpOptions.timestampValue = bytes.beUInt32(at: i + 2)
                packet.tcpOptions.timestampEcho = bytes.beUInt32(at: i + 6)
            case (2, _), (3, _), (4, _), (5, _), (8, _):
                flag(.tcpBadOption, &packet)
            default:
                break
            }
            i += length
        }
    }
}

/// The TCP header's fields (RFC 9293 §3.1), as byte offsets from its first byte.
public enum TCPHeader {
    public static let sourcePort = 0
    public static let destinationPort = 2
    public static let sequence = 4
    public static let acknowledgement = 8
    /// Data offset, the header length in 32-bit words, in the high nibble.
    public static let dataOffset = 12
    public static let flags = 13
    public static let window = 14
    public static let checksum = 16
    public static let urgentPointer = 18
    /// The header without options; the data offset may say up to 60.
    public static let minimumLength = 20
}

/// The UDP header's fields (RFC 768), as byte offsets from its first byte.
public enum UDPHeader {
    public static let sourcePort = 0
    public static let destinationPort = 2
    public static let length = 4
    public static let checksum = 6
    public static let size = 8
}
