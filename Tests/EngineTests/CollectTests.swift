import Capture
import Engine
import FlowCollect
import FlowExport
import Foundation
import Outputs
import PacketCore
import TestSupport
import TrafficGen
import Wire
import XCTest

/// `flowtap collect` against real exporters and real decoders of the same datagrams: softflowd's NetFlow v5,
/// v9 and IPFIX read back by nfdump (through nfcapd), pmacct's sFlow probe read by tshark. Each record is
/// matched on its own flow.
final class CollectTests: XCTestCase {
    struct Record: Hashable, Comparable {
        var key: String
        var packets: Int
        var bytes: Int
        var times: String
        static func < (a: Record, b: Record) -> Bool { (a.key, a.packets, a.bytes, a.times) < (b.key, b.packets, b.bytes, b.times) }
    }

    /// Datagrams an exporter process sends to a socket of ours until it stops sending for `quiet` seconds.
    static func receive(quiet: Int = 3, _ start: (UInt16) throws -> Process) throws -> [[UInt8]] {
        var process: Process?
        let datagrams = try FlowExportTests.receive(quiet: quiet) { process = try start($0) }
        if let process {
            if process.isRunning { process.interrupt() }
            process.waitUntilExit()
        }
        return datagrams
    }

    static func process(_ path: String, _ arguments: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        return p
    }

    /// A capture of `datagrams`, each from `source`:40000 (or the source given per datagram) to 127.0.0.1:2055.
    static func capture(_ datagrams: [(source: String, bytes: [UInt8])], path: String) throws {
        let writer = try PcapWriter(path: path, linkType: .ethernet)
        for (i, d) in datagrams.enumerated() {
            let frame = PacketBuilder.frame(network: .ipv4(.init(source: IPAddress(d.source)!, destination: IPAddress("127.0.0.1")!)),
                                            transport: .udp(sourcePort: 40000, destinationPort: 2055), payload: d.bytes)
            try writer.write(timestamp: Timestamp(nanoseconds: 1_700_000_000_000_000_000 + Int64(i) * 1_000_000), bytes: frame)
        }
        try writer.flush()
    }

    /// What `flowtap collect -r` writes for `path`.
    static func collect(_ path: String) throws -> (records: [[String: Any]], summary: String) {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-collect-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let writer = try RecordWriter(path: out)
        let summary = try CollectSession().run(files: [path], output: writer)
        try writer.finish()
        let records = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        return (records, summary)
    }

    /// Milliseconds since the epoch of an RFC 3339 time FlowTap wrote.
    static func milliseconds(_ text: String) -> Int64 {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let trimmed = String(text.prefix(23)) + "+00:00"
        return Int64((f.date(from: trimmed)?.timeIntervalSince1970 ?? -1) * 1000 + 0.5)
    }

    /// Sends `datagrams` to nfcapd (each from its source address) and returns what nfdump reads back:
    /// addresses, ports, protocol, packets, bytes, first and last time in milliseconds.
    static func nfdump(_ datagrams: [(source: String, bytes: [UInt8])], unorderedTimes: Bool) throws -> [Record] {
        guard let nfcapd = Corpus.tool("nfcapd"), let nfdump = Corpus.tool("nfdump") else {
            throw OracleMissing.error("nfcapd and nfdump (Debian nfdump) are needed")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-collect-nfcapd-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (collector, port) = try FlowExportTests.startNfcapd(nfcapd, directory: directory)
        var senders: [String: Int32] = [:]
        for d in datagrams {
            if senders[d.source] == nil {
                let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
                var a = sockaddr_in()
                a.sin_family = sa_family_t(AF_INET)
                a.sin_addr.s_addr = IPAddress(d.source)!.ipv4Value.bigEndian
                _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                senders[d.source] = fd
            }
            var to = sockaddr_in()
            to.sin_family = sa_family_t(AF_INET)
            to.sin_port = port.bigEndian
            to.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            _ = d.bytes.withUnsafeBytes { b in
                withUnsafePointer(to: &to) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(senders[d.source]!, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            }
            usleep(300) // paced: nfcapd reads one datagram at a time
        }
        for fd in senders.values { close(fd) }
        usleep(400_000)
        collector.terminate()
        collector.waitUntilExit()
        guard let file = try FileManager.default.contentsOfDirectory(atPath: directory.path).first(where: { $0.hasPrefix("nfcapd.") }) else {
            XCTFail("nfcapd wrote no file")
            return []
        }
        var environment = ProcessInfo.processInfo.environment
        environment["TZ"] = "UTC"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: nfdump)
        p.arguments = ["-r", directory.appendingPathComponent(file).path, "-q", "-N", "-6", "-o", "fmt:%sa,%da,%sp,%dp,%pr,%pkt,%byt,%ts,%te"]
        p.environment = environment
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS"
        formatter.timeZone = TimeZone(identifier: "UTC")
        var records: [Record] = []
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count == 9, let packets = Int(f[5]), let bytes = Int(f[6]),
                  let ts = formatter.date(from: f[7]), let te = formatter.date(from: f[8]) else { continue }
            let dport = f[3].contains(".") ? "0" : f[3]
            var times = [Int64((ts.timeIntervalSince1970 * 1000).rounded()), Int64((te.timeIntervalSince1970 * 1000).rounded())]
            if unorderedTimes { times.sort() }
            records.append(Record(key: "\(f[0]),\(f[1]),\(f[2]),\(dport),\(f[4])", packets: packets, bytes: bytes, times: "\(times[0])-\(times[1])"))
        }
        return records
    }

