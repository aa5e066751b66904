#if canImport(Glibc)
import Glibc
#endif
import PacketCore
import Synchronization

/// What a bench leaves behind when it is stopped: SIGINT, SIGTERM or SIGHUP end it cleanly instead of
/// leaving its scratch directories (copies of the captures in /dev/shm, FlowTap's event files) and a
/// running child behind.
///
/// The three signals are blocked in every thread (the mask is set before any thread starts and is
/// inherited) and taken by one thread in `sigwait`, which can then do what a signal handler may not:
/// stop the children with SIGTERM and wait for them, remove the directories, say what it did and exit
/// with 128 + the signal. Children start with an empty mask (`Subprocess.spawn`), so they see the
/// signals as they would without the bench.
enum Interruption {
    private struct State {
        var directories: [String] = []
        var children: [pid_t] = []
        var stopping = false
    }

    private static let state = Mutex(State())

    static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    /// Blocks the signals and starts the thread that waits for them; call before anything else runs.
    static func install() {
        var set = blockedSet()
        pthread_sigmask(SIG_BLOCK, &set, nil)
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { _ in
            var set = Interruption.blockedSet()
            var signal: Int32 = 0
            while sigwait(&set, &signal) != 0 {}
            Interruption.stop(signal: signal)
        }, nil)
        if started == 0 { pthread_detach(thread) }
    }

    static func blockedSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        return set
    }

    /// A directory to remove on a stop. Made while the bench is being stopped (after the stopping thread
    /// took its list), it is removed here and the thread waits for the exit.
    static func track(directory: String) {
        guard isStopping(orAdd: { $0.directories.append(directory) }) else { return }
        Subprocess.removeTree(directory, tracked: false)
        holdWhileStopping()
    }

    static func forget(directory: String) { state.withLock { $0.directories.removeAll { $0 == directory } } }

    /// A child to stop on a stop; one started while the bench is being stopped is killed at once.
    static func track(child: pid_t) {
        guard isStopping(orAdd: { $0.children.append(child) }) else { return }
        kill(-child, SIGKILL)
        holdWhileStopping()
    }

    /// Whether a stop has begun; if not, `add` records something for it, under the same lock.
    private static func isStopping(orAdd add: (inout State) -> Void) -> Bool {
        state.withLock { s in
            if !s.stopping { add(&s) }
            return s.stopping
        }
    }

    static func forget(child: pid_t) { state.withLock { $0.children.removeAll { $0 == child } } }

    /// Called by a thread that just reaped a child: while the bench is being stopped, the child ended
    /// because it was told to, so the thread waits here for the exit instead of reporting a failure.
    static func holdWhileStopping() {
        while state.withLock({ $0.stopping }) { pause() }
    }

    /// Whether every process of the group `group` has ended (is gone or a zombie), from /proc/PID/stat's
    /// state and process-group fields.
    private static func hasEnded(group: pid_t) -> Bool {
        for (_, fields) in Subprocess.processStats() where fields.count > 2 && Int32(fields[2]) == group {
            if fields[0] != "Z" && fields[0] != "X" { return false }
        }
        return true
    }

    /// Stops the children (SIGTERM, then SIGKILL after two seconds), removes the directories, reports
    /// and exits; the process's other threads are still running and are ended by the exit.
    private static func stop(signal: Int32) -> Never {
        let (directories, children) = state.withLock {
            $0.stopping = true
            return ($0.directories, $0.children)
        }
        // Each child leads its own process group (`Subprocess.spawn`): the whole group is stopped.
        for child in children { kill(-child, SIGTERM) }
        let deadline = MonotonicClock.seconds() + 2
        var pending = Set(children)
        while !pending.isEmpty {
            // Not reaped here: the thread that started the child reaps it (and then waits in
            // `holdWhileStopping`); a child that ended is a zombie or gone.
            for child in pending where hasEnded(group: child) { pending.remove(child) }
            if pending.isEmpty { break }
            if MonotonicClock.seconds() > deadline {
                for child in pending { kill(-child, SIGKILL) }
                break
            }
            usleep(10_000)
        }
        for directory in directories.reversed() { Subprocess.removeTree(directory, tracked: false) }
        let name = signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "SIGHUP"
        writeStandardError("flowtap-bench: stopped by \(name); stopped \(children.count) running command\(children.count == 1 ? "" : "s"), removed \(directories.count) scratch director\(directories.count == 1 ? "y" : "ies")\n")
        _exit(128 + signal)
    }
}
