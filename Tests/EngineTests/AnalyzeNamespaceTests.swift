#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TestSupport
import XCTest

/// `flowtap analyze -i` on a veth in a network namespace while tcpreplay sends generated, impaired
/// traffic from another (scripts/incubate-netns.sh, no cells): the live records hold every field the
/// same capture gives when read from the file — all but the times (tcpreplay sends at its own pace) and
/// the `flow_id`, which is made from the first packet's time.
final class AnalyzeNamespaceTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var flowtap: String { URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path }

    /// A record without the fields that depend on when packets were captured, as sorted-key JSON.
    static func timeless(_ line: Substring) throws -> String {
        func strip(_ value: Any) -> Any {
            if var object = value as? [String: Any] {
                for key in ["timestamp", "time", "flow_id", "query_time", "rtt"] { object[key] = nil }
                return object.mapValues(strip)
            }
            if let array = value as? [Any] { return array.map(strip) }
            return value
        }
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return String(decoding: try JSONSerialization.data(withJSONObject: strip(object), options: .sortedKeys), as: UTF8.self)
    }

    func testLiveRecordsHoldEveryFieldOfTheReplayedCapture() throws { try live(threads: 1) }
    func testLiveRecordsWithTwoThreadsHoldEveryFieldOfTheReplayedCapture() throws { try live(threads: 2) }

    func live(threads: Int) throws {
        guard getuid() == 0 else { throw OracleMissing.error("network namespaces need root") }
        guard let ip = Corpus.tool("ip"), let tcpreplay = Corpus.tool("tcpreplay") else { throw OracleMissing.error("ip and tcpreplay are needed") }
        guard FileManager.default.isExecutableFile(atPath: Self.flowtap) else { throw OracleMissing.error("flowtap executable not built") }
        let name = "an\(getpid() % 100_000)\(threads)"
        let script = Self.repository.appendingPathComponent("scripts/incubate-netns.sh").path
        _ = try? Corpus.run(script, ["down", name, "0"])
        let (built, status) = try Corpus.run(script, ["up", name, "0"])
        guard status == 0 else { throw OracleMissing.error("could not build the namespaces: \(built)") }
        defer { _ = try? Corpus.run(script, ["down", name, "0"]) }

        let input = try FlowExportTests.generatedCapture(sessions: 500, seed: UInt64(40 + threads), vlanFraction: 0.1)
        defer { try? FileManager.default.removeItem(atPath: input) }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-analyze-live-\(getpid())-\(threads).json").path
        let errors = out + ".err"
        defer { try? FileManager.default.removeItem(atPath: out); try? FileManager.default.removeItem(atPath: errors) }

        let analyzer = try Namespaces.start(ip: ip, "\(name)-i", [Self.flowtap, "analyze", "-i", "\(name)i0", "--threads", String(threads), "-o", out],
                                            errors: errors)
        usleep(1_000_000)
        let (replayed, replayStatus) = try Corpus.run(ip, ["netns", "exec", "\(name)-s", tcpreplay, "-q", "-i", "\(name)s0", "--pps", "4000", input])
        XCTAssertEqual(replayStatus, 0, replayed)
        usleep(800_000)
        kill(analyzer.processIdentifier, SIGINT)
        analyzer.waitUntilExit()
        let summary = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        print(summary)
        XCTAssertEqual(analyzer.terminationStatus, 0, summary)

        let (offline, offlineStatus) = try Corpus.run(Self.flowtap, ["analyze", "-r", input])
        XCTAssertEqual(offlineStatus, 0)
        let expected = try offline.split(separator: "\n").map(Self.timeless).sorted()
        let got = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map(Self.timeless).sorted()
        XCTAssertGreaterThan(expected.count, 300)
        XCTAssertEqual(got.count, expected.count, summary)
        XCTAssertEqual(got, expected)
        for type in ["http", "dns", "tls"] {
            XCTAssertTrue(got.contains { $0.contains("\"event_type\":\"\(type)\"") }, type)
        }
    }
}
