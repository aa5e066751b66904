import PacketCore

extension JSONWriter {
    /// `t` as RFC 3339 text in UTC with microseconds, the same text as `Timestamp.rfc3339`, written in
    /// place in one reservation. The date is computed from the day number (the proleptic Gregorian
    /// calendar's days-to-civil arithmetic, as `gmtime` computes it, POSIX days having 86,400 seconds)
    /// rather than by `gmtime_r`, which cost about 600 instructions a call: a cache of the last
    /// second's text missed on nearly every `start`, `end` and `timestamp` of flow records, and a cache
    /// of the last day misses as often when records of captures from different days interleave.
    public mutating func timestamp(_ key: StaticString?, _ t: Timestamp) {
        let (second, micro) = t.secondAndMicroseconds
        let day = second >= 0 ? second / 86_400 : (second - 86_399) / 86_400
        let secondOfDay = Int(second - day * 86_400)
        let (year, month, dayOfMonth) = Self.civilDate(daysSinceEpoch: day)
        // "YYYY-MM-DDTHH:MM:SS.ffffff+00:00" and its quotes.
        let total = 34
        let at = reserveValue(key, count: total)
        // Unsigned: a signed remainder needs sign corrections.
        @inline(__always) func digit(_ v: UInt32) -> UInt8 { UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10) }
        @inline(__always) func twoDigits(_ v: UInt32, at i: Int) {
            at[i] = digit(v / 10)
            at[i + 1] = digit(v)
        }
        (at[0], at[5], at[8], at[11], at[14], at[17], at[20]) = (0x22, 0x2D, 0x2D, 0x54, 0x3A, 0x3A, 0x2E) // " - - T : : .
        (at[27], at[28], at[29], at[30], at[31], at[32], at[33]) = (0x2B, 0x30, 0x30, 0x3A, 0x30, 0x30, 0x22) // +00:00"
        // Four digits, as strftime's %Y pads them (years before 1 are written as 0000).
        let y = UInt32(truncatingIfNeeded: max(0, year))
        twoDigits(y / 100, at: 1)
        twoDigits(y, at: 3)
        twoDigits(UInt32(truncatingIfNeeded: month), at: 6)
        twoDigits(UInt32(truncatingIfNeeded: dayOfMonth), at: 9)
        let clock = UInt32(truncatingIfNeeded: secondOfDay)
        twoDigits(clock / 3600, at: 12)
        twoDigits(clock / 60 % 60, at: 15)
        twoDigits(clock % 60, at: 18)
        var v = UInt32(truncatingIfNeeded: micro)
        for i in stride(from: 26, through: 21, by: -1) {
            at[i] = digit(v)
            v /= 10
        }
        buffer.didWrite(total)
    }

    /// Year, month (1–12) and day (1–31) of the day `days` after 1970-01-01 in the proleptic Gregorian
    /// calendar: the day number is shifted to count from 0000-03-01, so that a leap day ends its year,
    /// and split into 400-year eras of 146,097 days.
    static func civilDate(daysSinceEpoch days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }
}

extension JSONWriter {
    /// An address as its text (`IPAddress.description`), written in place: records carry two addresses
    /// each, and formatting them through String was a tenth of `collect`'s time.
    public mutating func address(_ key: StaticString?, _ a: IPAddress) {
        if let key { self.key(key) }
        valueStart()
        let at = buffer.reserve(IPAddress.maxTextLength + 2)
        at.pointee = UInt8(ascii: "\"")
        let n = a.writeText(to: at + 1)
        at[n + 1] = UInt8(ascii: "\"")
        buffer.didWrite(n + 2)
    }
}
