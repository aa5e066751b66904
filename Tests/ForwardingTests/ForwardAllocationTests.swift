#if canImport(Glibc)
import Glibc
#endif
import Forwarding
import PacketCore
import TestSupport
import XCTest

/// The forwarder's per-datagram path (kind, rule lookup, sampling, kept-source header, batching and
/// sendmmsg) allocates nothing once its destinations are open. The worker is driven on this thread
/// through its tap entry point, so the per-thread malloc counter sees all of it. Counted with the
/// LD_PRELOAD shim in a release build (`scripts/test.sh`); skips without it.
final class ForwardAllocationTests: XCTestCase {
    func testForwardingADatagramAllocatesNothing() throws {
        let mallocCalls = try mallocCallCounter()
        guard getuid() == 0 else { throw OracleMissing.error("keep-source needs root (raw sockets)") }
        let plain = TestSocket(), kept = TestSocket()
        let rules = """
        rules:
          - name: netflow
            from: [10.1.0.0/24, 192.0.2.0/24]
            port: 2055
            kind: netflow9
            to: [127.0.0.1:\(plain.port), {address: 127.0.0.1:\(kept.port), sample: 3, keep_source: true}]
          - name: syslog
            port: 514
            to: 127.0.0.1:\(plain.port)
        """
        let set = try ForwardRuleSet.parse(rules, file: "allocation.yaml", keepSourceByDefault: false)
        let shared = ForwardShared(plan: ForwardPlan(set), workers: 1, log: { _ in })
        let worker = ForwardWorker(id: 0, listeners: [], shared: shared)
        let netflow = [UInt8]([0, 9, 0, 1]) + [UInt8](repeating: 7, count: 96)
        let syslog = Array("<13>Dec  3 05:00:00 host app: a message".utf8)
        func run(_ n: Int) {
            for i in 0 ..< n {
                let source = IPAddress(ipv4: 0x0A01_0000 | UInt32(i % 200))
                if i % 4 == 3 {
                    syslog.withUnsafeBytes { worker.forward(captured: $0, source: source, sourcePort: 5140, port: 514) }
                } else {
                    netflow.withUnsafeBytes { worker.forward(captured: $0, source: source, sourcePort: 40000, port: 2055) }
                }
                if i % 50 == 49 { worker.flushAll() }
            }
            worker.flushAll()
        }
        run(2000) // warm-up: template warnings, every array grown
        let before = mallocCalls()
        run(20_000)
        let allocations = mallocCalls() &- before
        print("forward allocations: \(allocations) over 20000 datagrams (25,000 sends: 15,000 + 5,000 sampled with kept sources + 5,000)")
        XCTAssertEqual(allocations, 0)
    }
}
