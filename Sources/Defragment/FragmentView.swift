import PacketCore
import Wire

/// A checked view of one IPv4 or IPv6 fragment: every offset is validated
/// against the captured bytes once, here, so the reassembler reads without
/// further checks.
///
/// Only `network`, `networkOffset` and (IPv6) `ipv6FragmentHeaderOffset`
/// are taken from the `DecodedPacket`; every other field is read again from
/// the bytes, so a packet struct that does not match its bytes cannot lead
/// a read out of bounds.
struct FragmentView {
    var isIPv6 = false
    /// Offset of the IP header in the bytes.
    var ipStart = 0
    /// IPv4: IHL × 4. IPv6: the Unfragmentable Part, fixed header to the
    /// Fragment header (RFC 8200 §4.5). Copied from the first fragment.
    var headerLength = 0
    /// IPv6: offset, from `ipStart`, of the Next Header field that names the
    /// Fragment header; reassembly writes the fragment's next header there.
    var nextHeaderField = 0
    var dataStart = 0
    var dataLength = 0
    /// Fragment offset in bytes.
    var offset = 0
    var more = false
    var identification: UInt32 = 0
    /// IPv4 protocol, or the Fragment header's Next Header.
    var proto: UInt8 = 0
    var source = IPAddress.zero
    var destination = IPAddress.zero

    /// Validates the fragment in `bytes` at `packet.networkOffset`.
    init(_ packet: DecodedPacket, _ bytes: UnsafeRawBufferPointer) throws(DefragmentDrop) {
        let start = packet.networkOffset
        guard start >= 0, start < bytes.count else { throw .notFragment }
        ipStart = start
        switch packet.network {
        case .ipv4: try readIPv4(bytes)
        case .ipv6: try readIPv6(bytes, fragmentHeader: packet.ipv6FragmentHeaderOffset)
        default: throw .notFragment
        }
    }

    /// RFC 791 §3.1.
    private mutating func readIPv4(_ bytes: UnsafeRawBufferPointer) throws(DefragmentDrop) {
        guard ipStart + 20 <= bytes.count else { throw .truncated }
        guard bytes[ipStart] >> 4 == 4 else { throw .malformed }
        let ihl = Int(bytes[ipStart] & 0x0F) * 4
        let total = Int(bytes.beUInt16(at: ipStart + 2))
        guard ihl >= 20, total >= ihl else { throw .malformed }
        guard ipStart + total <= bytes.count else { throw .truncated }
        let field = bytes.beUInt16(at: ipStart + 6)
        offset = Int(field & 0x1FFF) * 8
        more = field & 0x2000 != 0
        guard more || offset != 0 else { throw .notFragment }
        headerLength = ihl
        dataStart = ipStart + ihl
        dataLength = total - ihl
        identification = UInt32(bytes.beUInt16(at: ipStart + 4))
        proto = bytes[ipStart + 9]
        source = IPAddress.ipv4(bytes, at: ipStart + 12)
        destination = IPAddress.ipv4(bytes, at: ipStart + 16)
    }

    /// RFC 8200 §3 fixed header, the §4 chain up to the Fragment header, and §4.5.
    private mutating func readIPv6(_ bytes: UnsafeRawBufferPointer, fragmentHeader: Int) throws(DefragmentDrop) {
        isIPv6 = true
        guard ipStart + 40 <= bytes.count else { throw .truncated }
        guard bytes[ipStart] >> 4 == 6 else { throw .malformed }
        let end = ipStart + 40 + Int(bytes.beUInt16(at: ipStart + 4))
        guard end <= bytes.count else { throw .truncated }
        guard fragmentHeader >= ipStart + 40, fragmentHeader + 8 <= end else { throw .malformed }
        // Walk the chain to find the field that names the Fragment header;
        // it must land exactly on the header the decoder reported.
        var field = ipStart + 6
        var cursor = ipStart + 40
        var steps = 0
        while cursor < fragmentHeader {
            guard steps < 16, cursor + 2 <= fragmentHeader else { throw .malformed }
            let length: Int
            switch bytes[field] {
            case IPv6NextHeader.hopByHop, IPv6NextHeader.routing, IPv6NextHeader.destinationOptions, IPv6NextHeader.mobility:
                length = (Int(bytes[cursor + 1]) + 1) * 8
            case IPv6NextHeader.authentication:
                // RFC 4302 §2.2: 4-byte units, minus 2.
                length = (Int(bytes[cursor + 1]) + 2) * 4
            default:
                throw .malformed
            }
            field = cursor
            cursor += length
            steps += 1
        }
        guard cursor == fragmentHeader, bytes[field] == IPv6NextHeader.fragment else { throw .malformed }
        let fragmentField = bytes.beUInt16(at: fragmentHeader + 2)
        offset = Int(fragmentField & 0xFFF8)
        more = fragmentField & 1 != 0
        identification = bytes.beUInt32(at: fragmentHeader + 4)
        proto = bytes[fragmentHeader]
        headerLength = fragmentHeader - ipStart
        nextHeaderField = field - ipStart
        dataStart = fragmentHeader + 8
        dataLength = end - dataStart
        source = IPAddress.ipv6(bytes, at: ipStart + 8)
        destination = IPAddress.ipv6(bytes, at: ipStart + 24)
    }

    /// True when a first fragment holds the transport header: for IPv6 the
    /// whole header chain first (RFC 7112), then TCP 20, UDP 8, ICMP 8 bytes.
    func holdsTransportHeader(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let limit = dataStart + dataLength
        var next = proto
        var cursor = dataStart
        if isIPv6 {
            var steps = 0
            chain: while steps < 16 {
                let length: Int
                switch next {
                case IPv6NextHeader.hopByHop, IPv6NextHeader.routing, IPv6NextHeader.destinationOptions,
                     IPv6NextHeader.mobility, IPv6NextHeader.fragment:
                    guard cursor + 8 <= limit else { return false }
                    length = next == IPv6NextHeader.fragment ? 8 : (Int(bytes[cursor + 1]) + 1) * 8
                case IPv6NextHeader.authentication:
                    guard cursor + 8 <= limit else { return false }
                    length = (Int(bytes[cursor + 1]) + 2) * 4
                default:
                    break chain
                }
                guard cursor + length <= limit else { return false }
                next = bytes[cursor]
                cursor += length
                steps += 1
            }
        }
        let needed: Int
        switch next {
        case IPProtocol.tcp: needed = 20
        case IPProtocol.udp, IPProtocol.icmp, IPProtocol.icmpv6: needed = 8
        default: needed = 0
        }
        return cursor + needed <= limit
    }
}
