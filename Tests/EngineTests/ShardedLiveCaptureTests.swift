import SFTapCodec
import Foundation
import UnixSockets
import PacketCore
import TestSupport
import XCTest

/// `flowtap abstract -i lo --threads 2`: one capture handle per worker in a kernel fanout group.
/// Every loopback TCP connection must come out whole (CREATED, both directions' data, DESTROYED)
/// on the http socket, which holds only if both directions of each flow reach the same worker.
final class ShardedLiveCaptureTests: XCTestCase {
    /// 127.0.0.`host`:`port` (every 127/8 address is on the loopback interface).
    static func loopback(port: UInt16, host: UInt32 = 1) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = (UInt32(0x7F00_0000) | host).bigEndian
        return address
    }

    static func withSockaddr<T>(_ address: sockaddr_in, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var a = address
        return withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    }

    /// `count` HTTP exchanges over loopback, one connection each: request, response, close.
    static func exchanges(port: UInt16, count: Int) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        XCTAssertEqual(Self.withSockaddr(Self.loopback(port: port)) { bind(listener, $0, $1) }, 0)
        XCTAssertEqual(listen(listener, 64), 0)
        let server = Thread {
            for _ in 0 ..< count {
                let c = accept(listener, nil, nil)
                guard c >= 0 else { return }
                var buffer = [UInt8](repeating: 0, count: 4096)
                _ = read(c, &buffer, buffer.count)
                let response = Array("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello".utf8)
                _ = write(c, response, response.count)
                close(c)
            }
        }
        server.start()
        for i in 0 ..< count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            // Each client from its own loopback address: live threads share flows out by address pair.
            XCTAssertEqual(Self.withSockaddr(Self.loopback(port: 0, host: 2 + UInt32(i % 250))) { bind(fd, $0, $1) }, 0)
            XCTAssertEqual(Self.withSockaddr(Self.loopback(port: port)) { connect(fd, $0, $1) }, 0)
            let request = Array("GET /item/\(i) HTTP/1.1\r\nHost: live.test\r\n\r\n".utf8)
            _ = write(fd, request, request.count)
            var buffer = [UInt8](repeating: 0, count: 4096)
            while read(fd, &buffer, buffer.count) > 0 {}
            close(fd)
        }
        while !server.isFinished { usleep(10_000) }
        close(listener)
    }

    func testEveryConnectionComesOutWholeWithTwoWorkers() throws {
        guard geteuid() == 0 else { throw OracleMissing.error("live capture needs root") }
        let flowtap = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path
        guard FileManager.default.isExecutableFile(atPath: flowtap) else { throw OracleMissing.error("flowtap executable not built") }
        let home = NSTemporaryDirectory() + "flowtap-fanout-\(getpid())"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        let config = """
        global:
          home: \(home)
        http:
          proto: TCP
          if: http
          up: '^GET [^\\r\\n]* HTTP/1\\.1\\r\\n'
          down: '^HTTP/1\\.1 [0-9]{3}'
        """
        try config.write(toFile: home + "/cfg.yaml", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: flowtap)
        process.arguments = ["abstract", "-c", home + "/cfg.yaml", "-i", "lo", "--threads", "2", "--stats-interval", "0"]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        // The reader connects once the socket exists (at most 10 s).
        var reader: Int32 = -1
        let deadline = Date().addingTimeInterval(10)
        while reader < 0 && Date() < deadline {
            if let fd = try? SocketClient.connect(home + "/tcp/http") { reader = fd } else { usleep(50_000) }
        }
        XCTAssertGreaterThanOrEqual(reader, 0, "the http socket did not appear")
        guard reader >= 0 else { return }
        let collected = Collected()
        let fd = reader
        let collector = Thread {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n <= 0 { break }
                collected.append(buffer[0 ..< n])
            }
        }
        collector.start()
        // The capture handles open after the sockets, which under load takes a while: a warm-up exchange on
        // another port, repeated until the reader sees it, says the capture is running.
        let port = UInt16(20_000 + getpid() % 20_000), warmUpPort = port &+ 1
        let warmUpDeadline = Date().addingTimeInterval(15)
        while collected.isEmpty && Date() < warmUpDeadline {
            try Self.exchanges(port: warmUpPort, count: 1)
            usleep(300_000)
        }
        let connections = 30
        try Self.exchanges(port: port, count: connections)
        usleep(500_000)
        process.interrupt()
        process.waitUntilExit()
        while !collector.isFinished { usleep(10_000) }
        close(reader)
        let report = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(process.terminationStatus, 0, report)
        // A quiet live link hands events over a packet at a time: none may be dropped on the way to the socket.
        XCTAssertTrue(report.contains("events dropped at the hand-over to the socket thread: 0"), report)

        var events: [String: [String]] = [:]
        var uris: Set<String> = []
        var parser = SFTapEventReader()
        collected.bytes.withUnsafeBytes { bytes in
            parser.feed(bytes, event: { e, body in
                guard e.port1 == port || e.port2 == port else { return }
                events["\(e.address1):\(e.port1)-\(e.address2):\(e.port2)", default: []].append("\(e.kind)\(e.fromFirst.map { $0 ? "1" : "2" } ?? "")")
                let text = String(decoding: body, as: UTF8.self)
                if let r = text.range(of: #"/item/[0-9]+"#, options: .regularExpression) { uris.insert(String(text[r])) }
            }, error: { XCTFail("\($0)") })
        }
        XCTAssertEqual(events.count, connections, report)
        for (flow, kinds) in events {
            XCTAssertEqual(kinds.first, "created", flow)
            XCTAssertEqual(kinds.last, "destroyed", flow)
            XCTAssertTrue(kinds.contains("data1") && kinds.contains("data2"), "\(flow): \(kinds)")
        }
        XCTAssertEqual(uris.count, connections, "uris \(uris.sorted()); events \(events.map { "\($0.key): \($0.value)" }.sorted()); \(report)")
        // Both workers took part: thirty address pairs hashed over two handles all landing on one is a 2^-29 chance.
        let perWorker = try XCTUnwrap(report.range(of: #"packets per worker: [0-9]+, [0-9]+"#, options: .regularExpression).map { String(report[$0]) }, report)
        let counts = perWorker.dropFirst("packets per worker: ".count).split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) ?? 0 }
        XCTAssertEqual(counts.count, 2)
        XCTAssertTrue(counts.allSatisfy { $0 > 0 }, report)
    }
}

/// Bytes a reader thread collects; read only after the thread has finished.
private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [UInt8] = []
    func append(_ more: ArraySlice<UInt8>) { lock.withLock { storage.append(contentsOf: more) } }
    var isEmpty: Bool { lock.withLock { storage.isEmpty } }
    var bytes: [UInt8] { lock.withLock { storage } }
}
