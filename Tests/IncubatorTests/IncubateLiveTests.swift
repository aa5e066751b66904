#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TestSupport
import XCTest

/// `flowtap incubate -i` between network namespaces (scripts/incubate-netns.sh): tcpreplay sends an
/// impaired capture into the incubator's tap; three `if:` cells transmit on veth pairs into three cell
/// namespaces, where tcpdump records what arrives. The cells together hold exactly the replayed frames,
/// and their streams equal the capture's.
final class IncubateLiveTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testTapModeSpreadsFlowsWholeOverInterfaceCells() throws {
        guard getuid() == 0 else { throw OracleMissing.error("network namespaces need root") }
        guard let ip = Corpus.tool("ip"), let tcpreplay = Corpus.tool("tcpreplay"), let tcpdump = Corpus.tool("tcpdump") else {
            throw OracleMissing.error("ip, tcpreplay and tcpdump are needed")
        }
        let script = Self.repository.appendingPathComponent("scripts/incubate-netns.sh").path
        let name = "ic\(getpid() % 100_000)"
        _ = try? Corpus.run(script, ["down", name, "3"])
        let (built, status) = try Corpus.run(script, ["up", name, "3"])
        guard status == 0 else { throw OracleMissing.error("could not build the namespaces: \(built)") }
        defer { _ = try? Corpus.run(script, ["down", name, "3"]) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-incubate-live-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("input.pcap").path
        try IncubateSplitTests.generate(input, sessions: 600, seed: 21, impaired: true)

        func start(_ namespace: String, _ arguments: [String], errors: String = "/dev/null") throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: ip)
            p.arguments = ["netns", "exec", namespace] + arguments
            p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            _ = FileManager.default.createFile(atPath: errors, contents: nil)
            p.standardError = FileHandle(forWritingAtPath: errors)
            try p.run()
            return p
        }
        let captures = (0 ..< 3).map { dir.appendingPathComponent("cell\($0).pcap").path }
        let recorders = try (0 ..< 3).map { k in
            try start("\(name)-c\(k)", [tcpdump, "-i", "\(name)c\(k)", "-U", "-s", "0", "-w", captures[k]])
        }
        let summaryPath = dir.appendingPathComponent("incubate.err").path
        let incubator = try start("\(name)-i", [IncubateSplitTests.flowtap, "incubate", "-i", "\(name)i0"] + (0 ..< 3).flatMap { ["--cell", "if:\(name)x\($0)"] },
                                  errors: summaryPath)
        usleep(1_000_000)
        let (replayed, replayStatus) = try Corpus.run(ip, ["netns", "exec", "\(name)-s", tcpreplay, "-q", "-i", "\(name)s0", "--pps", "4000", input])
        XCTAssertEqual(replayStatus, 0, replayed)
        usleep(800_000)
        kill(incubator.processIdentifier, SIGINT)
        incubator.waitUntilExit()
        usleep(300_000)
        for r in recorders { r.terminate(); r.waitUntilExit() }
        let summary = (try? String(contentsOfFile: summaryPath, encoding: .utf8)) ?? ""
        print(summary)

        var together: [String: Int] = [:]
        for c in captures { together.merge(try IncubateSplitTests.frames(c), uniquingKeysWith: +) }
        let sent = try IncubateSplitTests.frames(input)
        XCTAssertEqual(together.values.reduce(0, +), sent.values.reduce(0, +), summary)
        XCTAssertEqual(together, sent)
        let whole = try IncubateSplitTests.streams(input, dir.appendingPathComponent("streams-all"))
        var union: [String: Int] = [:]
        for (k, c) in captures.enumerated() { union.merge(try IncubateSplitTests.streams(c, dir.appendingPathComponent("streams-\(k)")), uniquingKeysWith: +) }
        XCTAssertEqual(union, whole)
        XCTAssertTrue(summary.contains("frames the kernel's capture ring dropped 0"), summary)
    }
}
