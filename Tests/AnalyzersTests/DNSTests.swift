import Analyzers
import Foundation
import TestSupport
import XCTest

/// Collects emitted lines.
private final class Lines {
    var all: [String] = []
    func objects() throws -> [[String: Any]] {
        try all.map { line in
            XCTAssertTrue(line.hasSuffix("}\n"))
            return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }
}

/// Builds DNS messages by hand (RFC 1035 §4.1).
private struct DNSBuilder {
    var bytes: [UInt8] = []

    init(id: UInt16, flags: UInt16, counts: [UInt16]) {
        u16(id); u16(flags)
        for c in counts { u16(c) }
    }

    mutating func u16(_ v: UInt16) { bytes += [UInt8(v >> 8), UInt8(v & 0xFF)] }
    mutating func u32(_ v: UInt32) { u16(UInt16(v >> 16)); u16(UInt16(v & 0xFFFF)) }

    /// Uncompressed name; returns its offset.
    @discardableResult
    mutating func name(_ text: String) -> Int {
        let at = bytes.count
        for label in text.split(separator: ".") {
            bytes.append(UInt8(label.utf8.count)); bytes += Array(label.utf8)
        }
        bytes.append(0)
        return at
    }

    /// Labels followed by a pointer to `target`.
    mutating func name(_ labels: String, pointer target: Int) {
        for label in labels.split(separator: ".") {
            bytes.append(UInt8(label.utf8.count)); bytes += Array(label.utf8)
        }
        pointer(target)
    }

    mutating func pointer(_ target: Int) { u16(0xC000 | UInt16(target)) }

    mutating func question(type: UInt16, klass: UInt16 = 1) { u16(type); u16(klass) }

    /// TYPE CLASS TTL then RDATA built by `rdata`, with RDLENGTH patched in.
    mutating func rr(type: UInt16, ttl: UInt32 = 300, rdata: (inout DNSBuilder) -> Void) {
        u16(type); u16(1); u32(ttl)
        let lengthAt = bytes.count
        u16(0)
        let start = bytes.count
        rdata(&self)
        let length = bytes.count - start
        bytes[lengthAt] = UInt8(length >> 8); bytes[lengthAt + 1] = UInt8(length & 0xFF)
    }
}

private let client = (ip: "10.0.0.1", port: UInt16(53000))
private let server = (ip: "10.0.0.53", port: UInt16(53))

final class DNSTests: XCTestCase {
    /// A response with every supported type, compressed names throughout.
    ///   id 0xbeef, flags 0x8580 (qr aa rd ra), 1 question, 9 answers, 1 authority, 1 additional
    private func fullResponse() -> [UInt8] {
        var m = DNSBuilder(id: 0xBEEF, flags: 0x8580, counts: [1, 9, 1, 1])
        let qname = m.name("www.example.com") // offset 12; "example.com" at 16
        m.question(type: 1)
        m.pointer(qname); m.rr(type: 1) { $0.bytes += [192, 0, 2, 1] }
        m.pointer(qname); m.rr(type: 28) { $0.bytes += [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1] }
        m.pointer(qname); m.rr(type: 5) { $0.name("cdn", pointer: 16) }
        m.pointer(16); m.rr(type: 2) { $0.name("ns1", pointer: 16) }
        m.name("1.2.0.192.in-addr.arpa"); m.rr(type: 12) { $0.pointer(qname) }
        m.pointer(16); m.rr(type: 15) { $0.u16(10); $0.name("mail", pointer: 16) }
        m.pointer(16); m.rr(type: 16) { $0.bytes += [5] + Array("hello".utf8) + [0] + [3] + Array("a.b".utf8) }
        m.pointer(16); m.rr(type: 99, ttl: 7) { $0.bytes += [0xDE, 0xAD] }
        m.pointer(16); m.rr(type: 16) { _ in } // empty TXT: no strings
        // authority: SOA
        m.pointer(16); m.rr(type: 6, ttl: 3600) {
            $0.name("ns1", pointer: 16)
            $0.bytes += [11] + Array("host.master".utf8); $0.pointer(16)
            $0.u32(2024010101); $0.u32(7200); $0.u32(900); $0.u32(1209600); $0.u32(86400)
        }
        // additional: root-named OPT (RFC 6891), shown as "rr"
        m.bytes.append(0); m.u16(41); m.u16(1232); m.u32(0); m.u16(0)
        return m.bytes
    }

