#if canImport(Glibc)
import Glibc
#endif
import UnixSockets
import TestSupport
import XCTest

/// Steady-state `publish` and `poll` allocate nothing, whether events go
/// straight to the socket or queue in a reader's ring.
///
/// Counted with the `LD_PRELOAD` shim `scripts/malloc-count.c` (exports `flowtap_malloc_calls`);
/// without it the test skips. `scripts/test.sh` runs it in release with the shim loaded.
final class AllocationTests: XCTestCase {
    func testPublishAndPollAllocateNothing() throws {
        let mallocCalls = try mallocCallCounter()

        let home = try TemporaryHome()
        defer { home.remove() }
        let server = SocketServer(configuration: .init(readerQueueBytes: 1 << 20, readerSendBufferBytes: 16 << 10))
        defer { server.close() }
        let output = try server.addOutput(path: home.path + "/tcp/http")
        let keeping = try TestClient(path: home.path + "/tcp/http")
        let stalled = try TestClient(path: home.path + "/tcp/http")
        XCTAssertTrue(try server.waitForReaders([output], minimum: 2, timeout: .seconds(2)))
        let events = (0 ..< 64).map { TestEvents.make($0, bodyLength: TestEvents.bodyLength($0, maximum: 1500)) }

        var counted: UInt64 = 0
        func round(measure: Bool) throws {
            for (header, body) in events {
                try header.withUnsafeBytes { h in
                    try body.withUnsafeBytes { b in
                        let before = mallocCalls()
                        server.publish(output, header: h, body: b)
                        try server.poll(timeoutMilliseconds: 0)
                        if measure { counted &+= mallocCalls() &- before }
                    }
                }
            }
            keeping.received.removeAll(keepingCapacity: true)
            keeping.readAvailable()
        }
        for _ in 0 ..< 50 { try round(measure: false) }
        for _ in 0 ..< 500 { try round(measure: true) }
        XCTAssertEqual(counted, 0, "allocations in steady-state publish/poll")
        let stats = server.statistics(output)!
        XCTAssertGreaterThan(stats.readerDetails[1].eventsDropped, 0, "the stalled reader's ring filled: the drop path was measured too")
        _ = stalled
    }
}
