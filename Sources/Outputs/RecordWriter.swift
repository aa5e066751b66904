#if canImport(Glibc)
import Glibc
#endif
import PacketCore

/// Buffered output of record lines (JSON lines) to a file or standard output: one 1 MiB buffer,
/// written out whole when full and at `flush()`. Every record command writes through it.
///
/// - A path that names one of the command's inputs is refused before anything is opened (opening
///   it for writing would empty the input before it is read).
/// - A write error is kept (the first one) and reported by `finish()`; later records are dropped, not
///   retried, so a full disk or a closed pipe cannot stall a capture.
public final class RecordWriter {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The output's name in messages: the path, or "standard output".
    public let name: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    /// The first write error (errno), once there was one.
    public private(set) var writeError: Int32?
    public private(set) var bytesWritten: UInt64 = 0

    static let capacity = 1 << 20

    /// Standard output for nil or "-"; otherwise creates (truncates) `path`, unless it is one of `inputs`.
    public init(path: String?, inputs: [String] = []) throws(Failure) {
        guard let path, path != "-" else {
            fd = 1
            name = "standard output"
            buffer.reserveCapacity(Self.capacity)
            return
        }
        if let input = inputs.first(where: { isSameFile(path, $0) }) {
            throw Failure(description: "\(path): the output is also the input \(input); writing it would destroy it before it is read, so choose another output name")
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Failure(description: "cannot create \(path): \(errorText(errno))") }
        self.fd = fd
        name = path
        buffer.reserveCapacity(Self.capacity)
    }

    deinit {
        flush()
        if fd > 2 { close(fd) }
    }

    /// Appends one record (its newline included).
    public func write(_ line: String) {
        buffer.append(contentsOf: line.utf8)
        if buffer.count >= Self.capacity { flush() }
    }

    /// Appends one record's bytes (its newline included).
    public func write(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= Self.capacity { flush() }
    }

    /// Writes out what is buffered.
    public func flush() {
        guard !buffer.isEmpty else { return }
        if writeError == nil {
            if let failure = buffer.withUnsafeBytes({ writeAll(fd, $0) }) {
                writeError = failure
            } else {
                bytesWritten &+= UInt64(buffer.count)
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes; throws the first write error, naming the output.
    public func finish() throws(Failure) {
        flush()
        if let writeError { throw Failure(description: "cannot write \(name): \(errorText(writeError))") }
    }
}
