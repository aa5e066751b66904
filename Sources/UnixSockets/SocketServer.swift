#if canImport(Glibc)
import Glibc
#endif

// # UnixSockets: the UNIX-domain sockets analyzers read from
//
// SF-TAP's flow abstractor hands every event to analyzers through
// `SOCK_STREAM` sockets under `home/` (tcp/<if>, udp/<if>, icmp/<if>) and
// takes injected traffic on two more (`loopback7`, `pcap`). `SocketServer`
// is that layer, driven by the caller's event loop through `poll(...)`;
// everything is non-blocking and one thread owns the server (it is not
// Sendable and takes no locks).
//
// Invariants
// - A reader only ever sees whole events, in publish order, starting at the
//   first event published after it was accepted. An event is queued whole or
//   dropped whole; a partial write is resumed at the exact byte it stopped
//   at, so framing (text line + body, or 64-byte header + body) is never
//   corrupted. Gaps, when there are any, fall on event boundaries.
// - `publish` never blocks and never waits for any reader: a slow or stopped
//   analyzer delays nobody else, on its output or any other.
// - Every drop is counted, per reader and per output, in events and bytes.
// - Analyzers may write anything; it is read and thrown away so their
//   socket never fills.
// - `close()` (and deinit) closes every descriptor and unlinks every socket
//   file this server bound, icmp/ included, but only if the file is still
//   the one it bound; it also removes the directories it created, if empty.
//
// Limits (all in `Configuration`)
// - Each reader has a byte ring of `readerQueueBytes` (default 8 MiB),
//   allocated when it is accepted; it rewinds when empty, so a reader that
//   keeps up commits only a few pages. An event that does not fit in the
//   free space is dropped for that reader alone (tail drop: queued events
//   are never discarded to make room); an event larger than the whole ring
//   is always dropped.
// - A reader whose socket filled (EAGAIN or a short write) is not written
//   again until poll(2) reports POLLOUT, so events queue until the next
//   `poll`; call `poll` (or `flush`) often.
// - At most `maxReadersPerOutput` readers per output and
//   `maxConnectionsPerInput` connections per input (the rest are accepted
//   and closed at once, counted as refused), so memory is bounded by
//   outputs × readers × readerQueueBytes + inputs × connections × inputBufferBytes.
// - Input connections read into a buffer of `inputBufferBytes` (default
//   256 KiB). A handler that keeps a full buffer (consumes nothing of it)
//   has its connection closed with `.bufferOverflow`.
// - Each poll round accepts at most 32 connections per listener and reads
//   at most 4 buffers per connection, so one busy peer cannot starve the loop.
//   A listener whose accept fails for want of descriptors or memory (EMFILE,
//   ENFILE, ENOBUFS, ENOMEM) rests 100 ms, counted in `acceptErrors`.
//
// Differences from SF-TAP on purpose: writes never block (SF-TAP blocks up to
// 1 s per event under SO_SNDTIMEO), partial writes are resumed instead of
// corrupting the stream, injected input is read without blocking, a live
// socket at the path is refused rather than stolen, and icmp/ is unlinked too.

/// UNIX-domain socket server for the flow abstractor's output and input interfaces.
public final class SocketServer {
    public struct Configuration: Sendable {
        /// Bytes queued per reader before whole events are dropped for it.
        public var readerQueueBytes: Int
        public var maxReadersPerOutput: Int
        /// SO_SNDBUF for accepted readers (SF-TAP: 1 MiB; the kernel caps it
        /// at net.core.wmem_max); nil leaves the kernel default.
        public var readerSendBufferBytes: Int?
        /// 0: every `publish` tries to write at once (lowest latency, one
        /// sendmsg per event and reader). N > 0: events collect in the ring
        /// and are written once N bytes are queued, or at `flush`/`poll`.
        public var flushThresholdBytes: Int
        /// Receive buffer per input connection.
        public var inputBufferBytes: Int
        public var maxConnectionsPerInput: Int
        /// listen(2) backlog (SF-TAP: 128).
        public var listenBacklog: Int32
        /// Mode of the socket files (0770, what SF-TAP's umask 0007 gives).
        public var socketMode: mode_t

