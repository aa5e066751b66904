/// Decimal digits of `v` (1 for 0, 20 for the largest): the number writers (SF-TAP headers, JSON
/// records) size their text with it, then write the digits from the right.
///
/// From the bit length: 1233/4096 is just above log10(2), so `bits·1233 >> 12` is the digit count or
/// one less, and one comparison with a power of ten settles it (a loop of one compare a digit before,
/// and a call: it was not inlined).
@inlinable @inline(__always)
public func decimalDigitCount(_ v: UInt64) -> Int {
    let w = v | 1
    let guess = ((64 &- w.leadingZeroBitCount) &* 1233) >> 12
    return guess &+ (w >= powerOfTen(guess) ? 1 : 0)
}

/// 10^n for n in 0...19 (a switch the compiler turns into a table in read-only data).
@inlinable @inline(__always)
public func powerOfTen(_ n: Int) -> UInt64 {
    switch n {
    case 0: 1
    case 1: 10
    case 2: 100
    case 3: 1_000
    case 4: 10_000
    case 5: 100_000
    case 6: 1_000_000
    case 7: 10_000_000
    case 8: 100_000_000
    case 9: 1_000_000_000
    case 10: 10_000_000_000
    case 11: 100_000_000_000
    case 12: 1_000_000_000_000
    case 13: 10_000_000_000_000
    case 14: 100_000_000_000_000
    case 15: 1_000_000_000_000_000
    case 16: 10_000_000_000_000_000
    case 17: 100_000_000_000_000_000
    case 18: 1_000_000_000_000_000_000
    default: 10_000_000_000_000_000_000
    }
}
