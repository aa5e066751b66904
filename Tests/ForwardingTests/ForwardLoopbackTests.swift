#if canImport(Glibc)
import Glibc
#endif
import Engine
import Forwarding
import Foundation
import PacketCore
import TestSupport
import XCTest

/// `forward` on loopback, in process: every datagram accounted for at every destination.
final class ForwardLoopbackTests: XCTestCase {
    func requireRoot() throws {
        if getuid() != 0 { throw OracleMissing.error("keep-source needs root (raw sockets)") }
    }

    /// Three exporters; one destination keeping sources, one sampling 1 in 4 keeping sources, one plain.
    func testReplicationSamplingAndKeepSource() throws {
        try requireRoot()
        let all = TestSocket(), sampled = TestSocket(), plain = TestSocket()
        let port = TestSocket.freePort()
        let rules = writeRules("""
        rules:
          - from: 127.0.0.0/8
            port: \(port)
            to: [127.0.0.1:\(all.port), {address: 127.0.0.1:\(sampled.port), sample: 4}, {address: 127.0.0.1:\(plain.port), keep_source: false}]
            keep_source: true
        """)
        defer { unlink(rules) }
        let forwarder = RunningForwarder(ForwardSession(rulesPath: rules, listen: ["127.0.0.1:\(port)"]))
        let exporters = [TestSocket(), TestSocket(), TestSocket()]
        var sent: [(UInt16, [UInt8])] = []
        for i in 0 ..< 300 {
            let exporter = exporters[i % 3]
            let payload = Array("<14>datagram \(i) from \(exporter.port)".utf8)
            exporter.send(payload, to: port)
            sent.append((exporter.port, payload))
            if i % 50 == 49 { usleep(2000) }
        }
        let atAll = all.receiveAll(), atSampled = sampled.receiveAll(), atPlain = plain.receiveAll()
        let summary = try forwarder.stop()
        print(summary)
        // Every datagram, in order, from its exporter's own port.
        XCTAssertEqual(atAll.map { "\($0.0):\($0.1) " + String(decoding: $0.2, as: UTF8.self) }, sent.map { "127.0.0.1:\($0.0) " + String(decoding: $0.1, as: UTF8.self) })
        // Exactly one in four: the 1st, 5th, 9th, … datagram matched.
        XCTAssertEqual(atSampled.map(\.2), stride(from: 0, to: 300, by: 4).map { sent[$0].1 })
        XCTAssertTrue(atSampled.allSatisfy { $0.0 == IPAddress("127.0.0.1")! })
        // Without keep-source: the forwarder's own port, every datagram.
        XCTAssertEqual(atPlain.map(\.2), sent.map(\.1))
        XCTAssertTrue(atPlain.allSatisfy { p in !exporters.contains { $0.port == p.1 } })
        XCTAssertTrue(summary.contains("forwarded 300"), summary)
        XCTAssertTrue(summary.contains("forwarded 75 ") && summary.contains("sampled out 225"), summary)
        XCTAssertTrue(summary.contains("forwarded 675 "), summary)
    }

    /// A collector that is down (ICMP port unreachable) costs the others nothing; its losses are counted.
    func testDeadCollectorIsCountedAndTheOthersReceiveAll() throws {
        let live = TestSocket()
        let dead = TestSocket.freePort()
        let port = TestSocket.freePort()
        let rules = writeRules("rules:\n  - port: \(port)\n    to: [127.0.0.1:\(dead), 127.0.0.1:\(live.port)]\n")
        defer { unlink(rules) }
        let forwarder = RunningForwarder(ForwardSession(rulesPath: rules, listen: ["127.0.0.1:\(port)"]))
        let exporter = TestSocket()
        for i in 0 ..< 500 {
            exporter.send(Array("<14>n \(i)".utf8), to: port)
            if i % 20 == 19 { usleep(1000) }
        }
        let received = live.receiveAll()
        let summary = try forwarder.stop()
        print(summary)
        XCTAssertEqual(received.map { String(decoding: $0.2, as: UTF8.self) }, (0 ..< 500).map { "<14>n \($0)" })
        // Each refusal is one datagram the kernel would not send (an ICMP port unreachable came back for an
        // earlier one); the others left and were dropped at the dead port, unseen: the kernel rate-limits
        // those ICMP errors, so most losses to a dead UDP collector cannot be known by any sender.
        let line = try XCTUnwrap(summary.split(separator: "\n").first { $0.contains("127.0.0.1:\(dead)") })
        let forwarded = Int(line.split(separator: "forwarded ")[1].split(separator: " ")[0])!
        let refused = Int(try XCTUnwrap(line.split(separator: "ICMP port unreachable) ").last).split(separator: ",")[0])!
        XCTAssertEqual(forwarded + refused, 500, String(line))
        XCTAssertGreaterThan(refused, 0, String(line))
    }

