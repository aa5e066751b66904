#if canImport(Glibc)
import Glibc
#endif
import PacketCore

/// What the record outputs do beyond writing: rotation, the Redis queue and what a full queue does.
public struct RecordOutputOptions: Sendable {
    public var rotation = RotationPolicy()
    /// Bytes of records each Redis output may hold while its server is slow or away.
    public var queueBytes = 64 << 20
    /// Whether a writer waits for room in a full queue (nil: wait when reading files, drop when live).
    public var waitWhenFull: Bool?
    /// Seconds a Redis output keeps sending its queue at exit.
    public var drainSeconds = 10.0
    /// Whether the command is stopping; a writer waiting for room gives up then.
    public var interrupted: @Sendable () -> Bool = { false }
    /// Where outputs say that a connection was lost or came back, and what they drop while it happens.
    public var log: @Sendable (String) -> Void = { text in
        var text = text
        text.withUTF8 { _ = writeAll(2, UnsafeRawBufferPointer($0)) }
    }

    public init() {}
}

/// Every record a command writes goes through one `RecordWriter`, which hands each record line to every
/// output: files (standard output or a path, rotated or not) and Redis servers.
///
/// - A path that names one of the command's inputs is refused before anything is opened (opening it for
///   writing would empty the input before it is read).
/// - File writes are buffered (1 MiB per file); Redis outputs queue (`RedisOutput`). A failing output
///   never stops the others or the capture; what each could not take is counted and said in `summary`.
/// - `reopen()` (SIGHUP) starts new files (`RecordFile.reopen`).
/// - Not thread-safe: commands with several shards call it under one lock.
public final class RecordWriter {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The outputs' names in messages.
    public let name: String
    let files: [RecordFile]
    let redis: [RedisOutput]

    /// Standard output for nil or "-"; otherwise creates (truncates) `path`, unless it is one of `inputs`.
    public convenience init(path: String?, inputs: [String] = []) throws(Failure) {
        let destination: RecordDestination = path == nil || path == "-" ? .standardOutput : .file(path!)
        try self.init(destinations: [destination], inputs: inputs)
    }

    /// One writer for every destination (standard output when there is none).
    public init(destinations: [RecordDestination], options: RecordOutputOptions = RecordOutputOptions(), inputs: [String] = []) throws(Failure) {
        var files: [RecordFile] = [], redis: [RedisOutput] = []
        let wait = options.waitWhenFull ?? !inputs.isEmpty
        do throws(RecordOutputError) {
            for destination in destinations.isEmpty ? [.standardOutput] : destinations {
                switch destination {
                case .standardOutput:
                    guard !files.contains(where: { $0.path == nil }) else { continue }
                    files.append(try RecordFile(path: nil, rotation: options.rotation))
                case .file(let path):
                    if let input = inputs.first(where: { isSameFile(path, $0) }) {
                        throw RecordOutputError(description: "\(path): the output is also the input \(input); writing it would destroy it before it is read, so choose another output name")
                    }
                    files.append(try RecordFile(path: path, rotation: options.rotation))
                case .redis(let target):
                    let output = RedisOutput(target: target, queueLimit: options.queueBytes, waitWhenFull: wait, interrupted: options.interrupted,
                                             log: options.log)
                    output.drainSeconds = options.drainSeconds
                    redis.append(output)
                }
            }
        } catch {
            for output in redis { output.finish() }
            throw Failure(description: error.description)
        }
        self.files = files
        self.redis = redis
        name = (files.map(\.name) + redis.map(\.target.description)).joined(separator: ", ")
    }

    deinit {
        for file in files { file.finish() }
        for output in redis { output.finish() }
        for file in files where file.fd > 2 { close(file.fd) }
    }

    /// Appends one record (its newline included).
    public func write(_ line: String) {
        var line = line
        line.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }

    /// Appends one record's bytes (its newline included).
    public func write(_ bytes: UnsafeRawBufferPointer) {
        if HangupSignal.take() { reopen() }
        for file in files { file.append(bytes) }
        enqueue(bytes)
    }

    /// Appends `records` whole records at once (each with its newline): files take the bytes in one
    /// copy; each Redis output still gets one entry per record.
    public func write(lines bytes: UnsafeRawBufferPointer, records: Int) {
        if HangupSignal.take() { reopen() }
        for file in files { file.append(lines: bytes, records: records) }
        guard !redis.isEmpty else { return }
        forEachRecord(in: bytes) { enqueue($0) }
    }

