import Engine
import Foundation
import TestSupport
import XCTest

/// The built-in analyzers against Zeek's own baselines (http.log, dns.log, ssl.log in the corpus) on the traces
/// those baselines were made from: HTTP method/host/URI/status, DNS query names, TLS SNI.
final class ZeekAnalyzerDifferentialTests: XCTestCase {
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

    func analyze(_ traces: [String]) throws -> [[String: Any]] {
        var records: [[String: Any]] = []
        let sink = AnalyzeSink { line in
            if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] { records.append(object) }
        }
        _ = try FlowRunner().run(files: traces, sink: sink)
        sink.http.closeAll(time: 0)
        return records
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
            let expected: [String]
            switch kind {
            // Zeek logs status 0 for a request without a response; FlowTap's record then has no server.
            case "http": expected = Self.zeekLog(text).compactMap { r in
                r["method"].flatMap { $0.isEmpty ? nil : "\($0) \(r["host"] ?? "") \(r["uri"] ?? "") \(r["status_code"] == "0" ? "" : r["status_code"] ?? "")" }
            }
            case "dns": expected = Self.zeekLog(text).compactMap { r in r["query"].flatMap { $0.isEmpty ? nil : $0 } }
            default: expected = Self.zeekLog(text).compactMap { r in r["server_name"].flatMap { $0.isEmpty ? nil : $0 } }
            }
            guard !expected.isEmpty, let records = try? analyze(traces) else { continue }
            var got = Set<String>()
            for r in records where r["type"] as? String == kind {
                switch kind {
                case "http":
                    let c = r["client"] as? [String: Any], m = c?["method"] as? [String: Any]
                    let code = ((r["server"] as? [String: Any])?["response"] as? [String: Any])?["code"] as? String ?? ""
                    got.insert("\(m?["method"] ?? "") \((c?["header"] as? [String: Any])?["host"] ?? "") \(m?["uri"] ?? "") \(code)")
                case "dns":
                    for q in r["query"] as? [[String: Any]] ?? [] { got.insert(q["name"] as? String ?? "") }
                default:
                    if let sni = (r["client"] as? [String: Any])?["sni"] as? String { got.insert(sni) }
                }
            }
            for e in expected {
                total[kind, default: 0] += 1
                if got.contains(e) { matched[kind, default: 0] += 1 } else { misses.append("\(kind) \(URL(fileURLWithPath: cols[0]).deletingLastPathComponent().lastPathComponent): \(e)") }
            }
        }
        print("zeek analyzers: " + total.keys.sorted().map { "\($0) \(matched[$0] ?? 0)/\(total[$0]!)" }.joined(separator: ", "))
        for m in misses.prefix(40) { print("  missing " + m) }
        let all = total.values.reduce(0, +), hit = matched.values.reduce(0, +)
        XCTAssertGreaterThan(all, 20)
        XCTAssertGreaterThanOrEqual(Double(hit) / Double(max(all, 1)), 0.6)
    }
}
