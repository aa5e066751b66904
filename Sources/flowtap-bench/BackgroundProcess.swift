#if canImport(Glibc)
import Glibc
#endif

/// A child left running while the bench does other things (a forwarder under load), with the CPU time
/// of its whole process tree read from /proc (a daemon's plugin children included).
struct BackgroundProcess {
    let pid: pid_t
    let name: String

    /// Starts `executable` with `arguments`; output to the files named.
    init(_ executable: String, _ arguments: [String], standardOutput: String = "/dev/null", standardError: String = "/dev/null") throws {
        pid = try Subprocess.spawn(executable, arguments, standardOutput: standardOutput, standardError: standardError)
        name = executable
    }

    /// User plus system CPU seconds of the process and every descendant alive now.
    func treeCPUSeconds() -> Double {
        var parents: [pid_t: pid_t] = [:], ticks: [pid_t: Double] = [:]
        for (p, fields) in Subprocess.processStats() {
            guard fields.count > 13, let ppid = pid_t(fields[1]), let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
            parents[p] = ppid
            ticks[p] = user + system
        }
        var total = 0.0
        for (p, t) in ticks {
            var q = p
            while q > 1 {
                if q == pid { total += t; break }
                guard let up = parents[q] else { break }
                q = up
            }
        }
        return total / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Sends `signal` and waits for the process to end.
    func stop(signal: Int32 = SIGTERM) {
        kill(pid, signal)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        Interruption.forget(child: pid)
        Interruption.holdWhileStopping()
    }
}
