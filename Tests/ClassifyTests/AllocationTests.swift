#if canImport(Glibc)
import Glibc
#endif
import Classify
import TestSupport
import XCTest

/// `classifyTCP` and `classifyUDP` allocate nothing.
///
/// Counts with the `LD_PRELOAD` shim scripts/malloc-count.c (exports
/// `flowtap_malloc_calls`); without it the test skips. `scripts/test.sh` runs it in release with the shim loaded.
final class AllocationTests: XCTestCase {
    func testClassifyAllocatesNothing() throws {
        let mallocCalls = try mallocCallCounter()

        // The example rules plus a utf8 rule, so both databases are scanned.
        var rules = try OwnExample.rules()
        rules.append(ClassificationRule(name: "text", proto: .tcp, up: "^HELO", down: "^.$", utf8: true, nice: 300))
        rules.append(ClassificationRule(name: "text_udp", proto: .udp, up: "^\u{E9}t\u{E9}", utf8: true))
        let c = try ExampleRules.classifier(rules)

        let tcpCases: [([UInt8], [UInt8], UInt16)] = [
            (Array(Payload.httpRequest.utf8), Array(Payload.httpResponse.utf8), 80),
            (Payload.clientHello, Payload.serverHello, 443),
            (Payload.dnsQueryTCP, Payload.dnsResponseTCP, 53),
            (Array("HELO x".utf8), [0xC3, 0xA9], 25),
            ([UInt8](repeating: 0xAB, count: 9000), [], 9999),
        ]
        let udpCases: [([UInt8], UInt16)] = [
            (Array(Payload.syslog.utf8), 514), (Payload.dnsQuery, 53), (Array(Payload.dhtPing.utf8), 6881),
            (Array("\u{E9}t\u{E9}".utf8), 1), ([], 9),
        ]
        var hits = 0
        func round() {
            for (b1, b2, port) in tcpCases {
                b1.withUnsafeBytes { p1 in
                    b2.withUnsafeBytes { p2 in
                        if c.classifyTCP(port1: 40000, port2: port, buffer1: p1, buffer2: p2) != nil { hits &+= 1 }
                    }
                }
            }
            for (payload, port) in udpCases {
                payload.withUnsafeBytes { p in
                    if c.classifyUDP(port1: 40000, port2: port, payload: p) != nil { hits &+= 1 }
                }
            }
        }
        round()
        XCTAssertEqual(c.name(c.tcp(40000, 25, Array("HELO x".utf8), [0xC3, 0xA9])), "text")
        XCTAssertEqual(c.name(c.udp(40000, 1, "\u{E9}t\u{E9}")), "text_udp")
        let before = mallocCalls()
        for _ in 0 ..< 10_000 { round() }
        let allocations = mallocCalls() &- before
        XCTAssertEqual(hits, 10 * 10_001)
        XCTAssertEqual(allocations, 0, "\(allocations) allocations over \(10_000 * 10) calls")
        print("allocation check: \(allocations) mallocs over \(10_000 * 10) classify calls")
    }
}
