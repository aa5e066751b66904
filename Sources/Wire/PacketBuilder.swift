import PacketCore

/// Builds packets byte for byte, with every length and checksum computed:
/// the inverse of `PacketDecoder`, for tests and traffic generation.
///
/// Building allocates freely; it is not on any packet path.
public enum PacketBuilder {
    public struct VLANTag: Sendable, Equatable {
        public var tpid: UInt16
        public var id: UInt16
        public var priority: UInt8
        public init(id: UInt16, tpid: UInt16 = EtherType.vlan, priority: UInt8 = 0) {
            self.id = id
            self.tpid = tpid
            self.priority = priority
        }
    }

    public enum Link: Sendable {
        case ethernet(source: [UInt8] = [0x02, 0, 0, 0, 0, 1], destination: [UInt8] = [0x02, 0, 0, 0, 0, 2], vlans: [VLANTag] = [])
        /// Linux cooked capture v1 (16-byte header).
        case linuxSLL
        /// Linux cooked capture v2 (20-byte header).
        case linuxSLL2
        /// BSD loopback, family in little-endian order.
        case null
        /// OpenBSD loopback, family in network order.
        case loop
        /// No link header (LINKTYPE_RAW, IPV4, IPV6).
        case none

        public var linkType: LinkType {
            switch self {
            case .ethernet: .ethernet
            case .linuxSLL: .linuxSLL
            case .linuxSLL2: .linuxSLL2
            case .null: .null
            case .loop: .loop
            case .none: .raw
            }
        }
    }

    public struct IPv4: Sendable {
        public var source: IPAddress
        public var destination: IPAddress
        public var ttl: UInt8 = 64
        public var tos: UInt8 = 0
        public var identification: UInt16 = 0
        public var dontFragment = false
        public var moreFragments = false
        /// Fragment offset in bytes (a multiple of 8).
        public var fragmentOffset = 0
        /// Raw option bytes; padded with zeros (EOL) to a multiple of 4.
        public var options: [UInt8] = []
        /// Overrides the computed protocol number (for fragments carrying another header).
        public var protocolOverride: UInt8?
        public init(source: IPAddress, destination: IPAddress) {
            self.source = source
            self.destination = destination
        }
    }

    public enum IPv6Extension: Sendable {
        case hopByHop(options: [UInt8] = [])
        case destinationOptions(options: [UInt8] = [])
        case routing(type: UInt8 = 0, segmentsLeft: UInt8 = 0, data: [UInt8] = [0, 0, 0, 0])
        case fragment(offset: Int, more: Bool, identification: UInt32)
        case authentication(spi: UInt32 = 0x100, sequence: UInt32 = 1, icv: [UInt8] = [UInt8](repeating: 0, count: 12))

        var number: UInt8 {
            switch self {
            case .hopByHop: IPv6NextHeader.hopByHop
            case .destinationOptions: IPv6NextHeader.destinationOptions
            case .routing: IPv6NextHeader.routing
            case .fragment: IPv6NextHeader.fragment
            case .authentication: IPv6NextHeader.authentication
            }
        }

        /// The header bytes with `next` as its next-header field and the RFC length encoding.
        func bytes(next: UInt8) -> [UInt8] {
            func padded(_ body: [UInt8]) -> [UInt8] {
                // 2 bytes of next/length plus body, padded to a multiple of 8 with PadN/Pad1.
                var out = [next, 0] + body
                let pad = (8 - out.count % 8) % 8
                if pad == 1 { out.append(0) } else if pad > 1 { out += [1, UInt8(pad - 2)] + [UInt8](repeating: 0, count: pad - 2) }
                out[1] = UInt8(out.count / 8 - 1)
                return out
            }
            switch self {
            case .hopByHop(let options), .destinationOptions(let options):
                return padded(options)
            case .routing(let type, let left, let data):
                var out = [next, 0, type, left] + data
                while out.count % 8 != 0 { out.append(0) }
                out[1] = UInt8(out.count / 8 - 1)
                return out
            case .fragment(let offset, let more, let id):
                let field = UInt16(truncatingIfNeeded: offset) & 0xFFF8 | (more ? 1 : 0)
                return [next, 0, UInt8(field >> 8), UInt8(field & 0xFF)] + be32(id)
            case .authentication(let spi, let sequence, let icv):
                var out = [next, 0, 0, 0] + be32(spi) + be32(sequence) + icv
                while out.count % 4 != 0 { out.append(0) }
                out[1] = UInt8(out.count / 4 - 2)
                return out
            }
        }
    }

