import Foundation
import TestSupport
import XCTest

/// `flowtap-bench pipeline --json` as a script uses it: every stage and peer sees the whole capture.
/// (Functional only: nothing here depends on how fast anything ran.)
final class BenchPipelineCommandTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Whether `path` is on a tmpfs mount (/proc/self/mounts, longest matching mount point).
    static func isTmpfs(_ path: String) -> Bool {
        let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        var best: (length: Int, type: String)?
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3 else { continue }
            let point = String(fields[1])
            if point == "/" || path == point || path.hasPrefix(point + "/"), point.count >= (best?.length ?? -1) {
                best = (point.count, String(fields[2]))
            }
        }
        return best?.type == "tmpfs"
    }

    func testInPlaceReadsTheOriginalCapture() throws {
        let flowtap = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path
        guard FileManager.default.isExecutableFile(atPath: flowtap) else { throw OracleMissing.error("flowtap executable not built beside the tests") }
        let sample = Self.root.appendingPathComponent("samples/sample.pcap").path
        let bench = URL(fileURLWithPath: flowtap).deletingLastPathComponent().appendingPathComponent("flowtap-bench").path
        let (text, status) = try Corpus.run(bench, ["pipeline", "-r", sample, "--runs", "1", "--json", "--in-place"])
        XCTAssertEqual(status, 0, text)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
        XCTAssertEqual(report["reading"] as? String, "read in place (--in-place)")
        let stages = try XCTUnwrap(report["stages"] as? [[String: Any]])
        let commands = stages.compactMap { $0["command"] as? String }
        XCTAssertFalse(commands.isEmpty)
        for command in commands { XCTAssertTrue(command.contains("-r \(sample)"), command) }
    }

    func testJSONHasEveryStageWithTheCapturesPacketCount() throws {
        let flowtap = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path
        guard FileManager.default.isExecutableFile(atPath: flowtap) else { throw OracleMissing.error("flowtap executable not built beside the tests") }
        let sample = Self.root.appendingPathComponent("samples/sample.pcap").path

        let (statsText, statsStatus) = try Corpus.run(flowtap, ["stats", "--json", "-r", sample])
        XCTAssertEqual(statsStatus, 0)
        let stats = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(statsText.utf8)) as? [String: Any])
        let packets = try XCTUnwrap(stats["packets"] as? Int)
        XCTAssertGreaterThan(packets, 0)

        let bench = URL(fileURLWithPath: flowtap).deletingLastPathComponent().appendingPathComponent("flowtap-bench").path
        let (text, status) = try Corpus.run(bench, ["pipeline", "-r", sample, "--runs", "1", "--json"])
        XCTAssertEqual(status, 0, text)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
        XCTAssertEqual(report["packets"] as? Int, packets)
        XCTAssertEqual(report["runs"] as? Int, 1)

        // The capture is read from a copy in /dev/shm when that is tmpfs (so a VM's page cache cannot drop it
        // between rounds), and the copy is gone afterwards.
        let reading = try XCTUnwrap(report["reading"] as? String)
        if Self.isTmpfs("/dev/shm") {
            XCTAssertTrue(reading.hasPrefix("read from copies in /dev/shm/flowtap-bench-captures-"), reading)
            let directory = String(reading.dropFirst("read from copies in ".count).prefix { $0 != " " })
            XCTAssertFalse(FileManager.default.fileExists(atPath: directory), "\(directory) left behind")
        } else {
            XCTAssertTrue(reading.hasPrefix("read in place"), reading)
        }

        let stages = try XCTUnwrap(report["stages"] as? [[String: Any]])
        XCTAssertEqual(stages.prefix(5).compactMap { $0["name"] as? String }, ["read", "decode", "flows", "reassembly", "classification"])
        // Every measured row says how much of the machine's CPU time the hypervisor took meanwhile (a share).
        for row in stages + (report["peers"] as? [[String: Any]] ?? []) where row["measured"] as? Bool == true {
            let steal = try XCTUnwrap(row["steal_share_median"] as? Double, "\(row)")
            XCTAssertTrue((0 ... 1).contains(steal), "\(row)")
            XCTAssertGreaterThanOrEqual(row["steal_share_max"] as? Double ?? -1, steal, "\(row)")
        }
        let endToEnd = stages.filter { $0["stage"] as? Int == 6 }
        XCTAssertFalse(endToEnd.isEmpty, "no end-to-end abstract row")
        for stage in stages {
            let name = stage["name"] as? String ?? "?"
            XCTAssertEqual(stage["measured"] as? Bool, true, name)
            XCTAssertEqual(stage["packets"] as? Int, packets, name)
            XCTAssertGreaterThan(stage["seconds_median"] as? Double ?? 0, 0, name)
        }
        for row in endToEnd {
            XCTAssertGreaterThan(row["peak_rss_kib"] as? Int ?? 0, 0, "\(row)")
        }
        XCTAssertGreaterThan(stages[2]["flows"] as? Int ?? 0, 0)
        XCTAssertGreaterThan(stages[4]["tcp_flows_classified"] as? Int ?? 0, 0)
        XCTAssertGreaterThan(stages[4]["events"] as? Int ?? 0, 0)

        let peers = try XCTUnwrap(report["peers"] as? [[String: Any]])
        let byName = Dictionary(uniqueKeysWithValues: peers.compactMap { peer in (peer["name"] as? String).map { ($0, peer) } })
        XCTAssertEqual(byName["libpcap"]?["packets"] as? Int, packets)
        let ratios = try XCTUnwrap(report["ratios"] as? [String: Double])
        XCTAssertNotNil(ratios["read_vs_libpcap"])
        // The floor (cat into the scratch directory) is measured, and every end-to-end row has its CPU over the floor's.
        let floor = try XCTUnwrap(byName["floor"])
        XCTAssertEqual(floor["measured"] as? Bool, true, "\(floor)")
        XCTAssertNotNil(floor["cpu_seconds_median"] as? Double, "\(floor)")
        for ours in endToEnd {
            let name = ours["name"] as? String ?? ""
            XCTAssertGreaterThan(ratios["\(name)_cpu_over_floor"] ?? 0, 0, name)
        }
        // With --threads, two one-thread runs at once give the machine's two-process ceiling: twice the packets.
        if endToEnd.count == 2 {
            let pair = try XCTUnwrap(byName["abstract_pair"])
            XCTAssertEqual(pair["measured"] as? Bool, true, "\(pair)")
            XCTAssertEqual(pair["packets"] as? Int, packets)
            let one = try XCTUnwrap(endToEnd.first { $0["name"] as? String == "abstract_threads_1" })
            let rate = try XCTUnwrap(pair["packets_per_second"] as? Double), seconds = try XCTUnwrap(pair["seconds_median"] as? Double)
            XCTAssertEqual(rate * seconds, Double(2 * packets), accuracy: 1e-6 * Double(packets))
            XCTAssertGreaterThan(pair["cpu_seconds_median"] as? Double ?? 0, 0)
            XCTAssertEqual(try XCTUnwrap(ratios["two_process_ceiling"]), 2 * (one["seconds_median"] as? Double ?? 0) / seconds, accuracy: 1e-9)
            XCTAssertNotNil(ratios["threads_2_speed_up"])
            // The ideal split: two one-thread runs on the capture's halves (split by flow) see every packet once.
            let halves = try XCTUnwrap(byName["abstract_halves"])
            XCTAssertEqual(halves["measured"] as? Bool, true, "\(halves)")
            XCTAssertEqual(halves["packets"] as? Int, packets)
            XCTAssertEqual(try XCTUnwrap(ratios["halves_speed_up"]),
                           (one["seconds_median"] as? Double ?? 0) / (halves["seconds_median"] as? Double ?? 1), accuracy: 1e-9)
            // Rounds where the host took at most 1% of the machine during both runs: counted, and their speed-up
            // given when there were any.
            let quiet = try XCTUnwrap(ratios["quiet_rounds"])
            XCTAssertTrue([0, 1].contains(quiet), "\(quiet)")
            XCTAssertEqual(ratios["threads_2_speed_up_quiet_rounds"] != nil, quiet == 1)
        }
        for (peer, tool) in [("ndpiReader", "ndpiReader"), ("tcpflow", "tcpflow")] {
            let row = try XCTUnwrap(byName[peer], peer)
            if Corpus.tool(tool) == nil {
                XCTAssertEqual(row["measured"] as? Bool, false, peer)
                XCTAssertTrue((row["note"] as? String ?? "").contains("not installed"), peer)
            } else {
                XCTAssertEqual(row["measured"] as? Bool, true, "\(row)")
                XCTAssertGreaterThan(row["peak_rss_kib"] as? Int ?? 0, 0, peer)
                for ours in endToEnd {
                    XCTAssertNotNil(ratios["\(ours["name"] as? String ?? "")_vs_\(peer)"], peer)
                }
            }
        }
    }

    /// Stopped with SIGTERM or SIGINT while a child runs, the bench stops it, removes its scratch directories
    /// (the copies of the captures, FlowTap's event files) and exits with 128 + the signal, saying so.
    func testStopSignalRemovesTheScratchDirectoriesAndStopsTheChildren() throws {
        let flowtap = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path
        guard FileManager.default.isExecutableFile(atPath: flowtap) else { throw OracleMissing.error("flowtap executable not built beside the tests") }
        let bench = URL(fileURLWithPath: flowtap).deletingLastPathComponent().appendingPathComponent("flowtap-bench").path
        // On tmpfs the bench also copies the capture into the scratch directory; that copy must go too.
        let base = Self.isTmpfs("/dev/shm") ? "/dev/shm/" : NSTemporaryDirectory()
        let work = base + "flowtap-bench-stop-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let capture = work + "/capture.pcap"
        let (generated, status) = try Corpus.run(flowtap, ["generate", "-w", capture, "--sessions", "3000", "--seed", "3"])
        XCTAssertEqual(status, 0, generated)
        for (signal, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            let scratch = work + "/scratch-\(name)"
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: bench)
            process.arguments = ["pipeline", "-r", capture, "--runs", "9", "--scratch", scratch]
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            // Wait until an end-to-end run has its own directory: a child is running then.
            let deadline = Date().addingTimeInterval(300)
            var entries: [String] = []
            while Date() < deadline, process.isRunning {
                entries = (try? FileManager.default.contentsOfDirectory(atPath: scratch)) ?? []
                if entries.contains(where: { $0.hasPrefix("flowtap-bench-abstract-") || $0.hasPrefix("flowtap-bench-pair-") }) { break }
                usleep(20_000)
            }
            XCTAssertTrue(process.isRunning, "\(name): the bench ended before it could be stopped")
            XCTAssertTrue(entries.contains { $0.hasPrefix("flowtap-bench-") }, "\(name): \(entries)")
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            XCTAssertEqual(process.terminationReason, .exit, name)
            XCTAssertEqual(process.terminationStatus, 128 + signal, "\(name): \(text)")
            XCTAssertTrue(text.contains("flowtap-bench: stopped by \(name); stopped "), text)
            XCTAssertFalse(text.contains("exited with status"), "\(name): a stopped child reported as a failure: \(text)")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch), [], "\(name): left behind")
        }
    }
}
