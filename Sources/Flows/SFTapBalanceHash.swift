extension FlowKey {
    /// SF-TAP's balance hash (`fabs_id::get_hash`, reference §3): a rule with `balance: N` sends each
    /// flow to socket `<if>` + (hash mod N). The same for both directions (the key is in SF-TAP order),
    /// and equal to the original's for IPv4 (vectors: 192.168.0.1:62918 ↔ 192.168.0.2:80 is 0xF595,
    /// `BalanceTests`); for IPv6 it follows the reference digest's word order. FlowTap takes it modulo
    /// N, so N need not be a power of two as in the original.
    public var sftapHash: UInt16 {
        var h32 = UInt32(port1) ^ UInt32(port2)
        if isIPv6 {
            // Four 32-bit words of each address; the original also XORs a fifth word that overlaps the port: port << 16.
            let x = address1.high ^ address2.high ^ address1.low ^ address2.low
            h32 ^= UInt32(truncatingIfNeeded: x >> 32) ^ UInt32(truncatingIfNeeded: x)
            h32 ^= UInt32(port1) << 16 ^ UInt32(port2) << 16
        } else {
            h32 ^= address1.ipv4Value ^ address2.ipv4Value
        }
        if vlan != FlowKey.noVLAN { h32 ^= UInt32(vlan) }
        h32 &+= UInt32(hop)
        return UInt16(truncatingIfNeeded: h32 & 0xFFFF) ^ UInt16(truncatingIfNeeded: h32 >> 16)
    }
}