    public struct IPv6: Sendable {
        public var source: IPAddress
        public var destination: IPAddress
        public var hopLimit: UInt8 = 64
        public var trafficClass: UInt8 = 0
        public var flowLabel: UInt32 = 0
        public var extensions: [IPv6Extension] = []
        public init(source: IPAddress, destination: IPAddress) {
            self.source = source
            self.destination = destination
        }
    }

    public enum Network: Sendable {
        case ipv4(IPv4)
        case ipv6(IPv6)

        var source: IPAddress {
            switch self { case .ipv4(let h): h.source; case .ipv6(let h): h.source }
        }
        var destination: IPAddress {
            switch self { case .ipv4(let h): h.destination; case .ipv6(let h): h.destination }
        }
    }

    public enum TCPOption: Sendable {
        case mss(UInt16)
        case windowScale(UInt8)
        case sackPermitted
        case sack([(UInt32, UInt32)])
        case timestamp(value: UInt32, echo: UInt32)
        case nop
    }

    public struct TCP: Sendable {
        public var sourcePort: UInt16
        public var destinationPort: UInt16
        public var sequence: UInt32 = 0
        public var acknowledgement: UInt32 = 0
        public var flags: TCPFlags = [.ack]
        public var window: UInt16 = 65535
        public var urgentPointer: UInt16 = 0
        public var options: [TCPOption] = []
        public init(sourcePort: UInt16, destinationPort: UInt16, sequence: UInt32 = 0, acknowledgement: UInt32 = 0, flags: TCPFlags = [.ack]) {
            self.sourcePort = sourcePort
            self.destinationPort = destinationPort
            self.sequence = sequence
            self.acknowledgement = acknowledgement
            self.flags = flags
        }
    }

    public enum Transport: Sendable {
        case tcp(TCP)
        case udp(sourcePort: UInt16, destinationPort: UInt16)
        /// ICMP: type, code and the 4 bytes after the checksum (e.g. echo id and sequence).
        case icmp(type: UInt8, code: UInt8, rest: UInt32 = 0)
        case icmpv6(type: UInt8, code: UInt8, rest: UInt32 = 0)
        /// Payload given as-is under this protocol number.
        case raw(protocol: UInt8)

        var protocolNumber: UInt8 {
            switch self {
            case .tcp: IPProtocol.tcp
            case .udp: IPProtocol.udp
            case .icmp: IPProtocol.icmp
            case .icmpv6: IPProtocol.icmpv6
            case .raw(let p): p
            }
        }
    }

    // MARK: - Building

    /// A whole frame: link header, IP header(s), transport header and payload.
    public static func frame(link: Link = .ethernet(), network: Network, transport: Transport, payload: [UInt8] = []) -> [UInt8] {
        let segment = self.segment(transport, payload: payload, source: network.source, destination: network.destination)
        let datagram = ip(network, protocol: transport.protocolNumber, payload: segment)
        return wrap(link: link, datagram: datagram)
    }