    /// One record to every Redis output, without its newline.
    private func enqueue(_ record: UnsafeRawBufferPointer) {
        guard !redis.isEmpty else { return }
        let entry = record.last == UInt8(ascii: "\n") ? UnsafeRawBufferPointer(rebasing: record.dropLast()) : record
        for output in redis { output.enqueue(entry) }
    }

    /// Writes out what the files buffer.
    public func flush() {
        for file in files { file.flush() }
    }

    /// SIGHUP: rotated files start a new file, plain files are opened again.
    public func reopen() {
        for file in files { file.reopen() }
    }

    /// The first file write error, if any.
    public var writeError: Int32? { files.lazy.compactMap(\.writeError).first }
    /// Bytes written to files.
    public var bytesWritten: UInt64 { files.reduce(0) { $0 &+ $1.bytesWritten } }
    /// The files a file output wrote (with rotation, each file in order).
    public var filesWritten: [[String]] { files.map(\.files) }

    /// Records every output lost, summed.
    public var recordsDropped: UInt64 {
        files.reduce(0) { $0 &+ $1.recordsLost } &+ redis.reduce(0) { $0 &+ $1.snapshot.counters.dropped }
    }

    /// What one output has done so far (the telemetry endpoint's per-output metrics). Read on the
    /// thread that writes records (or under its lock).
    public struct OutputStatistics: Sendable {
        public var name: String
        public var records: UInt64
        public var dropped: [(reason: String, count: UInt64)]
        public var queued: Int
    }

    public var statistics: [OutputStatistics] {
        var all: [OutputStatistics] = files.map { OutputStatistics(name: $0.name, records: $0.records, dropped: [("write_error", $0.recordsLost)], queued: 0) }
        for output in redis {
            let (c, _, queued) = output.snapshot
            all.append(OutputStatistics(name: output.target.description, records: c.confirmed,
                                        dropped: [("queue_full", c.droppedQueueFull), ("unconfirmed", c.droppedUnconfirmed), ("rejected", c.rejected), ("unsent_at_exit", c.droppedAtExit)],
                                        queued: queued))
        }
        return all
    }

    /// Flushes, sends what Redis queues (within the drain time) and closes; throws the first write error,
    /// naming the output.
    public func finish() throws(Failure) {
        for file in files { file.finish() }
        for output in redis { output.finish() }
        if let file = files.first(where: { $0.writeError != nil }), let error = file.writeError {
            throw Failure(description: "cannot write \(file.currentPath): \(errorText(error))")
        }
    }

    /// One line per output that is not plain standard output: what it wrote and what it dropped, by reason.
    public var summary: String {
        var lines: [String] = []
        for file in files where file.path != nil && (file.rotation.rotates || file.recordsLost > 0 || files.count + redis.count > 1) {
            var line = "output \(file.name): \(file.records) records"
            if file.rotation.rotates { line += " in \(file.files.count) files" }
            if file.recordsLost > 0 { line += ", \(file.recordsLost) records lost after a write error" }
            lines.append(line)
        }
        for output in redis {
            let (c, lastError, queued) = output.snapshot
            var line = "output \(output.target.description): \(c.confirmed) records stored, \(c.dropped) dropped (queue full \(c.droppedQueueFull), connection lost before the server confirmed \(c.droppedUnconfirmed), refused by the server \(c.rejected), unsent at exit \(c.droppedAtExit))"
            if queued > 0 { line += ", \(queued) queued" }
            line += "; connections \(c.connections)"
            if c.failedConnects > 0 { line += ", failed attempts \(c.failedConnects)" }
            if let lastError { line += "; last error: \(lastError)" }
            lines.append(line)
        }
        return lines.map { $0 + "\n" }.joined()
    }
}

/// Calls `body` with each record of `bytes`, its newline included (a last record without one as it is).
func forEachRecord(in bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
    var start = 0
    for i in bytes.indices where bytes[i] == UInt8(ascii: "\n") {
        body(UnsafeRawBufferPointer(rebasing: bytes[start ... i]))
        start = i + 1
    }
    if start < bytes.count { body(UnsafeRawBufferPointer(rebasing: bytes[start...])) }
}
