#if canImport(Glibc)
import Glibc
#endif
import Foundation
import UnixSockets
import XCTest

/// A short temporary directory (socket paths must stay under 108 bytes), removed on `remove()`.
struct TemporaryHome {
    let path: String

    init() throws {
        var template = Array("/tmp/ft-ifaces-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else { throw XCTSkip("mkdtemp failed: errno \(errno)") }
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    func exists(_ sub: String) -> Bool {
        var info = stat()
        return lstat(path + "/" + sub, &info) == 0
    }

    func mode(_ sub: String) -> mode_t? {
        var info = stat()
        guard lstat(path + "/" + sub, &info) == 0 else { return nil }
        return info.st_mode
    }
}

/// The analyzer side of a socket: connect, read without blocking, write, close.
final class TestClient {
    private(set) var fd: Int32
    /// Everything read so far.
    var received: [UInt8] = []
    private(set) var sawEOF = false

    init(path: String, file: StaticString = #filePath, line: UInt = #line) throws {
        do {
            fd = try SocketClient.connect(path)
        } catch {
            XCTFail("\(error)", file: file, line: line)
            throw XCTSkip("connect failed")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    deinit { close() }

    /// Reads whatever is there, at most `limit` bytes, appending to `received`.
    /// Returns the number of bytes read.
    @discardableResult
    func readAvailable(limit: Int = 1 << 22, chunk: Int = 64 << 10) -> Int {
        guard fd >= 0 else { return 0 }
        var total = 0
        var buffer = [UInt8](repeating: 0, count: chunk)
        while total < limit {
            let want = min(chunk, limit - total)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, want, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                received.append(contentsOf: buffer[0 ..< n])
                total += n
            } else {
                if n == 0 { sawEOF = true }
                break
            }
        }
        return total
    }

    func write(_ bytes: [UInt8]) {
        var done = 0
        let deadline = Date().addingTimeInterval(2)
        while done < bytes.count && Date() < deadline {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
            if n > 0 { done += n } else { usleep(1000) }
        }
    }

    func write(_ text: String) { write(Array(text.utf8)) }

    func shutdownWrite() { _ = shutdown(fd, Int32(SHUT_WR)) }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }
}

/// Test framing: a text header `seq=S,len=N\n` then N body bytes whose values
/// depend on S and the offset, so a misplaced or torn byte is caught.
enum TestEvents {
    static func bodyLength(_ seq: Int, maximum: Int) -> Int {
        maximum == 0 ? 0 : Int(UInt64(truncatingIfNeeded: seq &* 2_654_435_761) % UInt64(maximum + 1))
    }

    static func byte(_ seq: Int, _ offset: Int) -> UInt8 { UInt8(truncatingIfNeeded: seq &* 131 &+ offset &* 7 &+ 1) }

    static func make(_ seq: Int, bodyLength: Int) -> (header: [UInt8], body: [UInt8]) {
        let header = Array("seq=\(seq),len=\(bodyLength)\n".utf8)
        let body = (0 ..< bodyLength).map { byte(seq, $0) }
        return (header, body)
    }

    static func publish(_ server: SocketServer, _ id: OutputID, seq: Int, bodyLength: Int) {
        let (header, body) = make(seq, bodyLength: bodyLength)
        header.withUnsafeBytes { h in body.withUnsafeBytes { b in server.publish(id, header: h, body: b) } }
    }

    struct FramingError: Error, CustomStringConvertible {
        var description: String
    }

    /// Sequence numbers of the whole events in `bytes`; throws on any torn or
    /// corrupted event, or on trailing bytes that are not a whole event.
    static func parse(_ bytes: [UInt8]) throws -> [Int] {
        var seqs: [Int] = []
        var at = 0
        while at < bytes.count {
            guard let newline = bytes[at...].prefix(64).firstIndex(of: 0x0A) else {
                throw FramingError(description: "no header line at byte \(at)")
            }
            let line = String(decoding: bytes[at ..< newline], as: UTF8.self)
            var seq: Int?
            var length: Int?
            for field in line.split(separator: ",") {
                let pair = field.split(separator: "=", maxSplits: 1)
                guard pair.count == 2 else { throw FramingError(description: "bad header '\(line)' at byte \(at)") }
                if pair[0] == "seq" { seq = Int(pair[1]) }
                if pair[0] == "len" { length = Int(pair[1]) }
            }
            guard let seq, let length else { throw FramingError(description: "bad header '\(line)' at byte \(at)") }
            let start = newline + 1
            guard start + length <= bytes.count else {
                throw FramingError(description: "event \(seq) truncated: \(bytes.count - start) of \(length) body bytes")
            }
            for k in 0 ..< length where bytes[start + k] != byte(seq, k) {
                throw FramingError(description: "event \(seq) body byte \(k) corrupted")
            }
            seqs.append(seq)
            at = start + length
        }
        return seqs
    }
}

/// Polls `server` (and runs `body`) until `condition` holds or `seconds` pass.
@discardableResult
func pump(_ server: SocketServer, seconds: Double = 3, body: () -> Void = {}, until condition: () -> Bool) throws -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while !condition() {
        if Date() > deadline { return false }
        try server.poll(timeoutMilliseconds: 5)
        body()
    }
    return true
}
