#if canImport(Glibc)
import Glibc
#endif
import CHiredis

/// Records to Redis (hiredis): a bounded queue filled by the record writers, emptied by one sender
/// thread in pipelined batches, so a slow or dead server never stalls capture.
///
/// - Full queue: with `waitWhenFull` (capture files: nothing is lost) the writer waits for room, giving
///   up only when `interrupted()` says the command is stopping; otherwise (live capture) the record is
///   dropped and counted (`droppedQueueFull`).
/// - Server gone: the sender reconnects with backoff (0.1 s doubling to `maxBackoff`, 2 s). Records of a batch whose
///   replies did not come back are counted as `droppedUnconfirmed` (the server may or may not have kept
///   them); an error reply counts one record as `rejected`.
/// - At exit the queue is sent for at most `drainSeconds`; what is left is `droppedAtExit`.
/// - Every record is one command (`XADD`, `RPUSH` or `PUBLISH`), so it is never half-written.
/// - `log` hears when the connection is lost and comes back, and, at most every `reportInterval` seconds
///   while records are being dropped, how many and why (the exit summary has the totals).
final class RedisOutput: @unchecked Sendable {
    struct Counters: Sendable {
        var queued: UInt64 = 0
        var confirmed: UInt64 = 0
        var droppedQueueFull: UInt64 = 0
        var droppedUnconfirmed: UInt64 = 0
        var rejected: UInt64 = 0
        var droppedAtExit: UInt64 = 0
        var connections: UInt64 = 0
        var failedConnects: UInt64 = 0
        var dropped: UInt64 { droppedQueueFull + droppedUnconfirmed + rejected + droppedAtExit }
    }

    let target: RedisTarget
    let queueLimit: Int
    let waitWhenFull: Bool
    var drainSeconds = 10.0
    /// Whether the command is stopping (SIGINT/SIGTERM): a writer waiting for room gives up.
    let interrupted: @Sendable () -> Bool
    let log: @Sendable (String) -> Void
    var reportInterval = 10.0
    private var reported = Counters()
    private var lastReport = 0.0
    private var lostAt: Double?

    private let lock = OutputLock()
    private var queue: [[UInt8]] = []
    private var head = 0
    private var queuedBytes = 0
    private var stopping = false
    private var counters = Counters()
    private var lastError: String?
    private var thread: OutputThread?

    /// The longest wait between connection attempts (seconds); the first is 0.1 s, doubling.
    static let maxBackoff = 2.0

    /// Records per pipelined batch, and bytes.
    static let batchRecords = 512
    static let batchBytes = 4 << 20

    init(target: RedisTarget, queueLimit: Int, waitWhenFull: Bool, interrupted: @escaping @Sendable () -> Bool,
         log: @escaping @Sendable (String) -> Void) {
        self.target = target
        self.queueLimit = max(1 << 16, queueLimit)
        self.waitWhenFull = waitWhenFull
        self.interrupted = interrupted
        self.log = log
        thread = OutputThread { [unowned self] in self.send() }
    }

    var snapshot: (counters: Counters, lastError: String?, queued: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (counters, lastError, queue.count - head)
    }

    /// Queues one record (without its newline).
    func enqueue(_ record: UnsafeRawBufferPointer) {
        lock.lock()
        defer { lock.unlock() }
        while queuedBytes + record.count > queueLimit {
            guard waitWhenFull, !stopping, !interrupted() else {
                counters.droppedQueueFull &+= 1
                return
            }
            lock.wait(seconds: 0.1)
        }
        queue.append(Array(record))
        queuedBytes += record.count
        counters.queued &+= 1
        lock.broadcast()
    }

    /// Stops the sender after the queue is sent (at most `drainSeconds`).
    func finish() {
        lock.lock()
        stopping = true
        lock.broadcast()
        lock.unlock()
        thread?.join()
        thread = nil
    }

    // MARK: The sender thread

