#if canImport(Glibc)
import Glibc
#endif
import Defragment
import PacketCore
import Wire
import TestSupport
import XCTest

/// Steady-state `process` allocates nothing.
///
/// The count comes from an `LD_PRELOAD` shim, scripts/malloc-count.c, that
/// exports `flowtap_malloc_calls` (per-thread calls to malloc, calloc,
/// realloc and the aligned variants, forwarded to glibc's `__libc_*`).
/// Without the shim the test skips. `scripts/test.sh` builds the tests in
/// release, compiles the shim and runs every allocation test with it loaded
/// (a skip there is a failure); by hand:
///
///     cc -O2 -shared -fPIC -o /tmp/libmalloc-count.so scripts/malloc-count.c
///     swift build -c release --build-tests -Xswiftc -enable-testing
///     LD_PRELOAD=/tmp/libmalloc-count.so "$(swift build -c release --show-bin-path)/FlowTapPackageTests.xctest" \
///         DefragmentTests.AllocationTests
final class AllocationTests: XCTestCase {
    func testSteadyStateProcessAllocatesNothing() throws {
        let mallocCalls = try mallocCallCounter()

        // One round: an IPv4 datagram with options and an IPv6 one with
        // extension headers, out of order, with an overlapping duplicate, both
        // completing; a teardrop that abandons a datagram; a refused fragment.
        var frames: [[UInt8]] = []
        let options: [UInt8] = [0x94, 4, 0, 0]
        frames.append(FragmentFactory.ipv4(FragmentSpec(offset: 1480, data: Array(repeating: 2, count: 600), more: false), id: 1, options: options))
        frames.append(FragmentFactory.ipv4(FragmentSpec(offset: 0, data: Array(repeating: 1, count: 1480), more: true), id: 1, options: options))
        frames.append(FragmentFactory.ipv4(FragmentSpec(offset: 1480, data: Array(repeating: 2, count: 600), more: false), id: 1, options: options))
        let extensions: [PacketBuilder.IPv6Extension] = [.hopByHop(options: [5, 2, 0, 0]), .destinationOptions()]
        frames.append(FragmentFactory.ipv6(FragmentSpec(offset: 1232, data: Array(repeating: 4, count: 800), more: false), id: 2, extensions: extensions))
        frames.append(FragmentFactory.ipv6(FragmentSpec(offset: 0, data: Array(repeating: 3, count: 1232), more: true), id: 2, extensions: extensions))
        frames.append(FragmentFactory.ipv4(FragmentSpec(offset: 0, data: Array(repeating: 5, count: 40), more: true), id: 3))
        frames.append(FragmentFactory.ipv4(FragmentSpec(offset: 24, data: Array(repeating: 6, count: 4), more: false), id: 3))
        frames.append(FragmentFactory.ipv6(FragmentSpec(offset: 0, data: Array(repeating: 7, count: 12), more: true), id: 4))

        var decoder = PacketDecoder()
        var packets: [DecodedPacket] = []
        for frame in frames {
            var packet = DecodedPacket()
            frame.withUnsafeBytes { _ = decoder.decode($0, originalLength: $0.count, linkType: .raw, into: &packet) }
            XCTAssertTrue(packet.isFragment)
            packets.append(packet)
        }
        let defrag = Defragmenter()
        var completed = 0, dropped = 0, clock: Int64 = 0
        func round() {
            for i in 0 ..< frames.count {
                clock &+= 1000
                let result = frames[i].withUnsafeBytes {
                    defrag.process(packets[i], bytes: $0, vlan: 0, timestamp: Timestamp(nanoseconds: clock))
                }
                switch result {
                case .complete: completed += 1
                case .dropped: dropped += 1
                case .incomplete: break
                }
            }
        }
        round()
        let before = mallocCalls()
        for _ in 0 ..< 10_000 { round() }
        let allocations = mallocCalls() &- before
        XCTAssertEqual(completed, 2 * 10_001)
        XCTAssertEqual(dropped, 2 * 10_001)
        XCTAssertEqual(allocations, 0, "\(allocations) allocations over \(10_000 * frames.count) fragments")
        print("allocation check: \(allocations) mallocs over \(10_000 * frames.count) fragments")
    }
}
