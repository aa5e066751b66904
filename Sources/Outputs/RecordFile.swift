#if canImport(Glibc)
import Glibc
#endif
import CZlib
import PacketCore

/// When a record file is closed and a new one started (Zeek's and Suricata's rotated logs).
public struct RotationPolicy: Sendable, Equatable {
    /// Start a new file before a record would take the current one past this size.
    public var maxBytes: UInt64?
    /// Start a new file when the current one has been open this long (wall clock), at the next record.
    public var interval: Double?
    /// Compress each closed file to `NAME.gz` (in the background) and remove the uncompressed one.
    public var gzip = false

    public init(maxBytes: UInt64? = nil, interval: Double? = nil, gzip: Bool = false) {
        self.maxBytes = maxBytes
        self.interval = interval
        self.gzip = gzip
    }

    public var rotates: Bool { maxBytes != nil || interval != nil }
}

/// One file output of record lines, buffered (1 MiB), optionally rotated.
///
/// - Without rotation the file is the path given (created or truncated); a reopen (SIGHUP) closes it and
///   opens the path again for appending, so logrotate can move it away.
/// - With rotation, each file is named after the path with its opening time (UTC) and a sequence
///   number: `records.json` → `records-20261203T083119Z-000001.json`, so names sort in the order written.
///   A record is never split: the size check comes before a record is added, and a file holds at least one.
///   A reopen starts a new file.
/// - A write error is kept (the first) and later records are counted as lost, not retried.
final class RecordFile {
    let path: String?
    let rotation: RotationPolicy
    private(set) var fd: Int32 = -1
    private(set) var currentPath: String
    private var buffer: [UInt8] = []
    private var fileBytes: UInt64 = 0
    private var openedAt = 0.0
    private var sequence = 0
    private var compressors: [OutputThread] = []

    private(set) var writeError: Int32?
    private(set) var bytesWritten: UInt64 = 0
    private(set) var records: UInt64 = 0
    private(set) var recordsLost: UInt64 = 0
    /// Every file this output wrote, in order (the names after compression).
    private(set) var files: [String] = []

    static let capacity = 1 << 20

    /// `path` nil writes standard output (never rotated).
    init(path: String?, rotation: RotationPolicy) throws(RecordOutputError) {
        self.path = path
        self.rotation = path == nil ? RotationPolicy() : rotation
        currentPath = path ?? "standard output"
        buffer.reserveCapacity(Self.capacity)
        if path == nil { fd = 1 } else { try open(truncate: true) }
    }

    var name: String { path ?? "standard output" }

    private func open(truncate: Bool) throws(RecordOutputError) {
        guard let path else { return }
        if rotation.rotates {
            sequence += 1
            currentPath = Self.rotatedName(path, time: Timestamp.wallClock(), sequence: sequence)
        } else {
            currentPath = path
        }
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (truncate || rotation.rotates ? O_TRUNC : O_APPEND)
        let fd = Glibc.open(currentPath, flags, 0o644)
        guard fd >= 0 else { throw RecordOutputError(description: "cannot create \(currentPath): \(errorText(errno))") }
        self.fd = fd
        fileBytes = 0
        openedAt = monotonicSeconds()
    }

    /// `records.json` → `records-20261203T083119Z-000001.json` (the extension kept last).
    static func rotatedName(_ path: String, time: Timestamp, sequence: Int) -> String {
        let slash = path.lastIndex(of: "/")
        let base = slash.map { path[path.index(after: $0)...] } ?? path[...]
        let dot = base.lastIndex(of: ".").flatMap { $0 == base.startIndex ? nil : $0 }
        let stem = dot.map { path[..<$0] } ?? path[...]
        let ext = dot.map { String(path[$0...]) } ?? ""
        var t = time_t(time.seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let stamp = "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
        let number = String(sequence)
        return "\(stem)-\(stamp)-\(String(repeating: "0", count: max(0, 6 - number.count)))\(number)\(ext)"
    }

    /// Appends one record (its newline included).
    func append(_ record: UnsafeRawBufferPointer) {
        guard writeError == nil else { recordsLost &+= 1; return }
        if rotation.rotates, fileBytes + UInt64(buffer.count) > 0, dueForRotation(adding: record.count) { rotate() }
        buffer.append(contentsOf: record)
        records &+= 1
        if buffer.count >= Self.capacity { flush() }
    }

    /// `records` whole records at once. Without rotation they are copied in one piece (the caller
    /// counted them: scanning every byte for newlines cost more than the lock it saved); with
    /// rotation, or after a write error, record by record (a file ends between records, losses are
    /// counted per record).
    func append(lines bytes: UnsafeRawBufferPointer, records count: Int) {
        if rotation.rotates || writeError != nil {
            forEachRecord(in: bytes) { append($0) }
            return
        }
        buffer.append(contentsOf: bytes)
        records &+= UInt64(count)
        if buffer.count >= Self.capacity { flush() }
    }

    private func dueForRotation(adding count: Int) -> Bool {
        if let max = rotation.maxBytes, fileBytes + UInt64(buffer.count) + UInt64(count) > max { return true }
        if let interval = rotation.interval, monotonicSeconds() - openedAt >= interval { return true }
        return false
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        if writeError == nil {
            if let failure = buffer.withUnsafeBytes({ writeAll(fd, $0) }) {
                writeError = failure
            } else {
                bytesWritten &+= UInt64(buffer.count)
                fileBytes &+= UInt64(buffer.count)
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Closes the current file (compressing it if asked) and opens the next.
    func rotate() {
        closeCurrent()
        do { try open(truncate: true) } catch { writeError = EIO; fd = -1 }
    }

    /// SIGHUP: a rotated output starts a new file; a plain file is closed and opened again (appending).
    func reopen() {
        guard path != nil else { return flush() }
        if rotation.rotates { return rotate() }
        flush()
        if fd > 2 { close(fd) }
        do { try open(truncate: false) } catch { writeError = EIO; fd = -1 }
    }

    private func closeCurrent() {
        flush()
        guard path != nil, fd > 2 else { return }
        close(fd)
        fd = -1
        if rotation.gzip {
            let source = currentPath
            files.append(source + ".gz")
            compressors.append(OutputThread { RecordFile.compress(source) })
        } else {
            files.append(currentPath)
        }
    }

    /// Flushes and closes; waits for every compression.
    func finish() {
        closeCurrent()
        for thread in compressors { thread.join() }
        compressors.removeAll()
    }

    /// `path` → `path.gz` (zlib, level 6); the original is removed once the copy is whole.
    static func compress(_ path: String) {
        let input = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { return }
        defer { close(input) }
        guard let out = gzopen(path + ".gz", "wb6") else { return }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var ok = true
        while ok {
            let n = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n <= 0 { ok = n == 0; break }
            let written = chunk.withUnsafeBytes { gzwrite(out, $0.baseAddress, UInt32(n)) }
            ok = written == Int32(n)
        }
        if gzclose(out) == Z_OK && ok { unlink(path) }
    }
}
