#if canImport(Glibc)
import Glibc
#endif
import Foundation
import UnixSockets
import XCTest

final class OutputTests: XCTestCase {
    private var home: TemporaryHome!

    override func setUpWithError() throws { home = try TemporaryHome() }
    override func tearDown() { home?.remove() }

    /// Two readers see the same bytes; a reader that arrives mid-stream starts
    /// at the first event published after it was accepted, on a boundary.
    func testReadersGetCopiesAndLateReaderStartsAtBoundary() throws {
        let server = SocketServer()
        defer { server.close() }
        let path = home.path + "/tcp/http"
        let output = try server.addOutput(path: path)
        XCTAssertEqual(try server.addOutput(path: path), output, "rules sharing an `if` share the socket")
        XCTAssertEqual(try server.addOutput(path: home.path + "//tcp/./http"), output, "however the path is spelled")
        XCTAssertEqual(home.mode("tcp/http").map { $0 & 0o7777 }, 0o770)
        XCTAssertEqual(home.mode("tcp/http").map { $0 & S_IFMT }, S_IFSOCK)

        let a = try TestClient(path: path)
        let b = try TestClient(path: path)
        XCTAssertTrue(try server.waitForReaders([output], minimum: 2, timeout: .seconds(2)))
        let drain = { a.readAvailable(); b.readAvailable() }
        for seq in 0 ..< 1000 {
            TestEvents.publish(server, output, seq: seq, bodyLength: TestEvents.bodyLength(seq, maximum: 3000))
            if seq % 20 == 0 { try server.poll(timeoutMilliseconds: 0); drain() }
        }
        let late = try TestClient(path: path)
        XCTAssertTrue(try server.waitForReaders([output], minimum: 3, timeout: .seconds(2)))
        for seq in 1000 ..< 2000 {
            TestEvents.publish(server, output, seq: seq, bodyLength: TestEvents.bodyLength(seq, maximum: 3000))
            if seq % 20 == 0 { try server.poll(timeoutMilliseconds: 0); drain(); late.readAvailable() }
        }
        let published = server.statistics(output)!.bytesPublished
        XCTAssertTrue(try pump(server, body: { drain(); late.readAvailable() }) {
            UInt64(a.received.count) == published && UInt64(b.received.count) == published
                && server.statistics(output)!.readerDetails.allSatisfy { $0.pendingBytes == 0 }
        })
        late.readAvailable()

        XCTAssertEqual(a.received, b.received)
        XCTAssertEqual(try TestEvents.parse(a.received), Array(0 ..< 2000))
        XCTAssertEqual(try TestEvents.parse(late.received), Array(1000 ..< 2000))
        let stats = server.statistics(output)!
        XCTAssertEqual(stats.readers, 3)
        XCTAssertEqual(stats.eventsPublished, 2000)
        XCTAssertEqual(stats.eventsDropped, 0)
        XCTAssertEqual(stats.readerDetails.map(\.events), [2000, 2000, 1000])
    }

