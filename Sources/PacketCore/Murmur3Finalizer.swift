/// MurmurHash3's 64-bit finaliser (fmix64): every input bit affects every output bit. The incubator's
/// cell hash, the records' `flow_id`, the flow table and the address tables (`IPAddress.tableHash`) end with it.
@inlinable @inline(__always)
public func murmur3Finalize(_ x: UInt64) -> UInt64 {
    var h = x
    h ^= h >> 33
    h = h &* 0xFF51_AFD7_ED55_8CCD
    h ^= h >> 33
    h = h &* 0xC4CE_B9FE_1A85_EC53
    h ^= h >> 33
    return h
}
