#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A pipeline run on its own thread, so the calling thread can serve sockets meanwhile.
public final class BackgroundRun: @unchecked Sendable {
    private let finishedFlag = Atomic<Bool>(false)
    private var thread = pthread_t()
    private var failure: (any Error)?

    /// Starts `work` on a new thread.
    public init(_ work: @escaping () throws -> Void) {
        thread = startThread { [self] in
            do { try work() } catch { failure = error }
            finishedFlag.store(true, ordering: .releasing)
        }
    }

    public var isFinished: Bool { finishedFlag.load(ordering: .acquiring) }

    /// Waits for the thread; rethrows what `work` threw.
    public func join() throws {
        pthread_join(thread, nil)
        if let failure { throw failure }
    }
}

/// The closure a thread runs, carried through pthread_create's context pointer.
private final class ThreadBody: @unchecked Sendable {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Starts a POSIX thread running `body` (packet loops run on dedicated threads, not tasks).
public func startThread(_ body: @escaping () -> Void) -> pthread_t {
    let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { context in
        Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().body()
        return nil
    }, context)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    return thread
}

/// CPU seconds the calling thread has used (user + system), for per-thread splits in summaries.
public func threadCPUSeconds() -> Double {
    var t = timespec()
    guard clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) == 0 else { return 0 }
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
