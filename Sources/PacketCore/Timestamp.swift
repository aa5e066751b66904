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

    /// Epoch seconds as the analyzers carry them (whole seconds plus microseconds), rounded to the
    /// microsecond they came from; a value out of range is the epoch.
    public init(epochSeconds: Double) {
        guard epochSeconds.isFinite, abs(epochSeconds) < 9.2e9 else { self.init(nanoseconds: 0); return }
        let whole = epochSeconds.rounded(.down)
        let micro = ((epochSeconds - whole) * 1e6).rounded()
        self.init(seconds: Int64(whole), microseconds: Int64(micro))
    }

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
    /// The whole second (floored) and the microseconds within it. Int64 nanoseconds span the years
    /// 1677–2262, so the floor division stays in range.
    public var secondAndMicroseconds: (second: Int64, microseconds: Int) {
        let ns = max(nanoseconds, Int64.min + 1_000_000_000)
        let second = ns >= 0 ? ns / 1_000_000_000 : (ns - 999_999_999) / 1_000_000_000
        return (second, Int((ns - second * 1_000_000_000) / 1000))
    }

    /// Appends "YYYY-MM-DDTHH:MM:SS" (UTC) of `second` to `out`, through `gmtime_r` (`rfc3339`'s date and
    /// time; `JSONWriter.timestamp` computes the same text without the C library, and is tested against this).
    public static func appendRFC3339Date(second: Int64, to out: inout [UInt8]) {
        var seconds = time_t(second)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func put(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1 ..< width { divisor *= 10 }
            var v = max(0, value)
            for _ in 0 ..< width {
                out.append(UInt8(ascii: "0") &+ UInt8(v / divisor % 10))
                v %= divisor
                divisor /= 10
            }
        }
        put(Int(parts.tm_year) + 1900, 4)
        out.append(UInt8(ascii: "-"))
        put(Int(parts.tm_mon) + 1, 2)
        out.append(UInt8(ascii: "-"))
        put(Int(parts.tm_mday), 2)
        out.append(UInt8(ascii: "T"))
        put(Int(parts.tm_hour), 2)
        out.append(UInt8(ascii: ":"))
        put(Int(parts.tm_min), 2)
        out.append(UInt8(ascii: ":"))
        put(Int(parts.tm_sec), 2)
    }

    /// RFC 3339 text in UTC with microseconds, "2024-05-01T12:34:56.123456+00:00" (what records' `timestamp` holds).
    public var rfc3339: String {
        let (second, micro) = secondAndMicroseconds
        var out: [UInt8] = []
        out.reserveCapacity(32)
        Self.appendRFC3339Date(second: second, to: &out)
        out.append(UInt8(ascii: "."))
        var divisor = 100_000
        for _ in 0 ..< 6 {
            out.append(UInt8(ascii: "0") &+ UInt8(micro / divisor % 10))
            divisor /= 10
        }
        out.append(contentsOf: "+00:00".utf8)
        return String(decoding: out, as: UTF8.self)
    }
}
