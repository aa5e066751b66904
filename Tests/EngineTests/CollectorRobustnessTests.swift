import Engine
import FlowCollect
import FlowExport
import Outputs
import Foundation
import PacketCore
import TestSupport
import Synchronization
import XCTest

/// The collector's bounds and rules on datagrams built here: templates that come late, expire, or crowd
/// the cache; variable-length and zero-length fields; sFlow counters; and mutated datagrams.
final class CollectorRobustnessTests: XCTestCase {
    /// An IPFIX message: header, then sets given as (set ID, body).
    static func ipfix(domain: UInt32 = 1, sequence: UInt32 = 0, exportSeconds: UInt32 = 1_700_000_000, _ sets: [(UInt16, [UInt8])]) -> [UInt8] {
        var body: [UInt8] = []
        for (id, set) in sets { body += be16(id) + be16(UInt16(4 + set.count)) + set }
        return be16(10) + be16(UInt16(16 + body.count)) + be32(exportSeconds) + be32(sequence) + be32(domain) + body
    }

    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    static func be32(_ v: UInt32) -> [UInt8] { be16(UInt16(v >> 16)) + be16(UInt16(v & 0xFFFF)) }
    static func be64(_ v: UInt64) -> [UInt8] { be32(UInt32(v >> 32)) + be32(UInt32(v & 0xFFFF_FFFF)) }

    /// Template 300: source and destination IPv4, packets (4 bytes), bytes (8 bytes), an enterprise field
    /// (4 bytes, skipped) and a variable-length field.
    static let template: [UInt8] = be16(300) + be16(6) + be16(8) + be16(4) + be16(12) + be16(4) + be16(2) + be16(4) + be16(1) + be16(8)
        + be16(0x8000 | 77) + be16(4) + be32(29305) + be16(82) + be16(0xFFFF)

    static func record(_ i: UInt32, name: String = "eth0") -> [UInt8] {
        be32(0x0A00_0000 | i) + be32(0xC633_6401) + be32(i) + be64(UInt64(i) * 100) + [1, 2, 3, 4]
            + (name.utf8.count < 255 ? [UInt8(name.utf8.count)] : [255] + be16(UInt16(name.utf8.count))) + Array(name.utf8)
    }

