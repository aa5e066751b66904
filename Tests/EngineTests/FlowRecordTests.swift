import Capture
import PacketCore
import Wire
import Engine
import FlowCore
import FlowRecords
import Foundation
import TestSupport
import TrafficGen
import XCTest

/// Records in-process, as `flowtap flows` writes them.
func flowRecords(_ traces: [String], communityIDSeed: UInt16 = 0) throws -> [[String: Any]] {
    var records: [[String: Any]] = []
    let sink = FlowRecordSink { line in
        if let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] { records.append(object) }
    }
    sink.communityIDSeed = communityIDSeed
    var config = FlowEngineConfig()
    config.tcpFlowsFromAnyPacket = true
    _ = try Pipeline.run(config: config, files: traces, sink: sink)
    return records
}

/// `flowtap flows` against three outside references, each flow matched on its own connection:
/// tshark's per-frame view (packets and bytes per direction), Zeek's conn.log baselines (conn_state,
/// history, packet and IP byte counts, duration) and the Community ID reference implementation
/// (Corelight's `communityid` Python package) with suricata-verify's expectations.
final class FlowRecordTests: XCTestCase {
    /// A direction of a connection: addresses, ports, protocol and VLAN, sender first.
    static func direction(_ src: String, _ sport: String, _ dst: String, _ dport: String, _ proto: String, _ vlan: String) -> String {
        "\(src)|\(sport)>\(dst)|\(dport)/\(proto)/\(vlan)"
    }

    func testPacketsAndBytesPerDirectionEqualTsharksFrames() throws {
        guard let tshark = Corpus.tool("tshark") else { throw OracleMissing.error("tshark is needed") }
        var options = TrafficGenerator.Options()
        options.sessions = 1500
        options.seed = 31
        options.ipv6Fraction = 0.3
        options.vlanFraction = 0.2
        options.impairments = .mix
        options.impairments.reorderMidstreamStart = true
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-flows-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path, linkType: .ethernet)
        _ = try TrafficGenerator(options: options).generate { try writer.write(timestamp: $0, bytes: $1) }
        try writer.flush()

        // tshark: every frame that carries a TCP or UDP header or an ICMP message (a fragmented datagram counts in
        // the frame that completed it, where tshark dissects the transport), by direction.
        let fields = ["frame.len", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ip.proto", "ipv6.nxt", "tcp.srcport", "tcp.dstport",
                      "udp.srcport", "udp.dstport", "icmp.type", "icmpv6.type", "vlan.id"]
        let (out, status) = try Corpus.run(tshark, ["-r", path, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=l"] + fields.flatMap { ["-e", $0] })
        XCTAssertEqual(status, 0)
        var expected: [String: (packets: Int, bytes: Int)] = [:]
        for line in out.split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count == fields.count else { continue }
            let v4 = !f[1].isEmpty
            let src = v4 ? f[1] : f[3], dst = v4 ? f[2] : f[4]
            let key: String
            if !f[7].isEmpty {
                key = Self.direction(src, f[7], dst, f[8], "TCP", f[13])
            } else if !f[9].isEmpty {
                key = Self.direction(src, f[9], dst, f[10], "UDP", f[13])
            } else if !f[11].isEmpty || !f[12].isEmpty {
                key = Self.direction(src, "", dst, "", f[11].isEmpty ? "IPv6-ICMP" : "ICMP", f[13])
            } else {
                continue
            }
            expected[key, default: (0, 0)].packets += 1
            expected[key, default: (0, 0)].bytes += Int(f[0]) ?? 0
        }

        var got: [String: (packets: Int, bytes: Int)] = [:]
        for r in try flowRecords([path]) {
            let flow = try XCTUnwrap(r["flow"] as? [String: Any])
            let proto = r["proto"] as? String ?? "", vlan = (r["vlan"] as? [Int])?.first.map(String.init) ?? ""
            let sport = r["src_port"].map { "\($0)" } ?? "", dport = r["dest_port"].map { "\($0)" } ?? ""
            let src = r["src_ip"] as? String ?? "", dst = r["dest_ip"] as? String ?? ""
            for (key, packets, bytes) in [(Self.direction(src, sport, dst, dport, proto, vlan), flow["pkts_toserver"], flow["bytes_toserver"]),
                                          (Self.direction(dst, dport, src, sport, proto, vlan), flow["pkts_toclient"], flow["bytes_toclient"])] {
                let p = packets as? Int ?? 0, b = bytes as? Int ?? 0
                guard p > 0 else { continue }
                got[key, default: (0, 0)].packets += p
                got[key, default: (0, 0)].bytes += b
            }
        }
        var agree = 0
        var differ: [String] = []
        for (key, want) in expected {
            if let have = got[key], have == want { agree += 1 } else { differ.append("\(key): tshark \(want), flowtap \(got[key].map { "\($0)" } ?? "none")") }
        }
        let extra = got.keys.filter { expected[$0] == nil }
        print("flows vs tshark frames: \(agree)/\(expected.count) directions agree in packets and bytes; \(extra.count) directions only in flowtap")
        for d in differ.sorted().prefix(10) { print("  " + d) }
        XCTAssertEqual(expected.count, 2904)
        XCTAssertEqual(agree, expected.count)
        XCTAssertEqual(extra, [])
    }

