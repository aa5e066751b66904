#if canImport(Glibc)
import FlowCore
import Glibc
#endif
import PacketCore
import Synchronization

/// Where the abstractor writes interface streams: files (`--out-dir`) or sockets.
public protocol InterfaceOutputs: AnyObject {
    /// The output for an interface path relative to home, such as "tcp/http"; made on first use.
    func output(_ relativePath: String) throws -> Int
    /// One whole event.
    func publish(_ output: Int, header: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) throws
}

/// The files of `--out-dir`, one per interface path, shared by every shard's `FileEventOutputs`.
///
/// Files are opened with `O_APPEND`: each shard writes whole events in large buffers, and an
/// append is one atomic placement, so a file is always a valid event stream whatever the number
/// of writers. Opening is serialised by a lock (it happens at start-up, never per packet).
public final class OutputFileSet: @unchecked Sendable {
    public let directory: String
    private let lock = Mutex(())
    private var paths: [String] = []
    private var descriptors: [Int32] = []

    public init(directory: String) { self.directory = directory }

    deinit { closeAll() }

    /// The descriptor for `relativePath` (e.g. "tcp/http"), creating the file and its directories on first use.
    public func descriptor(_ relativePath: String) throws(OutputError) -> Int32 {
        try lock.withLock { _ throws(OutputError) -> Int32 in
            if let index = paths.firstIndex(of: relativePath) { return descriptors[index] }
            let full = directory + "/" + relativePath
            let parent = full.split(separator: "/").dropLast().joined(separator: "/")
            if let failed = makeDirectories(full.hasPrefix("/") ? "/" + parent : parent, mode: 0o755) {
                throw OutputError(path: failed.path, message: "cannot create directory: \(errorText(failed.errno))")
            }
            let fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw OutputError(path: full, message: "cannot create: \(errorText(errno))") }
            paths.append(relativePath)
            descriptors.append(fd)
            return fd
        }
    }

    /// Closes every file (after all writers have flushed).
    public func closeAll() {
        lock.withLock { _ in
            for fd in descriptors where fd >= 0 { Glibc.close(fd) }
            descriptors = descriptors.map { _ in -1 }
        }
    }
}

/// Where the abstractor's interface streams go in `--out-dir` mode: one file per
/// interface path (`DIR/tcp/<if>`), holding exactly the bytes a socket reader would
/// receive. Writes are buffered per file and flushed at 64 KiB, so a buffer is still in
/// the core's cache when `write` copies it out: with the previous 1 MiB threshold (fifteen
/// buffers of up to 1 MiB, far more than a 2 MiB L2) `abstract --threads 1` took 9–11% more
/// CPU on 315k and 647k-packet captures (9 and 7 paired rounds; 32 KiB and 128 KiB were
/// the same as 64 KiB, 256 KiB 8% worse). Several instances (one per shard) may share one
/// `OutputFileSet`.
public final class FileEventOutputs: InterfaceOutputs {
    public let files: OutputFileSet
    private let ownsFiles: Bool
    private var paths: [String] = []
    private var descriptors: [Int32] = []
    private var buffers: [UnsafeMutableRawPointer] = []
    private var buffered: [Int] = []
    public private(set) var bytesWritten: [UInt64] = []
    public private(set) var eventsWritten: [UInt64] = []
    private static var flushThreshold: Int { 1 << 16 }
    private static var bufferCapacity: Int { 1 << 18 }

    public convenience init(directory: String) {
        self.init(files: OutputFileSet(directory: directory), ownsFiles: true)
    }

    /// Outputs writing into `files`, which the caller closes after every sharer has closed.
    public convenience init(sharing files: OutputFileSet) {
        self.init(files: files, ownsFiles: false)
    }

    private init(files: OutputFileSet, ownsFiles: Bool) {
        self.files = files
        self.ownsFiles = ownsFiles
    }

    public var directory: String { files.directory }

    deinit {
        try? close()
        for b in buffers { b.deallocate() }
    }

    /// The output for `relativePath` (e.g. "tcp/http"), created on first use.
    public func output(_ relativePath: String) throws -> Int {
        if let index = paths.firstIndex(of: relativePath) { return index }
        let fd = try files.descriptor(relativePath)
        paths.append(relativePath)
        descriptors.append(fd)
        buffers.append(.allocate(byteCount: Self.bufferCapacity, alignment: 64))
        buffered.append(0)
        bytesWritten.append(0)
        eventsWritten.append(0)
        return paths.count - 1
    }

    public func publish(_ output: Int, header: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) throws {
        if buffered[output] + header.count + body.count > Self.bufferCapacity { try flush(output) }
        if header.count + body.count > Self.bufferCapacity {
            // Larger than a whole buffer: straight out in one `writev`, so another shard's appends to
            // the same file cannot fall between header and body.
            if let failure = writeAll(descriptors[output], header, body) {
                throw OutputError(path: directory + "/" + paths[output], message: "write failed: \(errorText(failure))")
            }
        } else {
            append(output, header)
            append(output, body)
        }
        bytesWritten[output] &+= UInt64(header.count + body.count)
        eventsWritten[output] &+= 1
        if buffered[output] >= Self.flushThreshold { try flush(output) }
    }

    @inline(__always)
    private func append(_ output: Int, _ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        (buffers[output] + buffered[output]).copyMemory(from: base, byteCount: bytes.count)
        buffered[output] += bytes.count
    }

    private func write(_ output: Int, _ bytes: UnsafeRawBufferPointer) throws(OutputError) {
        if let failure = writeAll(descriptors[output], bytes) {
            throw OutputError(path: directory + "/" + paths[output], message: "write failed: \(errorText(failure))")
        }
    }

    private func flush(_ output: Int) throws(OutputError) {
        guard buffered[output] > 0 else { return }
        try write(output, UnsafeRawBufferPointer(start: buffers[output], count: buffered[output]))
        buffered[output] = 0
    }

    /// Flushes every buffer; closes the files too when this instance made them.
    public func close() throws(OutputError) {
        for i in descriptors.indices where descriptors[i] >= 0 {
            try flush(i)
            descriptors[i] = -1
        }
        if ownsFiles { files.closeAll() }
    }

    /// (relative path, events, bytes) for each output.
    public var summary: [(String, UInt64, UInt64)] { paths.indices.map { (paths[$0], eventsWritten[$0], bytesWritten[$0]) } }
}

/// A file-system or output failure, naming the path.
public struct OutputError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }
}