    static func flowRecords(_ records: [[String: Any]], unorderedTimes: Bool) -> [Record] {
        records.filter { $0["type"] as? String == "netflow" }.map { r in
            let n = r["netflow"] as! [String: Any]
            let proto = ["TCP": 6, "UDP": 17, "ICMP": 1, "IPv6-ICMP": 58][r["proto"] as? String ?? ""] ?? Int(r["proto"] as? String ?? "") ?? -1
            // Times to the millisecond, as nfdump stores them (v5 exporters send nanoseconds in the header).
            var times = [milliseconds(n["start"] as? String ?? ""), milliseconds(n["end"] as? String ?? "")]
            if unorderedTimes { times.sort() }
            return Record(key: "\(r["src_ip"]!),\(r["dest_ip"]!),\(r["src_port"] as? Int ?? 0),\(r["dest_port"] as? Int ?? 0),\(proto)",
                          packets: n["pkts"] as? Int ?? -1, bytes: n["bytes"] as? Int ?? -1, times: "\(times[0])-\(times[1])")
        }
    }

    /// softflowd exports NetFlow v5, v9 and IPFIX from a capture; every flow record FlowTap decodes from
    /// those datagrams equals nfdump's decode of them: addresses, ports, protocol, packets, bytes and times.
    func testSoftflowdExportDecodesAsNfdumpDecodesIt() throws {
        guard let softflowd = Corpus.tool("softflowd") else { throw OracleMissing.error("softflowd is needed") }
        let source = try FlowExportTests.generatedCapture(sessions: 2000, seed: 91, vlanFraction: 0.1)
        defer { try? FileManager.default.removeItem(atPath: source) }
        for version in ["5", "9", "10"] {
            let datagrams = try Self.receive { port in
                try Self.process(softflowd, ["-r", source, "-n", "127.0.0.1:\(port)", "-v", version, "-c", "none", "-T", "full"])
            }
            XCTAssertGreaterThan(datagrams.count, 10)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-softflowd-\(getpid())-\(version).pcap").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            let sent = datagrams.map { (source: "127.0.0.1", bytes: $0) }
            try Self.capture(sent, path: path)
            let (records, summary) = try Self.collect(path)
            // nfdump 1.7.1 reverses first and last for IPFIX flowStart/EndSysUpTime (tshark reads them in
            // order, as FlowTap does), so IPFIX times are compared as a pair.
            let unordered = version == "10"
            let got = Self.flowRecords(records, unorderedTimes: unordered)
            let expected = try Self.nfdump(sent, unorderedTimes: unordered)
            let matched = Set(got).intersection(expected).count
            print("softflowd v\(version): \(datagrams.count) datagrams; nfdump \(expected.count) flows, FlowTap \(got.count), matched \(matched)\n\(summary)")
            XCTAssertGreaterThanOrEqual(expected.count, version == "5" ? 2960 : 4211)
            XCTAssertEqual(got.sorted(), expected.sorted(), "v\(version): FlowTap's records differ from nfdump's")
            if version != "5" {
                XCTAssertGreaterThan(records.filter { $0["type"] as? String == "netflow_options" }.count, 0, "softflowd sends options records")
            }
        }
    }