    func testUDPResponseWithEveryType() throws {
        let lines = Lines()
        let dns = DNSAnalyzer { lines.all.append($0) }
        let message = fullResponse()
        message.withUnsafeBytes { dns.datagram(source: server, destination: client, vlan: 12, bytes: $0, time: 1.5) }
        XCTAssertEqual(dns.counters.messages, 1)
        XCTAssertEqual(dns.counters.errors, 0)
        let r = try XCTUnwrap(lines.objects().first)
        XCTAssertEqual(r["type"] as? String, "dns")
        XCTAssertEqual(r["time"] as? Double, 1.5)
        XCTAssertEqual(r["vlan"] as? [Int], [12])
        XCTAssertEqual((r["src"] as? [String: Any])?["ip"] as? String, "10.0.0.53")
        XCTAssertEqual((r["dst"] as? [String: Any])?["port"] as? Int, 53000)
        XCTAssertEqual(r["id"] as? Int, 0xBEEF)
        XCTAssertEqual(r["qr"] as? Int, 1)
        XCTAssertEqual(r["op"] as? Int, 0)
        XCTAssertEqual(r["aa"] as? Int, 1)
        XCTAssertEqual(r["tc"] as? Int, 0)
        XCTAssertEqual(r["rd"] as? Int, 1)
        XCTAssertEqual(r["ra"] as? Int, 1)
        XCTAssertEqual(r["rc"] as? Int, 0)
        XCTAssertEqual(r["answer_count"] as? Int, 9)
        let query = try XCTUnwrap(r["query"] as? [[String: Any]])
        XCTAssertEqual(query.count, 1)
        XCTAssertEqual(query[0]["name"] as? String, "www.example.com")
        XCTAssertEqual(query[0]["type"] as? Int, 1)
        XCTAssertEqual(query[0]["type_name"] as? String, "A")
        XCTAssertEqual(query[0]["class"] as? Int, 1)

        let answer = try XCTUnwrap(r["answer"] as? [[String: Any]])
        XCTAssertEqual(answer.count, 9)
        XCTAssertEqual(answer[0]["a"] as? String, "192.0.2.1")
        XCTAssertEqual(answer[0]["ttl"] as? Int, 300)
        XCTAssertEqual(answer[0]["name"] as? String, "www.example.com")
        XCTAssertEqual(answer[1]["aaaa"] as? String, "2001:db8::1")
        XCTAssertEqual(answer[1]["type_name"] as? String, "AAAA")
        XCTAssertEqual(answer[2]["cname"] as? String, "cdn.example.com")
        XCTAssertEqual(answer[3]["name"] as? String, "example.com")
        XCTAssertEqual(answer[3]["ns"] as? String, "ns1.example.com")
        XCTAssertEqual(answer[4]["name"] as? String, "1.2.0.192.in-addr.arpa")
        XCTAssertEqual(answer[4]["ptr"] as? String, "www.example.com")
        XCTAssertEqual(answer[5]["preference"] as? Int, 10)
        XCTAssertEqual(answer[5]["exchange"] as? String, "mail.example.com")
        XCTAssertEqual(answer[5]["mx"] as? String, "mail.example.com")
        XCTAssertEqual(answer[6]["txt"] as? [String], ["hello", "", "a.b"])
        XCTAssertEqual(answer[7]["type"] as? Int, 99)
        XCTAssertEqual(answer[7]["type_name"] as? String, "TYPE99")
        XCTAssertEqual(answer[7]["rr"] as? String, "dead")
        XCTAssertEqual(answer[7]["ttl"] as? Int, 7)
        XCTAssertEqual(answer[8]["txt"] as? [String], [])

        let soa = try XCTUnwrap((r["authority"] as? [[String: Any]])?.first)
        XCTAssertEqual(soa["mname"] as? String, "ns1.example.com")
        // "host\.master" is one label holding a dot, escaped per RFC 1035 §5.1.
        XCTAssertEqual(soa["rname"] as? String, "host\\.master.example.com")
        XCTAssertEqual(soa["serial"] as? Int, 2024010101)
        XCTAssertEqual(soa["refresh"] as? Int, 7200)
        XCTAssertEqual(soa["retry"] as? Int, 900)
        XCTAssertEqual(soa["expire"] as? Int, 1209600)
        XCTAssertEqual(soa["minimum"] as? Int, 86400)

        let opt = try XCTUnwrap((r["additional"] as? [[String: Any]])?.first)
        XCTAssertEqual(opt["name"] as? String, ".")
        XCTAssertEqual(opt["type_name"] as? String, "OPT")
        XCTAssertEqual(opt["class"] as? Int, 1232)
        XCTAssertEqual(opt["rr"] as? String, "")
    }

