import Capture
import Engine
import FlowCore
import FlowExport
import Foundation
import Outputs
import PacketCore
import SFTapConfig
import TestSupport
import TrafficGen
import Wire
import XCTest

/// `flowtap flows --export` into real collectors: nfcapd stores what FlowTap sends and nfdump reads it
/// back; tshark's cflow dissector decodes every datagram. Each exported direction is matched on its own
/// flow (addresses, ports, protocol) against the JSON record FlowTap wrote for the same flow in the same run.
final class FlowExportTests: XCTestCase {
    /// nfcapd asks for a 16 MB receive buffer (FlowTap sends a file's flows as fast as it reads them); the
    /// kernel caps it at rmem_max, raised here when the tests run as root.
    override class func setUp() {
        super.setUp()
        if getuid() == 0 { _ = try? Corpus.run("/usr/sbin/sysctl", ["-q", "-w", "net.core.rmem_max=33554432"]) }
    }

    /// One exported direction as both sides describe it.
    struct Direction: Hashable, Comparable {
        var key: String
        var packets: Int
        var bytes: Int
        static func < (a: Direction, b: Direction) -> Bool { (a.key, a.packets, a.bytes) < (b.key, b.packets, b.bytes) }
    }

    /// A seeded generated capture in the temporary directory: IPv4 and 30% IPv6 sessions, `vlanFraction`
    /// of them tagged, with the generator's impairment mix or (`impaired: false`) every TCP connection whole.
    static func generatedCapture(sessions: Int = 2500, seed: UInt64, vlanFraction: Double = 0.2, impaired: Bool = true, fragments: Bool = true) throws -> String {
        var options = TrafficGenerator.Options()
        options.sessions = sessions
        options.seed = seed
        options.ipv6Fraction = 0.3
        options.vlanFraction = vlanFraction
        if impaired { options.impairments = .mix }
        if !fragments { options.impairments.fragment = 0 }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-generated-\(getpid())-\(seed).pcap").path
        let writer = try PcapWriter(path: path, linkType: .ethernet)
        _ = try TrafficGenerator(options: options).generate { try writer.write(timestamp: $0, bytes: $1) }
        try writer.flush()
        return path
    }

    static func captures() throws -> [String] {
        let ndpi = try Corpus.require("ndpi-4.2/pcap")
        return ["http_ipv6.pcap", "facebook.pcap", "malformed_icmp.pcap", "dns_fragmented.pcap", "bittorrent.pcap"]
            .map { ndpi.appendingPathComponent($0).path }
    }