    /// fprobe (a live NetFlow v5 probe) watches the loopback of a network namespace this test makes while
    /// tcpreplay plays generated traffic onto it; tcpdump keeps fprobe's datagrams. Every record `collect`
    /// decodes from them equals nfdump's decode.
    func testFprobeExportDecodesAsNfdumpDecodesIt() throws {
        guard let fprobe = Corpus.tool("fprobe"), let tcpreplay = Corpus.tool("tcpreplay"), let tcpdump = Corpus.tool("tcpdump"),
              let ip = Corpus.tool("ip") else {
            throw OracleMissing.error("fprobe, tcpreplay, tcpdump and ip are needed")
        }
        guard getuid() == 0 else { throw OracleMissing.error("root is needed for a network namespace") }
        let source = try FlowExportTests.generatedCapture(sessions: 500, seed: 94, vlanFraction: 0.1)
        defer { try? FileManager.default.removeItem(atPath: source) }
        let namespace = "ftfp\(getpid() % 100_000)"
        let datagramsPath = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-fprobe-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: datagramsPath) }
        XCTAssertEqual(try Corpus.run(ip, ["netns", "add", namespace]).1, 0)
        defer { _ = try? Corpus.run(ip, ["netns", "del", namespace]) }
        XCTAssertEqual(try Corpus.run(ip, ["netns", "exec", namespace, "ip", "link", "set", "lo", "up"]).1, 0)
        let port = "39700"
        let capture = try Self.process(ip, ["netns", "exec", namespace, tcpdump, "-i", "lo", "-U", "-w", datagramsPath, "udp", "port", port])
        usleep(500_000)
        let probe = try Self.process(ip, ["netns", "exec", namespace, fprobe, "-i", "lo", "-l", "2", "-B", "8192", "-f", "not udp port \(port)",
                                          "-d", "2", "-s", "1", "127.0.0.1:\(port)"])
        usleep(800_000)
        XCTAssertEqual(try Corpus.run(ip, ["netns", "exec", namespace, tcpreplay, "-q", "-i", "lo", "--pps", "1500", source]).1, 0)
        sleep(4)
        probe.terminate() // fprobe emits its flow cache on SIGTERM
        probe.waitUntilExit()
        sleep(1)
        capture.terminate()
        capture.waitUntilExit()

        // fprobe's datagrams, as nfcapd and `collect -r` receive them.
        var datagrams: [(source: String, bytes: [UInt8])] = []
        let reader = try CaptureFileReader(path: datagramsPath)
        var decoder = PacketDecoder()
        var packet = DecodedPacket()
        while let record = try reader.next() {
            decoder.decode(record.bytes, originalLength: record.originalLength, linkType: record.linkType, into: &packet)
            guard packet.transport == .udp, packet.payloadCapturedLength == packet.payloadLength else { continue }
            datagrams.append(("127.0.0.1", Array(record.bytes[packet.payloadOffset ..< packet.payloadOffset + packet.payloadLength])))
        }
        let (records, summary) = try Self.collect(datagramsPath)
        let got = Self.flowRecords(records, unorderedTimes: false)
        let expected = try Self.nfdump(datagrams, unorderedTimes: false)
        print("fprobe v5: \(datagrams.count) datagrams; nfdump \(expected.count) flows, FlowTap \(got.count), matched \(Set(got).intersection(expected).count)\n\(summary)")
        // fprobe captures live and misses packets under a burst (120–164 records in runs so far): a floor, not a count.
        XCTAssertGreaterThanOrEqual(expected.count, 100)
        XCTAssertEqual(got.sorted(), expected.sorted())
    }

    /// Two exporters both use template 256 (and 257) with different layouts, their datagrams interleaved:
    /// each exporter's records decode with its own templates, as nfdump decodes them.
    func testExportersReusingTemplateIDsKeepTheirOwnLayouts() throws {
        guard let softflowd = Corpus.tool("softflowd") else { throw OracleMissing.error("softflowd is needed") }
        let source = try FlowExportTests.generatedCapture(sessions: 600, seed: 92, vlanFraction: 0.1)
        defer { try? FileManager.default.removeItem(atPath: source) }
        // Exporter A: softflowd's IPFIX (its options template is 256), its data template IDs 1024, 1025, 2048
        // and 2049 rewritten to 257–260.
        let softflowdDatagrams = try Self.receive { port in
            try Self.process(softflowd, ["-r", source, "-n", "127.0.0.1:\(port)", "-v", "10", "-c", "none", "-T", "full"])
        }
        let renumbered = softflowdDatagrams.map(Self.renumberTemplates)
        // Exporter B: FlowTap's own IPFIX (templates 256 for IPv4 and 257 for IPv6, another layout).
        var builder = ExportMessageBuilder(destination: ExportDestination(format: .ipfix, host: "127.0.0.1", port: 1))
        var flowtapDatagrams: [[UInt8]] = []
        for f in ExportMessageBuilderTests.flows(500) { builder.add(f, now: f.end) { flowtapDatagrams.append(Array($0)) } }
        builder.flush(now: Timestamp(nanoseconds: 1_700_001_000_000_000_000)) { flowtapDatagrams.append(Array($0)) }
        var interleaved: [(source: String, bytes: [UInt8])] = []
        for i in 0 ..< max(renumbered.count, flowtapDatagrams.count) {
            if i < renumbered.count { interleaved.append(("127.0.0.2", renumbered[i])) }
            if i < flowtapDatagrams.count { interleaved.append(("127.0.0.3", flowtapDatagrams[i])) }
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-reuse-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.capture(interleaved, path: path)
        let (records, summary) = try Self.collect(path)
        let got = Self.flowRecords(records, unorderedTimes: true)
        let expected = try Self.nfdump(interleaved, unorderedTimes: true)
        print("template reuse: \(interleaved.count) datagrams; nfdump \(expected.count) flows, FlowTap \(got.count), matched \(Set(got).intersection(expected).count)\n\(summary)")
        XCTAssertEqual(records.filter { $0["exporter"] as? String == "127.0.0.3" && $0["type"] as? String == "netflow" }.count, 500)
        XCTAssertGreaterThanOrEqual(expected.count, 1739)
        XCTAssertEqual(got.sorted(), expected.sorted())
    }

    /// IPFIX template IDs 1024… and 2048… in template records and set IDs become 257… and 259….
    static func renumberTemplates(_ datagram: [UInt8]) -> [UInt8] {
        var d = datagram
        func map(_ id: Int) -> Int { id >= 1024 && id < 1024 + 2048 ? (id < 2048 ? 257 + id - 1024 : 259 + id - 2048) : id }
        var at = 16
        while at + 4 <= d.count {
            let id = Int(d[at]) << 8 | Int(d[at + 1]), length = Int(d[at + 2]) << 8 | Int(d[at + 3])
            guard length >= 4 else { break }
            if id == 2 || id == 3 {
                // The first template record's ID (softflowd sends one template per set).
                let t = map(Int(d[at + 4]) << 8 | Int(d[at + 5]))
                d[at + 4] = UInt8(t >> 8)
                d[at + 5] = UInt8(t & 0xFF)
            } else {
                let s = map(id)
                d[at] = UInt8(s >> 8)
                d[at + 1] = UInt8(s & 0xFF)
            }
            at += length
        }
        return d
    }
}