    /// The transport header and payload, checksum filled in over the pseudo-header.
    public static func segment(_ transport: Transport, payload: [UInt8], source: IPAddress, destination: IPAddress) -> [UInt8] {
        var out: [UInt8]
        var checksumAt: Int?
        var pseudo = true
        switch transport {
        case .tcp(let t):
            var options: [UInt8] = []
            for option in t.options {
                switch option {
                case .mss(let v): options += [2, 4] + be16(v)
                case .windowScale(let v): options += [3, 3, v]
                case .sackPermitted: options += [4, 2]
                case .sack(let blocks):
                    options += [5, UInt8(2 + 8 * blocks.count)]
                    for (l, r) in blocks { options += be32(l) + be32(r) }
                case .timestamp(let v, let e): options += [8, 10] + be32(v) + be32(e)
                case .nop: options += [1]
                }
            }
            while options.count % 4 != 0 { options.append(0) }
            let headerLength = 20 + options.count
            out = be16(t.sourcePort) + be16(t.destinationPort) + be32(t.sequence) + be32(t.acknowledgement)
            out += [UInt8(headerLength / 4) << 4, t.flags.rawValue] + be16(t.window) + [0, 0] + be16(t.urgentPointer)
            out += options
            checksumAt = 16
        case .udp(let s, let d):
            out = be16(s) + be16(d) + be16(UInt16(truncatingIfNeeded: 8 + payload.count)) + [0, 0]
            checksumAt = 6
        case .icmp(let type, let code, let rest):
            out = [type, code, 0, 0] + be32(rest)
            checksumAt = 2
            pseudo = false
        case .icmpv6(let type, let code, let rest):
            out = [type, code, 0, 0] + be32(rest)
            checksumAt = 2
        case .raw:
            out = []
        }
        out += payload
        if let at = checksumAt {
            var sum: UInt64 = 0
            if pseudo {
                sum = InternetChecksum.pseudoHeader(source: source, destination: destination, protocol: transport.protocolNumber, length: out.count)
            }
            var value = InternetChecksum.checksum(out, partial: sum)
            // RFC 768: a computed UDP checksum of zero is sent as all ones.
            if case .udp = transport, value == 0 { value = 0xFFFF }
            out[at] = UInt8(value >> 8)
            out[at + 1] = UInt8(value & 0xFF)
        }
        return out
    }

    /// An IP datagram around `payload` (already a transport segment or fragment data).
    public static func ip(_ network: Network, protocol proto: UInt8, payload: [UInt8]) -> [UInt8] {
        switch network {
        case .ipv4(let h):
            var options = h.options
            while options.count % 4 != 0 { options.append(0) }
            let headerLength = 20 + options.count
            let total = headerLength + payload.count
            let flags: UInt16 = (h.dontFragment ? 0x4000 : 0) | (h.moreFragments ? 0x2000 : 0)
            let fragmentField = flags | UInt16(truncatingIfNeeded: h.fragmentOffset / 8) & 0x1FFF
            var header = [UInt8(0x40 | headerLength / 4), h.tos] + be16(UInt16(truncatingIfNeeded: total)) + be16(h.identification)
            header += be16(fragmentField) + [h.ttl, h.protocolOverride ?? proto, 0, 0]
            header += addressBytes(h.source) + addressBytes(h.destination) + options
            let sum = InternetChecksum.checksum(header)
            header[10] = UInt8(sum >> 8)
            header[11] = UInt8(sum & 0xFF)
            return header + payload
        case .ipv6(let h):
            var chain: [UInt8] = []
            for (index, ext) in h.extensions.enumerated() {
                let next = index + 1 < h.extensions.count ? h.extensions[index + 1].number : proto
                chain += ext.bytes(next: next)
            }
            let first = h.extensions.first?.number ?? proto
            let payloadLength = chain.count + payload.count
            let word = UInt32(6) << 28 | UInt32(h.trafficClass) << 20 | (h.flowLabel & 0xFFFFF)
            var header = be32(word) + be16(UInt16(truncatingIfNeeded: payloadLength)) + [first, h.hopLimit]
            header += addressBytes(h.source) + addressBytes(h.destination)
            return header + chain + payload
        }
    }