    /// Runs `flows` with an export to `destination`; returns the directions the JSON records describe.
    static func export(_ files: [String], to destination: ExportDestination, interval: Double = 0,
                       intervalRecords: ((String) -> Void)? = nil) throws -> (expected: [Direction], summary: String) {
        let jsonPath = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-export-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: jsonPath) }
        var session = FlowsSession(engineConfig: FlowEngineConfig())
        session.exports = [destination]
        session.intervalSeconds = interval
        let writer = try RecordWriter(path: jsonPath)
        let summary = try session.run(files: files, output: writer)
        try writer.finish()
        var expected: [Direction] = []
        for line in try String(contentsOfFile: jsonPath, encoding: .utf8).split(separator: "\n") {
            let r = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let flow = try XCTUnwrap(r["flow"] as? [String: Any])
            if flow["reason"] as? String == "interval" {
                intervalRecords?(String(line))
                continue
            }
            let src = r["src_ip"] as! String, dst = r["dest_ip"] as! String
            let proto = ["TCP": 6, "UDP": 17, "ICMP": 1, "IPv6-ICMP": 58][r["proto"] as! String] ?? -1
            if destination.format == .netflow5 && src.contains(":") { continue }
            let sport = r["src_port"] as? Int ?? 0, dport = r["dest_port"] as? Int ?? 0
            let toServer = flow["pkts_toserver"] as! Int, toClient = flow["pkts_toclient"] as! Int
            if toServer > 0 {
                expected.append(Direction(key: "\(src),\(dst),\(sport),\(proto == 1 || proto == 58 ? 0 : dport),\(proto)", packets: toServer,
                                          bytes: flow["ip_bytes_toserver"] as! Int))
            }
            if toClient > 0 {
                expected.append(Direction(key: "\(dst),\(src),\(dport),\(proto == 1 || proto == 58 ? 0 : sport),\(proto)", packets: toClient,
                                          bytes: flow["ip_bytes_toclient"] as! Int))
            }
        }
        return (expected, summary)
    }

    /// A UDP socket bound to a free loopback port.
    static func boundUDPSocket() -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length); return getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    /// The datagrams sent to a socket of ours while `send` runs (given its port), received on another
    /// thread so the socket buffer never overflows, until nothing came for `quiet` seconds.
    static func receive(quiet: Int = 3, _ send: (UInt16) throws -> Void) throws -> [[UInt8]] {
        let (fd, port) = boundUDPSocket()
        defer { close(fd) }
        var size: Int32 = 8 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: quiet, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let received = ReceivedDatagrams()
        let reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n <= 0 { break }
                received.append(Array(buffer[0 ..< n]))
            }
            received.finish()
        }
        reader.start()
        try send(port)
        return received.wait()
    }

    /// nfcapd writing into a fresh `directory`, listening on a free loopback port.
    static func startNfcapd(_ nfcapd: String, directory: URL) throws -> (Process, UInt16) {
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let port = freeUDPPort()
        let collector = Process()
        collector.executableURL = URL(fileURLWithPath: nfcapd)
        collector.arguments = ["-w", directory.path, "-b", "127.0.0.1", "-p", String(port), "-B", "16000000"]
        collector.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        collector.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try collector.run()
        usleep(400_000)
        return (collector, port)
    }

    static func freeUDPPort() -> UInt16 {
        let (fd, port) = boundUDPSocket()
        close(fd)
        return port
    }

    /// Every direction nfdump reads from nfcapd's file equals FlowTap's record of that flow, for IPFIX,
    /// NetFlow v9 and v5 (v5: IPv4 flows only).
    func testNfcapdStoresEveryExportedDirectionWithItsPacketsAndBytes() throws {
        guard let nfcapd = Corpus.tool("nfcapd"), let nfdump = Corpus.tool("nfdump") else {
            throw OracleMissing.error("nfcapd and nfdump (Debian nfdump) are needed")
        }
        let generated = try Self.generatedCapture(seed: 77)
        defer { try? FileManager.default.removeItem(atPath: generated) }
        for format in ExportDestination.Format.allCases {
            for files in [[generated], try Self.captures()] {
                var expected: [Direction] = [], summary = ""
                let got = try Self.nfdumpDirections(nfcapd, nfdump) { port in
                    (expected, summary) = try Self.export(files, to: ExportDestination(format: format, host: "127.0.0.1", port: port))
                }
                let matched = Set(expected).intersection(got).count
                print("export \(format) \(files.count == 1 ? "generated" : "corpus"): nfdump \(got.count) directions, FlowTap \(expected.count), matched \(matched); \(summary)")
                // What this run measured (seeded inputs): v5 carries the IPv4 directions only.
                XCTAssertGreaterThanOrEqual(expected.count, files.count == 1 ? (format == .netflow5 ? 3407 : 4824) : (format == .netflow5 ? 57 : 119))
                XCTAssertEqual(got.sorted(), expected.sorted(), "\(format): nfdump's directions differ from FlowTap's records")
            }
        }
    }

    /// `analyze --export` exports the flows analyze tracks: on traffic whose connections all start with a
    /// handshake, the same directions `flows` records, while analyze's own records do not change.
    func testAnalyzeExportsTheSameFlowsAndKeepsItsRecords() throws {
        guard let nfcapd = Corpus.tool("nfcapd"), let nfdump = Corpus.tool("nfdump") else {
            throw OracleMissing.error("nfcapd and nfdump (Debian nfdump) are needed")
        }
        let path = try Self.generatedCapture(sessions: 1500, seed: 80, vlanFraction: 0.1, impaired: false)
        defer { try? FileManager.default.removeItem(atPath: path) }

        func analyze(export: UInt16?) throws -> String {
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-analyze-export-\(getpid()).json").path
            defer { try? FileManager.default.removeItem(atPath: out) }
            var session = AnalyzeSession(settings: nil, engineConfig: FlowEngineConfig())
            if let export { session.exports = [ExportDestination(format: .ipfix, host: "127.0.0.1", port: export)] }
            let records = try RecordWriter(path: out)
            _ = try session.run(files: [path], output: records)
            try records.finish()
            return try String(contentsOfFile: out, encoding: .utf8)
        }
        var withExport = ""
        let got = try Self.nfdumpDirections(nfcapd, nfdump) { withExport = try analyze(export: $0) }
        XCTAssertEqual(withExport, try analyze(export: nil), "analyze's records are the same with --export")
        let (expected, _) = try Self.export([path], to: ExportDestination(format: .ipfix, host: "127.0.0.1", port: Self.freeUDPPort()))
        print("analyze --export: nfdump \(got.count) directions, flows \(expected.count), matched \(Set(got).intersection(expected).count)")
        XCTAssertGreaterThanOrEqual(got.count, 2902)
        XCTAssertEqual(got.sorted(), expected.sorted())
    }

    /// `abstract -o DIR --export` with two worker threads (two exporter sessions) exports the flows it
    /// abstracts: on traffic whose connections all start with a handshake, the directions `flows` records.
    func testAbstractExportsTheFlowsItAbstracts() throws {
        guard let nfcapd = Corpus.tool("nfcapd"), let nfdump = Corpus.tool("nfdump") else {
            throw OracleMissing.error("nfcapd and nfdump (Debian nfdump) are needed")
        }
        let path = try Self.generatedCapture(sessions: 1500, seed: 81, vlanFraction: 0.1, impaired: false)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let settings = try AnalyzeRoutingTests.exampleSettings
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-abstract-export-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        var summary = ""
        let got = try Self.nfdumpDirections(nfcapd, nfdump) { port in
            var run = AbstractToFiles(settings: settings, engineConfig: FlowEngineConfig(abstracting: settings), directory: output, shards: 2)
            run.exports = [ExportDestination(format: .netflow9, host: "127.0.0.1", port: port)]
            summary = try run.run(files: [path]).report
        }
        let (expected, _) = try Self.export([path], to: ExportDestination(format: .ipfix, host: "127.0.0.1", port: Self.freeUDPPort()))
        print("abstract --export: nfdump \(got.count) directions, flows \(expected.count), matched \(Set(got).intersection(expected).count)\n\(summary)")
        XCTAssertEqual(summary.components(separatedBy: "export netflow9://").count - 1, 2, "one exporter per worker")
        XCTAssertGreaterThanOrEqual(got.count, 2906)
        XCTAssertEqual(got.sorted(), expected.sorted())
    }

    /// What nfdump reads back from nfcapd after `run` exported to nfcapd's port.
    static func nfdumpDirections(_ nfcapd: String, _ nfdump: String, _ run: (UInt16) throws -> Void) throws -> [Direction] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-nfcapd-run-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (collector, port) = try startNfcapd(nfcapd, directory: directory)
        do {
            try run(port)
        } catch {
            collector.terminate()
            throw error
        }
        usleep(400_000)
        collector.terminate()
        collector.waitUntilExit()
        let stored = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("nfcapd.") }
        XCTAssertEqual(stored.count, 1, "nfcapd wrote \(stored)")
        let file = try XCTUnwrap(stored.first)
        let (out, status) = try Corpus.run(nfdump, ["-r", directory.appendingPathComponent(file).path, "-q", "-N", "-6", "-o", "fmt:%sa,%da,%sp,%dp,%pr,%pkt,%byt"])
        XCTAssertEqual(status, 0)
        return out.split(separator: "\n").compactMap { line -> Direction? in
            let f = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count == 7, let packets = Int(f[5]), let bytes = Int(f[6]) else { return nil }
            // ICMP: nfdump shows type.code as the destination port; FlowTap's key leaves it out.
            return Direction(key: "\(f[0]),\(f[1]),\(f[2]),\(f[3].contains(".") ? "0" : f[3]),\(f[4])", packets: packets, bytes: bytes)
        }
    }

    /// With `--interval`, long flows are exported in pieces (NetFlow's active timeout): per direction, the
    /// pieces nfdump stores add up to the flow's totals, and the interval JSON records only grow.
    func testIntervalExportsAddUpToEachFlowsTotals() throws {
        guard let nfcapd = Corpus.tool("nfcapd"), let nfdump = Corpus.tool("nfdump") else {
            throw OracleMissing.error("nfcapd and nfdump (Debian nfdump) are needed")
        }
        let generated = try Self.generatedCapture(seed: 79)
        defer { try? FileManager.default.removeItem(atPath: generated) }
        var last: [Int: (Int, Int)] = [:]
        var intervals = 0, shrinking = 0
        var finals: [Direction] = [], summary = ""
        let stored = try Self.nfdumpDirections(nfcapd, nfdump) { port in
            (finals, summary) = try Self.export([generated], to: ExportDestination(format: .ipfix, host: "127.0.0.1", port: port),
                                                interval: 0.005) { line in
                guard let r = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let f = r["flow"] as? [String: Any],
                      let id = r["flow_id"] as? Int, let a = f["pkts_toserver"] as? Int, let b = f["pkts_toclient"] as? Int else { return }
                intervals += 1
                if let (pa, pb) = last[id], a < pa || b < pb { shrinking += 1 }
                last[id] = (a, b)
            }
        }
        var pieces: [String: (packets: Int, bytes: Int, count: Int)] = [:]
        for d in stored {
            pieces[d.key, default: (0, 0, 0)].packets += d.packets
            pieces[d.key, default: (0, 0, 0)].bytes += d.bytes
            pieces[d.key, default: (0, 0, 0)].count += 1
        }
        var totals: [String: (packets: Int, bytes: Int)] = [:]
        for d in finals {
            totals[d.key, default: (0, 0)].packets += d.packets
            totals[d.key, default: (0, 0)].bytes += d.bytes
        }
        let split = pieces.values.filter { $0.count > 1 }.count
        let equal = totals.filter { key, t in pieces[key].map { $0.packets == t.packets && $0.bytes == t.bytes } ?? false }.count
        print("interval export: \(intervals) interval records, \(split) of \(totals.count) directions exported in pieces, \(equal) add up\n\(summary)")
        XCTAssertGreaterThanOrEqual(split, 3114, "the interval must split long flows")
        XCTAssertEqual(shrinking, 0)
        XCTAssertEqual(equal, totals.count)
        XCTAssertEqual(pieces.count, totals.count)
    }

    /// tshark's cflow dissector decodes every datagram of each format without an expert warning, and the
    /// records it decodes carry each direction's packets and bytes.
    func testTsharkDecodesEveryExportedRecord() throws {
        guard let tshark = Corpus.tool("tshark") else { throw OracleMissing.error("tshark is needed") }
        let generated = try Self.generatedCapture(seed: 78)
        defer { try? FileManager.default.removeItem(atPath: generated) }
        for format in ExportDestination.Format.allCases {
            var port: UInt16 = 0
            var expected: [FlowExportTests.Direction] = []
            let datagrams = try Self.receive(quiet: 1) { p in
                port = p
                expected = try Self.export([generated], to: ExportDestination(format: format, host: "127.0.0.1", port: p)).expected
            }

            let pcap = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-cflow-\(getpid()).pcap").path
            defer { try? FileManager.default.removeItem(atPath: pcap) }
            let writer = try PcapWriter(path: pcap, linkType: .ethernet)
            for (i, datagram) in datagrams.enumerated() {
                let frame = PacketBuilder.frame(network: .ipv4(.init(source: IPAddress("127.0.0.1")!, destination: IPAddress("127.0.0.1")!)),
                                                transport: .udp(sourcePort: 40000, destinationPort: port), payload: datagram)
                try writer.write(timestamp: Timestamp(nanoseconds: Int64(i) * 1000), bytes: frame)
            }
            try writer.flush()
            let fields = ["cflow.srcaddr", "cflow.dstaddr", "cflow.srcaddrv6", "cflow.dstaddrv6", "cflow.srcport", "cflow.dstport",
                          "cflow.protocol", "cflow.packets", "cflow.octets", "_ws.expert.severity", "_ws.malformed"]
            let (out, status) = try Corpus.run(tshark, ["-r", pcap, "-d", "udp.port==\(port),cflow", "-T", "fields", "-E", "separator=\t",
                                                        "-E", "occurrence=a", "-E", "aggregator=,"] + fields.flatMap { ["-e", $0] })
            XCTAssertEqual(status, 0)
            var got: [Direction] = []
            var warnings = 0
            for line in out.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
                let f = line.split(separator: "\t", omittingEmptySubsequences: false).map { $0.split(separator: ",").map(String.init) }
                guard f.count == fields.count else { continue }
                if !f[9].isEmpty || !f[10].isEmpty { warnings += 1 }
                // A message holds its IPv4 records first, then its IPv6 ones; the other lists run over both.
                let sources = f[0] + f[2], destinations = f[1] + f[3]
                guard sources.count == f[7].count, sources.count == f[4].count else {
                    XCTFail("\(format): a datagram's field lists do not line up: \(line.prefix(200))")
                    continue
                }
                for i in 0 ..< sources.count {
                    let proto = Int(f[6][i]) ?? -1
                    let dport = proto == 1 || proto == 58 ? "0" : f[5][i]
                    got.append(Direction(key: "\(sources[i]),\(destinations[i]),\(f[4][i]),\(dport),\(proto)",
                                         packets: Int(f[7][i]) ?? -1, bytes: Int(f[8][i]) ?? -1))
                }
            }
            print("cflow \(format): \(datagrams.count) datagrams, \(got.count) records decoded, \(expected.count) expected, \(warnings) with expert notes")
            XCTAssertEqual(warnings, 0, "\(format): tshark flagged datagrams")
            XCTAssertEqual(got.sorted(), expected.sorted(), "\(format): tshark's records differ from FlowTap's")
        }
    }
}

