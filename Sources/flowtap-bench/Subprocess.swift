#if canImport(Glibc)
import PacketCore
import CaptureTools
import Glibc
#endif

/// Child processes for the bench commands: spawned with `posix_spawnp`, reaped with `wait4`,
/// so each run's wall time and the child's own resource use (peak RSS, CPU) are known.
enum Subprocess {
    struct Result {
        /// The exit status, or 128 + the signal that ended it.
        var status: Int32
        /// Wall time from spawn to reaping.
        var seconds: Double
        /// The child's peak resident set (`ru_maxrss`), in KiB.
        var peakRSSKiB: Int
        /// Whether `peakRSSKiB` is the command's own, not raised to this process's peak (see `run`).
        var peakRSSExact = false
        /// User plus system CPU time of the child.
        var cpuSeconds: Double
        /// The share of the machine's CPU time the hypervisor took while the child ran (`HostSteal`).
        var stealShare: Double?
    }

    /// Runs `executable` (a path, or a name looked up in PATH) with `arguments` and waits for it.
    /// Standard input is /dev/null; standard output and error go to the files named (truncated).
    ///
    /// Linux keeps a process's peak RSS across `execve`, and a spawned child starts on its parent's
    /// memory, so the child's own `ru_maxrss` is at least this process's peak when it was spawned.
    /// With `timeTool` (GNU time) the command runs under it: time is small, and its own `wait4`
    /// of the command gives the command's true peak, which replaces ours (`peakRSSExact`).
    static func run(_ executable: String, _ arguments: [String], standardOutput: String = "/dev/null",
                    standardError: String = "/dev/null", timeTool: String? = nil) throws -> Result {
        guard let timeTool else {
            return try spawnAndWait(executable, arguments, standardOutput: standardOutput, standardError: standardError)
        }
        let report = standardError + ".rss"
        defer { unlink(report) }
        var result = try spawnAndWait(timeTool, ["-f", "%M", "-o", report, executable] + arguments,
                                      standardOutput: standardOutput, standardError: standardError)
        // The last line is the figure; a failed command's status line comes before it.
        if let line = readText(report).split(separator: "\n").last, let kib = Int(line) {
            result.peakRSSKiB = kib
            result.peakRSSExact = true
        }
        return result
    }