    /// Zeek conn.log rows, per connection (originator and responder endpoints, protocol; in start order).
    func testAgainstZeekConnLogBaselines() throws {
        let root = try Corpus.require(".")
        let manifest = try String(contentsOf: root.appendingPathComponent("MANIFEST.tsv"), encoding: .utf8)
        let compared = ["conn_state", "history", "orig_pkts", "resp_pkts", "orig_ip_bytes", "resp_ip_bytes", "duration", "missed_bytes"]
        var matched: [String: Int] = [:], total: [String: Int] = [:]
        var connections = 0, found = 0
        var differences: [String: [String]] = [:]
        for line in manifest.split(separator: "\n") {
            let cols = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard cols.count >= 8, cols[0].hasPrefix("zeek/testing/btest/Baseline/"), cols[0].hasSuffix("/conn.log"),
                  let on = cols[7].range(of: " on ") else { continue }
            let traces = cols[7][on.upperBound...].split(separator: ",").map { root.appendingPathComponent("zeek/testing/btest/Traces/" + $0.trimmingCharacters(in: .whitespaces)).path }
            guard traces.count == 1, traces.allSatisfy({ FileManager.default.fileExists(atPath: $0) }),
                  let text = try? String(contentsOf: root.appendingPathComponent(cols[0]), encoding: .utf8) else { continue }
            let rows = ZeekAnalyzerDifferentialTests.zeekLog(text).filter { ["tcp", "udp", "icmp"].contains($0["proto"] ?? "") }
            guard !rows.isEmpty, let records = try? flowRecords(traces) else { continue }
            var ours: [String: [[String: Any]]] = [:]
            for r in records {
                let proto = (r["proto"] as? String ?? "").lowercased().replacingOccurrences(of: "ipv6-icmp", with: "icmp")
                let icmp = proto == "icmp"
                let sport = icmp ? "\(r["icmp_type"] ?? "")" : "\(r["src_port"] ?? "")", dport = icmp ? "\(r["icmp_code"] ?? "")" : "\(r["dest_port"] ?? "")"
                ours["\(r["src_ip"] ?? "") \(sport) \(r["dest_ip"] ?? "") \(dport) \(proto)", default: []].append(r)
            }
            let name = URL(fileURLWithPath: cols[0]).deletingLastPathComponent().lastPathComponent
            for row in rows.sorted(by: { ($0["ts"] ?? "") < ($1["ts"] ?? "") }) {
                connections += 1
                let key = "\(row["id.orig_h"] ?? "") \(row["id.orig_p"] ?? "") \(row["id.resp_h"] ?? "") \(row["id.resp_p"] ?? "") \(row["proto"] ?? "")"
                guard var list = ours[key], !list.isEmpty else {
                    differences["connection", default: []].append("\(name): \(key)")
                    continue
                }
                found += 1
                let r = list.removeFirst()
                ours[key] = list
                let flow = r["flow"] as? [String: Any] ?? [:]
                let mine: [String: String] = [
                    "conn_state": "\(flow["conn_state"] ?? "")", "history": "\(flow["history"] ?? "")",
                    "orig_pkts": "\(flow["pkts_toserver"] ?? "")", "resp_pkts": "\(flow["pkts_toclient"] ?? "")",
                    "orig_ip_bytes": "\(flow["ip_bytes_toserver"] ?? "")", "resp_ip_bytes": "\(flow["ip_bytes_toclient"] ?? "")",
                    "missed_bytes": "\(flow["missed_bytes"] ?? "")",
                ]
                for field in compared {
                    guard let want = row[field], !want.isEmpty || field == "history" else { continue }
                    total[field, default: 0] += 1
                    let same: Bool
                    if field == "duration" {
                        same = abs((Double(want) ?? -1) - (flow["duration"] as? Double ?? -2)) < 1e-5
                    } else {
                        same = mine[field] == want
                    }
                    if same { matched[field, default: 0] += 1 } else { differences[field, default: []].append("\(name) \(key): zeek \(want), flowtap \(field == "duration" ? "\(flow["duration"] ?? "")" : mine[field] ?? "")") }
                }
            }
        }
        print("flows vs zeek conn.log: \(found)/\(connections) connections found; " + compared.map { "\($0) \(matched[$0] ?? 0)/\(total[$0] ?? 0)" }.joined(separator: ", "))
        for (field, list) in differences.sorted(by: { $0.key < $1.key }) { for d in list.prefix(field == "connection" ? 30 : 8) { print("  \(field): \(d)") } }
        XCTAssertEqual(connections, 84)
        for (field, floor) in Self.zeekFloors { XCTAssertGreaterThanOrEqual(matched[field] ?? 0, floor, field) }
        XCTAssertGreaterThanOrEqual(found, Self.zeekConnectionsFound)
    }

