import Foundation
import TestSupport
import XCTest

/// A `flowtap` command started as a user starts it, with `--http 127.0.0.1:0`; the port is read from
/// its startup line.
final class RunningCommand {
    let process = Process()
    let errorPath: String
    let directory: URL
    private(set) var port: UInt16 = 0

    static var flowtap: String {
        get throws {
            let path = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path
            guard FileManager.default.isExecutableFile(atPath: path) else { throw OracleMissing.error("flowtap executable not built beside the tests") }
            return path
        }
    }

    init(_ arguments: [String], directory: URL) throws {
        self.directory = directory
        errorPath = directory.appendingPathComponent("stderr.txt").path
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: try Self.flowtap)
        process.arguments = arguments + ["--http", "127.0.0.1:0"]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: errorPath)
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let range = errors.range(of: #"metrics on http://127\.0\.0\.1:(\d+)/metrics"#, options: .regularExpression) {
                let text = errors[range]
                port = UInt16(text.split(separator: ":").last!.split(separator: "/").first!)!
                return
            }
            guard process.isRunning else { break }
            usleep(50_000)
        }
        throw NSError(domain: "flowtap", code: 1, userInfo: [NSLocalizedDescriptionKey: "no endpoint line; standard error: \(errors)"])
    }

    var errors: String { (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "" }

    /// SIGTERM, then the exit status (the final statistics are in `errors`).
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    func get(_ path: String) throws -> HTTPResponse { try HTTPProbe.request(port: port, "GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n") }

    func status() throws -> [String: Any] {
        let response = try get("/api/v1/status")
        guard response.status == 200, let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else {
            throw NSError(domain: "flowtap", code: 2, userInfo: [NSLocalizedDescriptionKey: "status: \(response.status)"])
        }
        return object
    }

    /// Polls the status until `condition` holds (at most `seconds`).
    func waitForStatus(seconds: Double = 20, _ condition: ([String: Any]) -> Bool) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(seconds)
        var last: [String: Any] = [:]
        while Date() < deadline {
            last = try status()
            if condition(last) { return last }
            usleep(100_000)
        }
        return last
    }
}

struct HTTPResponse {
    var status: Int
    var head: String
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A bare HTTP/1.1 client on a TCP socket: what is sent is exactly the bytes given, so tests can
/// send what no library would (huge heads, bytes one at a time).
enum HTTPProbe {
    static func connect(port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .ECONNREFUSED)
        }
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    /// Everything the server sends until it closes (or 15 s pass).
    static func readAll(_ fd: Int32) -> [UInt8] {
        var all: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            all += buffer[0 ..< n]
        }
        return all
    }

    static func parse(_ bytes: [UInt8]) -> HTTPResponse {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var split = bytes.count
        if bytes.count >= 4 {
            for i in 0 ... bytes.count - 4 where Array(bytes[i ..< i + 4]) == separator {
                split = i
                break
            }
        }
        let head = String(decoding: bytes[0 ..< split], as: UTF8.self)
        let body = split + 4 <= bytes.count ? Array(bytes[(split + 4)...]) : []
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        return HTTPResponse(status: status, head: head, body: body)
    }

    static func request(port: UInt16, _ text: String) throws -> HTTPResponse {
        let fd = try connect(port: port)
        defer { close(fd) }
        _ = send(fd, Array(text.utf8))
        return parse(readAll(fd))
    }
}

/// Pushes a capture file into an SF-TAP pcap injection socket.
func inject(_ capture: String, into socketPath: String) throws {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        let bytes = Array(socketPath.utf8)
        for (i, b) in bytes.enumerated() where i < raw.count - 1 { raw[i] = b }
    }
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .ECONNREFUSED) }
    let data = try Data(contentsOf: URL(fileURLWithPath: capture))
    XCTAssertTrue(HTTPProbe.send(fd, [UInt8](data)))
}

/// A temporary directory, an SF-TAP config whose home is inside it, and a generated capture.
struct AbstractFixture {
    let directory: URL
    let config: String
    let home: String

    init(name: String) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        home = directory.appendingPathComponent("home").path
        var source = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { source.deleteLastPathComponent() }
        let example = try String(contentsOf: source.appendingPathComponent("examples/flowtap.yaml"), encoding: .utf8)
        config = directory.appendingPathComponent("flowtap.yaml").path
        try example.replacingOccurrences(of: "/tmp/sf-tap", with: home).write(toFile: config, atomically: true, encoding: .utf8)
    }

    /// `flowtap generate` output with `sessions` sessions; returns its path and packet count.
    func capture(sessions: Int, seed: Int) throws -> (path: String, packets: Int) {
        let path = directory.appendingPathComponent("traffic-\(seed).pcap").path
        let (output, printed, status) = try Corpus.runCapturingErrors(try RunningCommand.flowtap, ["generate", "--sessions", "\(sessions)", "--seed", "\(seed)", "-w", path])
        let errors = output + printed
        XCTAssertEqual(status, 0, errors)
        guard let range = errors.range(of: #"(\d+) packets"#, options: .regularExpression), let n = Int(errors[range].split(separator: " ")[0]) else {
            throw NSError(domain: "flowtap", code: 3, userInfo: [NSLocalizedDescriptionKey: "generate said: \(errors)"])
        }
        return (path, n)
    }

    func waitForSocket(_ name: String) {
        let path = home + "/" + name
        for _ in 0 ..< 200 where !FileManager.default.fileExists(atPath: path) { usleep(50_000) }
    }
}

/// Samples of one metric in Prometheus text: label text → value.
func samples(_ exposition: String, _ name: String) -> [String: Double] {
    var result: [String: Double] = [:]
    for line in exposition.split(separator: "\n") where !line.hasPrefix("#") {
        let parts = line.split(separator: " ")
        guard parts.count == 2, let value = Double(parts[1]) else { continue }
        let series = String(parts[0])
        if series == name { result[""] = value }
        if series.hasPrefix(name + "{") { result[String(series.dropFirst(name.count))] = value }
    }
    return result
}

/// UDP datagrams to 127.0.0.1:`port` as fast as `threads` threads send them, each from its own source
/// port (thread t cycles over its own 10,000 ports from 20,000 + 10,000·t), until `stop`.
final class LoopbackFlood: @unchecked Sendable {
    let port: UInt16
    let threads: Int
    private let lock = NSLock()
    private var running = true
    private let done = DispatchSemaphore(value: 0)

    init(port: UInt16, threads: Int = 3) {
        self.port = port
        self.threads = threads
    }

    func start() {
        for t in 0 ..< threads {
            Thread { [self] in
                var next = 0
                while lock.withLock({ running }) {
                    Loopback.sendUDP([0x42], port: port, sourcePort: UInt16(20000 + 10000 * t + next % 10000))
                    next += 1
                }
                done.signal()
            }.start()
        }
    }

    func stop() {
        lock.withLock { running = false }
        for _ in 0 ..< threads { done.wait() }
    }
}