    private func send() {
        var context: UnsafeMutablePointer<redisContext>? = nil
        var backoff = 0.1
        var deadline = Double.infinity
        while true {
            reportDrops()
            if context == nil {
                context = connect()
                if context != nil, let since = lostAt {
                    lostAt = nil
                    log("flowtap: output \(target.description): connected again after \(Int((monotonicSeconds() - since).rounded())) s\n")
                }
                if context == nil {
                    if lostAt == nil && counters.connections > 0 {
                        lostAt = monotonicSeconds()
                    }
                    lock.lock()
                    counters.failedConnects &+= 1
                    if stopping && deadline == .infinity { deadline = monotonicSeconds() + drainSeconds }
                    if stopping && (monotonicSeconds() >= deadline || head == queue.count) {
                        counters.droppedAtExit &+= UInt64(queue.count - head)
                        queue.removeAll()
                        head = 0
                        queuedBytes = 0
                        lock.broadcast()
                        lock.unlock()
                        return
                    }
                    // New records wake the lock too: wait out the whole backoff (or until stopping).
                    let retry = monotonicSeconds() + backoff
                    var now = monotonicSeconds()
                    while now < retry && !(stopping && monotonicSeconds() >= deadline) {
                        lock.wait(seconds: retry - now)
                        now = monotonicSeconds()
                        if stopping && deadline == .infinity { deadline = now + drainSeconds }
                    }
                    lock.unlock()
                    backoff = min(backoff * 2, Self.maxBackoff)
                    continue
                }
                backoff = 0.1
            }
            lock.lock()
            while head == queue.count && !stopping { lock.wait(seconds: 1) }
            if head == queue.count && stopping {
                lock.unlock()
                break
            }
            var batch: [[UInt8]] = []
            var bytes = 0
            while head < queue.count && batch.count < Self.batchRecords && bytes < Self.batchBytes {
                bytes += queue[head].count
                batch.append(queue[head])
                queue[head] = []
                head += 1
            }
            queuedBytes -= bytes
            if head == queue.count || head > 4096 {
                queue.removeFirst(head)
                head = 0
            }
            lock.broadcast()
            lock.unlock()

            let (confirmed, rejected, unconfirmed) = deliver(batch, context!)
            lock.lock()
            counters.confirmed &+= confirmed
            counters.rejected &+= rejected
            counters.droppedUnconfirmed &+= unconfirmed
            var lost: String? = nil
            if unconfirmed > 0 {
                lastError = Self.errorText(context!)
                lost = lastError
                redisFree(context)
                context = nil
            }
            lock.unlock()
            if let lost {
                lostAt = monotonicSeconds()
                log("flowtap: output \(target.description): connection lost (\(lost)); reconnecting, records queue meanwhile\n")
            }
        }
        if let context { redisFree(context) }
    }

    /// Says how many records were dropped since the last report, at most every `reportInterval` seconds.
    private func reportDrops() {
        let now = monotonicSeconds()
        guard now - lastReport >= reportInterval else { return }
        lastReport = now
        let c = snapshot.counters
        let dropped = c.dropped - reported.dropped
        guard dropped > 0 else { return }
        log("flowtap: output \(target.description): \(dropped) records dropped in the last \(Int(reportInterval)) s (queue full \(c.droppedQueueFull - reported.droppedQueueFull), connection lost before the server confirmed \(c.droppedUnconfirmed - reported.droppedUnconfirmed), refused by the server \(c.rejected - reported.rejected))\n")
        reported = c
    }

    /// Connects, authenticates and selects the database; nil (and `lastError`) when it cannot.
    private func connect() -> UnsafeMutablePointer<redisContext>? {
        let context = redisConnectWithTimeout(target.host, Int32(target.port), timeval(tv_sec: 1, tv_usec: 0))
        guard let context else {
            setError("cannot allocate a Redis context")
            return nil
        }
        if context.pointee.err != 0 {
            setError(Self.errorText(context))
            redisFree(context)
            return nil
        }
        // A server that stops answering fails a batch after 5 s instead of holding the sender.
        redisSetTimeout(context, timeval(tv_sec: 5, tv_usec: 0))
        redisEnableKeepAlive(context)
        var setup: [[[UInt8]]] = []
        if let password = target.password {
            setup.append(target.user.map { [Array("AUTH".utf8), Array($0.utf8), Array(password.utf8)] } ?? [Array("AUTH".utf8), Array(password.utf8)])
        }
        if target.database != 0 { setup.append([Array("SELECT".utf8), Array(String(target.database).utf8)]) }
        for command in setup {
            guard let reply = Self.command(context, command) else {
                setError(Self.errorText(context))
                redisFree(context)
                return nil
            }
            defer { freeReplyObject(reply) }
            let r = reply.assumingMemoryBound(to: redisReply.self)
            if r.pointee.type == REDIS_REPLY_ERROR {
                let text = r.pointee.str.map { String(cString: $0) } ?? "error"
                setError("\(String(decoding: command[0], as: UTF8.self)) refused: \(text)")
                redisFree(context)
                return nil
            }
        }
        lock.lock()
        counters.connections &+= 1
        lastError = nil
        lock.unlock()
        return context
    }

    private func setError(_ text: String) {
        lock.lock()
        lastError = text
        lock.unlock()
    }

