import Foundation
import TestSupport
import XCTest

/// `flowtap abstract` as analyzers meet it: files in --out-dir, and the same bytes through the sockets,
/// with a capture pushed into the pcap injection socket.
final class AbstractCommandTests: XCTestCase {
    var flowtap: String {
        get throws {
            let path = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path
            guard FileManager.default.isExecutableFile(atPath: path) else { throw OracleMissing.error("flowtap executable not built beside the tests") }
            return path
        }
    }

    var root: URL {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { url.deleteLastPathComponent() }
        return url
    }

    func temporaryDirectory(_ name: String) -> String {
        let path = "/tmp/flowtap-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: path)
        return path
    }

    /// The example config with its home moved to `home`.
    func config(home: String) throws -> String {
        // One flow shard: these tests compare whole streams byte for byte between paths, and only one
        // engine fixes the interleaving of different flows (shards keep each flow's own events only).
        let text = try String(contentsOf: root.appendingPathComponent("examples/flowtap.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "home:    /tmp/sf-tap", with: "home:    \(home)")
            .replacingOccurrences(of: "\n  tcp_threads: 2 ", with: "\n  tcp_threads: 1 ")
        let path = home + ".yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func outDirStreams(_ capture: String) throws -> [String: Data] {
        let dir = temporaryDirectory("out")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (_, status) = try Corpus.run(try flowtap, ["abstract", "-c", try config(home: dir + "-home"), "-r", capture, "--out-dir", dir])
        XCTAssertEqual(status, 0)
        var result: [String: Data] = [:]
        for sub in ["tcp", "udp", "icmp"] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir + "/" + sub)) ?? [] {
                result[sub + "/" + name] = FileManager.default.contents(atPath: dir + "/" + sub + "/" + name)
            }
        }
        return result
    }

    /// Golden files, reviewed by hand once: the text stream of tcp/http (header fields, order, `%.17g` times,
    /// held data first) and the binary stream of icmp/icmp (64-byte headers: addresses, timeval, event 2,
    /// from 0/1, len, l4 1, match 2, VLAN 0xFFFF) for samples/sample.pcap with examples/flowtap.yaml.
    func testGoldenStreamsForTheSample() throws {
        let streams = try outDirStreams(root.appendingPathComponent("samples/sample.pcap").path)
        let golden = root.appendingPathComponent("Tests/EngineTests/Golden")
        XCTAssertEqual(streams["tcp/http"], FileManager.default.contents(atPath: golden.appendingPathComponent("sample-tcp-http.events").path))
        XCTAssertEqual(streams["icmp/icmp"], FileManager.default.contents(atPath: golden.appendingPathComponent("sample-icmp-icmp.events").path))
    }

    func testOutDirHasSFTapEventsForEveryClass() throws {
        let streams = try outDirStreams(root.appendingPathComponent("samples/sample.pcap").path)
        let http = String(decoding: try XCTUnwrap(streams["tcp/http"]), as: UTF8.self)
        XCTAssertTrue(http.hasPrefix("ip1=10.0.0.2,ip2=198.51.100.36,port1=57785,port2=80,vlan=-1,hop=0,l3=ipv4,l4=tcp,event=CREATED,time=1700000000\n"))
        XCTAssertTrue(http.contains(",event=DATA,from=1,match=up,len=97,time="))
        XCTAssertTrue(http.contains("\nGET /page/0/0 HTTP/1.1\r\n"))
        XCTAssertTrue(http.contains(",event=DESTROYED,reason=NORMAL,time="))
        for name in ["tcp/tls", "tcp/ssh", "udp/dns", "icmp/icmp", "icmp/icmpv6", "tcp/default"] {
            XCTAssertGreaterThan(streams[name]?.count ?? 0, 0, name)
        }
        // The example analyzer parses every stream whole.
        guard let python = Corpus.tool("python3") else { return }
        let dir = temporaryDirectory("py")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, data) in streams where !data.isEmpty {
            let file = dir + "/" + name.replacingOccurrences(of: "/", with: "_")
            try data.write(to: URL(fileURLWithPath: file))
            let binary = name.hasPrefix("icmp/") || name == "tcp/dns"
            let (out, status) = try Corpus.run(python, [root.appendingPathComponent("examples/sftap_reader.py").path, "--file"] + (binary ? ["--binary"] : []) + [file])
            XCTAssertEqual(status, 0, name)
            XCTAssertGreaterThan(out.split(separator: "\n").count, 0, name)
        }
    }

    /// Connects a reader to every output socket under `home` and collects what arrives until `until` says stop.
    final class Readers {
        var sockets: [(String, Int32)] = []
        var data: [String: Data] = [:]

        init(home: String, except excluded: Set<String> = []) {
            for sub in ["tcp", "udp", "icmp"] {
                for name in (try? FileManager.default.contentsOfDirectory(atPath: home + "/" + sub)) ?? [] where !excluded.contains(sub + "/" + name) {
                    let path = home + "/" + sub + "/" + name
                    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
                    var address = sockaddr_un()
                    address.sun_family = sa_family_t(AF_UNIX)
                    withUnsafeMutableBytes(of: &address.sun_path) { raw in
                        for (i, byte) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = byte }
                    }
                    let ok = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
                    if ok == 0 {
                        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                        sockets.append((sub + "/" + name, fd))
                        data[sub + "/" + name] = Data()
                    } else {
                        close(fd)
                    }
                }
            }
        }

        func drain(skipping: Set<String> = []) {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            for (name, fd) in sockets where !skipping.contains(name) {
                while true {
                    let n = read(fd, &buffer, buffer.count)
                    if n <= 0 { break }
                    data[name]!.append(contentsOf: buffer[0 ..< n])
                }
            }
        }

        deinit { for (_, fd) in sockets { close(fd) } }
    }

    func waitFor(_ path: String, seconds: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: path) { return true }
            usleep(20_000)
        }
        return false
    }

    /// A capture pushed into home/pcap while a reader drains every interface gives exactly the --out-dir bytes.
    func testPcapInjectionThroughSocketsMatchesOutDir() throws {
        let capture = root.appendingPathComponent("samples/sample.pcap").path
        let expected = try outDirStreams(capture)
        let home = temporaryDirectory("home")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try flowtap)
        process.arguments = ["abstract", "-c", try config(home: home), "--stats-interval", "0"]
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        XCTAssertTrue(waitFor(home + "/pcap"))
        XCTAssertTrue(waitFor(home + "/tcp/http"))
        let readers = Readers(home: home)
        XCTAssertEqual(readers.sockets.count, expected.count)
        // Push the capture.
        let injector = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in (home + "/pcap").utf8.enumerated() where i < raw.count - 1 { raw[i] = byte }
        }
        XCTAssertEqual(withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(injector, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }, 0)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: capture))
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(injector, raw.baseAddress! + done, raw.count - done)
                if n <= 0 { break }
                done += n
                readers.drain()
            }
        }
        close(injector)
        // SIGTERM flushes every flow, lets readers drain and removes the sockets.
        let deadline = Date().addingTimeInterval(2)
        while Date() < deadline { readers.drain(); usleep(20_000) }
        process.terminate()
        let end = Date().addingTimeInterval(10)
        while process.isRunning && Date() < end { readers.drain(); usleep(10_000) }
        readers.drain()
        XCTAssertFalse(process.isRunning)
        for (name, data) in expected {
            XCTAssertEqual(readers.data[name]?.count, data.count, name)
            XCTAssertEqual(readers.data[name], data, name)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: home + "/pcap"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: home + "/tcp/http"))
    }

    /// The example analyzer, connected to a live socket, reads every event of tcp/http.
    func testExampleAnalyzerReadsALiveSocket() throws {
        guard let python = Corpus.tool("python3") else { throw OracleMissing.error("python3 not installed") }
        let home = temporaryDirectory("home3")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try flowtap)
        process.arguments = ["abstract", "-c", try config(home: home), "-r", root.appendingPathComponent("samples/sample.pcap").path, "--wait-readers", "--stats-interval", "0"]
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        XCTAssertTrue(waitFor(home + "/tcp/http"))
        usleep(200_000)
        let analyzer = Process()
        analyzer.executableURL = URL(fileURLWithPath: python)
        analyzer.arguments = [root.appendingPathComponent("examples/sftap_reader.py").path, home + "/tcp/http"]
        let output = Pipe()
        analyzer.standardOutput = output
        try analyzer.run()
        usleep(200_000)
        let readers = Readers(home: home, except: ["tcp/http"])
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline { readers.drain(); usleep(10_000) }
        let lines = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        analyzer.waitUntilExit()
        let events = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        XCTAssertEqual(events.count, 42)
        XCTAssertEqual(events.first?["event"] as? String, "CREATED")
        XCTAssertEqual(events.filter { $0["event"] as? String == "DATA" }.count, 42 - 10)
        XCTAssertTrue(events.allSatisfy { $0["l4"] as? String == "tcp" })
    }

    /// A reader that stops reading loses whole events (counted); capture goes on and the other readers lose nothing.
    func testStoppedReaderDoesNotStallOthers() throws {
        var options = ["generate", "-w", temporaryDirectory("gen") + ".pcap", "--sessions", "3000", "--kinds", "http,tls", "--seed", "5"]
        let capture = options[2]
        defer { unlink(capture) }
        XCTAssertEqual(try Corpus.run(try flowtap, options).1, 0)
        let expected = try outDirStreams(capture)
        let home = temporaryDirectory("home2")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try flowtap)
        options = ["abstract", "-c", try config(home: home), "-r", capture, "--wait-readers", "--stats-interval", "0"]
        process.arguments = options
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        XCTAssertTrue(waitFor(home + "/tcp/http"))
        usleep(200_000)
        let readers = Readers(home: home)
        // tcp/http is never read until the run is over; everything else is drained.
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline {
            readers.drain(skipping: ["tcp/http"])
            usleep(5_000)
        }
        readers.drain(skipping: ["tcp/http"])
        XCTAssertFalse(process.isRunning, "capture must not wait for a stopped reader")
        let report = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(readers.data["tcp/tls"], expected["tcp/tls"], "other interfaces lose nothing")
        let httpLine = report.split(separator: "\n").first { $0.contains("/tcp/http:") } ?? ""
        XCTAssertFalse(httpLine.contains("dropped 0 events"), "the stopped reader's drops are counted: \(httpLine)")
        // What the stopped reader finally gets is whole events: every header parses and every body is complete.
        // Only the very end may be cut, where the process exited with the socket still full.
        readers.drain()
        let http = readers.data["tcp/http"] ?? Data()
        var offset = http.startIndex, events = 0
        while offset < http.endIndex {
            guard let newline = http[offset...].firstIndex(of: 10) else { break }
            let header = String(decoding: http[offset ..< newline], as: UTF8.self)
            XCTAssertTrue(header.hasPrefix("ip1="), "event \(events) at byte \(offset): \(header.prefix(80))")
            guard header.hasPrefix("ip1=") else { break }
            var length = 0
            if header.contains("event=DATA"), let field = header.split(separator: ",").first(where: { $0.hasPrefix("len=") }) {
                length = Int(field.dropFirst(4)) ?? -1
            }
            offset = newline + 1 + length
            events += 1
        }
        XCTAssertGreaterThan(events, 100)
    }
}
