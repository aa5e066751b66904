import Foundation
import TestSupport
import XCTest

/// One vocabulary across commands, as tcpdump and tshark users type it: `-r` reads (gzip too), a
/// tcpdump filter (`-f` or trailing words) applied before the engine, `-c` counts packets, `-o`
/// writes records, `-w` only ever writes packets, `-C/--config` names a config (`abstract -c`
/// excepted), and the engine knobs on every flow command.
final class CommandVocabularyTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    var sample: String { Self.root.appendingPathComponent("samples/sample.pcap").path }
    var scratch: String = ""

    var flowtap: String {
        get throws {
            let path = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path
            guard FileManager.default.isExecutableFile(atPath: path) else { throw OracleMissing.error("flowtap executable not built beside the tests") }
            return path
        }
    }

    override func setUpWithError() throws {
        scratch = NSTemporaryDirectory() + "flowtap-vocabulary-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: scratch) }

    func run(_ arguments: [String]) throws -> (output: String, errors: String, status: Int32) {
        try Corpus.runCapturingErrors(try flowtap, arguments)
    }

    func gzipped(_ path: String) throws -> String {
        let out = scratch + "/" + URL(fileURLWithPath: path).lastPathComponent + ".gz"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "gzip -c '\(path)' > '\(out)'"]
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        return out
    }

    /// A gzip-compressed capture reads exactly as the plain one, in every command that reads packets,
    /// from a file and from standard input.
    func testGzipCapturesReadAsThePlainOnes() throws {
        let gz = try gzipped(sample)
        for command in [["analyze", "--quiet"], ["streams", "--quiet"], ["stats", "--json", "--quiet"]] {
            let plain = try run(command + ["-r", sample])
            let compressed = try run(command + ["-r", gz])
            XCTAssertEqual(plain.status, 0, "\(command)")
            XCTAssertEqual(compressed.status, 0, "\(command): \(compressed.errors)")
            XCTAssertFalse(plain.output.isEmpty)
            if command[0] == "stats" {
                // Only the file size differs.
                let a = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(plain.output.utf8)) as? [String: Any])
                let b = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(compressed.output.utf8)) as? [String: Any])
                XCTAssertEqual(a["packets"] as? Int, b["packets"] as? Int)
                XCTAssertEqual(a["bytes"] as? Int, b["bytes"] as? Int)
                XCTAssertEqual(a["protocols"] as? [String: Int], b["protocols"] as? [String: Int])
                XCTAssertNotNil(a["protocols"] as? [String: Int])
            } else {
                XCTAssertEqual(plain.output, compressed.output, "\(command)")
            }
        }
        // Two gzip members back to back (cat a.gz b.gz) inflate to two captures back to back, which the
        // reader takes one after the other (as the pcap injection socket does).
        let twice = scratch + "/twice.pcap.gz"
        try (try Data(contentsOf: URL(fileURLWithPath: gz)) + (try Data(contentsOf: URL(fileURLWithPath: gz)))).write(to: URL(fileURLWithPath: twice))
        let once = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try run(["stats", "-r", sample, "--json"]).output.utf8)) as? [String: Any])
        let doubled = try run(["stats", "-r", twice, "--json", "--quiet"])
        XCTAssertEqual(doubled.status, 0, doubled.errors)
        let both = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(doubled.output.utf8)) as? [String: Any])
        XCTAssertEqual(both["packets"] as? Int, (once["packets"] as? Int).map { $0 * 2 })
        // A cut gzip stream: the packets before the cut count, and the command says where it ended.
        let gzData = try Data(contentsOf: URL(fileURLWithPath: gz))
        let cut = scratch + "/cut.pcap.gz"
        try gzData.prefix(gzData.count / 2).write(to: URL(fileURLWithPath: cut))
        let partial = try run(["stats", "-r", cut, "--json", "--quiet"])
        let partialObject = try? JSONSerialization.jsonObject(with: Data(partial.output.utf8)) as? [String: Any]
        let partialPackets = partialObject?["packets"] as? Int ?? 0
        XCTAssertGreaterThan(partialPackets, 0, partial.errors)
        XCTAssertLessThan(partialPackets, once["packets"] as? Int ?? 0)
    }

    /// The filter runs before the engine: analyzing with it equals analyzing what `flowtap filter`
    /// (libpcap) kept, record for record; `-f` and trailing words are the same filter.
    func testTheFilterEqualsPrefilteringWithLibpcap() throws {
        let expression = "tcp port 80 or udp port 53"
        let kept = scratch + "/kept.pcap"
        XCTAssertEqual(try run(["filter", "-r", sample, "-w", kept, expression]).status, 0)
        let prefiltered = try run(["analyze", "-r", kept, "--quiet"])
        let trailing = try run(["analyze", "-r", sample, "--quiet", "tcp", "port", "80", "or", "udp", "port", "53"])
        let option = try run(["analyze", "-r", sample, "--quiet", "-f", expression])
        XCTAssertEqual(prefiltered.status, 0)
        XCTAssertEqual(prefiltered.output.split(separator: "\n").count, 15)
        XCTAssertEqual(trailing.output, prefiltered.output)
        XCTAssertEqual(option.output, prefiltered.output)
        XCTAssertTrue(option.errors.contains("packets the filter rejected"), option.errors)
        // stats and streams agree with the prefiltered file too.
        XCTAssertEqual(try run(["streams", "-r", sample, "--quiet", "-f", expression]).output, try run(["streams", "-r", kept, "--quiet"]).output)
        let stats = try run(["stats", "-r", sample, "--json", "--quiet", expression])
        let statsKept = try run(["stats", "-r", kept, "--json", "--quiet"])
        let a = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(stats.output.utf8)) as? [String: Any])
        let b = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(statsKept.output.utf8)) as? [String: Any])
        XCTAssertEqual(a["packets"] as? Int, b["packets"] as? Int)
        // A filter that libpcap rejects stops the command before it reads, naming the expression.
        let bad = try run(["analyze", "-r", sample, "--quiet", "-f", "tcp port eighty"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.errors.contains("tcp port eighty"), bad.errors)
        // Both forms at once are refused.
        XCTAssertNotEqual(try run(["analyze", "-r", sample, "-f", "tcp", "udp"]).status, 0)
    }

    /// `-c N` stops after N packets, as tcpdump's does: the same as reading a file cut to N packets.
    func testCountStopsAfterThatManyPackets() throws {
        let first = scratch + "/first100.pcap"
        XCTAssertEqual(try run(["filter", "-r", sample, "-w", first, "-c", "100", "ip or ip6"]).status, 0)
        let stats = try run(["stats", "-r", sample, "-c", "100", "--json", "--quiet", "ip or ip6"])
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(stats.output.utf8)) as? [String: Any])
        XCTAssertEqual(object["packets"] as? Int, 100)
        XCTAssertEqual(try run(["streams", "-r", sample, "-c", "100", "--quiet", "ip or ip6"]).output,
                       try run(["streams", "-r", first, "--quiet"]).output)
        XCTAssertEqual(try run(["analyze", "-r", sample, "-c", "100", "--quiet", "ip or ip6"]).output,
                       try run(["analyze", "-r", first, "--quiet"]).output)
        let outDir = scratch + "/abstract"
        let abstract = try run(["abstract", "-c", Self.root.appendingPathComponent("examples/flowtap.yaml").path, "-r", sample, "-o", outDir,
                                "--count", "100", "--threads", "1", "--quiet"])
        XCTAssertEqual(abstract.status, 0, abstract.errors)
        XCTAssertTrue(abstract.errors.hasPrefix("packets 100,"), abstract.errors)
    }

    /// `-o` writes records; `-w` is refused where records are written (it writes packets in every
    /// command), and an output that is an input is refused and left whole.
    func testOutputOptions() throws {
        let records = scratch + "/records.jsonl"
        XCTAssertEqual(try run(["analyze", "-r", sample, "-o", records, "--quiet"]).status, 0)
        XCTAssertEqual(try String(contentsOfFile: records, encoding: .utf8), try run(["analyze", "-r", sample, "--quiet"]).output)
        let w = try run(["analyze", "-r", sample, "-w", records])
        XCTAssertNotEqual(w.status, 0)
        XCTAssertTrue(w.errors.contains("-o"), w.errors)
        let copy = scratch + "/input.pcap"
        try FileManager.default.copyItem(atPath: sample, toPath: copy)
        let size = try FileManager.default.attributesOfItem(atPath: copy)[.size] as? Int
        let clobber = try run(["analyze", "-r", copy, "-o", copy, "--quiet"])
        XCTAssertEqual(clobber.status, 1)
        XCTAssertTrue(clobber.errors.contains("also the input"), clobber.errors)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: copy)[.size] as? Int, size)
        // abstract -o DIR and the old --out-dir write the same streams; streams -o and --output-dir too.
        let config = Self.root.appendingPathComponent("examples/flowtap.yaml").path
        XCTAssertEqual(try run(["abstract", "-c", config, "-r", sample, "-o", scratch + "/a", "--threads", "1", "--quiet"]).status, 0)
        XCTAssertEqual(try run(["abstract", "-c", config, "-r", sample, "--out-dir", scratch + "/b", "--threads", "1", "--quiet"]).status, 0)
        for stream in ["tcp/http", "tcp/tls", "udp/dns", "icmp/icmp"] {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: scratch + "/a/" + stream)),
                           try Data(contentsOf: URL(fileURLWithPath: scratch + "/b/" + stream)), stream)
        }
    }

    /// `analyze --config` (-C) routes by the config; the engine knobs work on analyze as on streams.
    func testConfigAndEngineKnobsOnAnalyze() throws {
        let config = Self.root.appendingPathComponent("examples/flowtap.yaml").path
        let long = try run(["analyze", "-r", sample, "--quiet", "--config", config])
        let short = try run(["analyze", "-r", sample, "--quiet", "-C", config])
        XCTAssertEqual(long.status, 0, long.errors)
        XCTAssertEqual(long.output, short.output)
        XCTAssertTrue(long.errors.contains("by \(config):"), long.errors)
        // --require-syn drops flows whose handshake the capture lacks; --max-flows 1 evicts (counted as compromised in streams).
        let all = try run(["streams", "-r", sample, "--quiet"]).output.split(separator: "\n").count
        let one = try run(["streams", "-r", sample, "--quiet", "--max-flows", "1"])
        XCTAssertTrue(one.errors.contains("compromised"), one.errors)
        XCTAssertFalse(one.errors.contains("compromised 0)"), one.errors)
        // Evicted flows end early and start again as new flows: more records than flows without the limit.
        XCTAssertEqual(all, 40)
        // A TCP flow starts again at any packet after its eviction (as in flows): 220 records.
        XCTAssertEqual(one.output.split(separator: "\n").count, 220)
        let analyzed = try run(["analyze", "-r", sample, "--quiet", "--max-flows", "1", "--gap-timeout", "1", "--overlap-policy", "linux"])
        XCTAssertEqual(analyzed.status, 0, analyzed.errors)
        XCTAssertNotEqual(try run(["analyze", "-r", sample, "--overlap-policy", "nonsense"]).status, 0)
    }
}