    static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return bytes.isEmpty ? "connection lost" : String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Sends a batch as one pipeline; returns (confirmed, rejected, unconfirmed).
    private func deliver(_ batch: [[UInt8]], _ context: UnsafeMutablePointer<redisContext>) -> (UInt64, UInt64, UInt64) {
        for record in batch {
            let parts = arguments(record)
            if Self.append(context, parts) != REDIS_OK { return (0, 0, UInt64(batch.count)) }
        }
        var confirmed: UInt64 = 0, rejected: UInt64 = 0
        for i in batch.indices {
            var reply: UnsafeMutableRawPointer? = nil
            guard redisGetReply(context, &reply) == REDIS_OK, let reply else {
                return (confirmed, rejected, UInt64(batch.count - i))
            }
            if reply.assumingMemoryBound(to: redisReply.self).pointee.type == REDIS_REPLY_ERROR {
                rejected &+= 1
                if let text = reply.assumingMemoryBound(to: redisReply.self).pointee.str {
                    setError("the server refused a record: \(String(cString: text))")
                }
            } else {
                confirmed &+= 1
            }
            freeReplyObject(reply)
        }
        return (confirmed, rejected, 0)
    }

    /// The command's words around the key and the record, made once: `XADD`, then after the key
    /// `MAXLEN ~ N * record` (or `* record`); `RPUSH`; `PUBLISH`.
    private lazy var verb: [UInt8] = Array((target.mode == .stream ? "XADD" : target.mode == .list ? "RPUSH" : "PUBLISH").utf8)
    private lazy var afterKey: [[UInt8]] = target.mode != .stream ? []
        : (target.maxLength > 0 ? ["MAXLEN", "~", String(target.maxLength)] : []).map { Array($0.utf8) } + [Array("*".utf8), Array("record".utf8)]
    private lazy var fixedKey: [UInt8] = Array(target.key.utf8)

    /// The command for one record: the verb, the key (per type only with `{type}`), the fixed words, the record.
    private func arguments(_ record: [UInt8]) -> [[UInt8]] {
        let key = target.keyPerType ? Self.key(target.key, type: RecordType.of(record)) : fixedKey
        return [verb, key] + afterKey + [record]
    }

    /// The key with `{type}` replaced by the record's type ("unknown" when it has none).
    static func key(_ pattern: String, type: [UInt8]?) -> [UInt8] {
        let name = type ?? Array("unknown".utf8)
        var out: [UInt8] = []
        var rest = Array(pattern.utf8)[...]
        let marker = Array("{type}".utf8)
        while !rest.isEmpty {
            if rest.starts(with: marker) {
                out += name
                rest = rest.dropFirst(marker.count)
            } else {
                out.append(rest.removeFirst())
            }
        }
        return out
    }

    private static func append(_ context: UnsafeMutablePointer<redisContext>, _ parts: [[UInt8]]) -> Int32 {
        withPointers(parts) { argv, lengths in redisAppendCommandArgv(context, Int32(parts.count), argv, lengths) }
    }

    private static func command(_ context: UnsafeMutablePointer<redisContext>, _ parts: [[UInt8]]) -> UnsafeMutableRawPointer? {
        withPointers(parts) { argv, lengths in redisCommandArgv(context, Int32(parts.count), argv, lengths) }
    }

    /// The C argument vectors hiredis takes, pointing at the parts' own storage (nothing copied), valid
    /// during `body`: each part's buffer is lent in turn, nested, until all are.
    private static func withPointers<R>(_ parts: [[UInt8]], _ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R) -> R {
        let argv = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: parts.count)
        let lengths = UnsafeMutablePointer<Int>.allocate(capacity: parts.count)
        defer { argv.deallocate(); lengths.deallocate() }
        func lend(_ i: Int) -> R {
            guard i < parts.count else { return body(argv, lengths) }
            return parts[i].withUnsafeBufferPointer { buffer in
                // An empty part still needs a valid pointer; hiredis reads none of its bytes.
                argv[i] = buffer.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) } ?? UnsafePointer(emptyPart)
                lengths[i] = buffer.count
                return lend(i + 1)
            }
        }
        return lend(0)
    }

    nonisolated(unsafe) private static let emptyPart: UnsafeMutablePointer<CChar> = {
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: 1)
        p.pointee = 0
        return p
    }()
}

/// A record's type, read from its JSON text: the value of `"event_type"`, else of `"type"`.
enum RecordType {
    static func of(_ record: [UInt8]) -> [UInt8]? {
        value(of: Array("\"event_type\":\"".utf8), in: record) ?? value(of: Array("\"type\":\"".utf8), in: record)
    }

    /// The text after `marker` up to the next quote, looked for in the first 512 bytes.
    static func value(of marker: [UInt8], in record: [UInt8]) -> [UInt8]? {
        let window = record.prefix(512)
        guard window.count >= marker.count else { return nil }
        var i = window.startIndex
        while i + marker.count <= window.endIndex {
            if window[i ..< i + marker.count].elementsEqual(marker) {
                let start = i + marker.count
                guard let end = window[start...].firstIndex(of: UInt8(ascii: "\"")), end > start else { return nil }
                let name = Array(window[start ..< end])
                // Only names safe in a key: letters, digits, '_' and '-'.
                return name.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x5F || $0 == 0x2D } ? name : nil
            }
            i += 1
        }
        return nil
    }
}