        public init(readerQueueBytes: Int = 8 << 20,
                    maxReadersPerOutput: Int = 64,
                    readerSendBufferBytes: Int? = 1 << 20,
                    flushThresholdBytes: Int = 0,
                    inputBufferBytes: Int = 256 << 10,
                    maxConnectionsPerInput: Int = 16,
                    listenBacklog: Int32 = 128,
                    socketMode: mode_t = 0o770) {
            self.readerQueueBytes = max(4096, readerQueueBytes)
            self.maxReadersPerOutput = max(1, maxReadersPerOutput)
            self.readerSendBufferBytes = readerSendBufferBytes
            // Above half the queue, batching would turn into drops.
            self.flushThresholdBytes = min(max(0, flushThresholdBytes), self.readerQueueBytes / 2)
            self.inputBufferBytes = max(4096, inputBufferBytes)
            self.maxConnectionsPerInput = max(1, maxConnectionsPerInput)
            self.listenBacklog = listenBacklog
            self.socketMode = socketMode
        }
    }

    public let configuration: Configuration

    private struct OutputState {
        var listener: Listener
        var readers: [Reader] = []
        var readersAccepted: UInt64 = 0
        var readersRefused: UInt64 = 0
        var readersDisconnected: UInt64 = 0
        var eventsPublished: UInt64 = 0
        var bytesPublished: UInt64 = 0
        var eventsDropped: UInt64 = 0
        var bytesDropped: UInt64 = 0
        var acceptErrors: UInt64 = 0
        var acceptPausedUntil: ContinuousClock.Instant?
    }

    private struct InputState {
        var listener: Listener
        let onData: InputDataHandler
        let onClose: InputCloseHandler
        var connections: [Connection] = []
        var connectionsAccepted: UInt64 = 0
        var connectionsRefused: UInt64 = 0
        var bytesReceived: UInt64 = 0
        var overflowCloses: UInt64 = 0
        var acceptErrors: UInt64 = 0
        var acceptPausedUntil: ContinuousClock.Instant?
    }

    private enum Endpoint { case output(Int), input(Int) }
    private enum PollTarget { case outputListener(Int), inputListener(Int), reader(Int, Int), connection(Int, Int) }

    private static let acceptsPerRound = 32
    private static let readsPerRound = 4
    private static let discardBytes = 64 << 10
    /// How long a listener rests after accept fails for want of descriptors or
    /// memory; poll(2) is level-triggered and would otherwise spin on it.
    private static let acceptPause: Duration = .milliseconds(100)

