#if canImport(Glibc)
import Glibc
#endif
import Foundation
import UnixSockets
import XCTest

final class InputTests: XCTestCase {
    private var home: TemporaryHome!

    override func setUpWithError() throws { home = try TemporaryHome() }
    override func tearDown() { home?.remove() }

    /// Bytes arrive in order per connection; `.close` closes that connection
    /// only; `onClose` fires once for each, with the reason.
    func testBytesArriveInOrderAndConnectionsClose() throws {
        let server = SocketServer()
        defer { server.close() }
        var received: [ConnectionID: [UInt8]] = [:]
        var closes: [ConnectionID: InputCloseReason] = [:]
        let path = home.path + "/loopback7"
        let input = try server.addInput(path: path, onData: { id, bytes in
            received[id, default: []].append(contentsOf: bytes)
            return bytes.contains(UInt8(ascii: "!")) ? .close : .continue
        }, onClose: { id, reason in
            XCTAssertNil(closes[id], "onClose twice for \(id)")
            closes[id] = reason
        })
        XCTAssertEqual(home.mode("loopback7").map { $0 & 0o7777 }, 0o770)

        let polite = try TestClient(path: path)
        let rude = try TestClient(path: path)
        var expected: [UInt8] = []
        for chunk in 0 ..< 200 {
            let bytes = (0 ..< 1000).map { UInt8(truncatingIfNeeded: chunk &+ $0 &* 3) & 0x7F | 0x40 }
            expected += bytes
            polite.write(bytes)
            if chunk % 10 == 0 { try server.poll(timeoutMilliseconds: 0) }
        }
        XCTAssertTrue(try pump(server) { received.values.contains { $0.count == expected.count } })
        XCTAssertEqual(received.values.first { $0.count == expected.count }, expected)

        rude.write("bad input!")
        XCTAssertTrue(try pump(server, body: { rude.readAvailable() }) { rude.sawEOF }, "the handler's .close reaches the client")
        XCTAssertEqual(Array(closes.values), [.handlerClosed])

        polite.close()
        XCTAssertTrue(try pump(server) { closes.count == 2 })
        XCTAssertEqual(closes.values.filter { $0 == .peerClosed }.count, 1)

        let stats = server.statistics(input)!
        XCTAssertEqual(stats.connections, 0)
        XCTAssertEqual(stats.connectionsAccepted, 2)
        XCTAssertEqual(stats.bytesReceived, UInt64(expected.count + 10))
    }

    /// `.consumed(n)` keeps the unparsed tail and shows it again with the
    /// next bytes, as a line parser needs.
    func testConsumedKeepsTheTail() throws {
        let server = SocketServer()
        defer { server.close() }
        var lines: [String] = []
        let path = home.path + "/pcap"
        _ = try server.addInput(path: path, onData: { _, bytes in
            guard let last = bytes.lastIndex(of: 0x0A) else { return .consumed(0) }
            lines += String(decoding: bytes[...last], as: UTF8.self).split(separator: "\n").map(String.init)
            return .consumed(last + 1)
        })
        let client = try TestClient(path: path)
        for piece in ["line1\nli", "ne2", "\nline3\nline", "4\n"] {
            client.write(piece)
            try server.poll(timeoutMilliseconds: 50)
        }
        XCTAssertTrue(try pump(server) { lines.count == 4 })
        XCTAssertEqual(lines, ["line1", "line2", "line3", "line4"])
    }

    /// A handler that never consumes a full buffer gets the connection closed.
    func testFullBufferClosesTheConnection() throws {
        let server = SocketServer(configuration: .init(inputBufferBytes: 4096))
        defer { server.close() }
        var reason: InputCloseReason?
        let path = home.path + "/loopback7"
        let input = try server.addInput(path: path, onData: { _, _ in .consumed(0) }, onClose: { reason = $1 })
        let client = try TestClient(path: path)
        client.write([UInt8](repeating: 0x41, count: 5000))
        XCTAssertTrue(try pump(server) { reason != nil })
        XCTAssertEqual(reason, .bufferOverflow)
        XCTAssertEqual(server.statistics(input)!.overflowCloses, 1)
    }

    /// A handler may publish what it parses (loopback7 feeds the outputs);
    /// close() from inside a handler waits for poll to return.
    func testHandlerMayPublishAndClose() throws {
        let server = SocketServer()
        var closedWith: [InputCloseReason] = []
        let outputPath = home.path + "/tcp/echo"
        let output = try server.addOutput(path: outputPath)
        _ = try server.addInput(path: home.path + "/loopback7", onData: { _, bytes in
            server.publish(output, event: bytes)
            if bytes.contains(UInt8(ascii: "Q")) { server.close() }
            return .continue
        }, onClose: { closedWith.append($1) })
        let reader = try TestClient(path: outputPath)
        XCTAssertTrue(try server.waitForReaders([output], timeout: .seconds(2)))
        let writer = try TestClient(path: home.path + "/loopback7")
        writer.write("ping")
        XCTAssertTrue(try pump(server, body: { reader.readAvailable() }) { reader.received == Array("ping".utf8) })
        writer.write("Q")
        XCTAssertTrue(try pump(server) { closedWith == [.serverClosed] })
        XCTAssertFalse(home.exists("loopback7"))
        XCTAssertFalse(home.exists("tcp/echo"))
        XCTAssertThrowsError(try server.addOutput(path: outputPath)) { error in
            XCTAssertEqual((error as? SocketError)?.code, .closed)
        }
    }
}