    /// Puts a link header in front of an IP datagram.
    public static func wrap(link: Link, datagram: [UInt8]) -> [UInt8] {
        let isIPv6 = (datagram.first ?? 0) >> 4 == 6
        let etherType = isIPv6 ? EtherType.ipv6 : EtherType.ipv4
        switch link {
        case .ethernet(let source, let destination, let vlans):
            var out = destination + source
            for tag in vlans {
                out += be16(tag.tpid) + be16(UInt16(tag.priority & 7) << 13 | tag.id & 0x0FFF)
            }
            return out + be16(etherType) + datagram
        case .linuxSLL:
            // packet type 0 (to us), ARPHRD_ETHER, 6-byte address padded to 8, protocol.
            return [0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0] + be16(etherType) + datagram
        case .linuxSLL2:
            return be16(etherType) + [0, 0] + be32(1) + [0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0] + datagram
        case .null:
            let family: UInt32 = isIPv6 ? 30 : 2
            return [UInt8(family & 0xFF), 0, 0, 0] + datagram
        case .loop:
            return be32(isIPv6 ? 24 : 2) + datagram
        case .none:
            return datagram
        }
    }

    // MARK: - Fragmentation

    /// Splits an IPv4 datagram (no link header) into fragments carrying at most
    /// `maxPayload` bytes of data each (rounded down to a multiple of 8).
    public static func fragmentIPv4(_ datagram: [UInt8], maxPayload: Int) -> [[UInt8]] {
        guard datagram.count >= 20 else { return [datagram] }
        let headerLength = Int(datagram[0] & 0x0F) * 4
        let data = Array(datagram[headerLength...])
        let step = max(8, maxPayload / 8 * 8)
        guard data.count > step else { return [datagram] }
        let id = UInt16(datagram[4]) << 8 | UInt16(datagram[5])
        var header = IPv4(source: IPAddress.ipv4(datagram.withUnsafeBytes { $0.slice(12, 4) }, at: 0),
                          destination: IPAddress.ipv4(datagram.withUnsafeBytes { $0.slice(16, 4) }, at: 0))
        header.ttl = datagram[8]
        header.tos = datagram[1]
        header.identification = id
        header.options = Array(datagram[20 ..< headerLength])
        var fragments: [[UInt8]] = []
        var offset = 0
        while offset < data.count {
            let end = min(offset + step, data.count)
            header.fragmentOffset = offset
            header.moreFragments = end < data.count
            fragments.append(ip(.ipv4(header), protocol: datagram[9], payload: Array(data[offset ..< end])))
            offset = end
        }
        return fragments
    }

    /// Splits an IPv6 datagram built with `ip(.ipv6(h), …)` into fragments:
    /// `h.extensions` stay in every fragment (the unfragmentable part), then a
    /// fragment header, then at most `maxPayload` bytes (multiple of 8) of the rest.
    public static func fragmentIPv6(_ header: IPv6, protocol proto: UInt8, payload: [UInt8], maxPayload: Int, identification: UInt32) -> [[UInt8]] {
        let step = max(8, maxPayload / 8 * 8)
        var fragments: [[UInt8]] = []
        var offset = 0
        repeat {
            let end = min(offset + step, payload.count)
            var h = header
            h.extensions.append(.fragment(offset: offset, more: end < payload.count, identification: identification))
            fragments.append(ip(.ipv6(h), protocol: proto, payload: Array(payload[offset ..< end])))
            offset = end
        } while offset < payload.count
        return fragments
    }

    // MARK: - Helpers

    public static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    public static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
    static func addressBytes(_ a: IPAddress) -> [UInt8] { a.isIPv6 ? a.bytes : Array(a.bytes[0 ..< 4]) }
}

private func be16(_ v: UInt16) -> [UInt8] { PacketBuilder.be16(v) }
private func be32(_ v: UInt32) -> [UInt8] { PacketBuilder.be32(v) }
