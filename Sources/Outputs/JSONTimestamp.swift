import PacketCore

extension JSONWriter {
    /// `t` as RFC 3339 text in UTC with microseconds, the same text as `Timestamp.rfc3339`, written in
    /// place: records carry two or three times each, and the date and time of day change once a second,
    /// so they are converted (`gmtime_r`) once per second and reused (`TimestampCache`).
    public mutating func timestamp(_ key: StaticString?, _ t: Timestamp) {
        let (second, micro) = t.secondAndMicroseconds
        if second != timestampCache.second {
            timestampCache.second = second
            timestampCache.text.removeAll(keepingCapacity: true)
            Timestamp.appendRFC3339Date(second: second, to: &timestampCache.text)
        }
        string(key, bytes: EmptyCollection<UInt8>())
        // The empty string's closing quote is replaced by the text and a new quote.
        buffer.removeLast()
        buffer.append(contentsOf: timestampCache.text)
        var digits: (UInt32, UInt32) = (0, 0)
        withUnsafeMutableBytes(of: &digits) { d in
            d[0] = UInt8(ascii: ".")
            var v = micro
            for i in stride(from: 6, through: 1, by: -1) {
                d[i] = UInt8(ascii: "0") &+ UInt8(v % 10)
                v /= 10
            }
            d[7] = UInt8(ascii: "+")
            appendBytes(UnsafeRawBufferPointer(rebasing: d[0 ..< 8]))
        }
        buffer.append(contentsOf: "00:00\"".utf8)
    }
}

/// The last second `JSONWriter.timestamp` converted, and its "YYYY-MM-DDTHH:MM:SS" text.
struct TimestampCache: Sendable {
    var second = Int64.min
    var text: [UInt8] = []
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
