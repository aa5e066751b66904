import Foundation

/// A real `redis-server` (Debian's) on a free loopback port, for tests of the Redis outputs; its data
/// directory (append-only file on, fsync on every write) survives `stop()` and `start()`, so a restarted
/// server holds what the stopped one stored.
public final class RedisServer: @unchecked Sendable {
    public let port: UInt16
    public let directory: URL
    private var process: Process?
    private let server: String
    public let cli: String

    public init() throws {
        guard let server = Corpus.tool("redis-server"), let cli = Corpus.tool("redis-cli") else {
            throw OracleMissing.error("redis-server and redis-cli not installed (Debian redis-server)")
        }
        self.server = server
        self.cli = cli
        port = Self.freePort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-redis-\(getpid())-\(port)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A TCP port nobody listens on now (the kernel's choice for port 0).
    public static func freePort() -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                _ = bind(fd, pointer, length)
                return getsockname(fd, pointer, &length)
            }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    public func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: server)
        p.arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                       "--dir", directory.path, "--daemonize", "no", "--protected-mode", "no"]
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        process = p
        for _ in 0 ..< 100 {
            if (try? command(["PING"]))?.hasPrefix("PONG") == true { return }
            usleep(50_000)
        }
        throw RedisServerError(description: "redis-server did not answer on port \(port)")
    }

    /// SIGTERM: the server writes its append-only file and exits.
    public func stop() {
        guard let p = process else { return }
        process = nil
        p.terminate()
        p.waitUntilExit()
    }

    /// `redis-cli --raw` output of one command.
    public func command(_ arguments: [String], database: Int = 0) throws -> String {
        let (out, status) = try Corpus.run(cli, ["-p", String(port), "-n", String(database), "--raw"] + arguments)
        guard status == 0 else { throw RedisServerError(description: "redis-cli \(arguments.joined(separator: " ")) exited \(status)") }
        return out
    }

    public func integer(_ arguments: [String], database: Int = 0) throws -> Int {
        Int(try command(arguments, database: database).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// The values of a stream's entries (field `record`), in order.
    public func streamRecords(_ key: String) throws -> [String] {
        let lines = try command(["XRANGE", key, "-", "+"]).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // --raw prints each entry as its ID, the field name and the value, a line each.
        var records: [String] = []
        var i = 0
        while i + 2 < lines.count {
            records.append(lines[i + 2])
            i += 3
        }
        return records
    }
}

public struct RedisServerError: Error, CustomStringConvertible {
    public var description: String
}