    /// Matched baseline values per field, pinned at what is achieved. What differs, by cause:
    /// - Connections not found (26 of 84): Zeek logs a tunnel's outer UDP connection (VXLAN, Geneve, GTP-U,
    ///   GRE over UDP) beside the inner ones, where FlowTap's flows are the inner connections only; Teredo is
    ///   not decapsulated (its inner IPv6 flows are missing and the outer UDP flow holds their packets);
    ///   Zeek keys ICMP by type and code, FlowTap by the address pair; an MPLS label stack inside a VLAN.
    /// - pppoe-over-qinq: the connection goes on 235 s after both FINs; FlowTap's closed connection lingers
    ///   30 s and a new flow takes the rest (S2 and 37 packets where Zeek has SF and 42).
    /// - core.pcap.dynamic-filter drops packets with a filter the test installs at run time.
    /// - history: Zeek reports a content gap before the FIN that follows it (…fgF), FlowTap at the end (…fFg);
    ///   Zeek counts a few more retransmissions (T) where data overlaps an earlier segment's end.
    static let zeekFloors = [
        "conn_state": 56, "history": 51, "orig_pkts": 56, "resp_pkts": 53, "orig_ip_bytes": 56, "resp_ip_bytes": 53, "duration": 49,
        "missed_bytes": 58,
    ]
    static let zeekConnectionsFound = 58

