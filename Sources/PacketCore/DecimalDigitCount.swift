/// Decimal digits of `v` (1 for 0, 20 for the largest): the number writers (SF-TAP headers, JSON
/// records) size their text with it, then write the digits from the right.
@inlinable
public func decimalDigitCount(_ v: UInt64) -> Int {
    var width = 1
    var scale: UInt64 = 10
    while v >= scale {
        width += 1
        // 10^19 is the last power of ten below 2^64.
        if width == 20 { break }
        scale &*= 10
    }
    return width
}
