import Foundation
import TestSupport
import UnixSockets
import XCTest

/// Live capture on a quiet interface: one DNS query reaches `flowtap analyzer dns` beside
/// `flowtap abstract -i` within 100 ms, with one thread and with two; and SIGINT on an idle
/// interface ends `abstract -i` and `filter -i` within a second, with their summaries. (Runs on `lo`,
/// as root.)
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
            let home = NSTemporaryDirectory() + "flowtap-latency-\(getpid())-\(threads)"
            try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: home) }
            let port = UInt16(30_000 + Int(getpid()) % 20_000 + threads)
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
            abstract.arguments = ["abstract", "-c", home + "/cfg.yaml", "-i", "lo", "--threads", "\(threads)", "--stats-interval", "0"]
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
            // The analyzer is connected once abstract counts a reader; give both a moment to settle.
            usleep(1_000_000)

            var latencies: [Double] = []
            for i in 0 ..< 5 {
                let name = "q\(i)-\(threads)-\(getpid()).flowtap.example"
                let sent = Date()
                Loopback.sendUDP(Self.query(name, id: UInt16(i + 1)), port: port)
                let seen = Self.waitForLine(records.fileHandleForReading, containing: name, timeout: 2)
                XCTAssertNotNil(seen, "\(threads) threads: no record for \(name)")
                if let seen { latencies.append(seen.timeIntervalSince(sent)) }
                usleep(300_000) // a quiet link between queries
            }
            let worst = latencies.max() ?? .infinity
            print("live latency, \(threads) threads: query to analyzer record \(latencies.map { String(format: "%.1f ms", $0 * 1000) })")
            XCTAssertLessThan(worst, 0.1, "\(threads) threads: \(latencies)")

            // SIGINT on the idle interface: out within a second, with the final statistics.
            usleep(500_000)
            let interrupted = Date()
            abstract.interrupt()
            let exitDeadline = Date().addingTimeInterval(5)
            while abstract.isRunning && Date() < exitDeadline { usleep(10_000) }
            let took = Date().timeIntervalSince(interrupted)
            XCTAssertFalse(abstract.isRunning)
            XCTAssertLessThan(took, 1.0, "\(threads) threads")
            let report = String(decoding: abstractErrors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            XCTAssertTrue(report.contains("capturing on lo"), report)
            XCTAssertTrue(report.contains("final: packets"), report)
            XCTAssertEqual(abstract.terminationStatus, 0, report)
        }
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
