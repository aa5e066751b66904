#if canImport(Glibc)
import Glibc
#endif
import PacketCore

/// Where the abstractor writes interface streams: files (`--out-dir`) or sockets.
public protocol InterfaceOutputs: AnyObject {
    /// The output for an interface path relative to home, such as "tcp/http"; made on first use.
    func output(_ relativePath: String) throws -> Int
    /// One whole event.
    func publish(_ output: Int, header: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) throws
}

/// Where the abstractor's interface streams go in `--out-dir` mode: one file per
/// interface path (`DIR/tcp/<if>`), holding exactly the bytes a socket reader would
/// receive. Writes are buffered per file and flushed in large writes.
public final class FileEventOutputs: InterfaceOutputs {
    public let directory: String
    private var paths: [String] = []
    private var descriptors: [Int32] = []
    private var buffers: [[UInt8]] = []
    public private(set) var bytesWritten: [UInt64] = []
    public private(set) var eventsWritten: [UInt64] = []
    private let flushThreshold = 1 << 20

    public init(directory: String) { self.directory = directory }

    deinit { try? close() }

    /// The output for `relativePath` (e.g. "tcp/http"), created on first use.
    public func output(_ relativePath: String) throws -> Int {
        if let index = paths.firstIndex(of: relativePath) { return index }
        let full = directory + "/" + relativePath
        var prefix = full.hasPrefix("/") ? "" : "."
        for part in full.split(separator: "/").dropLast() {
            prefix += "/" + part
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw OutputError(path: prefix, message: "cannot create directory: \(String(cString: strerror(errno)))")
            }
        }
        let fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw OutputError(path: full, message: "cannot create: \(String(cString: strerror(errno)))") }
        paths.append(relativePath)
        descriptors.append(fd)
        buffers.append([])
        buffers[buffers.count - 1].reserveCapacity(flushThreshold + 70_000)
        bytesWritten.append(0)
        eventsWritten.append(0)
        return paths.count - 1
    }

    public func publish(_ output: Int, header: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) throws {
        buffers[output].append(contentsOf: header)
        buffers[output].append(contentsOf: body)
        bytesWritten[output] &+= UInt64(header.count + body.count)
        eventsWritten[output] &+= 1
        if buffers[output].count >= flushThreshold { try flush(output) }
    }

    private func flush(_ output: Int) throws(OutputError) {
        let fd = descriptors[output]
        if let failure = buffers[output].withUnsafeBytes({ writeAll(fd, $0) }) {
            throw OutputError(path: directory + "/" + paths[output], message: "write failed: \(errorText(failure))")
        }
        buffers[output].removeAll(keepingCapacity: true)
    }

    public func close() throws(OutputError) {
        for i in descriptors.indices where descriptors[i] >= 0 {
            try flush(i)
            Glibc.close(descriptors[i])
            descriptors[i] = -1
        }
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
