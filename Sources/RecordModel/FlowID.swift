import Flows
import PacketCore

/// FlowTap's `flow_id`: a number computed from the flow's key (both directions alike, VLAN included) and
/// the time of its first packet, so every command that sees the same capture gives a flow the same ID —
/// `analyze` records join `flows` records — whatever the thread count or the order flows are created in.
///
/// Suricata's `flow_id` is also a hash (of its flow hash and start time), unique in practice but not
/// guaranteed. The value keeps 53 bits, so JSON readers that hold numbers as doubles (jq, JavaScript,
/// Elasticsearch's `long` through JSON) read it exactly.
public enum FlowID {
    public static let mask: UInt64 = (1 << 53) - 1

    public static func make(key: FlowKey, created: Timestamp) -> UInt64 {
        let a = key.address1, b = key.address2
        var h: UInt64 = 0x243F_6A88_85A3_08D3
        h = mix(h, a.high)
        h = mix(h, a.low)
        h = mix(h, b.high)
        h = mix(h, b.low)
        h = mix(h, UInt64(key.port1) << 48 | UInt64(key.port2) << 32 | UInt64(key.vlan) << 16 | UInt64(key.ipProtocol) << 8 | UInt64(key.hop))
        h = mix(h, UInt64(bitPattern: created.nanoseconds))
        // Zero is never an ID (a reader may treat it as absent).
        let id = murmur3Finalize(h) & mask
        return id == 0 ? 1 : id
    }

    /// One word folded in (a multiply–rotate step as in MurmurHash3's 64-bit mixing).
    @inline(__always)
    static func mix(_ h: UInt64, _ word: UInt64) -> UInt64 {
        var k = word &* 0x87C3_7B91_1142_53D5
        k = (k << 31) | (k >> 33)
        k = k &* 0x4CF5_AD43_2745_937F
        var x = h ^ k
        x = (x << 27) | (x >> 37)
        return x &* 5 &+ 0x52DC_E729
    }
}
