/// TCP sequence arithmetic modulo 2^32 (RFC 9293 §3.4): comparisons are
/// meaningful for numbers less than 2^31 apart, which every window is.
/// Numbers exactly 2^31 apart are neither less nor greater than each other,
/// so `lessThan(a, b)` always implies `distance(from: a, to: b) > 0`.
public enum SequenceNumber {
    @inlinable @inline(__always)
    public static func lessThan(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: b &- a) > 0 }

    @inlinable @inline(__always)
    public static func lessOrEqual(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: b &- a) >= 0 }

    /// `b - a` as a signed distance.
    @inlinable @inline(__always)
    public static func distance(from a: UInt32, to b: UInt32) -> Int { Int(Int32(bitPattern: b &- a)) }
}