/// Datagrams a reader thread collects.
final class ReceivedDatagrams: @unchecked Sendable {
    private let condition = NSCondition()
    private var datagrams: [[UInt8]] = []
    private var done = false

    func append(_ d: [UInt8]) {
        condition.lock()
        datagrams.append(d)
        condition.unlock()
    }

    func finish() {
        condition.lock()
        done = true
        condition.signal()
        condition.unlock()
    }

    func wait() -> [[UInt8]] {
        condition.lock()
        while !done { condition.wait() }
        defer { condition.unlock() }
        return datagrams
    }
}

/// The export headers' rules, datagram by datagram: lengths, sequence numbers, template refresh, MTU.
final class ExportMessageBuilderTests: XCTestCase {
    static func flows(_ n: Int, ipv6Every: Int = 3) -> [ExportedFlow] {
        (0 ..< n).map { i in
            let v6 = i % ipv6Every == 0
            let src = v6 ? IPAddress("2001:db8::\(i % 9000 + 1)")! : IPAddress(ipv4: 0x0A00_0000 | UInt32(i))
            let dst = v6 ? IPAddress("2001:db8:1::1")! : IPAddress(ipv4: 0xC633_6401)
            let t = Timestamp(nanoseconds: 1_700_000_000_000_000_000 + Int64(i) * 1_000_000_000)
            return ExportedFlow(source: src, destination: dst, sourcePort: UInt16(1024 + i % 60000), destinationPort: 443, ipProtocol: 6,
                                tcpFlags: 0x1B, packets: UInt64(i + 1), bytes: UInt64(60 * (i + 1)), start: t,
                                end: Timestamp(nanoseconds: t.nanoseconds + 2_000_000))
        }
    }