    func collector(maxHeldBytes: Int = 4 << 20, templates: TemplateCache = TemplateCache()) -> (FlowCollector, () -> [[String: Any]]) {
        final class Lines: @unchecked Sendable { var all: [String] = [] }
        let lines = Lines()
        let c = FlowCollector(templates: templates, maxHeldBytes: maxHeldBytes) { lines.all.append(String(decoding: $0, as: UTF8.self)) }
        return (c, { lines.all.map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] } })
    }

    func collect(_ c: FlowCollector, _ d: [UInt8], from exporter: String = "192.0.2.1", port: UInt16 = 4000, at seconds: Int64 = 1_700_000_000) {
        d.withUnsafeBytes { c.collect($0, exporter: IPAddress(exporter)!, port: port, time: Timestamp(nanoseconds: seconds * 1_000_000_000)) }
    }

    func testDataBeforeItsTemplateIsHeldThenDecoded() {
        let (c, records) = collector()
        collect(c, Self.ipfix([(300, Self.record(1) + Self.record(2, name: ""))]))
        XCTAssertEqual(c.counters.records, 0)
        XCTAssertEqual(c.heldSetCount, 1)
        collect(c, Self.ipfix([(2, Self.template), (300, Self.record(3, name: String(repeating: "x", count: 300)))]))
        let r = records()
        XCTAssertEqual(r.count, 3)
        XCTAssertEqual(r.map { ($0["netflow"] as! [String: Any])["pkts"] as! Int }, [1, 2, 3], "held records first, in order")
        XCTAssertEqual(r.map { $0["src_ip"] as! String }, ["10.0.0.1", "10.0.0.2", "10.0.0.3"])
        XCTAssertEqual((r[2]["netflow"] as! [String: Any])["bytes"] as? Int, 300)
        XCTAssertEqual(c.counters.heldSetsDecoded, 1)
        XCTAssertEqual(c.counters.truncatedRecords, 0)
    }

    func testHeldDataIsBoundedAndCounted() {
        let (c, _) = collector(maxHeldBytes: 1000)
        for i in 0 ..< 100 { collect(c, Self.ipfix([(300, Self.record(UInt32(i)))])) }
        XCTAssertLessThanOrEqual(c.heldSetCount * Self.record(0).count, 1000)
        XCTAssertGreaterThan(c.heldSetCount, 0)
        XCTAssertEqual(UInt64(c.heldSetCount) + c.counters.setsWithoutTemplate, 100)
        c.finish()
        XCTAssertEqual(c.counters.setsWithoutTemplate, 100, "what was still held at the end is counted too")
        XCTAssertEqual(c.counters.records, 0, "nothing decoded with a guessed template")
    }

    func testTemplatesAreScopedExpiredAndBounded() {
        let (c, records) = collector(templates: TemplateCache(capacity: 10, lifetimeSeconds: 60))
        // 50 exporters announce template 300; the cache keeps the 10 most recent.
        for i in 0 ..< 50 { collect(c, Self.ipfix([(2, Self.template)]), from: "192.0.2.\(i + 1)", at: 1_700_000_000 + Int64(i)) }
        XCTAssertEqual(c.templates.count, 10)
        XCTAssertEqual(c.templates.counters.evicted, 40)
        // The newest exporter's data decodes; another port of the same address is another session.
        collect(c, Self.ipfix([(300, Self.record(9))]), from: "192.0.2.50", at: 1_700_000_050)
        XCTAssertEqual(records().count, 1)
        collect(c, Self.ipfix([(300, Self.record(9))]), from: "192.0.2.50", port: 4001, at: 1_700_000_050)
        XCTAssertEqual(records().count, 1)
        XCTAssertEqual(c.heldSetCount, 1)
        // After the lifetime without a refresh, the template is gone.
        collect(c, Self.ipfix([(300, Self.record(9))]), from: "192.0.2.50", at: 1_700_000_200)
        XCTAssertEqual(records().count, 1)
        XCTAssertEqual(c.templates.counters.expired, 1)
    }

    func testWithdrawalAndZeroLengthFields() {
        let (c, records) = collector()
        collect(c, Self.ipfix([(2, Self.template), (2, Self.be16(300) + Self.be16(0)), (300, Self.record(1))]))
        XCTAssertEqual(records().count, 0, "withdrawn before its data")
        XCTAssertEqual(c.templates.counters.withdrawn, 1)
        // A template of zero-length fields cannot advance through a set: decoded once, never looped on.
        let empty = Self.be16(301) + Self.be16(2) + Self.be16(8) + Self.be16(0) + Self.be16(12) + Self.be16(0)
        collect(c, Self.ipfix([(2, empty), (301, [UInt8](repeating: 0, count: 64))]))
        XCTAssertLessThanOrEqual(c.counters.records, 1)
    }

    /// An sFlow datagram from agent 192.0.2.9 with one generic-interface counter sample.
    static func sflowCounters() -> [UInt8] {
        var counters = Self.be32(7) + Self.be32(6) + Self.be64(10_000_000_000) + Self.be32(1) + Self.be32(3)
        counters += Self.be64(123_456_789_012) + (1 ... 6).flatMap { Self.be32(UInt32($0)) }
        counters += Self.be64(987_654_321) + (11 ... 15).flatMap { Self.be32(UInt32($0)) } + Self.be32(0)
        let record = Self.be32(1) + Self.be32(88) + counters
        let sample = Self.be32(9) + Self.be32(7) + Self.be32(1) + record
        let datagram = Self.be32(5) + Self.be32(1) + [192, 0, 2, 9] + Self.be32(0) + Self.be32(42) + Self.be32(1000) + Self.be32(1)
            + Self.be32(2) + Self.be32(UInt32(sample.count)) + sample
        return datagram
    }

    func testSFlowCounterSampleIsDecoded() {
        let (c, records) = collector()
        collect(c, Self.sflowCounters())
        let r = records()
        XCTAssertEqual(r.count, 1)
        XCTAssertEqual(r.first?["sample_type"] as? String, "counters")
        XCTAssertEqual(r.first?["agent"] as? String, "192.0.2.9")
        let s = r.first?["sflow"] as? [String: Any] ?? [:]
        XCTAssertEqual(s["if_index"] as? Int, 7)
        XCTAssertEqual(s["if_speed"] as? Int, 10_000_000_000)
        XCTAssertEqual(s["if_in_octets"] as? Int, 123_456_789_012)
        XCTAssertEqual(s["if_in_errors"] as? Int, 5)
        XCTAssertEqual(s["if_out_octets"] as? Int, 987_654_321)
        XCTAssertEqual(s["if_out_errors"] as? Int, 15)
    }

    /// Every byte of valid NetFlow v5, v9, IPFIX and sFlow datagrams mutated, lengths cut: no crash, and
    /// every datagram is counted as decoded or not.
    func testMutatedDatagramsNeverCrash() {
        var builder9 = ExportMessageBuilder(destination: ExportDestination(format: .netflow9, host: "h", port: 1))
        var builder5 = ExportMessageBuilder(destination: ExportDestination(format: .netflow5, host: "h", port: 1))
        var seeds: [[UInt8]] = [Self.ipfix([(2, Self.template), (300, Self.record(1) + Self.record(2))]), Self.sflowCounters()]
        for f in ExportMessageBuilderTests.flows(40) {
            builder9.add(f, now: f.end) { seeds.append(Array($0)) }
            builder5.add(f, now: f.end) { seeds.append(Array($0)) }
        }
        builder9.flush(now: .zero) { seeds.append(Array($0)) }
        builder5.flush(now: .zero) { seeds.append(Array($0)) }
        let (c, _) = collector(maxHeldBytes: 64 << 10, templates: TemplateCache(capacity: 64))
        var random = SeededRandom(seed: 5)
        var sent: UInt64 = 0
        for round in 0 ..< 10_000 {
            var d = seeds[round % seeds.count]
            for _ in 0 ..< 1 + Int(random.next() % 4) { d[Int(random.next() % UInt64(d.count))] = UInt8(truncatingIfNeeded: random.next()) }
            if random.next() % 4 == 0 { d = Array(d.prefix(Int(random.next() % UInt64(d.count + 1)))) }
            collect(c, d, port: UInt16(truncatingIfNeeded: random.next() % 8))
            sent += 1
        }
        let n = c.counters
        XCTAssertEqual(n.datagrams, sent)
        XCTAssertEqual(n.netflow5 + n.netflow9 + n.ipfix + n.sflow + n.notFlowExport, sent)
        XCTAssertLessThanOrEqual(c.templates.count, 64)
        print("mutated datagrams: \(sent); v5 \(n.netflow5), v9 \(n.netflow9), IPFIX \(n.ipfix), sFlow \(n.sflow), other \(n.notFlowExport); malformed \(n.malformed), records \(n.records)")
    }
}

