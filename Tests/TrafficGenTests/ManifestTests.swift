import Capture
import Foundation
import PacketCore
import TestSupport
import TrafficGen
import XCTest

/// The manifest file, checked against the capture it describes, and both
/// checked against tshark when it is installed.
final class ManifestTests: XCTestCase {
    static func options(sessions: Int, seed: UInt64) -> TrafficGenerator.Options {
        var options = TrafficGenerator.Options()
        options.sessions = sessions
        options.seed = seed
        options.ipv6Fraction = 0.3
        options.vlanFraction = 0.2
        options.impairments = ImpairmentTests.heavy
        return options
    }

    static func readManifest(_ path: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
            return try XCTUnwrap(object as? [String: Any], "not an object: \(line)")
        }
    }

    /// Every line has the documented fields, and its hashes and lengths are
    /// those of the streams the reference model rebuilds from the capture.
    func testManifestDescribesTheCapture() throws {
        let pcap = Temporary.path(".pcap"), manifest = Temporary.path(".jsonl")
        defer { unlink(pcap); unlink(manifest) }
        let options = Self.options(sessions: 400, seed: 21)
        let summary = try TrafficGenerator(options: options).write(to: pcap, manifest: manifest)
        var records: [TrafficGenerator.SessionRecord] = []
        _ = TrafficGenerator(options: options).generate({ _, _ in }, sessions: { records.append($0) })
        let model = try ReferenceModel(path: pcap, records: records)
        let lines = try Self.readManifest(manifest)
        XCTAssertEqual(lines.count, summary.sessions)

        for (line, record) in zip(lines, records) {
            let s = record.session
            XCTAssertEqual(line["id"] as? Int, record.id)
            XCTAssertEqual(line["kind"] as? String, s.kind.rawValue)
            XCTAssertEqual(line["l3"] as? String, s.client.isIPv6 ? "ipv6" : "ipv4")
            XCTAssertEqual(line["l4"] as? String, s.kind.transport.rawValue)
            let client = try XCTUnwrap(line["client"] as? [String: Any]), server = try XCTUnwrap(line["server"] as? [String: Any])
            XCTAssertEqual((client["ip"] as? String).flatMap(IPAddress.init), s.client)
            XCTAssertEqual((server["ip"] as? String).flatMap(IPAddress.init), s.server)
            if s.kind.transport == .icmp {
                XCTAssertEqual(line["icmp_id"] as? Int, Int(s.clientPort))
                XCTAssertEqual(client["port"] as? Int, 0)
            } else {
                XCTAssertTrue(line["icmp_id"] is NSNull)
                XCTAssertEqual(client["port"] as? Int, Int(s.clientPort))
                XCTAssertEqual(server["port"] as? Int, Int(s.serverPort))
            }
            if let vlan = s.vlan { XCTAssertEqual(line["vlan"] as? Int, Int(vlan)) } else { XCTAssertTrue(line["vlan"] is NSNull) }
            XCTAssertEqual(line["impairments"] as? [String], record.impairments.map(\.rawValue))
            XCTAssertEqual(line["packets"] as? Int, record.packets)

            // What the capture actually delivers, per side.
            let delivered: (client: [UInt8], server: [UInt8])
            switch s.kind.transport {
            case .tcp:
                let connection = try XCTUnwrap(model.tcp[record.id])
                delivered = (connection.client.stream.bytes, connection.server.stream.bytes)
                XCTAssertTrue(line["client_datagrams"] is NSNull)
            case .udp, .icmp:
                let lists = model.datagrams[record.id] ?? ([], [])
                delivered = (lists.client.flatMap { $0 }, lists.server.flatMap { $0 })
                XCTAssertEqual(line["client_datagrams"] as? [Int], lists.client.map(\.count))
                XCTAssertEqual(line["server_datagrams"] as? [Int], lists.server.map(\.count))
            }
            XCTAssertEqual(line["client_bytes"] as? Int, delivered.client.count, "session \(record.id)")
            XCTAssertEqual(line["server_bytes"] as? Int, delivered.server.count, "session \(record.id)")
            XCTAssertEqual(line["client_sha256"] as? String, SHA256.hex(delivered.client), "session \(record.id)")
            XCTAssertEqual(line["server_sha256"] as? String, SHA256.hex(delivered.server), "session \(record.id)")
        }
    }

    /// Differential: tshark (its own IP defragmentation and TCP reassembly)
    /// finds nothing malformed and follows every TCP and UDP stream to the
    /// manifest's bytes.
    func testTsharkFindsNothingMalformedAndFollowsTheExpectedStreams() throws {
        guard let tshark = Corpus.tool("tshark") else { throw OracleMissing.error("tshark not installed") }
        let pcap = Temporary.path(".pcap")
        defer { unlink(pcap) }
        var records: [TrafficGenerator.SessionRecord] = []
        let writer = try PcapWriter(path: pcap, linkType: .ethernet)
        _ = try TrafficGenerator(options: Self.options(sessions: 400, seed: 33)).generate(
            { try writer.write(timestamp: $0, bytes: $1) }, sessions: { records.append($0) })
        try writer.flush()

        // Wireshark tags an overlapping retransmission of a desegmented PDU as
        // malformed ("New fragment overlaps old data"); a real problem is a
        // conflict (different bytes), a bad checksum, or any other malformation.
        let bad = """
            (_ws.malformed && !(_ws.expert.message contains "overlaps old data")) \
            || tcp.segment.overlap.conflict || ip.fragment.overlap.conflict || ipv6.fragment.overlap.conflict \
            || ip.fragment.error || ipv6.fragment.error || tcp.segment.error \
            || ip.checksum.status == 0 || tcp.checksum.status == 0 || udp.checksum.status == 0 \
            || icmp.checksum.status == 0 || icmpv6.checksum.status == 0
            """
        let (badFrames, status) = try Corpus.run(tshark, ["-n", "-r", pcap, "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
                                                         "-o", "udp.check_checksum:TRUE", "-Y", bad])
        XCTAssertEqual(status, 0)
        XCTAssertEqual(badFrames, "", "tshark objects to these frames")

        let tcpCount = records.filter { $0.transport == .tcp }.count
        let udpCount = records.filter { $0.transport == .udp }.count
        var arguments = ["-n", "-r", pcap, "-q"]
        for i in 0 ..< tcpCount { arguments += ["-z", "follow,tcp,raw,\(i)"] }
        for i in 0 ..< udpCount { arguments += ["-z", "follow,udp,raw,\(i)"] }
        let (follow, followStatus) = try Corpus.run(tshark, arguments)
        XCTAssertEqual(followStatus, 0)

        func endpoint(_ address: IPAddress, _ port: UInt16) -> String {
            address.isIPv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
        }
        var byEndpoint: [String: (TrafficGenerator.SessionRecord, Bool)] = [:]
        for record in records where record.transport != .icmp {
            let s = record.session
            byEndpoint[endpoint(s.client, s.clientPort) + " " + endpoint(s.server, s.serverPort)] = (record, true)
            byEndpoint[endpoint(s.server, s.serverPort) + " " + endpoint(s.client, s.clientPort)] = (record, false)
        }
        var followed = Set<Int>()
        for block in follow.components(separatedBy: "===================================================================") {
            let lines = block.split(separator: "\n", omittingEmptySubsequences: true)
            guard lines.count >= 4, lines[0].hasPrefix("Follow:"),
                  let node0 = lines[2].split(separator: " ").last, let node1 = lines[3].split(separator: " ").last else { continue }
            guard let (record, node0IsClient) = byEndpoint["\(node0) \(node1)"] else {
                XCTFail("tshark followed a stream of no session: \(node0) \(node1)")
                continue
            }
            var data: ([UInt8], [UInt8]) = ([], [])
            for line in lines.dropFirst(4) {
                let bytes = hexBytes(line.trimmingCharacters(in: .whitespaces))
                if line.hasPrefix("\t") { data.1 += bytes } else { data.0 += bytes }
            }
            let (client, server) = node0IsClient ? data : (data.1, data.0)
            XCTAssertEqual(client, record.stream(fromClient: true), "session \(record.id) client \(record.impairments.map(\.rawValue))")
            XCTAssertEqual(server, record.stream(fromClient: false), "session \(record.id) server \(record.impairments.map(\.rawValue))")
            followed.insert(record.id)
        }
        XCTAssertEqual(followed.count, tcpCount + udpCount, "streams tshark followed")
    }
}