    func build(_ format: ExportDestination.Format, _ flows: [ExportedFlow], settings: String = "template-packets=5&template-refresh=100000") throws -> [[UInt8]] {
        var destination = try ExportDestination(parsing: "\(format.rawValue)://127.0.0.1:9?mtu=1200&\(settings)")
        destination.domain = 3
        var builder = ExportMessageBuilder(destination: destination)
        var out: [[UInt8]] = []
        for f in flows { builder.add(f, now: f.end) { out.append(Array($0)) } }
        builder.flush(now: flows.last!.end) { out.append(Array($0)) }
        return out
    }

    func testIPFIXHeadersCountRecordsAndRefreshTemplates() throws {
        let messages = try build(.ipfix, Self.flows(400))
        var expectedSequence: UInt32 = 0, records = 0
        for (i, m) in messages.enumerated() {
            XCTAssertLessThanOrEqual(m.count, 1200)
            m.withUnsafeBytes { b in
                XCTAssertEqual(b.beUInt16(at: 0), 10)
                XCTAssertEqual(Int(b.beUInt16(at: 2)), m.count)
                XCTAssertEqual(b.beUInt32(at: 8), expectedSequence)
                XCTAssertEqual(b.beUInt32(at: 12), 3)
                var at = 16, hasTemplates = false, inMessage = 0
                while at + 4 <= m.count {
                    let id = b.beUInt16(at: at), length = Int(b.beUInt16(at: at + 2))
                    if id == 2 { hasTemplates = true }
                    if id == 256 { inMessage += (length - 4) / ExportMessageBuilder.layout(.ipfix, ipv6: false).recordLength }
                    if id == 257 { inMessage += (length - 4) / ExportMessageBuilder.layout(.ipfix, ipv6: true).recordLength }
                    XCTAssertGreaterThan(length, 4)
                    at += length
                }
                XCTAssertEqual(at, m.count, "sets fill message \(i) exactly")
                XCTAssertEqual(hasTemplates, i % 5 == 0, "templates in message \(i)")
                expectedSequence &+= UInt32(inMessage)
                records += inMessage
            }
        }
        XCTAssertEqual(records, 400)
    }

