import Foundation
import TestSupport
import UnixSockets
import XCTest

/// Live capture on a quiet interface: one DNS query reaches `flowtap analyzer dns` beside
/// `flowtap abstract -i` within 100 ms, with one thread and with two, on `lo` and on a veth pair into a
/// network namespace the test makes; and SIGINT on an idle interface ends `abstract -i` and
/// `filter -i` within a second, with their summaries. (As root.)
final class LiveLatencyTests: XCTestCase {
    var flowtap: String {
        get throws {
            guard geteuid() == 0 else { throw OracleMissing.error("live capture needs root") }
            let path = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path
            guard FileManager.default.isExecutableFile(atPath: path) else { throw OracleMissing.error("flowtap executable not built") }
            return path
        }
    }

    /// A DNS query for `name` (A, IN), as a resolver sends it.
    static func query(_ name: String, id: UInt16) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") {
            bytes.append(UInt8(label.utf8.count))
            bytes.append(contentsOf: label.utf8)
        }
        bytes += [0, 0, 1, 0, 1]
        return bytes
    }

    /// Reads `pipe` until a line contains `needle` or `timeout` seconds pass; returns when it was seen.
    static func waitForLine(_ handle: FileHandle, containing needle: String, timeout: Double) -> Date? {
        let fd = handle.fileDescriptor
        var text = ""
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, 10) > 0 else { continue }
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { return nil }
            text += String(decoding: buffer[0 ..< n], as: UTF8.self)
            if text.contains(needle) { return Date() }
        }
        return nil
    }

    func testOneQueryReachesTheAnalyzerWithinAHundredMilliseconds() throws {
        let flowtap = try self.flowtap
        for threads in [1, 2] {
            let port = UInt16(30_000 + Int(getpid()) % 20_000 + threads)
            try measure(flowtap, interface: "lo", threads: threads, port: port) { Loopback.sendUDP($0, port: port) }
        }
    }

    /// The same on a veth pair whose far end is in a network namespace this test makes: the query comes
    /// from another host's stack, over a real link.
    func testOneQueryFromANamespaceOverAVethReachesTheAnalyzer() throws {
        let flowtap = try self.flowtap
        guard let ip = Corpus.tool("ip"), let python = Corpus.tool("python3") else { throw OracleMissing.error("ip (iproute2) and python3 are needed") }
        let tag = "\(getpid() % 100_000)"
        let namespace = "ftlat\(tag)", near = "ftl\(tag)a", far = "ftl\(tag)b"
        let octet = Int(getpid()) % 200 + 20
        func sh(_ arguments: [String]) throws {
            let (_, status) = try Corpus.run(ip, arguments)
            XCTAssertEqual(status, 0, "ip \(arguments.joined(separator: " "))")
        }
        try sh(["netns", "add", namespace])
        defer { _ = try? Corpus.run(ip, ["netns", "del", namespace]); _ = try? Corpus.run(ip, ["link", "del", near]) }
        try sh(["link", "add", near, "type", "veth", "peer", "name", far])
        try sh(["link", "set", far, "netns", namespace])
        try sh(["addr", "add", "10.99.\(octet).1/24", "dev", near])
        try sh(["link", "set", near, "up"])
        try sh(["netns", "exec", namespace, "ip", "addr", "add", "10.99.\(octet).2/24", "dev", far])
        try sh(["netns", "exec", namespace, "ip", "link", "set", far, "up"])
        // A sender inside the namespace: one hex datagram per line on its standard input, sent at once.
        let port = UInt16(31_000 + Int(getpid()) % 20_000)
        let sender = Process()
        sender.executableURL = URL(fileURLWithPath: ip)
        sender.arguments = ["netns", "exec", namespace, python, "-u", "-c",
                            "import sys, socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                                + "for line in sys.stdin:\n    s.sendto(bytes.fromhex(line.strip()), ('10.99.\(octet).1', \(port)))\n"]
        let input = Pipe()
        sender.standardInput = input
        try sender.run()
        defer { try? input.fileHandleForWriting.close(); sender.waitUntilExit() }
        func send(_ bytes: [UInt8]) {
            input.fileHandleForWriting.write(Data((bytes.map { String(format: "%02x", $0) }.joined() + "\n").utf8))
        }
        send([0x00]) // resolves the neighbour before anything is timed
        usleep(200_000)
        for threads in [1, 2] {
            try measure(flowtap, interface: near, threads: threads, port: port, send: send)
        }
    }

    /// Starts `abstract -i interface` and `analyzer dns` beside it, sends five queries a quiet link
    /// apart, and checks each record comes within 100 ms; then SIGINT, which must end abstract within 1 s.
    func measure(_ flowtap: String, interface: String, threads: Int, port: UInt16, send: ([UInt8]) -> Void) throws {
        let home = NSTemporaryDirectory() + "flowtap-latency-\(getpid())-\(interface)-\(threads)"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        try """
        global:
          home: \(home)
        dns:
          proto: UDP
          if: dns
          port: \(port)
        """.write(toFile: home + "/cfg.yaml", atomically: true, encoding: .utf8)
        let abstract = Process()
        abstract.executableURL = URL(fileURLWithPath: flowtap)
        abstract.arguments = ["abstract", "-c", home + "/cfg.yaml", "-i", interface, "--threads", "\(threads)", "--stats-interval", "0"]
        let abstractErrors = Pipe()
        abstract.standardError = abstractErrors
        try abstract.run()
        defer { if abstract.isRunning { abstract.terminate() } }
        let analyzer = Process()
        analyzer.executableURL = URL(fileURLWithPath: flowtap)
        analyzer.arguments = ["analyzer", "dns", home + "/udp/dns", "--wait", "10"]
        let records = Pipe()
        analyzer.standardOutput = records
        analyzer.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try analyzer.run()
        defer { if analyzer.isRunning { analyzer.terminate() } }
        usleep(1_000_000)

        var latencies: [Double] = []
        for i in 0 ..< 5 {
            let name = "q\(i)-\(threads)-\(getpid()).flowtap.example"
            let sent = Date()
            send(Self.query(name, id: UInt16(i + 1)))
            let seen = Self.waitForLine(records.fileHandleForReading, containing: name, timeout: 2)
            XCTAssertNotNil(seen, "\(interface), \(threads) threads: no record for \(name)")
            if let seen { latencies.append(seen.timeIntervalSince(sent)) }
            usleep(300_000) // a quiet link between queries
        }
        print("live latency on \(interface), \(threads) threads: query to analyzer record \(latencies.map { String(format: "%.1f ms", $0 * 1000) })")
        XCTAssertLessThan(latencies.max() ?? .infinity, 0.1, "\(interface), \(threads) threads: \(latencies)")

        // SIGINT on the idle interface: out within a second, with the final statistics.
        usleep(500_000)
        let interrupted = Date()
        abstract.interrupt()
        let exitDeadline = Date().addingTimeInterval(5)
        while abstract.isRunning && Date() < exitDeadline { usleep(10_000) }
        XCTAssertFalse(abstract.isRunning)
        XCTAssertLessThan(Date().timeIntervalSince(interrupted), 1.0, "\(interface), \(threads) threads")
        let report = String(decoding: abstractErrors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(report.contains("capturing on \(interface)"), report)
        XCTAssertTrue(report.contains("final: packets"), report)
        XCTAssertEqual(abstract.terminationStatus, 0, report)
    }

    func testFilterOnAnIdleInterfaceStopsOnSIGINT() throws {
        let flowtap = try self.flowtap
        let out = NSTemporaryDirectory() + "flowtap-idle-\(getpid()).pcap"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: flowtap)
        // A filter nothing on lo matches: the capture stays idle.
        process.arguments = ["filter", "-i", "lo", "-w", out, "udp port 9 and host 127.0.0.254"]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        usleep(700_000)
        let interrupted = Date()
        process.interrupt()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        XCTAssertFalse(process.isRunning)
        if process.isRunning { process.terminate() }
        XCTAssertLessThan(Date().timeIntervalSince(interrupted), 1.0)
        let report = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(report.contains("0 packets written"), report)
        XCTAssertEqual(process.terminationStatus, 0, report)
    }
}