    /// Datagrams the forwarder cannot parse (cut NetFlow, IPFIX, sFlow, random bytes, empty) go out byte for byte.
    func testMalformedDatagramsAreForwardedUnchanged() throws {
        // A gForwarder rule sends to the same port, so the collector listens on that port of another loopback address.
        let port = TestSocket.freePort()
        let target = TestSocket(address: "127.0.0.2", port: port)
        let rules = writeRules("127.0.0.1 \(port) 127.0.0.2 A\n", name: "gfw-\(getpid()).txt")
        defer { unlink(rules) }
        let forwarder = RunningForwarder(ForwardSession(rulesPath: rules, listen: ["127.0.0.1:\(port)"]))
        var random = SeededRandom(seed: 11)
        var sent: [[UInt8]] = [[], [0, 9], [0, 10, 0, 200, 1], [0, 0, 0, 5, 0, 0, 0, 9], [0, 5, 0, 30], Array("<999999".utf8)]
        for _ in 0 ..< 200 {
            let n = Int(random.next() % 1500)
            sent.append((0 ..< n).map { _ in UInt8(truncatingIfNeeded: random.next()) })
        }
        let exporter = TestSocket()
        for (i, d) in sent.enumerated() {
            exporter.send(d, to: port)
            if i % 25 == 24 { usleep(1000) }
        }
        let got = target.receiveAll()
        let summary = try forwarder.stop()
        XCTAssertEqual(got.map(\.2), sent, summary)
        XCTAssertTrue(summary.contains("datagrams received \(sent.count) "), summary)
    }

    /// SIGHUP swaps the rules while datagrams flow: none is lost; a bad file keeps the old rules and says why.
    func testReloadLosesNothingAndABadFileKeepsTheOldRules() throws {
        let first = TestSocket(), second = TestSocket()
        let port = TestSocket.freePort()
        let path = writeRules("rules:\n  - port: \(port)\n    to: 127.0.0.1:\(first.port)\n")
        defer { unlink(path) }
        HangupSignal.install()
        let forwarder = RunningForwarder(ForwardSession(rulesPath: path, listen: ["127.0.0.1:\(port)"]))
        let exporter = TestSocket()
        let total = 3000
        for i in 0 ..< total {
            exporter.send(Array("<14>n \(i)".utf8), to: port)
            if i == 1000 {
                try "rules:\n  - port: \(port)\n    to: 127.0.0.1:\(second.port)\n".write(toFile: path, atomically: true, encoding: .utf8)
                raise(SIGHUP)
                usleep(300_000) // the control loop looks every 50 ms
            }
            if i == 2000 {
                try "rules:\n  - port: \(port)\n    to: nowhere\n".write(toFile: path, atomically: true, encoding: .utf8)
                raise(SIGHUP)
            }
            if i % 10 == 9 { usleep(500) }
        }
        let a = first.receiveAll(), b = second.receiveAll()
        let summary = try forwarder.stop()
        print(summary)
        XCTAssertEqual(a.count + b.count, total, summary)
        // Datagrams 0…1000 came before the reload, the rest after; the bad file at 2000 changed nothing.
        XCTAssertEqual(a.count, 1001, summary)
        XCTAssertEqual(b.count, total - 1001, summary)
        // Order kept across the switch: the first destination's datagrams all come before the second's.
        let numbers = (a + b).map { Int(String(decoding: $0.2, as: UTF8.self).split(separator: " ")[1])! }
        XCTAssertEqual(numbers, Array(0 ..< total))
        let log = forwarder.log.joined(separator: "\n")
        XCTAssertTrue(log.contains("rules reloaded"), log)
        XCTAssertTrue(log.contains("the new rules are not used, the old ones stay") && log.contains("\(path):3: 'nowhere' is not a destination"), log)
        XCTAssertTrue(summary.contains("datagrams received \(total) ") && summary.contains("forwarded \(total) "), summary)
    }

    /// IPv6 with the source kept: the UDP checksum is mandatory, and the receiving kernel checks it.
    func testIPv6KeepSource() throws {
        try requireRoot()
        let collector = TestSocket(ipv6: true)
        let port = TestSocket.freePort(ipv6: true)
        let rules = writeRules("rules:\n  - from: ::1\n    port: \(port)\n    to: \"[::1]:\(collector.port)\"\n    keep_source: true\n")
        defer { unlink(rules) }
        let forwarder = RunningForwarder(ForwardSession(rulesPath: rules, listen: ["[::1]:\(port)"]))
        let exporter = TestSocket(ipv6: true)
        let payloads = (0 ..< 100).map { Array("<14>v6 \($0) ".utf8) + Array(repeating: UInt8($0), count: $0 * 7) }
        for p in payloads { exporter.send(p, to: port) }
        let got = collector.receiveAll()
        let summary = try forwarder.stop()
        XCTAssertEqual(got.map(\.2), payloads, summary)
        XCTAssertTrue(got.allSatisfy { $0.0 == IPAddress("::1")! && $0.1 == exporter.port })
    }

    /// Two workers on SO_REUSEPORT sockets: every datagram arrives, each exporter's in its order.
    func testTwoThreadsDeliverEverythingInOrderPerExporter() throws {
        let collector = TestSocket(receiveBuffer: 32 << 20)
        let port = TestSocket.freePort()
        let rules = writeRules("rules:\n  - port: \(port)\n    to: 127.0.0.1:\(collector.port)\n")
        defer { unlink(rules) }
        var session = ForwardSession(rulesPath: rules, listen: ["127.0.0.1:\(port)"])
        session.threads = 2
        let forwarder = RunningForwarder(session)
        let exporters = (0 ..< 8).map { _ in TestSocket() }
        for i in 0 ..< 4000 {
            exporters[i % 8].send(Array("<14>\(i % 8) \(i / 8)".utf8), to: port)
            if i % 40 == 39 { usleep(1000) }
        }
        let got = collector.receiveAll()
        let summary = try forwarder.stop()
        XCTAssertEqual(got.count, 4000, summary)
        for e in 0 ..< 8 {
            let sequence = got.map { String(decoding: $0.2, as: UTF8.self).split(separator: " ") }.filter { $0[0] == "<14>\(e)" }.map { Int($0[1])! }
            XCTAssertEqual(sequence, Array(0 ..< 500), "exporter \(e)")
        }
    }
}