    private var outputs: [OutputState] = []
    private var inputs: [InputState] = []
    private var endpoints: [String: Endpoint] = [:]
    private var createdDirectories: [String] = []
    /// Scratch for sendmsg: two ring regions or header + body.
    private let iov: UnsafeMutablePointer<iovec>
    /// Where analyzer chatter is read to and forgotten.
    private let discard: UnsafeMutableRawPointer
    private var pollFDs: [pollfd] = []
    private var pollTargets: [PollTarget] = []
    private var polling = false
    private var sweepNeeded = false
    private var closeRequested = false
    private var closed = false
    private var nextSerial: UInt64 = 1

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        iov = .allocate(capacity: 4)
        discard = .allocate(byteCount: Self.discardBytes, alignment: 16)
    }

    deinit {
        shutdown(notify: false)
        iov.deallocate()
        discard.deallocate()
    }

    // MARK: - Setting up

    /// Creates (or returns the existing) output socket at `path`.
    ///
    /// Makes missing parent directories (mode 0770), removes a stale socket
    /// file (refusing any other kind of file, or a socket someone is
    /// listening on), binds, chmods to `socketMode` and listens. Calling it
    /// again for the same socket file (however the path is spelled) returns
    /// the same ID, so rules that share an `if` share the socket.
    public func addOutput(path: String) throws(SocketError) -> OutputID {
        if let existing = endpoints[path] ?? endpointBound(at: path) {
            if case .output(let index) = existing { return OutputID(index) }
            throw SocketError(code: .pathConflict, path: path, message: "already an input socket: give the output another name")
        }
        let listener = try bindListener(path)
        outputs.append(OutputState(listener: listener))
        endpoints[path] = .output(outputs.count - 1)
        return OutputID(outputs.count - 1)
    }

    /// Creates an input socket (loopback7, pcap) at `path`.
    ///
    /// `onData` is shown each read's bytes, preceded by whatever it left
    /// unconsumed last time; `onClose` runs once per connection however it
    /// ends. Both run inside `poll` (or `close`/`closeConnection`) on the
    /// owning thread and may call `publish`, `flush` and `closeConnection`;
    /// a `close()` from inside them takes effect when `poll` returns.
    public func addInput(path: String,
                         onData: @escaping InputDataHandler,
                         onClose: @escaping InputCloseHandler = { _, _ in }) throws(SocketError) -> InputID {
        if endpoints[path] != nil || endpointBound(at: path) != nil {
            throw SocketError(code: .pathConflict, path: path, message: "already an interface: inputs cannot share a socket")
        }
        let listener = try bindListener(path)
        inputs.append(InputState(listener: listener, onData: onData, onClose: onClose))
        endpoints[path] = .input(inputs.count - 1)
        return InputID(inputs.count - 1)
    }

    /// The interface whose socket file is at `path` however it is spelled
    /// ("home//tcp/x", "./x", a symlinked directory), so it is not mistaken
    /// for another process's live socket.
    private func endpointBound(at path: String) -> Endpoint? {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK else { return nil }
        let (device, inode) = (UInt64(info.st_dev), UInt64(info.st_ino))
        if let o = outputs.firstIndex(where: { $0.listener.device == device && $0.listener.inode == inode }) { return .output(o) }
        if let i = inputs.firstIndex(where: { $0.listener.device == device && $0.listener.inode == inode }) { return .input(i) }
        return nil
    }

    private func bindListener(_ path: String) throws(SocketError) -> Listener {
        if closed || closeRequested {
            throw SocketError(code: .closed, path: path, message: "the socket server is closed")
        }
        try UnixSocket.validate(path)
        try UnixSocket.makeParents(of: path, created: &createdDirectories)
        try UnixSocket.removeStale(path)
        return try UnixSocket.listen(path: path, backlog: configuration.listenBacklog, mode: configuration.socketMode)
    }

    // MARK: - Publishing (hot)

    /// Queues one whole event (header then body) for every reader of `id`
    /// and tries to write it; never blocks. A reader without room for the
    /// whole event loses the whole event, counted. Unknown IDs, and any ID
    /// after `close()`, are ignored.
    public func publish(_ id: OutputID, header: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) {
        let o = Int(id.rawValue)
        guard o >= 0 && o < outputs.count else { return }
        let total = header.count &+ body.count
        outputs[o].eventsPublished &+= 1
        outputs[o].bytesPublished &+= UInt64(total)
        if total == 0 || outputs[o].readers.isEmpty { return }
        let threshold = configuration.flushThresholdBytes
        let iov = self.iov
        var dropped: UInt64 = 0
        var died = false
        outputs[o].readers.withUnsafeMutableBufferPointer { readers in
            for r in readers.indices where !readers[r].dead {
                if !readers[r].offer(header, body, total: total, flushThreshold: threshold, iov: iov) { dropped &+= 1 }
                if readers[r].dead { died = true }
            }
        }
        if dropped > 0 {
            outputs[o].eventsDropped &+= dropped
            outputs[o].bytesDropped &+= dropped &* UInt64(total)
        }
        if died { readerDied() }
    }

    /// `publish` of an event already in one buffer.
    public func publish(_ id: OutputID, event: UnsafeRawBufferPointer) {
        publish(id, header: event, body: UnsafeRawBufferPointer(start: nil, count: 0))
    }

    /// Writes what readers have queued, except to those whose socket is full
    /// (poll(2) reports when they have room). Needed with `flushThresholdBytes > 0`.
    public func flush() {
        var died = false
        let iov = self.iov
        for o in outputs.indices {
            outputs[o].readers.withUnsafeMutableBufferPointer { readers in
                for r in readers.indices where !readers[r].dead && !readers[r].blocked && !readers[r].ring.isEmpty {
                    readers[r].flush(iov)
                    if readers[r].dead { died = true }
                }
            }
        }
        if died { readerDied() }
    }

    /// Readers connected to `id` now (for `--wait-readers`, or to skip
    /// formatting events nobody will read).
    public func readerCount(_ id: OutputID) -> Int {
        let o = Int(id.rawValue)
        guard o >= 0 && o < outputs.count else { return 0 }
        var live = 0
        for reader in outputs[o].readers where !reader.dead { live += 1 }
        return live
    }

    private func readerDied() {
        sweepNeeded = true
        if !polling { sweep() }
    }

    // MARK: - Event loop

    /// One round of poll(2): accepts readers and input clients, writes queued
    /// events to readers that have room, reads (and discards) analyzer
    /// chatter, reads input and hands it to the handlers, drops vanished
    /// peers. Returns the number of descriptors that had events (0 on
    /// timeout or EINTR). Must not be called from inside a handler.
    @discardableResult
    public func poll(timeoutMilliseconds timeout: Int32) throws(SocketError) -> Int {
        precondition(!polling, "SocketServer.poll called from inside an input handler")
        if closed { return 0 }
        polling = true
        defer {
            polling = false
            if sweepNeeded { sweep() }
            if closeRequested { shutdown(notify: true) }
        }
        flush()
        buildPollSet()
        let ready = pollFDs.withUnsafeMutableBufferPointer { fds in
            Glibc.poll(fds.baseAddress, nfds_t(fds.count), timeout)
        }
        if ready < 0 {
            let failure = errno
            if failure == EINTR { return 0 }
            throw SocketError.system("poll", path: "(socket server)", errno: failure,
                                        advice: "the event loop cannot wait for its sockets")
        }
        var left = Int(ready)
        var k = 0
        while left > 0 && k < pollFDs.count && !closeRequested {
            let revents = pollFDs[k].revents
            let target = pollTargets[k]
            k += 1
            if revents == 0 { continue }
            left -= 1
            switch target {
            case .outputListener(let o): acceptReaders(o)
            case .inputListener(let i): acceptConnections(i)
            case .reader(let o, let r):
                outputs[o].readers[r].service(revents, discard: discard, discardBytes: Self.discardBytes, iov: iov)
                if outputs[o].readers[r].dead { sweepNeeded = true }
            case .connection(let i, let c): serviceConnection(i, c)
            }
        }
        return Int(ready)
    }

    /// Polls until every output in `ids` has at least `minimum` readers, or
    /// until `timeout`. Returns whether they all have.
    public func waitForReaders(_ ids: [OutputID], minimum: Int = 1, timeout: Duration) throws(SocketError) -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while true {
            if ids.allSatisfy({ readerCount($0) >= minimum }) { return true }
            let left = clock.now.duration(to: deadline)
            if left <= .zero || closed { return false }
            let milliseconds = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000
            try poll(timeoutMilliseconds: Int32(min(100, max(1, milliseconds))))
        }
    }

    private func buildPollSet() {
        pollFDs.removeAll(keepingCapacity: true)
        pollTargets.removeAll(keepingCapacity: true)
        let input = Int16(POLLIN)
        for o in outputs.indices {
            if Self.listenerReady(&outputs[o].acceptPausedUntil) {
                pollFDs.append(pollfd(fd: outputs[o].listener.fd, events: input, revents: 0))
                pollTargets.append(.outputListener(o))
            }
            for r in outputs[o].readers.indices where !outputs[o].readers[r].dead {
                pollFDs.append(pollfd(fd: outputs[o].readers[r].fd, events: outputs[o].readers[r].pollEvents, revents: 0))
                pollTargets.append(.reader(o, r))
            }
        }
        for i in inputs.indices {
            if Self.listenerReady(&inputs[i].acceptPausedUntil) {
                pollFDs.append(pollfd(fd: inputs[i].listener.fd, events: input, revents: 0))
                pollTargets.append(.inputListener(i))
            }
            for c in inputs[i].connections.indices where !inputs[i].connections[c].dead {
                pollFDs.append(pollfd(fd: inputs[i].connections[c].fd, events: input, revents: 0))
                pollTargets.append(.connection(i, c))
            }
        }
    }

    /// False while a listener rests after an accept failure (the clock is read only then).
    private static func listenerReady(_ pausedUntil: inout ContinuousClock.Instant?) -> Bool {
        guard let until = pausedUntil else { return true }
        if ContinuousClock.now < until { return false }
        pausedUntil = nil
        return true
    }

    private static func acceptFailurePause(_ code: Int32) -> ContinuousClock.Instant? {
        code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM ? ContinuousClock.now.advanced(by: acceptPause) : nil
    }

    private func acceptReaders(_ o: Int) {
        for _ in 0 ..< Self.acceptsPerRound {
            let fd = UnixSocket.accept(outputs[o].listener.fd)
            if fd < 0 {
                if -fd == EAGAIN { return }
                if -fd == ECONNABORTED || -fd == EPROTO { continue }
                outputs[o].acceptErrors &+= 1
                outputs[o].acceptPausedUntil = Self.acceptFailurePause(-fd)
                return
            }
            if readerCount(OutputID(o)) >= configuration.maxReadersPerOutput {
                Glibc.close(fd)
                outputs[o].readersRefused &+= 1
                continue
            }
            if let size = configuration.readerSendBufferBytes { UnixSocket.setSendBuffer(fd, bytes: size) }
            outputs[o].readers.append(Reader(id: ReaderID(serial: nextSerial), fd: fd, queueBytes: configuration.readerQueueBytes))
            nextSerial &+= 1
            outputs[o].readersAccepted &+= 1
        }
    }

    private func acceptConnections(_ i: Int) {
        for _ in 0 ..< Self.acceptsPerRound {
            let fd = UnixSocket.accept(inputs[i].listener.fd)
            if fd < 0 {
                if -fd == EAGAIN { return }
                if -fd == ECONNABORTED || -fd == EPROTO { continue }
                inputs[i].acceptErrors &+= 1
                inputs[i].acceptPausedUntil = Self.acceptFailurePause(-fd)
                return
            }
            var open = 0
            for connection in inputs[i].connections where !connection.dead { open += 1 }
            if open >= configuration.maxConnectionsPerInput {
                Glibc.close(fd)
                inputs[i].connectionsRefused &+= 1
                continue
            }
            let id = ConnectionID(input: InputID(i), serial: nextSerial)
            nextSerial &+= 1
            inputs[i].connections.append(Connection(id: id, fd: fd, capacity: configuration.inputBufferBytes))
            inputs[i].connectionsAccepted &+= 1
        }
    }

    /// Reads into the connection's buffer and shows the handler everything it holds.
    private func serviceConnection(_ i: Int, _ c: Int) {
        for _ in 0 ..< Self.readsPerRound {
            // Copy out, so no access to `inputs` is held while the handler runs
            // (it may call back into the server).
            let connection = inputs[i].connections[c]
            if connection.dead || closeRequested { return }
            let room = connection.capacity &- connection.count
            let n = UnixSocket.receive(connection.fd, connection.buffer + connection.count, room)
            if n == 0 {
                closeConnection(i, c, .peerClosed)
                return
            }
            if n < 0 {
                if n != -Int(EAGAIN) { closeConnection(i, c, .readError(Int32(-n))) }
                return
            }
            inputs[i].bytesReceived &+= UInt64(n)
            let total = connection.count &+ n
            let handler = inputs[i].onData
            let verdict = handler(connection.id, UnsafeRawBufferPointer(start: connection.buffer, count: total))
            if inputs[i].connections[c].dead { return }
            switch verdict {
            case .continue:
                inputs[i].connections[c].count = 0
            case .consumed(let used):
                let used = min(max(used, 0), total)
                let rest = total &- used
                if rest >= connection.capacity {
                    inputs[i].overflowCloses &+= 1
                    closeConnection(i, c, .bufferOverflow)
                    return
                }
                if used > 0 && rest > 0 { memmove(connection.buffer, connection.buffer + used, rest) }
                inputs[i].connections[c].count = rest
            case .close:
                closeConnection(i, c, .handlerClosed)
                return
            }
            // A read that did not fill the room drained the socket; skip the EAGAIN round trip.
            if n < room { return }
        }
    }

    /// Closes an input connection (e.g. after bad input); `onClose` runs with `.handlerClosed`.
    public func closeConnection(_ id: ConnectionID) {
        let i = Int(id.input.rawValue)
        guard i >= 0 && i < inputs.count,
              let c = inputs[i].connections.firstIndex(where: { $0.id == id && !$0.dead }) else { return }
        closeConnection(i, c, .handlerClosed)
    }

    private func closeConnection(_ i: Int, _ c: Int, _ reason: InputCloseReason) {
        if inputs[i].connections[c].dead { return }
        Glibc.close(inputs[i].connections[c].fd)
        inputs[i].connections[c].fd = -1
        inputs[i].connections[c].dead = true
        sweepNeeded = true
        let handler = inputs[i].onClose
        handler(inputs[i].connections[c].id, reason)
        if !polling && sweepNeeded { sweep() }
    }

    /// Frees dead readers and connections; never while a poll round holds indices.
    private func sweep() {
        sweepNeeded = false
        for o in outputs.indices where outputs[o].readers.contains(where: { $0.dead }) {
            var gone: UInt64 = 0
            for reader in outputs[o].readers where reader.dead {
                reader.ring.deallocate()
                gone += 1
            }
            outputs[o].readers.removeAll { $0.dead }
            outputs[o].readersDisconnected &+= gone
        }
        for i in inputs.indices where inputs[i].connections.contains(where: { $0.dead }) {
            for connection in inputs[i].connections where connection.dead { connection.buffer.deallocate() }
            inputs[i].connections.removeAll { $0.dead }
        }
    }

    // MARK: - Statistics

    public func statistics(_ id: OutputID) -> OutputStatistics? {
        let o = Int(id.rawValue)
        guard o >= 0 && o < outputs.count else { return nil }
        let state = outputs[o]
        let live = state.readers.filter { !$0.dead }
        return OutputStatistics(id: id, path: state.listener.path, readers: live.count,
                                readersAccepted: state.readersAccepted, readersRefused: state.readersRefused,
                                readersDisconnected: state.readersDisconnected,
                                eventsPublished: state.eventsPublished, bytesPublished: state.bytesPublished,
                                eventsDropped: state.eventsDropped, bytesDropped: state.bytesDropped,
                                acceptErrors: state.acceptErrors, readerDetails: live.map(\.statistics))
    }

    public func statistics(_ id: InputID) -> InputStatistics? {
        let i = Int(id.rawValue)
        guard i >= 0 && i < inputs.count else { return nil }
        let state = inputs[i]
        return InputStatistics(id: id, path: state.listener.path,
                               connections: state.connections.filter { !$0.dead }.count,
                               connectionsAccepted: state.connectionsAccepted, connectionsRefused: state.connectionsRefused,
                               bytesReceived: state.bytesReceived, overflowCloses: state.overflowCloses,
                               acceptErrors: state.acceptErrors)
    }

    /// Every output, in the order they were added.
    public var outputStatistics: [OutputStatistics] { outputs.indices.compactMap { statistics(OutputID($0)) } }
    /// Every input, in the order they were added.
    public var inputStatistics: [InputStatistics] { inputs.indices.compactMap { statistics(InputID($0)) } }

    // MARK: - Closing

    /// Closes every socket, unlinks every socket file this server bound and
    /// removes the directories it created if they are empty. Input `onClose`
    /// handlers run (reason `.serverClosed`) after everything is closed.
    /// Called from inside a handler, it takes effect when `poll` returns.
    public func close() {
        if polling {
            closeRequested = true
            return
        }
        shutdown(notify: true)
    }

    private func shutdown(notify: Bool) {
        if closed { return }
        closed = true
        closeRequested = false
        var notices: [(InputCloseHandler, ConnectionID)] = []
        for output in outputs {
            for reader in output.readers {
                if !reader.dead { Glibc.close(reader.fd) }
                reader.ring.deallocate()
            }
            Glibc.close(output.listener.fd)
            UnixSocket.unlinkIfOurs(output.listener)
        }
        for input in inputs {
            for connection in input.connections {
                if !connection.dead {
                    Glibc.close(connection.fd)
                    notices.append((input.onClose, connection.id))
                }
                connection.buffer.deallocate()
            }
            Glibc.close(input.listener.fd)
            UnixSocket.unlinkIfOurs(input.listener)
        }
        outputs.removeAll()
        inputs.removeAll()
        endpoints.removeAll()
        // Deepest first; rmdir fails harmlessly on a directory someone else filled.
        for directory in createdDirectories.reversed() { rmdir(directory) }
        createdDirectories.removeAll()
        if notify {
            for (handler, id) in notices { handler(id, .serverClosed) }
        }
    }
}
