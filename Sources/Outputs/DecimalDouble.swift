extension JSONWriter {
    /// Appends `value` as the text `"\(value)"` gives (the shortest decimal that reads back as the same
    /// `Double`), without making a `String`, when that text is a plain decimal: |value| from 0.001 up to
    /// 2^53 with at most 17 fractional digits (record times, durations and ratios). Returns false, having
    /// written nothing, for anything else, which the caller formats through `String`.
    ///
    /// Why it is exact: for k fractional digits the candidates are the integers m next to value·10^k; the
    /// decimal m/10^k reads back as `value` exactly when `Double(m) / 10^k == value`, since m < 2^53 and
    /// 10^k ≤ 10^17 are exact and IEEE division rounds m/10^k correctly, as reading the text does. The first
    /// k with a candidate that reads back has the fewest digits; when two candidates of that k do (the
    /// standard library then picks the nearer), this gives up. Checked against `"\(value)"` in the tests.
    mutating func appendShortestDecimal(_ value: Double) -> Bool {
        if value == 0 {
            buffer.append(contentsOf: (value.sign == .minus ? "-0.0" : "0.0").utf8)
            return true
        }
        let magnitude = value.magnitude
        guard magnitude >= 0.001, magnitude < Self.twoTo53 else { return false }
        var power: Double = 1
        var powerInt: UInt64 = 1
        for k in 0 ... 17 {
            let scaled = magnitude * power
            guard scaled < Self.twoTo53 - 2 else { return false }
            let nearest = scaled.rounded(.toNearestOrEven)
            var found: Double = -1
            var count = 0
            var m = nearest - 1
            while m <= nearest + 1 {
                if m >= 0 && m / power == magnitude {
                    found = m
                    count += 1
                }
                m += 1
            }
            if count > 1 { return false }
            if count == 1 {
                if value.sign == .minus { buffer.append(UInt8(ascii: "-")) }
                let digits = UInt64(found)
                appendDigits(digits / powerInt, minimumCount: 1)
                buffer.append(UInt8(ascii: "."))
                if k == 0 {
                    buffer.append(UInt8(ascii: "0"))
                } else {
                    appendDigits(digits % powerInt, minimumCount: k)
                }
                return true
            }
            power *= 10
            powerInt *= 10
        }
        return false
    }

    static let twoTo53: Double = 9_007_199_254_740_992
}
