#if canImport(Glibc)
import Glibc
#endif
import Capture
import Foundation
import TestSupport
import XCTest

/// `flowtap incubate -i` between network namespaces (scripts/incubate-netns.sh): tcpreplay sends an
/// impaired capture into the incubator's tap; three `if:` cells transmit on veth pairs into three cell
/// namespaces, where tcpdump records what arrives. The cells together hold exactly the replayed frames,
/// and their streams equal the capture's.
final class IncubateLiveTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `arguments` run in `namespace`, standard error to `errors`.
    static func start(_ ip: String, _ namespace: String, _ arguments: [String], errors: String = "/dev/null") throws -> Process {
        try Namespaces.start(ip: ip, namespace, arguments, errors: errors)
    }

    /// The namespaces of scripts/incubate-netns.sh for three cells, and a scratch directory; both removed by the returned cleanup.
    static func topology(_ name: String, _ label: String) throws -> (URL, () -> Void) {
        let script = repository.appendingPathComponent("scripts/incubate-netns.sh").path
        _ = try? Corpus.run(script, ["down", name, "3"])
        let (built, status) = try Corpus.run(script, ["up", name, "3"])
        guard status == 0 else { throw OracleMissing.error("could not build the namespaces: \(built)") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-incubate-\(label)-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return (dir, {
            _ = try? Corpus.run(script, ["down", name, "3"])
            try? FileManager.default.removeItem(at: dir)
        })
    }

    func testTapModeSpreadsFlowsWholeOverInterfaceCells() throws { try tap(threads: 1) }

    /// The same with two rings in a PACKET_FANOUT group, each on its own thread, sharing the cells.
    func testTapModeWithTwoThreadsSpreadsFlowsWholeOverInterfaceCells() throws { try tap(threads: 2) }

    func tap(threads: Int) throws {
        guard getuid() == 0 else { throw OracleMissing.error("network namespaces need root") }
        guard let ip = Corpus.tool("ip"), let tcpreplay = Corpus.tool("tcpreplay"), let tcpdump = Corpus.tool("tcpdump") else {
            throw OracleMissing.error("ip, tcpreplay and tcpdump are needed")
        }
        let name = "ic\(getpid() % 100_000)"
        let (dir, cleanup) = try Self.topology(name, "ic")
        defer { cleanup() }
        let input = dir.appendingPathComponent("input.pcap").path
        try IncubateSplitTests.generate(input, sessions: 600, seed: 21, impaired: true)

        func start(_ namespace: String, _ arguments: [String], errors: String = "/dev/null") throws -> Process {
            try Self.start(ip, namespace, arguments, errors: errors)
        }
        let captures = (0 ..< 3).map { dir.appendingPathComponent("cell\($0).pcap").path }
        let recorders = try (0 ..< 3).map { k in
            try start("\(name)-c\(k)", [tcpdump, "-i", "\(name)c\(k)", "-U", "-s", "0", "-w", captures[k]])
        }
        let summaryPath = dir.appendingPathComponent("incubate.err").path
        let incubator = try start("\(name)-i", [IncubateSplitTests.flowtap, "incubate", "-i", "\(name)i0", "--threads", String(threads)]
            + (0 ..< 3).flatMap { ["--cell", "if:\(name)x\($0)"] }, errors: summaryPath)
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
        if threads > 1 {
            // Both threads took part: the fanout hash spread 600 sessions over them.
            let line = try XCTUnwrap(summary.split(separator: "\n").first { $0.hasPrefix("threads 2: frames ") })
            XCTAssertTrue(line.dropFirst("threads 2: frames ".count).split(separator: ",").allSatisfy { (Int($0.trimmingCharacters(in: .whitespaces)) ?? 0) > 0 }, String(line))
        }
    }

    /// A cell's interface goes down mid-run: its frames from then on are counted as not delivered, and
    /// the other cells still receive every frame that is theirs. The input is fed through standard input
    /// so the link can go down halfway.
    func testACellInterfaceGoingDownCostsOnlyThatCell() throws {
        guard getuid() == 0 else { throw OracleMissing.error("network namespaces need root") }
        guard let ip = Corpus.tool("ip"), let tcpdump = Corpus.tool("tcpdump") else { throw OracleMissing.error("ip and tcpdump are needed") }
        let name = "id\(getpid() % 100_000)"
        let (dir, cleanup) = try Self.topology(name, "id")
        defer { cleanup() }
        let input = dir.appendingPathComponent("input.pcap").path
        try IncubateSplitTests.generate(input, sessions: 400, seed: 33, impaired: false)
        // What each cell should get: the same split into files.
        let reference = (0 ..< 3).map { dir.appendingPathComponent("ref\($0).pcap").path }
        let (_, refErrors, refStatus) = try Corpus.runCapturingErrors(IncubateSplitTests.flowtap, ["incubate", "-r", input, "--quiet"] + reference.flatMap { ["--cell", "file:\($0)"] })
        XCTAssertEqual(refStatus, 0, refErrors)

        let captures = (0 ..< 3).map { dir.appendingPathComponent("cell\($0).pcap").path }
        var recorders: [Process] = []
        for k in 0 ..< 3 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: ip)
            p.arguments = ["netns", "exec", "\(name)-c\(k)", tcpdump, "-i", "\(name)c\(k)", "-U", "-s", "0", "-w", captures[k]]
            p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            p.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try p.run()
            recorders.append(p)
        }
        usleep(800_000)
        let incubator = Process()
        incubator.executableURL = URL(fileURLWithPath: ip)
        incubator.arguments = ["netns", "exec", "\(name)-i", IncubateSplitTests.flowtap, "incubate", "-r", "-", "--quiet"] + (0 ..< 3).flatMap { ["--cell", "if:\(name)x\($0)"] }
        let feed = Pipe(), errors = Pipe()
        incubator.standardInput = feed
        incubator.standardError = errors
        try incubator.run()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: input))
        // The pcap header and the first half of the records, then cell 1's link goes down, then the rest.
        var cut = 24, records = 0
        let total = try IncubateSplitTests.frames(input).values.reduce(0, +)
        while records < total / 2 {
            let length = Int(bytes[cut + 8]) | Int(bytes[cut + 9]) << 8 | Int(bytes[cut + 10]) << 16 | Int(bytes[cut + 11]) << 24
            cut += 16 + length
            records += 1
        }
        feed.fileHandleForWriting.write(bytes.prefix(cut))
        usleep(500_000)
        XCTAssertEqual(try Corpus.run(ip, ["-n", "\(name)-i", "link", "set", "\(name)x1", "down"]).1, 0)
        usleep(200_000)
        feed.fileHandleForWriting.write(bytes.dropFirst(cut))
        try feed.fileHandleForWriting.close()
        incubator.waitUntilExit()
        let summary = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        print(summary)
        usleep(500_000)
        for r in recorders { r.terminate(); r.waitUntilExit() }

        XCTAssertEqual(incubator.terminationStatus, 0, summary)
        XCTAssertEqual(try IncubateSplitTests.frames(captures[0]), try IncubateSplitTests.frames(reference[0]), "cell 0 got all of its frames")
        XCTAssertEqual(try IncubateSplitTests.frames(captures[2]), try IncubateSplitTests.frames(reference[2]), "cell 2 got all of its frames")
        let cell1Got = try IncubateSplitTests.frames(captures[1]).values.reduce(0, +)
        let cell1Should = try IncubateSplitTests.frames(reference[1]).values.reduce(0, +)
        XCTAssertGreaterThan(cell1Got, 0)
        XCTAssertLessThan(cell1Got, cell1Should)
        // Every frame of cell 1 after the link went down is counted, with the reason.
        let line = try XCTUnwrap(summary.split(separator: "\n").first { $0.hasPrefix("cell 1 ") })
        XCTAssertTrue(line.contains("not delivered \(cell1Should - cell1Got) (Network is down)"), String(line))
    }

    /// Inline mode: the incubator bridges NAMEi0 and NAMEi1. The frames leaving the far side are the
    /// frames sent, in order, both ways; the cells together get a copy of every one, flows whole.
    func testBridgeModeForwardsEveryFrameUnchangedAndCopiesItToItsCell() throws {
        guard getuid() == 0 else { throw OracleMissing.error("network namespaces need root") }
        guard let ip = Corpus.tool("ip"), let tcpreplay = Corpus.tool("tcpreplay"), let tcpdump = Corpus.tool("tcpdump") else {
            throw OracleMissing.error("ip, tcpreplay and tcpdump are needed")
        }
        let name = "ib\(getpid() % 100_000)"
        let (dir, cleanup) = try Self.topology(name, "ib")
        defer { cleanup() }
        let forward = dir.appendingPathComponent("forward.pcap").path, backward = dir.appendingPathComponent("backward.pcap").path
        try IncubateSplitTests.generate(forward, sessions: 400, seed: 51, impaired: true)
        try IncubateSplitTests.generate(backward, sessions: 60, seed: 52, impaired: false)

        func start(_ namespace: String, _ arguments: [String], errors: String = "/dev/null") throws -> Process {
            try Self.start(ip, namespace, arguments, errors: errors)
        }
        let cells = (0 ..< 3).map { dir.appendingPathComponent("cell\($0).pcap").path }
        let farSide = dir.appendingPathComponent("far.pcap").path, nearSide = dir.appendingPathComponent("near.pcap").path
        var recorders = try (0 ..< 3).map { k in try start("\(name)-c\(k)", [tcpdump, "-i", "\(name)c\(k)", "-U", "-s", "0", "-w", cells[k]]) }
        recorders.append(try start("\(name)-r", [tcpdump, "-i", "\(name)r0", "-Q", "in", "-U", "-s", "0", "-w", farSide]))
        recorders.append(try start("\(name)-s", [tcpdump, "-i", "\(name)s0", "-Q", "in", "-U", "-s", "0", "-w", nearSide]))
        let summaryPath = dir.appendingPathComponent("incubate.err").path
        let incubator = try start("\(name)-i", [IncubateSplitTests.flowtap, "incubate", "--bridge", "\(name)i0,\(name)i1"] + (0 ..< 3).flatMap { ["--cell", "if:\(name)x\($0)"] },
                                  errors: summaryPath)
        usleep(1_000_000)
        XCTAssertEqual(try Corpus.run(ip, ["netns", "exec", "\(name)-s", tcpreplay, "-q", "-i", "\(name)s0", "--pps", "3000", forward]).1, 0)
        XCTAssertEqual(try Corpus.run(ip, ["netns", "exec", "\(name)-r", tcpreplay, "-q", "-i", "\(name)r0", "--pps", "3000", backward]).1, 0)
        usleep(800_000)
        kill(incubator.processIdentifier, SIGINT)
        incubator.waitUntilExit()
        usleep(300_000)
        for r in recorders { r.terminate(); r.waitUntilExit() }
        let summary = (try? String(contentsOfFile: summaryPath, encoding: .utf8)) ?? ""
        print(summary)

        func sequence(_ path: String) throws -> [[UInt8]] {
            var out: [[UInt8]] = []
            let reader = try CaptureFileReader(path: path)
            while let record = try reader.next() { out.append(Array(record.bytes)) }
            return out
        }
        let sentForward = try sequence(forward), sentBackward = try sequence(backward)
        let arrivedFar = try sequence(farSide), arrivedNear = try sequence(nearSide)
        XCTAssertEqual(arrivedFar.count, sentForward.count, summary)
        XCTAssertTrue(arrivedFar == sentForward, "the far side sees the frames sent, unchanged and in order")
        XCTAssertTrue(arrivedNear == sentBackward, "and the other way")
        var together: [String: Int] = [:]
        for c in cells { together.merge(try IncubateSplitTests.frames(c), uniquingKeysWith: +) }
        var both = try IncubateSplitTests.frames(forward)
        both.merge(try IncubateSplitTests.frames(backward), uniquingKeysWith: +)
        XCTAssertEqual(together, both, "the cells hold a copy of every bridged frame")
        XCTAssertTrue(summary.contains("bridged \(name)i0 → \(name)i1: \(sentForward.count) frames;"), summary)
    }

    /// Remote cells over VXLAN: each cell namespace decapsulates with a Linux `vxlan` interface (VNI 1,
    /// port 4789) and tcpdump records what comes out of it. The cells together hold exactly the input's
    /// frames, and their streams equal the input's.
    func testVXLANCellsDecapsulatedByLinuxHoldEveryFlowWhole() throws {
        guard getuid() == 0 else { throw OracleMissing.error("network namespaces need root") }
        guard let ip = Corpus.tool("ip"), let tcpdump = Corpus.tool("tcpdump") else { throw OracleMissing.error("ip and tcpdump are needed") }
        let name = "iv\(getpid() % 100_000)"
        let (dir, cleanup) = try Self.topology(name, "iv")
        defer { cleanup() }
        for k in 0 ..< 3 {
            for command in [["-n", "\(name)-i", "addr", "add", "10.3.\(k).1/24", "dev", "\(name)x\(k)"],
                            ["-n", "\(name)-c\(k)", "addr", "add", "10.3.\(k).2/24", "dev", "\(name)c\(k)"],
                            ["-n", "\(name)-c\(k)", "link", "add", "vx\(k)", "type", "vxlan", "id", "1", "dstport", "4789", "local", "10.3.\(k).2", "dev", "\(name)c\(k)"],
                            ["-n", "\(name)-c\(k)", "link", "set", "vx\(k)", "up"]] {
                let (output, status) = try Corpus.run(ip, command)
                XCTAssertEqual(status, 0, "ip \(command.joined(separator: " ")): \(output)")
            }
        }
        let input = dir.appendingPathComponent("input.pcap").path
        try IncubateSplitTests.generate(input, sessions: 500, seed: 61, impaired: true)
        let captures = (0 ..< 3).map { dir.appendingPathComponent("cell\($0).pcap").path }
        let recorders = try (0 ..< 3).map { k in try Self.start(ip, "\(name)-c\(k)", [tcpdump, "-i", "vx\(k)", "-U", "-s", "0", "-w", captures[k]]) }
        usleep(800_000)
        let (_, summary, status) = try Corpus.runCapturingErrors(ip, ["netns", "exec", "\(name)-i", IncubateSplitTests.flowtap, "incubate", "-r", input, "--quiet"]
            + (0 ..< 3).flatMap { ["--cell", "vxlan:10.3.\($0).2"] })
        XCTAssertEqual(status, 0, summary)
        usleep(800_000)
        for r in recorders { r.terminate(); r.waitUntilExit() }
        print(summary)
        var together: [String: Int] = [:]
        for c in captures { together.merge(try IncubateSplitTests.frames(c), uniquingKeysWith: +) }
        XCTAssertEqual(together, try IncubateSplitTests.frames(input), summary)
        var union: [String: Int] = [:]
        for (k, c) in captures.enumerated() { union.merge(try IncubateSplitTests.streams(c, dir.appendingPathComponent("streams-\(k)")), uniquingKeysWith: +) }
        XCTAssertEqual(union, try IncubateSplitTests.streams(input, dir.appendingPathComponent("streams-all")))
    }
}