    func testCommunityIDsEqualTheReferenceImplementationAndSuricatas() throws {
        guard let python = Corpus.tool("python3") else { throw OracleMissing.error("python3 is needed") }
        let (_, hasModule) = try Corpus.run(python, ["-c", "import communityid"])
        guard hasModule == 0 else { throw OracleMissing.error("the communityid Python package (scripts/install-deps.sh installs it) is needed") }
        let root = try Corpus.require("suricata-verify/tests")
        // suricata-verify's expectations (with each test's community-id-seed): the flow of each check that names a
        // community_id, and the flow counters the flow checks name.
        var suricataChecks = 0, suricataMatched = 0, suricataFields = 0, suricataFieldsMatched = 0
        for test in ["community-id-ipv4", "community-id-ipv6"] {
            let dir = root.appendingPathComponent(test)
            let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("expected.json"))) as? [String: Any])
            let yaml = (try? String(contentsOf: dir.appendingPathComponent("suricata.yaml"), encoding: .utf8)) ?? ""
            let seed = yaml.split(separator: "\n").first { $0.contains("community-id-seed:") }
                .flatMap { UInt16($0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) } ?? 0
            let records = try flowRecords([dir.appendingPathComponent("input.pcap").path], communityIDSeed: seed)
            for check in json["checks"] as? [[String: Any]] ?? [] {
                guard let match = (check["filter"] as? [String: Any])?["match"] as? [String: Any], let id = match["community_id"] as? String else { continue }
                suricataChecks += 1
                let flow = records.first { r in
                    ["src_ip", "dest_ip", "src_port", "dest_port"].allSatisfy { k in
                        match[k] == nil || SuricataVerifyAnalyzerTests.canonicalAddress("\(r[k] ?? "")") == SuricataVerifyAnalyzerTests.canonicalAddress("\(match[k]!)")
                    }
                }
                if flow?["community_id"] as? String == id { suricataMatched += 1 } else { print("  suricata-verify \(test): want \(id), got \(flow?["community_id"] ?? "no flow")") }
                if match["event_type"] as? String == "flow", let app = match["app_proto"] as? String {
                    suricataFields += 1
                    if flow?["app_proto"] as? String == app { suricataFieldsMatched += 1 } else { print("  suricata-verify \(test): app_proto want \(app), got \(flow?["app_proto"] ?? "none")") }
                }
                for (key, value) in match where key.hasPrefix("flow.") && key != "flow.alerted" {
                    suricataFields += 1
                    let have = (flow?["flow"] as? [String: Any])?[String(key.dropFirst(5))]
                    if let have, "\(have)" == "\(value)" { suricataFieldsMatched += 1 } else { print("  suricata-verify \(test): \(key) want \(value), got \(have ?? "none")") }
                }
            }
        }
        // The reference implementation over every flow of the corpus captures under 2 MB (TCP, UDP, ICMP, ICMPv6, v4 and v6).
        let corpus = try Corpus.require(".")
        let captures = (FileManager.default.enumerator(at: corpus, includingPropertiesForKeys: [.fileSizeKey])?.compactMap { $0 as? URL } ?? [])
            .filter { ["pcap", "pcapng"].contains($0.pathExtension) && ((try? $0.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0) < 2 << 20 }
            .sorted { $0.path < $1.path }.map(\.path)
        var lines: [String] = [], ours: [String] = []
        for capture in captures {
            guard let records = try? flowRecords([capture]) else { continue }
            for r in records {
                guard let id = r["community_id"] as? String, let proto = r["proto"] as? String, ["TCP", "UDP", "ICMP", "IPv6-ICMP"].contains(proto) else { continue }
                let icmp = proto.hasSuffix("ICMP")
                guard !icmp || r["icmp_type"] != nil else { continue }
                let sport = icmp ? r["icmp_type"]! : r["src_port"]!, dport = icmp ? r["icmp_code"]! : r["dest_port"]!
                lines.append("\(proto)\t\(r["src_ip"]!)\t\(r["dest_ip"]!)\t\(sport)\t\(dport)")
                ours.append(id)
            }
        }
        let script = """
        import sys, communityid
        cid = communityid.CommunityID()
        for line in sys.stdin:
            proto, src, dst, sport, dport = line.rstrip("\\n").split("\\t")
            make = {"TCP": communityid.FlowTuple.make_tcp, "UDP": communityid.FlowTuple.make_udp,
                    "ICMP": communityid.FlowTuple.make_icmp, "IPv6-ICMP": communityid.FlowTuple.make_icmp6}[proto]
            print(cid.calc(make(src, dst, int(sport), int(dport))))
        """
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-cid-\(getpid()).tsv").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: input) }
        let (out, status) = try Corpus.run("/bin/sh", ["-c", "\(python) -c '\(script)' < \(input)"])
        XCTAssertEqual(status, 0)
        let reference = out.split(separator: "\n").map(String.init)
        XCTAssertEqual(reference.count, ours.count)
        let agree = zip(reference, ours).filter { $0 == $1 }.count
        let protocols = Dictionary(grouping: lines, by: { $0.prefix { $0 != "\t" } }).mapValues(\.count)
        print("community_id: suricata-verify \(suricataMatched)/\(suricataChecks) (flow counters \(suricataFieldsMatched)/\(suricataFields)); reference implementation \(agree)/\(ours.count) flows (\(protocols.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))")
        for (i, (want, have)) in zip(reference, ours).enumerated() where want != have { print("  \(lines[i]): reference \(want), flowtap \(have)"); break }
        XCTAssertEqual(suricataMatched, suricataChecks)
        XCTAssertEqual(suricataChecks, 6)
        XCTAssertEqual(suricataFieldsMatched, suricataFields)
        XCTAssertEqual(agree, ours.count)
        XCTAssertGreaterThanOrEqual(ours.count, 3936)
    }
}

