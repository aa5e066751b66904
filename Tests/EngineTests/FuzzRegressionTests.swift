import Foundation
import TestSupport
import XCTest

/// Inputs kept in Tests/Fuzz/<target>/ (findings once fixed, and the headers that once trapped
/// loopback7) replayed through the fuzz targets in an ordinary build: each must run without a trap.
final class FuzzRegressionTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let targets = ["decoder", "capture", "gzip", "engine", "flows", "collect", "http", "dns", "tls", "quic", "event-reader", "loopback7", "config", "forward", "incubate", "report", "telemetry", "rules-cache", "shard"]

    func testSavedInputsReplayWithoutATrap() throws {
        let fuzz = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap-fuzz").path
        guard FileManager.default.isExecutableFile(atPath: fuzz) else { throw OracleMissing.error("flowtap-fuzz not built beside the tests") }
        let sample = Self.root.appendingPathComponent("samples/sample.pcap").path
        var replayed = 0
        for target in Self.targets {
            let dir = Self.root.appendingPathComponent("Tests/Fuzz/\(target)")
            var files = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted().map { dir.appendingPathComponent($0).path }
            // Every target also reads the sample capture and the example config as raw bytes.
            files += [sample, Self.root.appendingPathComponent("examples/flowtap.yaml").path]
            let (output, status) = try Corpus.run(fuzz, [target] + files)
            XCTAssertEqual(status, 0, "\(target): \(output)")
            XCTAssertTrue(output.contains("\(files.count) inputs replayed, no trap"), "\(target): \(output)")
            replayed += files.count
        }
        // Two shared inputs per target, and the 26 files saved under Tests/Fuzz/ (13 findings and headers,
        // 6 exporters' datagrams for collect, 2 rule files for forward, 1 record file for report, 3 requests for telemetry,
        // 1 valid rules-cache file).
        XCTAssertEqual(replayed, 2 * Self.targets.count + 26)
    }
}
