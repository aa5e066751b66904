#if canImport(Glibc)
import Glibc
#endif

/// Seconds on the monotonic clock (`CLOCK_MONOTONIC`): for intervals, deadlines and rates, never
/// for packet times (packets carry their own `Timestamp`). One definition for every command,
/// benchmark and progress line.
public enum MonotonicClock {
    @inline(__always)
    public static func seconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