    /// Templates come back after `template-refresh` seconds of export time even when few datagrams were sent.
    func testTemplatesAreResentAfterTheRefreshInterval() throws {
        let messages = try build(.ipfix, Self.flows(600), settings: "template-packets=1000&template-refresh=30")
        var templateTimes: [UInt32] = []
        for m in messages {
            m.withUnsafeBytes { b in if b.beUInt16(at: 16) == 2 { templateTimes.append(b.beUInt32(at: 4)) } }
        }
        // 600 flows one second apart: templates at the start, then at the first message 30 s or more after
        // the last templates (a message spans under 20 s, so never 50 s without).
        XCTAssertGreaterThanOrEqual(templateTimes.count, 600 / 50, "\(templateTimes)")
        for (a, b) in zip(templateTimes, templateTimes.dropFirst()) { XCTAssertTrue((30 ..< 50).contains(b - a), "\(templateTimes)") }
    }

    func testNetFlow9CountsTemplatesAndPacketsAndPadsFlowsets() throws {
        let messages = try build(.netflow9, Self.flows(300))
        var records = 0
        for (i, m) in messages.enumerated() {
            XCTAssertLessThanOrEqual(m.count, 1200)
            m.withUnsafeBytes { b in
                XCTAssertEqual(b.beUInt16(at: 0), 9)
                XCTAssertEqual(b.beUInt32(at: 12), UInt32(i), "v9 sequence counts packets")
                XCTAssertEqual(b.beUInt32(at: 16), 3)
                var at = 20, count = 0
                while at + 4 <= m.count {
                    let id = b.beUInt16(at: at), length = Int(b.beUInt16(at: at + 2))
                    XCTAssertEqual(length % 4, 0, "flowset padded to four bytes")
                    if id == 0 { count += 2 }
                    if id == 256 { count += (length - 4) / ExportMessageBuilder.layout(.netflow9, ipv6: false).recordLength }
                    if id == 257 { count += (length - 4) / ExportMessageBuilder.layout(.netflow9, ipv6: true).recordLength }
                    at += length
                }
                XCTAssertEqual(at, m.count)
                XCTAssertEqual(Int(b.beUInt16(at: 2)), count, "v9 count: data and template records")
                records += count - (i % 5 == 0 ? 2 : 0)
            }
        }
        XCTAssertEqual(records, 300)
    }