    /// Starts `executable` (a path, or a name looked up in PATH) with standard input /dev/null and its
    /// output to the files named (truncated); the child's pid.
    static func spawn(_ executable: String, _ arguments: [String], standardOutput: String, standardError: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, standardOutput, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, standardError, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // This process blocks the stop signals for `Interruption`'s thread; the child must not inherit that.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        // Its own process group, so that a stop reaches what it starts in turn (GNU time's command).
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, executable, &actions, &attributes, argv, environ)
        guard spawned == 0 else {
            throw BenchError("cannot start \(executable): \(String(cString: strerror(spawned)))")
        }
        Interruption.track(child: pid)
        return pid
    }

    /// Runs the commands at once (each: executable, arguments, standard error file; output to /dev/null)
    /// and waits for all of them: the wall time until the last one ended, and each one's result.
    static func runTogether(_ commands: [(String, [String], String)]) throws -> (seconds: Double, results: [Result]) {
        let steal = HostSteal.sample()
        let start = MonotonicClock.seconds()
        let pids = try commands.map { try spawn($0.0, $0.1, standardOutput: "/dev/null", standardError: $0.2) }
        var results: [Result] = []
        for (pid, command) in zip(pids, commands) {
            results.append(try reap(pid, command.0, start: start))
        }
        let seconds = MonotonicClock.seconds() - start
        let share = HostSteal.share(from: steal, to: HostSteal.sample())
        for i in results.indices { results[i].stealShare = share }
        return (seconds, results)
    }

    private static func reap(_ pid: pid_t, _ executable: String, start: Double) throws -> Result {
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 {
            guard errno == EINTR else {
                Interruption.holdWhileStopping()
                throw BenchError("wait4 for \(executable) failed: \(String(cString: strerror(errno)))")
            }
        }
        Interruption.forget(child: pid)
        Interruption.holdWhileStopping()
        let seconds = MonotonicClock.seconds() - start
        let signal = status & 0x7F
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        return Result(status: signal == 0 ? (status >> 8) & 0xFF : 128 + signal, seconds: seconds,
                      peakRSSKiB: Int(usage.ru_maxrss), cpuSeconds: cpu)
    }

    private static func spawnAndWait(_ executable: String, _ arguments: [String], standardOutput: String,
                                     standardError: String) throws -> Result {
        let steal = HostSteal.sample()
        let start = MonotonicClock.seconds()
        let pid = try spawn(executable, arguments, standardOutput: standardOutput, standardError: standardError)
        var result = try reap(pid, executable, start: start)
        result.stealShare = HostSteal.share(from: steal, to: HostSteal.sample())
        return result
    }

    /// The path of an executable named `name` in PATH, or nil.
    static func which(_ name: String) -> String? {
        guard let path = getenv("PATH") else { return nil }
        for directory in String(cString: path).split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// This process's own executable (`/proc/self/exe` resolved).
    static func ownExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[0 ..< n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "/proc/self/exe"
    }

    /// An executable in the directory of this process's own (`flowtap` beside `flowtap-bench`).
    static func sibling(_ name: String) -> String {
        let own = ownExecutable()
        guard let slash = own.lastIndex(of: "/") else { return name }
        return String(own[...slash]) + name
    }

    /// A new empty directory under /tmp named after `prefix`.
    static func temporaryDirectory(_ prefix: String) throws -> String { try temporaryDirectoryIn("/tmp", prefix) }

    /// A new empty directory under `parent` named after `prefix`.
    static func temporaryDirectoryIn(_ parent: String, _ prefix: String) throws -> String {
        var template = Array("\(parent)/\(prefix)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw BenchError("cannot create a directory under \(parent): \(String(cString: strerror(errno)))")
        }
        let path = String(cString: made)
        Interruption.track(directory: path)
        return path
    }

    /// Removes `path` and everything below it (links are removed, not followed); a directory made by
    /// `temporaryDirectoryIn` is no longer removed on a signal (`Interruption`) once this ran.
    static func removeTree(_ path: String, tracked: Bool = true) {
        removeEntries(path)
        if tracked { Interruption.forget(directory: path) }
    }

    private static func removeEntries(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if info.st_mode & S_IFMT == S_IFDIR, let directory = opendir(path) {
            var names: [String] = []
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name != "." && name != ".." { names.append(name) }
            }
            closedir(directory)
            for name in names { removeEntries(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// Every process's /proc/PID/stat fields after the command name: state (0), parent (1), process
    /// group (2), … user (11) and system (12) CPU ticks.
    static func processStats() -> [(pid: pid_t, fields: [Substring])] {
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        var stats: [(pid: pid_t, fields: [Substring])] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let pid = pid_t(name) else { continue }
            let text = readText("/proc/\(pid)/stat")
            // The command name is in parentheses and may hold spaces: fields start after the last ')'.
            guard let close = text.lastIndex(of: ")") else { continue }
            stats.append((pid, text[text.index(after: close)...].split(separator: " ")))
        }
        return stats
    }

    /// The whole text of a small file, or "" when it cannot be read.
    static func readText(_ path: String) -> String {
        guard let file = fopen(path, "r") else { return "" }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes += chunk[0 ..< n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Runs `commands` in turn, `runs` rounds (alternating, so a noisy moment hits every command alike);
    /// each command's CPU and wall seconds per round, and the first command's last standard error.
    /// A command that fails stops the bench with its status and error text.
    static func rounds(_ commands: [(String, [String])], runs: Int, scratch: String) throws -> (cpu: [[Double]], wall: [[Double]], firstErrors: String) {
        let timeTool = which("time")
        var cpu = Array(repeating: [Double](), count: commands.count)
        var wall = cpu
        var firstErrors = ""
        for _ in 0 ..< runs {
            for (i, command) in commands.enumerated() {
                let result = try run(command.1[0], Array(command.1.dropFirst()), standardError: scratch + "/stderr", timeTool: timeTool)
                guard result.status == 0 else {
                    throw BenchError("\(command.0) exited with status \(result.status): \(readText(scratch + "/stderr").prefix(300))")
                }
                cpu[i].append(result.cpuSeconds)
                wall[i].append(result.seconds)
                if i == 0 { firstErrors = readText(scratch + "/stderr") }
            }
        }
        return (cpu, wall, firstErrors)
    }
}
