import PacketCore
#if canImport(Glibc)
import Glibc
#endif

/// A file the generator could not write, naming it and the failing call.
public struct GeneratorError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
}

/// Writes the expected-streams manifest: one JSON object per line, buffered.
final class ManifestWriter {
    let path: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    private let flushThreshold = 1 << 16

    /// Creates (truncating) `path`; "-" writes to standard output.
    init(path: String) throws(GeneratorError) {
        self.path = path
        if path == "-" {
            fd = 1
        } else {
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw GeneratorError(path: path, reason: "cannot create: \(String(cString: strerror(errno)))") }
        }
    }

    deinit {
        if fd > 1 { Glibc.close(fd) }
    }

    func write(_ line: String) throws(GeneratorError) {
        buffer += line.utf8
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= flushThreshold { try flush() }
    }

    func flush() throws(GeneratorError) {
        if let failure = buffer.withUnsafeBytes({ writeAll(fd, $0) }) {
            throw GeneratorError(path: path, reason: "write failed: \(errorText(failure))")
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes; the descriptor closes when the writer goes away.
    func close() throws(GeneratorError) { try flush() }
}
