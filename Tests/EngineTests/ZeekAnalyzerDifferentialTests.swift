import Engine
import Foundation
import TestSupport
import XCTest

/// The built-in analyzers against Zeek's own baselines (http.log, dns.log, ssl.log in the corpus) on the traces
/// those baselines were made from: HTTP method/host/URI/status, DNS query names, TLS SNI, each baseline row
/// matched by a record of the same connection (DNS: and the same transaction ID).
///
/// Read with Zeek's meaning: Zeek logs DNS names lower-cased (names compare case-insensitively, RFC 4343) and,
/// for a message without a question (mDNS announcements), the answer's name as `query`, and for an UPDATE
/// (RFC 2136) the names in its prerequisite and update sections; it logs URIs
/// percent-decoded. Remaining disagreements, by cause:
/// - Teredo and GTP-U tunnels whose inner flows the engine does not decapsulate (core.tunnels.*).
/// - A request line without version answered with a status line (http-methods "GET /HTTP/1.1", also with
///   CCM_POST and other methods): Zeek reads the answer as an HTTP/0.9 body and logs no status; FlowTap
///   parses the status line.
final class ZeekAnalyzerDifferentialTests: XCTestCase {
    /// Lower bounds on matched baseline rows per log; raise them when the analyzers improve.
    static let floors = ["dns": 36, "http": 47, "tls": 4]

    /// A connection named by its two endpoints, in either order.
    static func connection(_ ip1: Any?, _ port1: Any?, _ ip2: Any?, _ port2: Any?) -> String {
        let a = "\(ip1 ?? "")|\(port1 ?? "")", b = "\(ip2 ?? "")|\(port2 ?? "")"
        return a < b ? "\(a) \(b)" : "\(b) \(a)"
    }

    /// Rows of a Zeek TSV log as [column: value] ("-" and "(empty)" become "").
    static func zeekLog(_ text: String) -> [[String: String]] {
        var fields: [String] = []
        var rows: [[String: String]] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("#fields") { fields = line.split(separator: "\t").dropFirst().map(String.init); continue }
            if line.hasPrefix("#") { continue }
            let values = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            var row: [String: String] = [:]
            for (i, f) in fields.enumerated() where i < values.count { row[f] = values[i] == "-" || values[i] == "(empty)" ? "" : values[i] }
            rows.append(row)
        }
        return rows
    }

    func testAgainstZeekBaselines() throws {
        let root = try Corpus.require(".")
        let manifest = try String(contentsOf: root.appendingPathComponent("MANIFEST.tsv"), encoding: .utf8)
        var matched: [String: Int] = [:], total: [String: Int] = [:]
        var misses: [String] = []
        for line in manifest.split(separator: "\n") {
            let cols = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard cols.count >= 8, cols[0].hasPrefix("zeek/testing/btest/Baseline/"), !cols[0].contains("quic"),
                  let kind = ["http.log": "http", "dns.log": "dns", "ssl.log": "tls"][URL(fileURLWithPath: cols[0]).lastPathComponent],
                  let on = cols[7].range(of: " on ") else { continue }
            let traces = cols[7][on.upperBound...].split(separator: ",").map { root.appendingPathComponent("zeek/testing/btest/Traces/" + $0.trimmingCharacters(in: .whitespaces)).path }
            guard traces.allSatisfy({ FileManager.default.fileExists(atPath: $0) }),
                  let text = try? String(contentsOf: root.appendingPathComponent(cols[0]), encoding: .utf8) else { continue }
            // Every baseline row is matched on its own connection (and DNS on its transaction ID): a value the
            // analyzers found on another connection does not count.
            var expected: [(connection: String, value: String)] = []
            for r in Self.zeekLog(text) {
                // HTTP and TLS: the client's endpoint names the connection (a request without a response has no server in its record).
                let connection = kind == "dns" ? Self.connection(r["id.orig_h"] ?? "", r["id.orig_p"] ?? "", r["id.resp_h"] ?? "", r["id.resp_p"] ?? "")
                    : "\(r["id.orig_h"] ?? "")|\(r["id.orig_p"] ?? "")"
                switch kind {
                // Zeek logs status 0 for a request without a response; FlowTap's record then has no server.
                case "http":
                    guard let method = r["method"], !method.isEmpty else { continue }
                    expected.append((connection, "\(method) \(r["host"] ?? "") \(r["uri"] ?? "") \(r["status_code"] == "0" ? "" : r["status_code"] ?? "")"))
                case "dns":
                    guard let query = r["query"], !query.isEmpty else { continue }
                    expected.append((connection + " #\(r["trans_id"] ?? "")", query.lowercased()))
                default:
                    guard let name = r["server_name"], !name.isEmpty else { continue }
                    expected.append((connection, name))
                }
            }
            guard !expected.isEmpty, let records = try? analyzeRecords(traces) else { continue }
            var got: [String: [String]] = [:]
            for r in records where r["type"] as? String == kind {
                switch kind {
                case "http":
                    guard let c = r["client"] as? [String: Any] else { continue }
                    let m = c["method"] as? [String: Any]
                    let code = ((r["server"] as? [String: Any])?["response"] as? [String: Any])?["code"] as? String ?? ""
                    let uri = m?["uri"] as? String ?? ""
                    got["\(c["ip"] ?? "")|\(c["port"] ?? "")", default: []].append("\(m?["method"] ?? "") \((c["header"] as? [String: Any])?["host"] ?? "") \(uri.removingPercentEncoding ?? uri) \(code)")
                case "dns":
                    let src = r["src"] as? [String: Any], dst = r["dst"] as? [String: Any]
                    var named = r["query"] as? [[String: Any]] ?? []
                    if named.isEmpty { named = r["answer"] as? [[String: Any]] ?? [] }
                    // RFC 2136 UPDATE: Zeek logs the names of the prerequisite and update sections.
                    if r["op"] as? Int == 5 { named += (r["answer"] as? [[String: Any]] ?? []) + (r["authority"] as? [[String: Any]] ?? []) }
                    let connection = Self.connection(src?["ip"], src?["port"], dst?["ip"], dst?["port"]) + " #\(r["id"] ?? "")"
                    for q in named { got[connection, default: []].append((q["name"] as? String ?? "").lowercased()) }
                default:
                    guard let c = r["client"] as? [String: Any], let sni = c["sni"] as? String else { continue }
                    got["\(c["ip"] ?? "")|\(c["port"] ?? "")", default: []].append(sni)
                }
            }
            for (connection, value) in expected {
                total[kind, default: 0] += 1
                // Each record answers one baseline row (per connection, in any order).
                if let i = got[connection]?.firstIndex(of: value) {
                    matched[kind, default: 0] += 1
                    if kind != "dns" { got[connection]!.remove(at: i) }
                } else {
                    misses.append("\(kind) \(URL(fileURLWithPath: cols[0]).deletingLastPathComponent().lastPathComponent) \(connection): \(value)")
                }
            }
        }
        print("zeek analyzers: " + total.keys.sorted().map { "\($0) \(matched[$0] ?? 0)/\(total[$0]!)" }.joined(separator: ", "))
        for m in misses.prefix(40) { print("  missing " + m) }
        XCTAssertGreaterThan(total.values.reduce(0, +), 20)
        for (kind, floor) in Self.floors { XCTAssertGreaterThanOrEqual(matched[kind] ?? 0, floor, kind) }
    }
}
