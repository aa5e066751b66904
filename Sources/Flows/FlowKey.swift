import PacketCore

/// The identity of a flow: L3, L4, both endpoints, VLAN and hop.
///
/// Endpoints are ordered as SF-TAP orders them (`fabs_id::set_iph`):
/// endpoint 1 (`ip1`/`port1`) is the one whose 16 address bytes, then port
/// in network order, compare lower with `memcmp`, independent of who is the
/// client. Both directions of a flow therefore make the same key, and
/// `fromFirst` says which endpoint sent a packet (SF-TAP's `from=1`).
public struct FlowKey: Hashable, Sendable {
    // Addresses are stored as their halves and one byte of families rather than two `IPAddress`
    // values (each padded to 24 bytes for its Bool): the key takes 41 bytes, not 50, and a flow-table
    // entry 80 rather than 96. Equality and hashing cover the same values either way.
    @usableFromInline var high1: UInt64
    @usableFromInline var low1: UInt64
    @usableFromInline var high2: UInt64
    @usableFromInline var low2: UInt64
    public var port1: UInt16
    public var port2: UInt16
    /// Outermost 802.1Q VLAN ID, or `FlowKey.noVLAN`.
    public var vlan: UInt16
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6).
    public var ipProtocol: UInt8
    /// How many times the flow came back through the L7 loopback (0 for captured traffic).
    public var hop: UInt8
    /// Bit 0: `address1` is IPv6; bit 1: `address2` is.
    @usableFromInline var families: UInt8

    public var address1: IPAddress {
        @inlinable get { IPAddress(high: high1, low: low1, isIPv6: families & 1 != 0) }
        @inlinable set { (high1, low1) = (newValue.high, newValue.low); setFamily(1, newValue.isIPv6) }
    }

    public var address2: IPAddress {
        @inlinable get { IPAddress(high: high2, low: low2, isIPv6: families & 2 != 0) }
        @inlinable set { (high2, low2) = (newValue.high, newValue.low); setFamily(2, newValue.isIPv6) }
    }

    @inlinable
    mutating func setFamily(_ bit: UInt8, _ isIPv6: Bool) { families = families & ~bit | (isIPv6 ? bit : 0) }

    public static let noVLAN: UInt16 = 0xFFFF

    @inlinable
    public var isIPv6: Bool { families & 1 != 0 }

    @inlinable
    public init(address1: IPAddress, port1: UInt16, address2: IPAddress, port2: UInt16, ipProtocol: UInt8, vlan: UInt16 = FlowKey.noVLAN, hop: UInt8 = 0) {
        high1 = address1.high
        low1 = address1.low
        high2 = address2.high
        low2 = address2.low
        families = (address1.isIPv6 ? 1 : 0) | (address2.isIPv6 ? 2 : 0)
        self.port1 = port1
        self.port2 = port2
        self.ipProtocol = ipProtocol
        self.vlan = vlan
        self.hop = hop
    }

    /// True when (a, aPort) orders before or equal to (b, bPort) as SF-TAP compares them.
    @inlinable @inline(__always)
    public static func ordersFirst(_ a: IPAddress, _ aPort: UInt16, _ b: IPAddress, _ bPort: UInt16) -> Bool {
        if a.high != b.high { return a.high < b.high }
        if a.low != b.low { return a.low < b.low }
        return aPort <= bPort
    }

    /// The key of a packet from (source, sourcePort) to (destination, destinationPort),
    /// and whether the source is endpoint 1.
    @inlinable
    public static func make(
        source: IPAddress, sourcePort: UInt16, destination: IPAddress, destinationPort: UInt16,
        ipProtocol: UInt8, vlan: UInt16 = FlowKey.noVLAN, hop: UInt8 = 0
    ) -> (key: FlowKey, fromFirst: Bool) {
        if ordersFirst(source, sourcePort, destination, destinationPort) {
            return (FlowKey(address1: source, port1: sourcePort, address2: destination, port2: destinationPort, ipProtocol: ipProtocol, vlan: vlan, hop: hop), true)
        }
        return (FlowKey(address1: destination, port1: destinationPort, address2: source, port2: sourcePort, ipProtocol: ipProtocol, vlan: vlan, hop: hop), false)
    }

    /// A seeded 64-bit hash for the flow table (same for both directions, since the key is canonical).
    /// The seed goes in before the first multiply: XORed onto a product instead, it cancelled out of the
    /// comparison of two keys that differ only in the first address, so such keys could be made to
    /// collide whatever the seed.
    @inlinable @inline(__always)
    public func tableHash(seed: UInt64) -> UInt64 {
        var h = (seed ^ high1) &* 0x9E37_79B9_7F4A_7C15
        h = (h ^ low1) &* 0xC2B2_AE3D_27D4_EB4F
        h = (h ^ high2) &* 0x1656_67B1_9E37_79F9
        h = (h ^ low2) &* 0x9E37_79B9_7F4A_7C15
        let small = UInt64(port1) << 48 | UInt64(port2) << 32 | UInt64(vlan) << 16 | UInt64(ipProtocol) << 8 | UInt64(hop)
        h = (h ^ small ^ (isIPv6 ? 0x8000_0000_0000_0000 : 0)) &* 0xC2B2_AE3D_27D4_EB4F
        // A product's low bits depend only on its inputs' low bits, and the table takes its bucket
        // from the low bits: without a full finaliser, flows that differ only in a port (one client's
        // connections to one server, DNS queries from one resolver) or only in an IPv4 address (which
        // sits in the top half of `high`) share a few buckets, and linear probing turns that into
        // scans of thousands of slots per packet.
        return murmur3Finalize(h)
    }
}