    func testQueryFlagsAndNoVLAN() throws {
        var m = DNSBuilder(id: 7, flags: 0x0130, counts: [1, 0, 0, 0]) // rd, ad, cd
        m.name("example.org"); m.question(type: 28)
        let lines = Lines()
        let dns = DNSAnalyzer { lines.all.append($0) }
        m.bytes.withUnsafeBytes { dns.datagram(source: client, destination: server, vlan: nil, bytes: $0, time: 0) }
        let r = try XCTUnwrap(lines.objects().first)
        XCTAssertNil(r["vlan"])
        XCTAssertEqual(r["qr"] as? Int, 0)
        XCTAssertEqual(r["rd"] as? Int, 1)
        XCTAssertEqual(r["ad"] as? Int, 1)
        XCTAssertEqual(r["cd"] as? Int, 1)
        XCTAssertEqual((r["query"] as? [[String: Any]])?.first?["type_name"] as? String, "AAAA")
        XCTAssertEqual((r["answer"] as? [Any])?.count, 0)
        // Escapes: a label byte 0x00 and a space come out as \000 and \032.
        var odd = DNSBuilder(id: 1, flags: 0, counts: [1, 0, 0, 0])
        odd.bytes += [3, 0x61, 0x00, 0x20, 0]; odd.question(type: 1)
        odd.bytes.withUnsafeBytes { dns.datagram(source: client, destination: server, vlan: nil, bytes: $0, time: 0) }
        XCTAssertEqual((try lines.objects()[1]["query"] as? [[String: Any]])?.first?["name"] as? String, "a\\000\\032")
    }

    private func framed(_ message: [UInt8]) -> [UInt8] {
        [UInt8(message.count >> 8), UInt8(message.count & 0xFF)] + message
    }

    func testTCPWholeSplitAndByteByByte() throws {
        var q = DNSBuilder(id: 1, flags: 0x0100, counts: [1, 0, 0, 0])
        q.name("www.example.com"); q.question(type: 1)
        let response = fullResponse()
        // Two queries in one segment from the client, then the response.
        let clientStream = framed(q.bytes) + framed(q.bytes)
        let serverStream = framed(response)
        for chunk in [Int.max, 1, 2, 3, 7, 13] {
            let lines = Lines()
            let dns = DNSAnalyzer { lines.all.append($0) }
            dns.open(flow: 9, client: client, server: server, vlan: nil, time: 0)
            func feed(_ stream: [UInt8], fromClient: Bool) {
                var at = 0
                while at < stream.count {
                    let end = min(stream.count, at &+ min(chunk, stream.count))
                    stream[at ..< end].withUnsafeBytes { dns.data(flow: 9, fromClient: fromClient, bytes: $0, time: 2) }
                    at = end
                }
            }
            feed(clientStream, fromClient: true)
            feed(serverStream, fromClient: false)
            dns.close(flow: 9)
            XCTAssertEqual(dns.counters.messages, 3, "chunk \(chunk)")
            XCTAssertEqual(dns.counters.errors, 0)
            let records = try lines.objects()
            XCTAssertEqual(records.map { $0["id"] as? Int }, [1, 1, 0xBEEF])
            XCTAssertEqual((records[0]["src"] as? [String: Any])?["port"] as? Int, 53000)
            XCTAssertEqual((records[2]["src"] as? [String: Any])?["port"] as? Int, 53)
            XCTAssertEqual((records[2]["answer"] as? [Any])?.count, 9)
        }
    }

