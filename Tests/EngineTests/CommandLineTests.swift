import Foundation
import TestSupport
import XCTest

/// The `flowtap` executable as a user runs it.
final class CommandLineTests: XCTestCase {
    var flowtap: String {
        get throws {
            let path = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path
            guard FileManager.default.isExecutableFile(atPath: path) else { throw OracleMissing.error("flowtap executable not built beside the tests") }
            return path
        }
    }

    /// The total printed by `flowtap stats` equals the number of packets tcpdump (libpcap) reads.
    func testStatsPacketCountMatchesTcpdump() throws {
        guard let tcpdump = Corpus.tool("tcpdump") else { throw OracleMissing.error("tcpdump not installed") }
        let dir = try Corpus.require("ndpi-4.2/pcap")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix("pcap") }.sorted().prefix(60)
        var compared = 0
        for name in names {
            let path = dir.appendingPathComponent(name).path
            let (counted, status) = try Corpus.run(tcpdump, ["--count", "-r", path])
            guard status == 0, let tcpdumpCount = Int(counted.split(separator: " ").first ?? "") else { continue }
            let (text, ourStatus) = try Corpus.run(try flowtap, ["stats", "--json", "-r", path])
            XCTAssertEqual(ourStatus, 0, name)
            let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
            XCTAssertEqual(object?["packets"] as? Int, tcpdumpCount, name)
            let (plain, _) = try Corpus.run(try flowtap, ["stats", "-r", path])
            XCTAssertTrue(plain.contains("\npackets         \(tcpdumpCount)\n"), name)
            compared += 1
        }
        XCTAssertGreaterThan(compared, 20)
    }

    func testHelpHasExamplesAndErrorsNameTheProblem() throws {
        let commands = [["--help"], ["analyze", "--help"], ["abstract", "--help"], ["analyzer", "--help"], ["stats", "--help"],
                        ["filter", "--help"], ["streams", "--help"], ["generate", "--help"]]
        for command in commands {
            let (text, status) = try Corpus.run(try flowtap, command)
            XCTAssertEqual(status, 0, "\(command)")
            XCTAssertTrue(text.contains("Examples:"), "\(command)")
        }
        let bench = URL(fileURLWithPath: try flowtap).deletingLastPathComponent().appendingPathComponent("flowtap-bench").path
        for command in [["--help"], ["read", "--help"], ["pipeline", "--help"], ["http", "--help"], ["flood", "--help"]] {
            let (text, status) = try Corpus.run(bench, command)
            XCTAssertEqual(status, 0, "flowtap-bench \(command)")
            XCTAssertTrue(text.contains("Examples:"), "flowtap-bench \(command)")
        }
        // The product no longer carries the benchmarks.
        XCTAssertFalse(try Corpus.run(try flowtap, ["--help"]).0.contains("\n  bench "))
        for command in ["stats", "analyze", "streams"] {
            let (_, errors, status) = try Corpus.runCapturingErrors(try flowtap, [command, "-r", "/nonexistent.pcap"])
            XCTAssertEqual(status, 1, command)
            XCTAssertTrue(errors.contains("flowtap \(command): /nonexistent.pcap") && errors.contains("cannot open"), "\(command): \(errors)")
        }
    }
}
