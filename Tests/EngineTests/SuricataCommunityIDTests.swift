import Engine
import FlowCore
import Foundation
import Outputs
import TestSupport
import XCTest

/// suricata-verify's community-id-ipv4 and community-id-ipv6 tests: every check's record (a `tls` event
/// and a `flow` event per connection) has a FlowTap counterpart — `analyze`'s TLS record and `flows`'
/// record of the same connection — with the same Community ID, endpoints, SNI and TLS version name.
final class SuricataCommunityIDTests: XCTestCase {
    /// An address in one spelling (Suricata writes IPv6 in full, FlowTap compressed).
    static func canonical(_ text: String) -> String {
        var v6 = in6_addr(), v4 = in_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: v6) { $0.map { String($0) }.joined(separator: ".") } }
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: v4) { $0.map { String($0) }.joined(separator: ".") } }
        return text
    }

    static func records(_ pcap: String, flows: Bool, seed: UInt16) throws -> [[String: Any]] {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-cid-\(getpid())-\(flows).json").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let writer = try RecordWriter(path: out)
        if flows {
            var session = FlowsSession(engineConfig: FlowEngineConfig())
            session.communityIDSeed = seed
            _ = try session.run(files: [pcap], output: writer)
        } else {
            var session = AnalyzeSession(settings: nil, engineConfig: FlowEngineConfig())
            session.communityIDSeed = seed
            _ = try session.run(files: [pcap], output: writer)
        }
        try writer.finish()
        return try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func testCommunityIDsEqualSuricataVerifysExpectations() throws {
        var checked = 0
        for test in ["community-id-ipv4", "community-id-ipv6"] {
            let dir = try Corpus.require("suricata-verify/tests/\(test)")
            let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("expected.json"))) as? [String: Any])
            let pcap = dir.appendingPathComponent(expected["pcap"] as? String ?? "input.pcap").path
            // Each test's suricata.yaml names its Community ID seed.
            let yaml = try String(contentsOf: dir.appendingPathComponent("suricata.yaml"), encoding: .utf8)
            let seedLine = yaml.split(separator: "\n").first { $0.contains("community-id-seed:") }
            let seed = UInt16(seedLine?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "0") ?? 0
            XCTAssertEqual(seed, 7, test)
            let analyzed = try Self.records(pcap, flows: false, seed: seed), flows = try Self.records(pcap, flows: true, seed: seed)
            for check in expected["checks"] as? [[String: Any]] ?? [] {
                guard let filter = check["filter"] as? [String: Any], let match = filter["match"] as? [String: Any],
                      let type = match["event_type"] as? String, type == "tls" || type == "flow" else { continue }
                let candidates = (type == "flow" ? flows : analyzed).filter { r in
                    r["event_type"] as? String == type
                        && Self.canonical(r["src_ip"] as? String ?? "") == Self.canonical(match["src_ip"] as? String ?? "?")
                        && Self.canonical(r["dest_ip"] as? String ?? "") == Self.canonical(match["dest_ip"] as? String ?? "?")
                        && r["src_port"] as? Int == match["src_port"] as? Int && r["dest_port"] as? Int == match["dest_port"] as? Int
                        && r["proto"] as? String == match["proto"] as? String
                }
                XCTAssertEqual(candidates.count, filter["count"] as? Int, "\(test): \(type) \(match)")
                guard let r = candidates.first else { continue }
                XCTAssertEqual(r["community_id"] as? String, match["community_id"] as? String, "\(test): \(type)")
                if let sni = match["tls.sni"] as? String { XCTAssertEqual((r["client"] as? [String: Any])?["sni"] as? String, sni, test) }
                if let version = match["tls.version"] as? String {
                    XCTAssertEqual((r["server"] as? [String: Any])?["version_name"] as? String, version, test)
                }
                if let app = match["app_proto"] as? String { XCTAssertEqual(r["app_proto"] as? String, app, test) }
                // The TLS record and the flow record of the connection share a flow_id.
                if type == "flow" {
                    let tls = analyzed.first { $0["community_id"] as? String == match["community_id"] as? String }
                    XCTAssertEqual(tls?["flow_id"] as? Int, r["flow_id"] as? Int, "\(test): flow_id of the tls and flow records")
                }
                checked += 1
            }
        }
        print("suricata-verify community-id: \(checked) checks agree")
        XCTAssertEqual(checked, 6)
    }
}