/// `flows`' TCP analysis against tshark's `tcp.analysis.*` on the same packets, per flow direction:
/// a direction agrees on a field when both count the same number of packets with that flag; directions
/// where neither flags any are left out (they would agree trivially). The handshake RTT agrees within 1 µs.
final class TCPAnalysisDifferentialTests: XCTestCase {
    static let fields = ["retransmission", "fast_retransmission", "spurious_retransmission", "out_of_order", "duplicate_ack", "zero_window"]
    static let ours = ["retransmission": "retransmissions", "fast_retransmission": "fast_retransmissions",
                       "spurious_retransmission": "spurious_retransmissions", "out_of_order": "out_of_order",
                       "duplicate_ack": "duplicate_acks", "zero_window": "zero_windows"]

    func testAgainstTsharksTCPAnalysis() throws {
        guard let tshark = Corpus.tool("tshark") else { throw OracleMissing.error("tshark is needed") }
        var options = TrafficGenerator.Options()
        options.sessions = 800
        options.seed = 41
        options.impairments = .init(reorder: 0.2, retransmit: 0.1, overlap: 0.05, midstream: 0.05, rst: 0.05)
        let generated = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-tcp-analysis-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: generated) }
        let writer = try PcapWriter(path: generated, linkType: .ethernet)
        _ = try TrafficGenerator(options: options).generate { try writer.write(timestamp: $0, bytes: $1) }
        try writer.flush()
        let corpus = try Corpus.require(".")
        let stalled = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-zero-window-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: stalled) }
        try Self.writeZeroWindowConnection(stalled)
        var captures = [generated, stalled]
        captures += (try? FileManager.default.contentsOfDirectory(atPath: corpus.appendingPathComponent("zeek/testing/btest/Traces/tcp").path))?
            .filter { $0.hasSuffix(".pcap") }.sorted().map { corpus.appendingPathComponent("zeek/testing/btest/Traces/tcp/" + $0).path } ?? []
        captures += (FileManager.default.enumerator(at: corpus.appendingPathComponent("suricata-verify/tests"), includingPropertiesForKeys: nil)?
            .compactMap { $0 as? URL } ?? []).filter { $0.path.contains("tcp") && $0.pathExtension == "pcap" }.map(\.path).sorted()

        var agree: [String: Int] = [:], active: [String: Int] = [:]
        var rttAgree = 0, rttTotal = 0
        var examples: [String: [String]] = [:]
        for capture in captures {
            let columns = ["ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst", "tcp.dstport", "tcp.analysis.initial_rtt"] + Self.fields.map { "tcp.analysis." + $0 }
            let (out, status) = try Corpus.run(tshark, ["-r", capture, "-Y", "tcp", "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"] + columns.flatMap { ["-e", $0] })
            guard status == 0 else { continue }
            var theirs: [String: [String: Int]] = [:], theirRTT: [String: Double] = [:]
            for line in out.split(separator: "\n") {
                let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                guard f.count == columns.count else { continue }
                let src = f[0].isEmpty ? f[1] : f[0], dst = f[3].isEmpty ? f[4] : f[3]
                let key = "\(src)|\(f[2])>\(dst)|\(f[5])"
                for (i, field) in Self.fields.enumerated() where !f[7 + i].isEmpty { theirs[key, default: [:]][field, default: 0] += 1 }
                if let rtt = Double(f[6]) { theirRTT[Self.connection(src, f[2], dst, f[5])] = rtt }
            }
            let records = try flowRecords([capture]).filter { $0["proto"] as? String == "TCP" }
            var mine: [String: [String: Int]] = [:], myRTT: [String: Double] = [:]
            for r in records {
                let src = "\(r["src_ip"]!)|\(r["src_port"]!)", dst = "\(r["dest_ip"]!)|\(r["dest_port"]!)"
                let analysis = (r["tcp"] as? [String: Any])?["analysis"] as? [String: Any] ?? [:]
                for (direction, key) in [("toserver", "\(src)>\(dst)"), ("toclient", "\(dst)>\(src)")] {
                    let counts = analysis[direction] as? [String: Any] ?? [:]
                    for field in Self.fields { mine[key, default: [:]][field, default: 0] += counts[Self.ours[field]!] as? Int ?? 0 }
                }
                if let rtt = analysis["rtt_initial"] as? Double { myRTT["\(min(src, dst)) \(max(src, dst))"] = rtt }
            }
            let name = URL(fileURLWithPath: capture).lastPathComponent
            for key in Set(theirs.keys).union(mine.keys) {
                for field in Self.fields {
                    let t = theirs[key]?[field] ?? 0, m = mine[key]?[field] ?? 0
                    guard t > 0 || m > 0 else { continue }
                    active[field, default: 0] += 1
                    if t == m { agree[field, default: 0] += 1 } else { examples[field, default: []].append("\(name) \(key): tshark \(t), flowtap \(m)") }
                }
            }
            for (connection, rtt) in theirRTT {
                rttTotal += 1
                if let m = myRTT[connection], abs(m - rtt) < 1e-6 { rttAgree += 1 } else { examples["initial_rtt", default: []].append("\(name) \(connection): tshark \(rtt), flowtap \(myRTT[connection].map { "\($0)" } ?? "none")") }
            }
        }
        print("tcp analysis vs tshark (\(captures.count) captures, directions where either flags it): "
              + Self.fields.map { "\($0) \(agree[$0] ?? 0)/\(active[$0] ?? 0)" }.joined(separator: ", ") + "; initial_rtt \(rttAgree)/\(rttTotal)")
        for (field, list) in examples.sorted(by: { $0.key < $1.key }) { for e in list.prefix(4) { print("  \(field): \(e)") } }
        for (field, floor) in Self.floors { XCTAssertGreaterThanOrEqual(agree[field] ?? 0, floor, field) }
        XCTAssertGreaterThanOrEqual(rttAgree, Self.rttFloor)
    }

    static func connection(_ a: String, _ aPort: String, _ b: String, _ bPort: String) -> String {
        let x = "\(a)|\(aPort)", y = "\(b)|\(bPort)"
        return "\(min(x, y)) \(max(x, y))"
    }

    /// A connection whose client stops reading: the server fills the window, the client advertises a zero
    /// window three times, then opens it again and the transfer ends.
    static func writeZeroWindowConnection(_ path: String) throws {
        let client = IPAddress(ipv4: 0x0A00_0001), server = IPAddress(ipv4: 0x0A00_0002)
        let writer = try PcapWriter(path: path, linkType: .ethernet)
        var time = Timestamp(seconds: 1_700_000_000, microseconds: 0)
        func send(fromClient: Bool, seq: UInt32, ack: UInt32, flags: TCPFlags, window: UInt16, payload: Int = 0) throws {
            var tcp = PacketBuilder.TCP(sourcePort: fromClient ? 40000 : 80, destinationPort: fromClient ? 80 : 40000, sequence: seq, acknowledgement: ack, flags: flags)
            tcp.window = window
            let frame = PacketBuilder.frame(network: .ipv4(.init(source: fromClient ? client : server, destination: fromClient ? server : client)),
                                            transport: .tcp(tcp), payload: [UInt8](repeating: 0x61, count: payload))
            try writer.write(timestamp: time, bytes: frame)
            time = Timestamp(nanoseconds: time.nanoseconds + 10_000_000)
        }
        try send(fromClient: true, seq: 100, ack: 0, flags: [.syn], window: 8192)
        try send(fromClient: false, seq: 500, ack: 101, flags: [.syn, .ack], window: 8192)
        try send(fromClient: true, seq: 101, ack: 501, flags: [.ack], window: 8192)
        try send(fromClient: true, seq: 101, ack: 501, flags: [.ack, .psh], window: 8192, payload: 20)
        var seq: UInt32 = 501
        for _ in 0 ..< 4 {
            try send(fromClient: false, seq: seq, ack: 121, flags: [.ack], window: 8192, payload: 1000)
            seq += 1000
        }
        for _ in 0 ..< 3 { try send(fromClient: true, seq: 121, ack: seq, flags: [.ack], window: 0) }
        try send(fromClient: true, seq: 121, ack: seq, flags: [.ack], window: 8192)
        try send(fromClient: false, seq: seq, ack: 121, flags: [.ack, .fin], window: 8192, payload: 500)
        try send(fromClient: true, seq: 121, ack: seq + 501, flags: [.ack, .fin], window: 8192)
        try send(fromClient: false, seq: seq + 501, ack: 122, flags: [.ack], window: 8192)
        try writer.flush()
    }

    /// Agreeing directions per field, pinned at what is achieved. The differences, by cause:
    /// - reassembly.pcap: tshark takes three segments for fast retransmissions after duplicate ACKs that
    ///   FlowTap's stricter duplicate-ACK rule (same window, at the sender's next sequence number) does not count;
    /// - split-handshake-4whs/5whs (simultaneous-open and split handshakes): the RTT starts at another SYN,
    ///   and a second SYN is a retransmission to FlowTap;
    /// - fin_retransmission.pcap: a FIN sent again after the peer acknowledged it is spurious to FlowTap.
    static let floors = ["retransmission": 217, "fast_retransmission": 1, "spurious_retransmission": 76, "out_of_order": 272,
                         "duplicate_ack": 12, "zero_window": 1]
    static let rttFloor = 468
}

/// The history letters as records write them: in order, at every length up to the cap, and the cap kept.
final class HistoryLettersTests: XCTestCase {
    func testLettersLentInOrderAtEveryLength() {
        var history = HistoryLetters()
        let letters = Array("ShADadFfTtWwGgRr^QqIiShADadFfTtWwGg".utf8)
        for (i, letter) in letters.enumerated() {
            XCTAssertEqual(history.withLetters { Array($0) }, Array(letters.prefix(min(i, HistoryLetters.capacity))))
            history.append(letter)
        }
        XCTAssertEqual(history.count, HistoryLetters.capacity)
        XCTAssertEqual(history.withLetters { Array($0) }, Array(letters.prefix(HistoryLetters.capacity)))
        XCTAssertEqual(history.withLetters { Array($0) }, history.bytes)
    }
}