/// `collect --listen` accounts for every datagram sent to it: received, or dropped by the kernel for a
/// full receive buffer (SO_RXQ_OVFL), with a buffer made small enough that a burst overflows it.
final class CollectListenTests: XCTestCase {
    func testEveryDatagramIsReceivedOrCountedAsDropped() throws {
        let port = FlowExportTests.freeUDPPort()
        var builder = ExportMessageBuilder(destination: ExportDestination(format: .netflow5, host: "127.0.0.1", port: port))
        var datagram: [UInt8] = []
        let flow = ExportMessageBuilderTests.flows(2, ipv6Every: 2)[1] // an IPv4 flow
        builder.add(flow, now: flow.end) { _ in }
        builder.flush(now: flow.end) { datagram = Array($0) }
        XCTAssertEqual(datagram.count, 24 + 48)

        let out = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-listen-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let stop = Atomic<Bool>(false)
        let summary = Mutex<String>("")
        var configured = CollectSession()
        configured.receiveBufferBytes = 4096
        // Used by the receiving thread only, until it finishes.
        nonisolated(unsafe) let session = configured
        nonisolated(unsafe) let writer = try RecordWriter(path: out)
        let receiver = Thread {
            let text = (try? session.run(listen: ["127.0.0.1:\(port)"], output: writer, stop: { stop.load(ordering: .relaxed) })) ?? "failed"
            summary.withLock { $0 = text }
        }
        receiver.start()
        usleep(300_000)
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var to = sockaddr_in()
        to.sin_family = sa_family_t(AF_INET)
        to.sin_port = port.bigEndian
        to.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let sent = 20_000
        for _ in 0 ..< sent {
            _ = datagram.withUnsafeBytes { b in
                withUnsafePointer(to: &to) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            }
        }
        close(fd)
        usleep(500_000)
        stop.store(true, ordering: .relaxed)
        while !receiver.isFinished { usleep(10_000) }
        try writer.finish()
        let text = summary.withLock { $0 }
        func number(after label: String) -> Int? {
            guard let r = text.range(of: label + " [0-9]+", options: .regularExpression) else { return nil }
            return Int(text[r].split(separator: " ").last!)
        }
        let received = try XCTUnwrap(number(after: "datagrams received"), text)
        let dropped = try XCTUnwrap(number(after: "dropped by the kernel \\(socket receive buffer full\\)"), text)
        let records = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").count
        print("listen: sent \(sent), received \(received), dropped by the kernel \(dropped), records \(records)")
        XCTAssertEqual(received + dropped, sent, text)
        XCTAssertGreaterThan(dropped, 0, "a 4 KiB buffer must overflow under a 20,000-datagram burst")
        XCTAssertEqual(records, received)
    }
}
