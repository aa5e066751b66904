#if canImport(Glibc)
import Glibc
#endif
import FlowDispatch
import Outputs
import PacketCore
import SFTapCodec
import UnixSockets

/// `flowtap analyzer KIND SOCKET`: one built-in analyzer on an SF-TAP event stream — an interface
/// socket of `flowtap abstract` (or the original SF-TAP), a recorded stream file, or standard input —
/// writing records to `output` until the stream ends or SIGINT/SIGTERM.
public final class StreamAnalyzerSession {
    public enum Source {
        /// A UNIX socket path, waited for up to `wait` seconds.
        case socket(String, wait: Double)
        /// A file; "-" is standard input.
        case file(String)
    }

    /// The session's name in messages ("flowtap analyzer http").
    public let name: String
    public let analyzer: SFTapStreamAnalyzer
    public let output: RecordWriter
    /// Stream defects printed one by one; later ones are only counted.
    public static let errorLines = 20

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public init(kind: SFTapStreamAnalyzer.Kind, bodies: Bool, format: SFTapEventReader.Format?, output: RecordWriter) throws {
        name = "flowtap analyzer \(kind.rawValue)"
        self.output = output
        analyzer = try SFTapStreamAnalyzer(kind: kind, bodies: bodies, format: format) { line in output.write(line) }
    }

    /// Reads `source` to its end (or a signal, or a binary header that stops the reader); prints the
    /// summary line. Throws when the input cannot be read or the records cannot be written.
    public func run(_ source: Source) throws {
        let label: String
        switch source {
        case .socket(let path, _): label = path
        case .file(let path): label = path
        }
        var reported = 0
        analyzer.onStreamError = { [name] error in
            reported += 1
            if reported <= Self.errorLines {
                writeStandardError("\(name): \(label): \(error)\n")
            } else if reported == Self.errorLines + 1 {
                writeStandardError("\(name): \(label): more stream errors; counted in the summary\n")
            }
        }
        StopSignal.install()
        let input = try open(source)
        defer { if input > 0 { close(input) } }
        var readError: Int32?
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)
        defer { chunk.deallocate() }
        while !StopSignal.requested && analyzer.stopped == nil && output.writeError == nil {
            var ready = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
            let polled = poll(&ready, 1, 200)
            if polled == 0 { continue }
            if polled < 0 {
                if errno == EINTR { continue }
                readError = errno
                break
            }
            let n = read(input, chunk.baseAddress, chunk.count)
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                readError = errno
                break
            }
            analyzer.feed(UnsafeRawBufferPointer(rebasing: chunk[0 ..< n]))
            output.flush()
        }
        analyzer.finish()
        output.flush()
        let ending = StopSignal.requested ? "stopped by a signal" : analyzer.stopped != nil ? "stopped at a bad binary header" : "end of stream"
        writeStandardError("\(name): \(label): \(ending); \(analyzer.summary)\n")
        if let readError { throw Failure(description: "cannot read \(label): \(errorText(readError))") }
        try output.finish()
    }

    /// Standard input, the file, or the socket (waiting up to `wait` seconds for it to be served).
    func open(_ source: Source) throws -> Int32 {
        switch source {
        case .file(let path):
            if path == "-" { return 0 }
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw Failure(description: "cannot open \(path): \(errorText(errno)); give a file `flowtap abstract -o DIR` wrote, e.g. out/tcp/http")
            }
            return fd
        case .socket(let path, let wait):
            if path == "-" { return 0 }
            let deadline = MonotonicClock.seconds() + wait
            var announced = false
            while true {
                do {
                    return try SocketClient.connect(path)
                } catch {
                    guard SocketClient.isNotServedYet(error), MonotonicClock.seconds() < deadline, !StopSignal.requested else { throw error }
                    if !announced {
                        writeStandardError("\(name): waiting up to \(wait) s for \(path) to be served (start flowtap abstract with this home)\n")
                        announced = true
                    }
                    usleep(100_000)
                }
            }
        }
    }
}