    /// A reader that never reads while 50,000 events go out: publish stays
    /// quick, the reader beside it and a reader of another output lose
    /// nothing, its drops are counted, and what it finally reads is whole
    /// events in order with gaps only between events.
    func testStalledReaderDropsWholeEventsAndBlocksNobody() throws {
        let queueBytes = 256 << 10
        let server = SocketServer(configuration: .init(readerQueueBytes: queueBytes, readerSendBufferBytes: 32 << 10))
        defer { server.close() }
        let http = try server.addOutput(path: home.path + "/tcp/http")
        let dns = try server.addOutput(path: home.path + "/udp/dns")
        let healthy = try TestClient(path: home.path + "/tcp/http")
        XCTAssertTrue(try server.waitForReaders([http], minimum: 1, timeout: .seconds(2)))
        let stalled = try TestClient(path: home.path + "/tcp/http")
        let other = try TestClient(path: home.path + "/udp/dns")
        XCTAssertTrue(try server.waitForReaders([http], minimum: 2, timeout: .seconds(2)))
        XCTAssertTrue(try server.waitForReaders([dns], minimum: 1, timeout: .seconds(2)))

        let total = 50_000
        var slowest: Duration = .zero
        let clock = ContinuousClock()
        let started = clock.now
        for seq in 0 ..< total {
            let (header, body) = TestEvents.make(seq, bodyLength: TestEvents.bodyLength(seq, maximum: 600))
            let elapsed = clock.measure {
                header.withUnsafeBytes { h in
                    body.withUnsafeBytes { b in
                        server.publish(http, header: h, body: b)
                        server.publish(dns, header: h, body: b)
                    }
                }
            }
            slowest = max(slowest, elapsed)
            if seq % 16 == 0 {
                // The healthy readers keep up, as a real analyzer would.
                try server.poll(timeoutMilliseconds: 0)
                healthy.readAvailable()
                other.readAvailable()
            }
        }
        let publishing = started.duration(to: clock.now)
        XCTAssertLessThan(slowest, .milliseconds(500), "one publish took \(slowest); a blocking write would never return")
        XCTAssertLessThan(publishing, .seconds(20))

        let httpBytes = server.statistics(http)!.bytesPublished
        XCTAssertTrue(try pump(server, body: { healthy.readAvailable(); other.readAvailable() }) {
            UInt64(healthy.received.count) == httpBytes && UInt64(other.received.count) == httpBytes
        }, "healthy readers did not receive everything")
        XCTAssertEqual(try TestEvents.parse(healthy.received), Array(0 ..< total))
        XCTAssertEqual(try TestEvents.parse(other.received), Array(0 ..< total))

        let stats = server.statistics(http)!
        XCTAssertEqual(stats.readerDetails.count, 2)
        let (good, bad) = (stats.readerDetails[0], stats.readerDetails[1])
        XCTAssertEqual(good.eventsDropped, 0)
        XCTAssertGreaterThan(bad.eventsDropped, 0)
        XCTAssertEqual(stats.eventsDropped, bad.eventsDropped)
        XCTAssertEqual(stats.bytesDropped, bad.bytesDropped)
        XCTAssertEqual(bad.events + bad.eventsDropped, UInt64(total))
        XCTAssertLessThanOrEqual(bad.pendingBytes, queueBytes)
        XCTAssertEqual(server.statistics(dns)!.eventsDropped, 0)

        // Now the stalled reader drains: whole events, in order, gaps between events only.
        XCTAssertTrue(try pump(server, body: { stalled.readAvailable() }) {
            UInt64(stalled.received.count) == server.statistics(http)!.readerDetails[1].bytesWritten
                && server.statistics(http)!.readerDetails[1].pendingBytes == 0
        })
        let seqs = try TestEvents.parse(stalled.received)
        XCTAssertEqual(UInt64(seqs.count), bad.events)
        XCTAssertEqual(seqs, seqs.sorted())
        XCTAssertEqual(Set(seqs).count, seqs.count)
        XCTAssertEqual(seqs.first, 0, "the first events fit in the queue")
    }

    /// A tiny server-side SO_SNDBUF and large events force short writes;
    /// the reader still sees every event whole.
    func testPartialWritesKeepFraming() throws {
        for threshold in [0, 32 << 10] {
            let server = SocketServer(configuration: .init(readerQueueBytes: 16 << 20, readerSendBufferBytes: 4096,
                                                           flushThresholdBytes: threshold))
            defer { server.close() }
            let path = home.path + "/tcp/big\(threshold)"
            let output = try server.addOutput(path: path)
            let client = try TestClient(path: path)
            XCTAssertTrue(try server.waitForReaders([output], timeout: .seconds(2)))
            for seq in 0 ..< 200 {
                TestEvents.publish(server, output, seq: seq, bodyLength: 10_000 + TestEvents.bodyLength(seq, maximum: 50_000))
                // Read in small, odd-sized bites so writes keep landing mid-event.
                if seq % 3 == 0 {
                    try server.poll(timeoutMilliseconds: 0)
                    client.readAvailable(limit: 7777, chunk: 1000)
                }
            }
            server.flush()
            let published = server.statistics(output)!.bytesPublished
            XCTAssertTrue(try pump(server, body: { client.readAvailable(chunk: 3001) }) {
                UInt64(client.received.count) == published
            })
            XCTAssertEqual(try TestEvents.parse(client.received), Array(0 ..< 200), "threshold \(threshold)")
            let reader = server.statistics(output)!.readerDetails[0]
            XCTAssertGreaterThan(reader.partialWrites, 0, "no short write happened; the test proves nothing")
            XCTAssertEqual(reader.eventsDropped, 0)
            XCTAssertEqual(reader.bytesWritten, published)
        }
    }

