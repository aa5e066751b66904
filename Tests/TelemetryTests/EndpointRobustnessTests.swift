import Foundation
import TestSupport
import XCTest

/// Hostile and careless clients cost the HTTP thread only: capture goes on, the process stays up.
final class EndpointRobustnessTests: XCTestCase {
    /// 1,000 idle connections, slowloris clients sending a byte a second, a 1 MB request head and
    /// garbage, all at once while a capture is injected: every packet is processed, the endpoint
    /// still answers, slow clients are cut off at the request timeout (10 s) and counted.
    func testBadClientsNeverStallCaptureOrCrash() throws {
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = min(limit.rlim_max, 8192)
        setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        guard limit.rlim_cur >= 2048 else { throw XCTSkip("the descriptor limit (\(limit.rlim_cur)) is too low for 1,000 connections") }

        let fixture = try AbstractFixture(name: "robust")
        let (capture, packets) = try fixture.capture(sessions: 400, seed: 23)
        let command = try RunningCommand(["abstract", "-c", fixture.config, "--stats-interval", "0"], directory: fixture.directory)
        defer { command.stop() }
        fixture.waitForSocket("pcap")

        var idle: [Int32] = []
        defer { for fd in idle { close(fd) } }
        for _ in 0 ..< 1000 { idle.append(try HTTPProbe.connect(port: command.port)) }
        // Half of them start a request and never finish it.
        for fd in idle.prefix(500) { _ = HTTPProbe.send(fd, Array("GET /metrics HTTP/1.1\r\nHost: x\r\n".utf8)) }

        let slow = DispatchQueue(label: "slowloris", attributes: .concurrent)
        let group = DispatchGroup()
        let port = command.port
        for _ in 0 ..< 20 {
            slow.async(group: group) {
                guard let fd = try? HTTPProbe.connect(port: port) else { return }
                defer { close(fd) }
                for byte in "GET /metrics HTTP/1.1\r\nX-Slow: ".utf8 {
                    if !HTTPProbe.send(fd, [byte]) { return }
                    usleep(700_000)
                }
            }
        }
        let huge = try HTTPProbe.request(port: command.port, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 1 << 20) + "\r\n\r\n")
        XCTAssertNotEqual(huge.status, 200, "a 1 MB header is refused")
        _ = try? HTTPProbe.request(port: command.port, "\u{16}\u{03}\u{01}\u{02}\u{00}\u{01}\u{00}\u{01}\u{fc}\u{03}\u{03} not http at all\r\n\r\n")

        try inject(capture, into: fixture.home + "/pcap")
        let status = try command.waitForStatus { ($0["packets"] as? Int) == packets }
        XCTAssertEqual(status["packets"] as? Int, packets, "capture went on under the load")
        XCTAssertEqual(try command.get("/metrics").status, 200)

        group.wait()
        let metrics = try command.get("/metrics").text
        // By now (the slow clients took about 21 s) every idle or half-sent connection and every slow client
        // has passed the 10 s request timeout: 1,000 + 20 at least.
        let timeouts = samples(metrics, "flowtap_http_timeouts_total")[""] ?? 0
        let accepted = samples(metrics, "flowtap_http_connections_total")["{result=\"accepted\"}"] ?? 0
        print("endpoint robustness: \(Int(timeouts)) connections timed out, \(Int(accepted)) accepted")
        XCTAssertGreaterThanOrEqual(timeouts, 1020, "idle, half-sent and slow clients were all cut off")
        XCTAssertGreaterThanOrEqual(accepted, 1020)
        XCTAssertTrue(command.process.isRunning)
        XCTAssertEqual(command.stop(), 0, command.errors)
    }
}
