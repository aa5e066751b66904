#if canImport(Glibc)
import Glibc
#endif

/// SIGINT and SIGTERM set a flag that every packet loop polls (live reads time out every 100 ms),
/// so a command ends its flows, flushes its outputs and prints its summary instead of dying.
public enum StopSignal {
    nonisolated(unsafe) static var flag: sig_atomic_t = 0

    public static var requested: Bool { flag != 0 }

    public static func install() {
        signal(SIGINT) { _ in StopSignal.flag = 1 }
        signal(SIGTERM) { _ in StopSignal.flag = 1 }
    }
}