    /// Readers that vanish mid-stream are removed without SIGPIPE; a reader
    /// that only half-closes and chatters keeps receiving.
    func testDisconnectMidStreamAndChatter() throws {
        let previous = signal(SIGPIPE, SIG_DFL)  // a SIGPIPE would now kill the test process
        defer { signal(SIGPIPE, previous) }
        let server = SocketServer(configuration: .init(readerSendBufferBytes: 8192))
        defer { server.close() }
        let path = home.path + "/tcp/ssh"
        let output = try server.addOutput(path: path)
        let leaving = try TestClient(path: path)
        let chatty = try TestClient(path: path)
        XCTAssertTrue(try server.waitForReaders([output], minimum: 2, timeout: .seconds(2)))

        chatty.write("hello from the analyzer\n")
        chatty.shutdownWrite()
        for seq in 0 ..< 100 {
            TestEvents.publish(server, output, seq: seq, bodyLength: 2000)
            try server.poll(timeoutMilliseconds: 0)
            chatty.readAvailable()
        }
        leaving.readAvailable(limit: 5000)
        leaving.close()  // with bytes still unread and more queued
        for seq in 100 ..< 1100 {
            TestEvents.publish(server, output, seq: seq, bodyLength: 2000)
            if seq % 10 == 0 { try server.poll(timeoutMilliseconds: 0); chatty.readAvailable() }
        }
        XCTAssertTrue(try pump(server, body: { chatty.readAvailable() }) { server.readerCount(output) == 1 })
        let published = server.statistics(output)!.bytesPublished
        XCTAssertTrue(try pump(server, body: { chatty.readAvailable() }) { UInt64(chatty.received.count) == published })
        XCTAssertEqual(try TestEvents.parse(chatty.received), Array(0 ..< 1100))
        let stats = server.statistics(output)!
        XCTAssertEqual(stats.readersDisconnected, 1)
        XCTAssertEqual(stats.readerDetails.first?.bytesDiscarded, 24)
    }

    /// More readers than allowed are accepted and closed at once, counted.
    func testReaderLimit() throws {
        let server = SocketServer(configuration: .init(maxReadersPerOutput: 2))
        defer { server.close() }
        let path = home.path + "/udp/dns"
        let output = try server.addOutput(path: path)
        let clients = try (0 ..< 3).map { _ in try TestClient(path: path) }
        XCTAssertTrue(try pump(server) { server.statistics(output)!.readersRefused == 1 })
        XCTAssertEqual(server.readerCount(output), 2)
        XCTAssertTrue(try pump(server, body: { for c in clients { c.readAvailable() } }) {
            clients.contains { $0.sawEOF }
        }, "the refused client sees end of stream")
    }

    /// An event bigger than the whole queue is dropped whole and counted.
    func testEventLargerThanQueueIsDropped() throws {
        let server = SocketServer(configuration: .init(readerQueueBytes: 4096))
        defer { server.close() }
        let path = home.path + "/tcp/x"
        let output = try server.addOutput(path: path)
        let client = try TestClient(path: path)
        XCTAssertTrue(try server.waitForReaders([output], timeout: .seconds(2)))
        TestEvents.publish(server, output, seq: 0, bodyLength: 5000)
        TestEvents.publish(server, output, seq: 1, bodyLength: 100)
        XCTAssertTrue(try pump(server, body: { client.readAvailable() }) { (try? TestEvents.parse(client.received)) == [1] })
        let stats = server.statistics(output)!
        XCTAssertEqual(stats.eventsDropped, 1)
        XCTAssertEqual(stats.bytesDropped, UInt64(TestEvents.make(0, bodyLength: 5000).header.count + 5000))
    }

    /// Publishing to an output nobody reads only counts.
    func testPublishWithoutReaders() throws {
        let server = SocketServer()
        defer { server.close() }
        let output = try server.addOutput(path: home.path + "/tcp/none")
        TestEvents.publish(server, output, seq: 0, bodyLength: 10)
        XCTAssertEqual(server.readerCount(output), 0)
        XCTAssertEqual(server.statistics(output)!.eventsPublished, 1)
        XCTAssertEqual(server.statistics(output)!.eventsDropped, 0)
    }

    /// accept failing with EMFILE is counted and the listener rests instead
    /// of making poll(2) spin; the waiting reader is accepted afterwards.
    func testAcceptFailureBacksOff() throws {
        let server = SocketServer()
        defer { server.close() }
        let path = home.path + "/tcp/busy"
        let output = try server.addOutput(path: path)
        let client = try TestClient(path: path)

        var saved = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &saved), 0)
        var lowered = saved
        lowered.rlim_cur = rlim_t(min(UInt64(saved.rlim_cur), 4096))
        XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lowered), 0)
        var hogs: [Int32] = []
        while hogs.count < 5000 {
            let fd = dup(0)
            if fd < 0 { break }
            hogs.append(fd)
        }
        var failures: UInt64 = 0
        for _ in 0 ..< 20 { try server.poll(timeoutMilliseconds: 1) }
        failures = server.statistics(output)!.acceptErrors
        for fd in hogs { close(fd) }
        XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &saved), 0)

        XCTAssertGreaterThanOrEqual(failures, 1)
        XCTAssertLessThanOrEqual(failures, 2, "20 quick rounds inside the 100 ms rest try accept at most twice")
        XCTAssertEqual(server.readerCount(output), 0)
        XCTAssertTrue(try server.waitForReaders([output], timeout: .seconds(2)))
        _ = client
    }
}
