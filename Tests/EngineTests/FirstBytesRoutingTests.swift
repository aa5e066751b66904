import Capture
import Engine
@testable import FlowDispatch
import FlowCore
import Foundation
import Outputs
import PacketCore
import Wire
import XCTest

/// First-bytes routing on other protocols' command lines: an FTP `USER` or an SMTP `EHLO` exchange is
/// not HTTP (no "HTTP/" on the line, not an HTTP/0.9 GET); real HTTP/1.x, HTTP/0.9 and registered
/// methods still are.
final class FirstBytesRoutingTests: XCTestCase {
    /// Writes one TCP session per (client bytes, server bytes) pair to a pcap file, each on its own ports.
    static func capture(_ sessions: [(port: UInt16, client: String, server: String)]) throws -> String {
        let path = NSTemporaryDirectory() + "flowtap-firstbytes-\(getpid())-\(UUID().uuidString).pcap"
        let writer = try PcapWriter(path: path, linkType: .ethernet)
        let a = IPAddress("10.2.0.1")!, b = IPAddress("10.2.0.2")!
        var t: Int64 = 1_700_000_000_000_000_000
        for (n, session) in sessions.enumerated() {
            let cport = UInt16(41_000 + n)
            func send(_ fromClient: Bool, seq: UInt32, ack: UInt32, flags: TCPFlags, _ payload: [UInt8] = []) throws {
                let (s, d, sp, dp) = fromClient ? (a, b, cport, session.port) : (b, a, session.port, cport)
                let frame = PacketBuilder.frame(network: .ipv4(.init(source: s, destination: d)),
                                                transport: .tcp(.init(sourcePort: sp, destinationPort: dp, sequence: seq, acknowledgement: ack, flags: flags)),
                                                payload: payload)
                t += 1_000_000
                try writer.write(timestamp: Timestamp(nanoseconds: t), bytes: frame)
            }
            let c = Array(session.client.utf8), sv = Array(session.server.utf8)
            try send(true, seq: 1000, ack: 0, flags: [.syn])
            try send(false, seq: 5000, ack: 1001, flags: [.syn, .ack])
            try send(true, seq: 1001, ack: 5001, flags: [.ack])
            // Servers that speak first (SMTP, FTP) send their greeting before the client's line.
            let serverFirst = session.server.hasPrefix("220")
            if serverFirst { try send(false, seq: 5001, ack: 1001, flags: [.ack, .psh], sv) }
            try send(true, seq: 1001, ack: 5001 + UInt32(serverFirst ? sv.count : 0), flags: [.ack, .psh], c)
            if !serverFirst { try send(false, seq: 5001, ack: 1001 + UInt32(c.count), flags: [.ack, .psh], sv) }
            try send(true, seq: 1001 + UInt32(c.count), ack: 5001 + UInt32(sv.count), flags: [.fin, .ack])
            try send(false, seq: 5001 + UInt32(sv.count), ack: 1002 + UInt32(c.count), flags: [.fin, .ack])
            try send(true, seq: 1002 + UInt32(c.count), ack: 5002 + UInt32(sv.count), flags: [.ack])
        }
        try writer.flush()
        return path
    }

    static func httpRecords(_ path: String) throws -> [String] {
        let out = path + ".jsonl"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let writer = try RecordWriter(path: out)
        _ = try AnalyzeSession(settings: nil, engineConfig: FlowEngineConfig()).run(files: [path], output: writer)
        try writer.finish()
        return try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map(String.init).filter { $0.contains("\"type\":\"http\"") }
    }

    func testOtherProtocolsCommandLinesAreNotHTTP() throws {
        let path = try Self.capture([
            (21, "USER anonymous\r\n", "220 ftp.example FTP server ready\r\n331 Password required\r\n"),
            (25, "EHLO client.example\r\n", "220 mail.example ESMTP\r\n250-mail.example\r\n250 OK\r\n"),
            (110, "USER alice\r\n", "220 ready\r\n+OK\r\n"),
            (8080, "MAIL FROM:<a@example.org>\r\n", "220 hi\r\n250 OK\r\n"),
        ])
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertEqual(try Self.httpRecords(path), [])
    }

