#if canImport(Glibc)
import Glibc
#endif

/// A capture timestamp: nanoseconds since the Unix epoch.
///
/// Nanoseconds in an `Int64` reach the year 2262, and every capture format
/// FlowTap reads (pcap µs/ns, pcapng with any `if_tsresol`) converts into it
/// exactly or with sub-nanosecond rounding.
public struct Timestamp: Hashable, Comparable, Sendable {
    public var nanoseconds: Int64

    @inlinable
    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    @inlinable
    public init(seconds: Int64, microseconds: Int64) {
        nanoseconds = seconds &* 1_000_000_000 &+ microseconds &* 1000
    }

    @inlinable
    public init(seconds: Int64, nanosecondsPart: Int64) {
        nanoseconds = seconds &* 1_000_000_000 &+ nanosecondsPart
    }

    public static let zero = Timestamp(nanoseconds: 0)

    @inlinable public var seconds: Int64 { nanoseconds / 1_000_000_000 }
    @inlinable public var subsecondNanoseconds: Int64 { nanoseconds % 1_000_000_000 }
    @inlinable public var microseconds: Int64 { subsecondNanoseconds / 1000 }

    /// Seconds as a `Double`, the way SF-TAP prints `time=`.
    @inlinable public var secondsDouble: Double {
        Double(seconds) + Double(subsecondNanoseconds) * 1e-9
    }

    @inlinable
    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.nanoseconds < b.nanoseconds }
}

extension Timestamp {
    /// Now, on the real-time clock: the time of events that have no packet time (injected flows).
    public static func wallClock() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(seconds: Int64(ts.tv_sec), nanosecondsPart: Int64(ts.tv_nsec))
    }
}

extension Timestamp {
    /// RFC 3339 text in UTC with microseconds, "2024-05-01T12:34:56.123456+00:00" (what records' `timestamp` holds).
    public var rfc3339: String {
        // Int64 nanoseconds span the years 1677–2262 (four digits); the floor division stays in range.
        let nanoseconds = max(self.nanoseconds, Int64.min + 1_000_000_000)
        var seconds = time_t(nanoseconds >= 0 ? nanoseconds / 1_000_000_000 : (nanoseconds - 999_999_999) / 1_000_000_000)
        let micro = Int((nanoseconds - Int64(seconds) * 1_000_000_000) / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        // Written digit by digit into one buffer: a record holds three of these.
        var out = [UInt8](repeating: 0, count: 32)
        func put(_ value: Int, _ width: Int, at offset: Int) {
            var v = value
            for i in stride(from: offset + width - 1, through: offset, by: -1) {
                out[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            }
        }
        put(Int(parts.tm_year) + 1900, 4, at: 0)
        out[4] = UInt8(ascii: "-")
        put(Int(parts.tm_mon) + 1, 2, at: 5)
        out[7] = UInt8(ascii: "-")
        put(Int(parts.tm_mday), 2, at: 8)
        out[10] = UInt8(ascii: "T")
        put(Int(parts.tm_hour), 2, at: 11)
        out[13] = UInt8(ascii: ":")
        put(Int(parts.tm_min), 2, at: 14)
        out[16] = UInt8(ascii: ":")
        put(Int(parts.tm_sec), 2, at: 17)
        out[19] = UInt8(ascii: ".")
        put(micro, 6, at: 20)
        for (i, c) in "+00:00".utf8.enumerated() { out[26 + i] = c }
        return String(decoding: out, as: UTF8.self)
    }
}