    func testNetFlow5CarriesThirtyIPv4FlowsPerDatagramWithUptimeTimes() throws {
        let flows = Self.flows(100)
        let messages = try build(.netflow5, flows)
        let ipv4 = flows.filter { !$0.source.isIPv6 }
        XCTAssertEqual(messages.map { $0.count }, [24 + 30 * 48, 24 + 30 * 48, 24 + 6 * 48])
        var flowSequence: UInt32 = 0, index = 0
        for m in messages {
            m.withUnsafeBytes { b in
                let count = Int(b.beUInt16(at: 2))
                XCTAssertEqual(b.beUInt32(at: 16), flowSequence)
                let uptime = Int64(b.beUInt32(at: 4)), now = Int64(b.beUInt32(at: 8)) * 1000 + Int64(b.beUInt32(at: 12)) / 1_000_000
                for r in 0 ..< count {
                    let at = 24 + 48 * r, f = ipv4[index]
                    XCTAssertEqual(b.beUInt32(at: at), f.source.ipv4Value)
                    XCTAssertEqual(UInt64(b.beUInt32(at: at + 16)), f.packets)
                    XCTAssertEqual(UInt64(b.beUInt32(at: at + 20)), f.bytes)
                    // A collector's absolute time: export time − (sysUptime − First).
                    XCTAssertEqual(now - (uptime - Int64(b.beUInt32(at: at + 24))), f.start.nanoseconds / 1_000_000)
                    index += 1
                }
                flowSequence &+= UInt32(count)
            }
        }
        XCTAssertEqual(index, ipv4.count)
    }

    func testDestinationsParseAndExplainMistakes() throws {
        let d = try ExportDestination(parsing: "ipfix://[::1]:4739?domain=9&mtu=9000")
        XCTAssertEqual(d.format, .ipfix)
        XCTAssertEqual(d.host, "::1")
        XCTAssertEqual(d.port, 4739)
        XCTAssertEqual(d.domain, 9)
        XCTAssertEqual(d.mtu, 9000)
        XCTAssertEqual(d.description, "ipfix://[::1]:4739")
        for (text, says) in [("127.0.0.1:2055", "no scheme"), ("sflow://h:1", "unknown scheme"), ("netflow9://h", "no port"),
                             ("netflow5://h:2055?domain=300", "one byte"), ("ipfix://h:0", "not a port"), ("ipfix://h:1?mtu=10", "576"),
                             ("ipfix://h:1?colour=red", "unknown setting")] {
            XCTAssertThrowsError(try ExportDestination(parsing: text), text) { error in
                XCTAssertTrue("\(error)".contains(says), "\(text): \(error)")
            }
        }
    }
}