    func testHTTPIsStillHTTP() throws {
        let path = try Self.capture([
            (80, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            (8081, "PROPFIND /dav HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 207 Multi-Status\r\nContent-Length: 0\r\n\r\n"),
            (8082, "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\n\r\n"),
            (8083, "GET /old\r\n", "<html>simple</html>"),
        ])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try Self.httpRecords(path)
        XCTAssertEqual(records.count, 4, records.joined(separator: "\n"))
        for method in ["\"GET\"", "\"PROPFIND\"", "\"BREW\""] { XCTAssertTrue(records.contains { $0.contains(method) }, method) }
        XCTAssertTrue(records.contains { $0.contains("HTTP/0.9") && $0.contains("/old") })
    }
}

/// The SOCKS handshake reader alone: split and coalesced messages, logins, refusals and bytes that are no SOCKS.
final class SOCKSHandshakeTests: XCTestCase {
    func feed(_ socks: SOCKSHandshake, _ fromClient: Bool, _ bytes: [UInt8]) -> SOCKSHandshake.Outcome {
        bytes.withUnsafeBytes { socks.consume(fromClient: fromClient, $0) }
    }

    func testSOCKS5SplitCoalescedAndWithALogin() {
        let hello: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]
        // Greeting split over two chunks; login; request and the first tunnel bytes in one chunk.
        let s = SOCKSHandshake(version: .five)
        XCTAssertEqual(feed(s, true, [5]), .handshaking)
        XCTAssertEqual(feed(s, true, [2, 0, 2]), .handshaking)
        XCTAssertEqual(feed(s, false, [5, 2]), .handshaking)
        XCTAssertEqual(feed(s, true, [1, 1, 0x75, 2, 0x70, 0x77]), .handshaking)
        XCTAssertEqual(feed(s, false, [1, 0]), .handshaking)
        XCTAssertEqual(feed(s, true, [5, 1, 0, 3, 4] + Array("a.io".utf8) + [1, 187] + hello), .handshaking)
        XCTAssertEqual(feed(s, false, [5, 0, 0, 1, 127, 0, 0, 1, 1, 187]), .tunnel)
        XCTAssertEqual(s.early.count, 1)
        XCTAssertEqual(s.early.first?.bytes, hello)
        XCTAssertEqual(s.early.first?.fromClient, true)
    }

    func testRefusalsAndNonSOCKSFail() {
        var s = SOCKSHandshake(version: .five)
        XCTAssertEqual(feed(s, true, [5, 1, 0]), .handshaking)
        XCTAssertEqual(feed(s, false, [5, 0xFF]), .failed) // no acceptable method
        s = SOCKSHandshake(version: .five)
        _ = feed(s, true, [5, 1, 2])
        _ = feed(s, false, [5, 2])
        XCTAssertEqual(feed(s, false, [1, 1]), .failed) // login refused
        s = SOCKSHandshake(version: .four)
        XCTAssertEqual(feed(s, true, [4, 1, 0, 80, 10, 0, 0, 1, 0x75, 0]), .handshaking)
        XCTAssertEqual(feed(s, false, [0, 91, 0, 0, 0, 0, 0, 0]), .failed) // request rejected
        s = SOCKSHandshake(version: .five)
        XCTAssertEqual(feed(s, true, [5, 1, 0]), .handshaking)
        XCTAssertEqual(feed(s, false, [5, 0]), .handshaking)
        XCTAssertEqual(feed(s, false, [5, 1, 0, 1, 0, 0, 0, 0, 0, 0]), .failed) // REP 1: general failure
        // A handshake message that never ends is given up past its bound.
        s = SOCKSHandshake(version: .four)
        XCTAssertEqual(feed(s, true, [4, 1, 0, 80, 0, 0, 0, 1] + [UInt8](repeating: 0x61, count: 600)), .failed)
        // First bytes that are no SOCKS greeting.
        for bytes: [UInt8] in [[5, 0], [5, 3, 0, 1], [5, 1, 0xFF], [4, 3, 0, 80, 1, 1, 1, 1, 0], [4, 1, 0, 80, 1, 1, 1, 1, 7, 0], Array("GET / HTTP/1.1\r\n".utf8)] {
            XCTAssertNil(bytes.withUnsafeBytes { SOCKSHandshake.starts($0) }, "\(bytes)")
        }
        XCTAssertEqual(([4, 1, 0, 80, 0, 0, 0, 1, 0x75, 0, 0x61, 0x2E, 0x62, 0] as [UInt8]).withUnsafeBytes { SOCKSHandshake.starts($0) }, .four)
        XCTAssertEqual(([5, 2, 0, 2] as [UInt8]).withUnsafeBytes { SOCKSHandshake.starts($0) }, .five)
    }
}
