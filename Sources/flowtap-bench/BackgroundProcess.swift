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
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, standardOutput, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, standardError, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else { throw BenchError("cannot start \(executable): \(String(cString: strerror(spawned)))") }
        self.pid = pid
        name = executable
    }

    /// User plus system CPU seconds of the process and every descendant alive now.
    func treeCPUSeconds() -> Double {
        var parents: [pid_t: pid_t] = [:], ticks: [pid_t: Double] = [:]
        guard let directory = opendir("/proc") else { return 0 }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let p = pid_t(name) else { continue }
            let stat = Subprocess.readText("/proc/\(p)/stat")
            // pid (comm) state ppid … utime(14) stime(15): fields after the closing parenthesis.
            guard let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 13, let ppid = pid_t(fields[1]), let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
            parents[p] = ppid
            ticks[p] = user + system
        }
        closedir(directory)
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
    }
}