    func testTCPInterleavedDirectionsAndBadLength() throws {
        var q = DNSBuilder(id: 5, flags: 0x0100, counts: [1, 0, 0, 0])
        q.name("a.example"); q.question(type: 1)
        let lines = Lines()
        let dns = DNSAnalyzer { lines.all.append($0) }
        dns.open(flow: 1, client: client, server: server, vlan: 3, time: 0)
        // A 3-byte "message" (below the 12-byte header) then a good one: framing survives.
        let c = [0, 3, 1, 2, 3] + framed(q.bytes)
        let s = framed(q.bytes)
        for i in 0 ..< max(c.count, s.count) {
            if i < c.count { [c[i]].withUnsafeBytes { dns.data(flow: 1, fromClient: true, bytes: $0, time: 0) } }
            if i < s.count { [s[i]].withUnsafeBytes { dns.data(flow: 1, fromClient: false, bytes: $0, time: 0) } }
        }
        XCTAssertEqual(dns.counters.messages, 2)
        XCTAssertEqual(dns.counters[.badTCPLength], 1)
        let records = try lines.objects()
        XCTAssertEqual(records.compactMap { $0["error"] as? String }, ["bad_tcp_length"])
        // Data for unknown flows is ignored.
        ([0, 1] as [UInt8]).withUnsafeBytes { dns.data(flow: 77, fromClient: true, bytes: $0, time: 0) }
        XCTAssertEqual(lines.all.count, 3)
    }

    private func decodeError(_ bytes: [UInt8]) -> String? {
        let lines = Lines()
        let dns = DNSAnalyzer { lines.all.append($0) }
        bytes.withUnsafeBytes { dns.datagram(source: client, destination: server, vlan: nil, bytes: $0, time: 0) }
        XCTAssertEqual(lines.all.count, 1)
        let record = try? lines.objects().first
        return record?["error"] as? String
    }

    func testUpdateDeletesWithoutRdataAndPartialErrorRecords() throws {
        // RFC 2136 UPDATE: zone SOA, a "name not in use" prerequisite (class NONE) and an RRset delete (class ANY), no RDATA.
        var update = DNSBuilder(id: 7, flags: 0x2800, counts: [1, 1, 1, 0])
        update.name("example.org"); update.question(type: 6)
        update.name("host.example.org"); update.u16(5); update.u16(254); update.u32(0); update.u16(0)
        update.name("host.example.org"); update.u16(1); update.u16(255); update.u32(0); update.u16(0)
        XCTAssertNil(decodeError(update.bytes))
        // The same with class IN is an A record with no address: malformed.
        var bad = update.bytes
        bad[bad.count - 8] = 0; bad[bad.count - 7] = 1
        XCTAssertEqual(decodeError(bad), "bad_rdata_length")

        // A bad additional record: the error record keeps the header, question and answers decoded before it.
        var m = DNSBuilder(id: 9, flags: 0x8180, counts: [1, 1, 0, 1])
        let q = m.name("a.example")
        m.question(type: 1)
        m.pointer(q); m.rr(type: 1) { $0.bytes += [192, 0, 2, 7] }
        m.pointer(q); m.rr(type: 1) { $0.bytes += [1, 2, 3] }
        let lines = Lines()
        let dns = DNSAnalyzer { lines.all.append($0) }
        m.bytes.withUnsafeBytes { dns.datagram(source: server, destination: client, vlan: nil, bytes: $0, time: 1) }
        let record = try XCTUnwrap(lines.objects().first)
        XCTAssertEqual(record["error"] as? String, "bad_rdata_length")
        XCTAssertEqual(record["id"] as? Int, 9)
        XCTAssertEqual(record["additional_count"] as? Int, 1)
        XCTAssertEqual((record["query"] as? [[String: Any]])?.first?["name"] as? String, "a.example")
        XCTAssertEqual((record["answer"] as? [[String: Any]])?.first?["a"] as? String, "192.0.2.7")
        XCTAssertEqual((record["additional"] as? [Any])?.count, 0)
        XCTAssertEqual(dns.counters.errors, 1)
        XCTAssertEqual(dns.counters[.badRdataLength], 1)
        XCTAssertEqual(dns.counters.messages, 0)
    }