/// sFlow v5 from pmacct's sfprobe (pmacctd reading a capture, sampling every packet), decoded by FlowTap and
/// by tshark's sFlow dissector from the same datagrams: every flow sample's sequence number, sampling rate,
/// frame length and the sampled packet's addresses, ports and protocol are equal.
final class SFlowCollectTests: XCTestCase {
    /// The first value under `key` anywhere in tshark's JSON tree.
    static func find(_ key: String, in value: Any) -> String? {
        if let object = value as? [String: Any] {
            if let v = object[key] { return (v as? String) ?? ((v as? [String])?.first) }
            for (_, child) in object { if let v = find(key, in: child) { return v } }
        } else if let array = value as? [Any] {
            for child in array { if let v = find(key, in: child) { return v } }
        }
        return nil
    }

    func testPmacctSFlowDecodesAsTsharkDecodesIt() throws {
        guard let pmacctd = Corpus.tool("pmacctd"), let tshark = Corpus.tool("tshark") else {
            throw OracleMissing.error("pmacctd (Debian pmacct) and tshark are needed")
        }
        let source = try FlowExportTests.generatedCapture(sessions: 300, seed: 93, vlanFraction: 0.1)
        defer { try? FileManager.default.removeItem(atPath: source) }
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-sfprobe-\(getpid()).conf").path
        defer { try? FileManager.default.removeItem(atPath: config) }
        let datagrams = try CollectTests.receive(quiet: 6) { port in
            try "daemonize: false\npcap_savefile: \(source)\npcap_savefile_wait: true\nplugins: sfprobe\nsfprobe_receiver: 127.0.0.1:\(port)\nsampling_rate: 1\nsfprobe_agentip: 192.0.2.1\n"
                .write(toFile: config, atomically: true, encoding: .utf8)
            return try CollectTests.process(pmacctd, ["-f", config])
        }
        XCTAssertGreaterThan(datagrams.count, 20)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-sflow-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try CollectTests.capture(datagrams.map { (source: "127.0.0.1", bytes: $0) }, path: path)

        let (records, summary) = try CollectTests.collect(path)
        var got: [String] = []
        // Each sampled header is read alone, so tshark's reassembly of IP fragments across samples is off.
        for r in records where r["sample_type"] as? String == "flow" {
            let s = r["sflow"] as? [String: Any] ?? [:]
            let proto = ["TCP": 6, "UDP": 17, "ICMP": 1, "IPv6-ICMP": 58][r["proto"] as? String ?? ""] ?? -1
            got.append("\(r["sequence"]!)/\(r["sample_sequence"]!) rate \(r["sampling_rate"]!) len \(s["frame_length"] ?? "-") "
                + "\(r["src_ip"] ?? "-"):\(r["src_port"] ?? "-") > \(r["dest_ip"] ?? "-"):\(r["dest_port"] ?? "-") \(proto)")
        }

        let (out, status) = try Corpus.run(tshark, ["-r", path, "-d", "udp.port==2055,sflow", "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE", "-T", "json", "--no-duplicate-keys"])
        XCTAssertEqual(status, 0)
        let frames = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]])
        var expected: [String] = []
        for frame in frames {
            let layers = (frame["_source"] as? [String: Any])?["layers"] as? [String: Any] ?? [:]
            guard let sflow = layers["sflow"] as? [String: Any], let sequence = sflow["sflow_245.sequence_number"] as? String else { continue }
            for (name, sample) in sflow where name.hasPrefix("Flow sample") {
                let samples = (sample as? [Any]) ?? [sample]
                for sample in samples {
                    guard let header = sample as? [String: Any], let tree = Self.findTree("sflow_245.header_tree", in: header) else { continue }
                    let src = Self.find("ip.src", in: tree) ?? Self.find("ipv6.src", in: tree) ?? "-"
                    let dst = Self.find("ip.dst", in: tree) ?? Self.find("ipv6.dst", in: tree) ?? "-"
                    // An IPv6 fragment: the IPv6 header's next header is the fragment header (44); FlowTap names
                    // the protocol after the extension headers, which is the fragment header's next header.
                    let proto = Self.find("ip.proto", in: tree) ?? Self.find("ipv6.fraghdr.nxt", in: tree) ?? Self.find("ipv6.nxt", in: tree) ?? "-1"
                    let sport = Self.find("tcp.srcport", in: tree) ?? Self.find("udp.srcport", in: tree) ?? "-"
                    let dport = Self.find("tcp.dstport", in: tree) ?? Self.find("udp.dstport", in: tree) ?? "-"
                    expected.append("\(sequence)/\(Self.find("sflow.flow_sample.sequence_number", in: header) ?? "?") "
                        + "rate \(Self.find("sflow.flow_sample.sampling_rate", in: header) ?? "?") len \(Self.find("sflow_245.header.frame_length", in: header) ?? "?") "
                        + "\(src):\(sport) > \(dst):\(dport) \(proto)")
                }
            }
        }
        let matched = Set(got).intersection(expected).count
        print("sFlow: \(datagrams.count) datagrams; tshark \(expected.count) flow samples, FlowTap \(got.count), matched \(matched)\n\(summary)")
        XCTAssertGreaterThanOrEqual(expected.count, 3411)
        for line in Set(got).subtracting(expected).sorted().prefix(5) { print("  FlowTap only: \(line)") }
        for line in Set(expected).subtracting(got).sorted().prefix(5) { print("  tshark only:  \(line)") }
        XCTAssertEqual(got.sorted(), expected.sorted())
    }

    static func findTree(_ key: String, in value: Any) -> [String: Any]? {
        if let object = value as? [String: Any] {
            if let v = object[key] as? [String: Any] { return v }
            for (_, child) in object { if let v = findTree(key, in: child) { return v } }
        }
        return nil
    }
}
