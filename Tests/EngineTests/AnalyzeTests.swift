import FlowDispatch
import FlowCore
import Capture
import Engine
import Flows
import Foundation
import PacketCore
import TrafficGen
import XCTest

/// `flowtap analyze`'s pipeline on generated traffic with every impairment: each HTTP method, URI, host and
/// status, each DNS query name and each TLS SNI the generator wrote comes out in a record.
final class AnalyzeTests: XCTestCase {
    func testRecordsMatchWhatTheGeneratorWrote() throws {
        let options = TrafficGenerator.Options.analyzed(sessions: 1500, seed: 21)
        var records: [[String: Any]] = []
        let sink = AnalyzeSink { line in
            if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] { records.append(object) }
        }
        let engine = FlowEngine(sink: sink)
        var sessions: [TrafficGenerator.SessionRecord] = []
        _ = TrafficGenerator(options: options).generate({ time, frame in
            frame.withUnsafeBytes { engine.process(PacketRecord(timestamp: time, originalLength: $0.count, linkType: .ethernet, interfaceID: 0, bytes: $0)) }
        }, sessions: { sessions.append($0) })
        engine.finish()
        sink.http.closeAll(time: 0)

        var expectedHTTP: [String] = [], expectedDNS: [String] = [], expectedSNI: [String] = []
        for record in sessions {
            let s = record.session
            switch s.kind {
            case .http:
                let requests = record.datagrams(fromClient: true), responses = record.datagrams(fromClient: false)
                for (request, response) in zip(requests, responses) {
                    let lines = String(decoding: request, as: UTF8.self).components(separatedBy: "\r\n")
                    let parts = lines[0].split(separator: " ")
                    let host = lines.first { $0.lowercased().hasPrefix("host: ") }.map { String($0.dropFirst(6)) } ?? ""
                    let status = String(decoding: response, as: UTF8.self).split(separator: " ")[1]
                    expectedHTTP.append("\(s.client):\(s.clientPort) \(parts[0]) \(parts[1]) \(host) \(status)")
                }
            case .dns:
                // The query name from the question, label by label (RFC 1035 §4.1.2).
                let query = record.datagrams(fromClient: true)[0]
                var labels: [String] = [], i = 12
                while i < query.count && query[i] != 0 {
                    labels.append(String(decoding: query[i + 1 ... i + Int(query[i])], as: UTF8.self))
                    i += Int(query[i]) + 1
                }
                // Both the query and the response carry the question.
                expectedDNS += [labels.joined(separator: "."), labels.joined(separator: ".")]
            case .tls:
                let hello = String(decoding: record.datagrams(fromClient: true)[0], as: UTF8.self)
                if let r = hello.range(of: #"secure[0-9]+\.example"#, options: .regularExpression) { expectedSNI.append(String(hello[r])) }
            default:
                break
            }
        }
        var gotHTTP: [String] = [], gotDNS: [String] = [], gotSNI: [String] = []
        for r in records {
            switch r["type"] as? String {
            case "http":
                guard let c = r["client"] as? [String: Any], let m = c["method"] as? [String: Any], let sv = r["server"] as? [String: Any],
                      let resp = sv["response"] as? [String: Any] else { continue }
                let host = (c["header"] as? [String: Any])?["host"] as? String ?? ""
                gotHTTP.append("\(c["ip"]!):\(c["port"]!) \(m["method"]!) \(m["uri"]!) \(host) \(resp["code"]!)")
            case "dns":
                for q in r["query"] as? [[String: Any]] ?? [] { gotDNS.append(q["name"] as? String ?? "") }
            case "tls":
                if let sni = (r["client"] as? [String: Any])?["sni"] as? String { gotSNI.append(sni) }
            default:
                break
            }
        }
        print("analyze: HTTP \(gotHTTP.count)/\(expectedHTTP.count), DNS names \(gotDNS.count)/\(expectedDNS.count), TLS SNI \(gotSNI.count)/\(expectedSNI.count)")
        XCTAssertGreaterThan(expectedHTTP.count, 300)
        XCTAssertEqual(gotHTTP.sorted(), expectedHTTP.sorted())
        XCTAssertEqual(gotDNS.sorted(), expectedDNS.sorted())
        XCTAssertEqual(gotSNI.sorted(), expectedSNI.sorted())
    }
}

extension TrafficGenerator.Options {
    /// HTTP, TLS and DNS sessions among SSH and plain TCP ones, with every impairment: traffic for the analyzers.
    static func analyzed(sessions: Int, seed: UInt64) -> Self {
        var options = Self()
        options.sessions = sessions
        options.seed = seed
        options.kinds = [.http, .tls, .dns, .ssh, .tcp]
        options.impairments = .mix
        return options
    }
}