    func testTCPSplitAtEveryBoundary() throws {
        var q = DNSBuilder(id: 1, flags: 0x0100, counts: [1, 0, 0, 0])
        q.name("www.example.com"); q.question(type: 1)
        let stream = framed(q.bytes) + framed(fullResponse())
        func records(_ pieces: [ArraySlice<UInt8>]) -> [String] {
            let lines = Lines()
            let dns = DNSAnalyzer { lines.all.append($0) }
            dns.open(flow: 3, client: client, server: server, vlan: nil, time: 0)
            for piece in pieces { piece.withUnsafeBytes { dns.data(flow: 3, fromClient: false, bytes: $0, time: 1) } }
            dns.close(flow: 3)
            return lines.all
        }
        let whole = records([stream[...]])
        XCTAssertEqual(whole.count, 2)
        for at in 1 ..< stream.count {
            XCTAssertEqual(records([stream[..<at], stream[at...]]), whole, "split at \(at)")
        }
    }

    func testCompressionLoops() {
        // Pointer to itself: question name at 12 is C0 0C.
        var selfLoop = DNSBuilder(id: 1, flags: 0, counts: [1, 0, 0, 0])
        selfLoop.pointer(12); selfLoop.question(type: 1)
        XCTAssertEqual(decodeError(selfLoop.bytes), "compression_loop")
        // A label, then a pointer back to that label: 01 'a' C0 0C.
        var labelLoop = DNSBuilder(id: 1, flags: 0, counts: [1, 0, 0, 0])
        labelLoop.name("a", pointer: 12); labelLoop.question(type: 1)
        XCTAssertEqual(decodeError(labelLoop.bytes), "compression_loop")
        // Mutual: 12 → 14 → 12 (the forward pointer is refused).
        var mutual = DNSBuilder(id: 1, flags: 0, counts: [1, 0, 0, 0])
        mutual.pointer(14); mutual.pointer(12); mutual.question(type: 1)
        XCTAssertEqual(decodeError(mutual.bytes), "compression_loop")
        // Mutual through a record: the answer name points at 14, whose labels point back to 12, which points to 14.
        var chain = DNSBuilder(id: 1, flags: 0, counts: [0, 1, 0, 0])
        chain.bytes += [1, 0x62, 0xC0, 16] // at 12: "b" then → 16 (forward)
        chain.bytes += [1, 0x63, 0xC0, 12] // at 16: "c" then → 12
        chain.pointer(16); chain.rr(type: 1) { $0.bytes += [1, 2, 3, 4] }
        XCTAssertEqual(decodeError(chain.bytes), "compression_loop")
        // A long legal chain of backward pointers still decodes.
        // 41 questions: "com", then each "x" + a pointer to the one before.
        var ok = DNSBuilder(id: 1, flags: 0, counts: [41, 1, 0, 0])
        var previous = ok.name("com")
        ok.question(type: 1)
        for _ in 0 ..< 40 {
            let here = ok.bytes.count
            ok.name("x", pointer: previous)
            ok.question(type: 1)
            previous = here
        }
        ok.pointer(previous); ok.rr(type: 1) { $0.bytes += [1, 2, 3, 4] }
        XCTAssertNil(decodeError(ok.bytes))
    }

