#if canImport(Glibc)
import Glibc
#endif

/// SIGHUP asks a daemon to read its configuration again (`forward` rereads its rules); the flag is
/// taken by the session's control loop, never by a packet loop.
public enum ReloadSignal {
    nonisolated(unsafe) static var flag: sig_atomic_t = 0

    public static func install() {
        signal(SIGHUP) { _ in ReloadSignal.flag = 1 }
    }

    /// Whether SIGHUP came since the last call.
    public static func take() -> Bool {
        if flag == 0 { return false }
        flag = 0
        return true
    }
}
