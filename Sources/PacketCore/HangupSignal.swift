#if canImport(Glibc)
import Glibc
#endif

/// SIGHUP: `forward` reads its rules again, record-writing commands reopen their output files (for
/// logrotate). The handler only sets a flag; the session's control loop or the record writer takes it,
/// never a packet loop.
public enum HangupSignal {
    nonisolated(unsafe) static var flag: sig_atomic_t = 0

    public static func install() {
        signal(SIGHUP) { _ in HangupSignal.flag = 1 }
    }

    /// Whether SIGHUP came since the last call.
    @inline(__always)
    public static func take() -> Bool {
        if flag == 0 { return false }
        flag = 0
        return true
    }
}