    func testBadLengthsAndTruncation() {
        XCTAssertEqual(decodeError([0, 1, 0]), "truncated")
        // Counts promise more than the message holds.
        var short = DNSBuilder(id: 1, flags: 0, counts: [2, 0, 0, 0])
        short.name("a"); short.question(type: 1)
        XCTAssertEqual(decodeError(short.bytes), "truncated")
        // A label running past the end.
        var label = DNSBuilder(id: 1, flags: 0, counts: [1, 0, 0, 0])
        label.bytes += [40, 0x61]
        XCTAssertEqual(decodeError(label.bytes), "truncated")
        // Reserved label type 01xxxxxx.
        var reserved = DNSBuilder(id: 1, flags: 0, counts: [1, 0, 0, 0])
        reserved.bytes += [0x41, 0]; reserved.question(type: 1)
        XCTAssertEqual(decodeError(reserved.bytes), "bad_label_type")
        // Five 63-byte labels: 320 octets > 255.
        var long = DNSBuilder(id: 1, flags: 0, counts: [1, 0, 0, 0])
        for _ in 0 ..< 5 { long.bytes += [63] + [UInt8](repeating: 0x61, count: 63) }
        long.bytes.append(0); long.question(type: 1)
        XCTAssertEqual(decodeError(long.bytes), "name_too_long")
        // An A record with 5 bytes of RDATA.
        var a5 = DNSBuilder(id: 1, flags: 0x8000, counts: [0, 1, 0, 0])
        a5.name("a"); a5.rr(type: 1) { $0.bytes += [1, 2, 3, 4, 5] }
        XCTAssertEqual(decodeError(a5.bytes), "bad_rdata_length")
        // RDLENGTH past the end of the message.
        var past = DNSBuilder(id: 1, flags: 0x8000, counts: [0, 1, 0, 0])
        past.name("a"); past.rr(type: 1) { $0.bytes += [1, 2, 3, 4] }
        past.bytes.removeLast()
        XCTAssertEqual(decodeError(past.bytes), "truncated")
        // A CNAME whose name runs past RDLENGTH.
        var cname = DNSBuilder(id: 1, flags: 0x8000, counts: [0, 1, 0, 0])
        cname.name("a"); cname.rr(type: 5) { $0.bytes += [1, 0x62, 0] }
        cname.bytes[cname.bytes.count - 4] = 2 // RDLENGTH 3 → 2
        XCTAssertEqual(decodeError(cname.bytes), "bad_rdata_length")
        // TXT string longer than its RDATA; SOA without the 20 bytes of numbers.
        var txt = DNSBuilder(id: 1, flags: 0x8000, counts: [0, 1, 0, 0])
        txt.name("a"); txt.rr(type: 16) { $0.bytes += [9, 0x61] }
        XCTAssertEqual(decodeError(txt.bytes), "bad_rdata_length")
        var soa = DNSBuilder(id: 1, flags: 0x8000, counts: [0, 1, 0, 0])
        soa.name("a"); soa.rr(type: 6) { $0.bytes += [0, 0, 1, 2, 3] }
        XCTAssertEqual(decodeError(soa.bytes), "bad_rdata_length")
    }

    func testTruncationSweepAndFuzz() throws {
        let lines = Lines()
        let dns = DNSAnalyzer { lines.all.append($0) }
        let message = fullResponse()
        // Every proper prefix fails to decode; none traps.
        for n in 0 ..< message.count {
            message[0 ..< n].withUnsafeBytes { dns.datagram(source: client, destination: server, vlan: nil, bytes: $0, time: 0) }
        }
        XCTAssertEqual(dns.counters.errors, message.count)
        XCTAssertEqual(dns.counters.messages, 0)

        // Seeded mutations of a valid message and pure noise, over UDP and TCP.
        var rng = SeededRandom(seed: 0x5EED)
        dns.open(flow: 1, client: client, server: server, vlan: nil, time: 0)
        var tcpBytes = 0
        for round in 0 ..< 4000 {
            var bytes: [UInt8]
            if round % 4 == 0 {
                bytes = (0 ..< Int(rng.next() % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                bytes = message
                for _ in 0 ..< 1 + Int(rng.next() % 6) {
                    bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
                if rng.next() % 3 == 0 { bytes.removeLast(Int(rng.next() % UInt64(bytes.count))) }
            }
            bytes.withUnsafeBytes { dns.datagram(source: client, destination: server, vlan: nil, bytes: $0, time: 0) }
            let cut = bytes.isEmpty ? 0 : Int(rng.next() % UInt64(bytes.count))
            bytes[..<cut].withUnsafeBytes { dns.data(flow: 1, fromClient: true, bytes: $0, time: 0) }
            bytes[cut...].withUnsafeBytes { dns.data(flow: 1, fromClient: true, bytes: $0, time: 0) }
            tcpBytes += bytes.count
        }
        dns.close(flow: 1)
        XCTAssertGreaterThan(dns.counters.errors, 0)
        // Every line is one well-formed JSON object; check a sample to keep the test fast.
        for line in lines.all.enumerated() where line.offset % 7 == 0 {
            XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(line.element.utf8)) as? [String: Any])
        }
        XCTAssertEqual(dns.counters.messages + dns.counters.errors, lines.all.count)
        XCTAssertGreaterThan(tcpBytes, 0)
    }

    func testFlowLimit() {
        let dns = DNSAnalyzer(maxFlows: 2, lines: { _ in })
        for id in 0 ..< 4 { dns.open(flow: UInt64(id), client: client, server: server, vlan: nil, time: 0) }
        XCTAssertEqual(dns.counters.droppedFlows, 2)
        dns.close(flow: 0)
        dns.open(flow: 9, client: client, server: server, vlan: nil, time: 0)
        XCTAssertEqual(dns.counters.droppedFlows, 2)
    }
}
