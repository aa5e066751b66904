#if canImport(Glibc)
import Glibc
#endif
import Foundation
import UnixSockets
import XCTest

final class QueueTests: XCTestCase {
    private var home: TemporaryHome!

    override func setUpWithError() throws { home = try TemporaryHome() }
    override func tearDown() { home?.remove() }

    /// A reader that reads a little at a time keeps its small queue
    /// (16 KiB, twice the server's send buffer) full and never empty, so the ring wraps over and over,
    /// with writes stopping mid-event and drops at the tail: every byte read
    /// still parses as whole events, in order.
    func testRingWrapsWithPartialWritesAndDrops() throws {
        let server = SocketServer(configuration: .init(readerQueueBytes: 16 << 10, readerSendBufferBytes: 4096))
        defer { server.close() }
        let path = home.path + "/tcp/slow"
        let output = try server.addOutput(path: path)
        let client = try TestClient(path: path)
        XCTAssertTrue(try server.waitForReaders([output], timeout: .seconds(2)))
        for seq in 0 ..< 5000 {
            TestEvents.publish(server, output, seq: seq, bodyLength: 50 + TestEvents.bodyLength(seq, maximum: 900))
            try server.poll(timeoutMilliseconds: 0)
            client.readAvailable(limit: 331, chunk: 331)
        }
        XCTAssertTrue(try pump(server, body: { client.readAvailable() }) {
            let reader = server.statistics(output)!.readerDetails[0]
            return reader.pendingBytes == 0 && UInt64(client.received.count) == reader.bytesWritten
        })
        let reader = server.statistics(output)!.readerDetails[0]
        let seqs = try TestEvents.parse(client.received)
        XCTAssertEqual(UInt64(seqs.count), reader.events)
        XCTAssertEqual(seqs, seqs.sorted())
        XCTAssertEqual(reader.events + reader.eventsDropped, 5000)
        XCTAssertGreaterThan(reader.eventsDropped, 0)
        XCTAssertGreaterThan(reader.partialWrites, 0)
        // Far more bytes went through the queue than it holds: it wrapped.
        XCTAssertGreaterThan(reader.bytesWritten, 20 * 16 << 10)
    }
}

final class InterfaceErrorTests: XCTestCase {
    /// The one-line form names the path, the syscall, strerror and errno, then what to do.
    func testDescription() {
        let error = SocketError(code: .systemCall, path: "/srv/sf-tap/tcp/http", syscall: "bind", errno: EACCES,
                                   message: "permission denied: run as a user who may write /srv/sf-tap/tcp")
        XCTAssertEqual(error.description,
                       "/srv/sf-tap/tcp/http: bind(2): Permission denied (errno 13): permission denied: run as a user who may write /srv/sf-tap/tcp")
        XCTAssertEqual(SocketError(code: .pathTooLong, path: "p", message: "m").description, "p: m")
    }
}
