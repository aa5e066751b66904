import Abstraction
import FlowCore
import Capture
@testable import FlowDispatch
import Engine
import Flows
import Foundation
import PacketCore
import SFTapConfig
import TestSupport
import TrafficGen
import XCTest

/// `flowtap analyze` routing: the built-in first-bytes routing on requests that arrive in pieces or with
/// unusual methods, and `-c CONFIG` routing, which must classify as `flowtap abstract` does and give the
/// built-in records for the flows the config sends to an analyzer.
final class AnalyzeRoutingTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    // MARK: First bytes

    func verdict(_ text: String, port: UInt16 = 80) -> AnalyzeSink.FirstBytes { verdict(Array(text.utf8), port: port) }

    func verdict(_ bytes: [UInt8], port: UInt16 = 80) -> AnalyzeSink.FirstBytes {
        let key = FlowKey(address1: IPAddress(ipv4: 0x0A00_0001), port1: 40000, address2: IPAddress(ipv4: 0x0A00_0002), port2: port, ipProtocol: 6)
        return bytes.withUnsafeBytes { AnalyzeSink.firstBytes($0, key: key, fromFirst: true) }
    }

    func testEveryPrefixOfARequestLineWaitsUntilItDecides() {
        let request = AnalyzeSink.FirstBytes.decided(.http, senderIsClient: true)
        // (line, the shortest prefix that decides)
        let cases: [(String, Int)] = [
            ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 4),          // an upper-case method and a space decide
            ("CCM_POST /x HTTP/1.1\r\nHost: a\r\n\r\n", 22),   // any other token needs its whole first line
            ("m-search * HTTP/1.1\r\n", 21),
            ("get /index.html HTTP/1.0\n", 25),
            ("CCM_POST /HTTP/1.1\r\n", 20),                   // a version that lost its space
        ]
        for (line, decidesAt) in cases {
            let bytes = Array(line.utf8)
            for n in 1 ... bytes.count {
                let v = verdict(Array(bytes[..<n]))
                XCTAssertEqual(v, n < decidesAt ? .needMore : request, "\(line.debugDescription) cut at \(n)")
            }
        }
        XCTAssertEqual(verdict("HTTP/1.1 200 OK\r\n"), .decided(.http, senderIsClient: false))
        XCTAssertEqual(verdict("HTTP/"), .needMore)
    }

    func testWhatIsNotARequestLine() {
        for text in ["220 mail.example ESMTP ready\r\n", "SSH-2.0-OpenSSH_9.6\r\n", "\r\nGET / HTTP/1.1\r\n", "get /\r\n", "CCM_POST  \r\n",
                     "CCM_POST HTTP/1.1\r\n", "x\u{01}y / HTTP/1.1\r\n", "CCM_POST /\u{01} HTTP/1.1\r\n", "\u{17}\u{03}"] {
            XCTAssertEqual(verdict(text), .no, text.debugDescription)
        }
        // A method token longer than 64 bytes is not taken.
        XCTAssertEqual(verdict(String(repeating: "A", count: 65)), .no)
        XCTAssertEqual(verdict(String(repeating: "A", count: 63)), .needMore)
        // TLS: a record header still being read, then a ClientHello or a ServerHello.
        XCTAssertEqual(verdict("\u{16}"), .needMore)
        XCTAssertEqual(verdict("\u{16}\u{03}\u{01}"), .needMore)
        XCTAssertEqual(verdict([0x16, 0x03, 0x01, 0x00, 0x40, 0x01], port: 443), .decided(.tls, senderIsClient: true))
        XCTAssertEqual(verdict([0x16, 0x03, 0x03, 0x00, 0x40, 0x02], port: 443), .decided(.tls, senderIsClient: false))
        // DNS over TCP on port 53 decides on the first byte.
        XCTAssertEqual(verdict("\u{00}", port: 53), .decided(.dns, senderIsClient: true))
    }

    // MARK: A sink driven by hand

    struct Driver {
        let sink: AnalyzeSink
        var records: [[String: Any]] { box.records }
        let box: Box
        final class Box { var records: [[String: Any]] = [] }
        var nextID: UInt64 = 1

        init(settings: SFTapSettings? = nil) throws {
            let box = Box()
            self.box = box
            let emit: (String) -> Void = { line in
                if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] { box.records.append(object) }
            }
            sink = try settings.map { try AnalyzeSink(settings: $0, emit: emit) } ?? AnalyzeSink(emit: emit)
        }

        /// One TCP flow, client (endpoint 1) and server chunks in the order given; then its end.
        mutating func flow(serverPort: UInt16, _ chunks: [(fromClient: Bool, bytes: [UInt8])]) {
            let key = FlowKey(address1: IPAddress(ipv4: 0x0A00_0001), port1: UInt16(40000 + nextID), address2: IPAddress(ipv4: 0x0A00_0002),
                              port2: serverPort, ipProtocol: 6)
            let view = FlowView(key: key, id: nextID, slot: Int(nextID % 4), created: Timestamp(seconds: 1, microseconds: 0))
            nextID += 1
            sink.flowCreated(view, time: view.created)
            for (i, chunk) in chunks.enumerated() {
                chunk.bytes.withUnsafeBytes { sink.flowData(view, fromFirst: chunk.fromClient, bytes: $0, time: Timestamp(seconds: 1, microseconds: Int64(i))) }
            }
            sink.flowDestroyed(view, reason: .normal, time: Timestamp(seconds: 2, microseconds: 0))
        }

        func http() -> [(method: String, uri: String, code: String)] {
            records.filter { $0["type"] as? String == "http" }.map { r in
                let m = (r["client"] as? [String: Any])?["method"] as? [String: Any]
                let code = ((r["server"] as? [String: Any])?["response"] as? [String: Any])?["code"] as? String
                return (m?["method"] as? String ?? "", m?["uri"] as? String ?? "", code ?? "")
            }
        }
    }

    static let response = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8)

    func testRequestsInOneBytePiecesAndTokenMethodsAreAnalyzed() throws {
        var d = try Driver()
        for request in ["GET /a HTTP/1.1\r\nHost: h\r\n\r\n", "CCM_POST /b HTTP/1.1\r\nHost: h\r\n\r\n", "m-search /c HTTP/1.1\r\n\r\n"] {
            // Every byte of the request in its own chunk, then the response.
            d.flow(serverPort: 80, request.utf8.map { (true, [$0]) } + [(false, Self.response)])
        }
        let got = d.http()
        XCTAssertEqual(got.map(\.method), ["GET", "CCM_POST", "m-search"])
        XCTAssertEqual(got.map(\.uri), ["/a", "/b", "/c"])
        XCTAssertEqual(got.map(\.code), ["200", "200", "200"])
        XCTAssertEqual(d.sink.counters.httpFlows, 3)
        XCTAssertEqual(d.sink.counters.undecidedFlows, 0)
    }

    func testUndecidedFirstBytesAreBoundedAndCounted() throws {
        var d = try Driver()
        // A first line that never ends, one byte per chunk: given up at HeldStream.maxEvents chunks.
        d.flow(serverPort: 80, [(true, Array("CCM_POST /".utf8))] + Array(repeating: (true, Array("x".utf8)), count: HeldStream.maxEvents + 10))
        // A first line that never completes: given up at firstBytesLimit bytes.
        d.flow(serverPort: 80, [(true, Array("CCM_POST /".utf8) + Array(repeating: UInt8(ascii: "x"), count: AnalyzeSink.firstBytesLimit))])
        // A flow that ends while its first bytes are still undecided.
        d.flow(serverPort: 80, [(true, Array("GE".utf8))])
        XCTAssertEqual(d.sink.counters.undecidedFlows, 3)
        XCTAssertEqual(d.sink.counters.httpFlows, 0)
        XCTAssertTrue(d.records.isEmpty)
    }

    // MARK: -c CONFIG

    static func settings(_ yaml: String) throws -> SFTapSettings {
        try SFTapSettings(SFTapConfig.parse(yaml, file: "test.yaml"), currentDirectory: "/tmp")
    }

    static var exampleSettings: SFTapSettings {
        get throws { try SFTapSettings.load(path: root.appendingPathComponent("examples/flowtap.yaml").path, currentDirectory: "/tmp") }
    }

    func testAPortRuleSendsFlowsTheFirstBytesWouldNotToHTTP() throws {
        let yaml = try String(contentsOf: Self.root.appendingPathComponent("examples/flowtap.yaml"), encoding: .utf8) + """

        web8000:
          proto:  TCP
          if:     http
          port:   8000
          nice:   50
        """
        // Empty lines before the request line (RFC 9112 §2.2 lets a server skip them), and an HTTP/0.9 request
        // with a lower-case method: neither starts with a request line the built-in routing accepts.
        let flows: [[(fromClient: Bool, bytes: [UInt8])]] = [
            [(true, Array("\r\n\r\nGET /late HTTP/1.1\r\nHost: h\r\n\r\n".utf8)), (false, Self.response)],
            [(true, Array("get /old\r\n".utf8)), (false, Self.response)],
        ]
        var builtIn = try Driver(), configured = try Driver(settings: Self.settings(yaml))
        for f in flows {
            builtIn.flow(serverPort: 8000, f)
            configured.flow(serverPort: 8000, f)
        }
        XCTAssertFalse(builtIn.http().contains { !$0.method.isEmpty }, "built-in routing takes no request of these flows")
        XCTAssertEqual(configured.http().map(\.method), ["GET", "get"])
        XCTAssertEqual(configured.http().map(\.uri), ["/late", "/old"])
        XCTAssertEqual(configured.http().map(\.code), ["200", "200"])
        XCTAssertEqual(configured.sink.counters.httpFlows, 2)

        // The same bytes on another port are not HTTP for this config: the default interface, counted.
        var other = try Driver(settings: Self.settings(yaml))
        for f in flows { other.flow(serverPort: 8001, f) }
        XCTAssertTrue(other.records.isEmpty)
        XCTAssertEqual(other.sink.unanalyzed.map(\.interface), ["default"])
        XCTAssertEqual(other.sink.unanalyzed.first?.flows, 2)
    }

    func testInterfaceNamesPickTheAnalyzer() {
        let expected: [(String, AnalyzeSink.Route)] = [
            ("http", .http), ("http_proxy", .http), ("websocket", .http), ("torrent_tracker", .http), ("HTTP2", .http),
            ("https", .tls), ("tls", .tls), ("ssl", .tls), ("dns", .dns), ("dns_tcp", .dns), ("quic", .quic),
            ("ssh", .none), ("default", .none), ("smtp", .none),
        ]
        for (name, route) in expected { XCTAssertEqual(AnalyzeSink.route(interface: name), route, name) }
    }

    /// Discards abstract's events; only its classification is compared.
    final class Discard: InterfaceOutputs {
        func output(_ relativePath: String) throws -> Int { 0 }
        func publish(_ output: Int, header: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) throws {}
    }

    static func name(_ key: FlowKey) -> String {
        let ends = ["\(key.address1):\(key.port1)", "\(key.address2):\(key.port2)"].sorted()
        return ends.joined(separator: " ") + (key.vlan == FlowKey.noVLAN ? "" : " vlan \(key.vlan)")
    }

    /// A record's flow, named as `name(_:)` names a key.
    static func name(_ record: [String: Any]) -> String {
        var ends: [String] = []
        for side in ["client", "server", "src", "dst"] {
            if let e = record[side] as? [String: Any], let ip = e["ip"] as? String, let port = e["port"] as? Int { ends.append("\(ip):\(port)") }
        }
        return ends.sorted().joined(separator: " ") + ((record["vlan"] as? Int).map { " vlan \($0)" } ?? "")
    }

    /// Runs built-in analyze, analyze with examples/flowtap.yaml and abstract's classifier over the same packets;
    /// checks that both classify every TCP flow alike and that the records agree on the flows the config routes
    /// to an analyzer. Returns the number of records compared.
    func compare(_ feed: (FlowEngine<AnalyzeSink>, FlowEngine<AnalyzeSink>, FlowEngine<Abstractor<Discard>>) throws -> Void) throws -> Int {
        let settings = try Self.exampleSettings
        var builtIn: [String] = [], configured: [(String, String)] = []
        let plain = AnalyzeSink { builtIn.append($0) }
        let sink = try AnalyzeSink(settings: settings) { line in
            let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
            configured.append((Self.name(object), line))
        }
        var analyzeClasses: [String: String] = [:], abstractClasses: [String: String] = [:]
        sink.onClassified = { analyzeClasses[Self.name($0)] = $1 }
        let abstractor = try Abstractor(settings: settings, outputs: Discard())
        abstractor.onClassified = { abstractClasses[Self.name($0)] = $1 }
        let engines = (FlowEngine(sink: plain), FlowEngine(sink: sink), FlowEngine(sink: abstractor))
        try feed(engines.0, engines.1, engines.2)
        for e in [engines.0, engines.1] as [FlowEngine<AnalyzeSink>] {
            e.finish()
            e.sink.http.closeAll(time: 0)
        }
        engines.2.finish()

        XCTAssertFalse(analyzeClasses.isEmpty)
        XCTAssertEqual(analyzeClasses, abstractClasses, "analyze -c classifies TCP flows as abstract does")
        // Flows the config sends to no analyzer (ssh, default …); every other flow must give the built-in records.
        let elsewhere = Set(analyzeClasses.filter { !["http", "http_proxy", "tls", "dns_tcp"].contains($0.value) }.keys)
        XCTAssertFalse(configured.contains { elsewhere.contains($0.0) }, "no records for flows of interfaces without an analyzer")
        let expected = builtIn.filter { line in
            let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
            return !elsewhere.contains(Self.name(object))
        }
        XCTAssertEqual(configured.map(\.1).sorted(), expected.sorted())
        for type in ["http", "tls", "dns"] { XCTAssertTrue(configured.contains { $0.1.contains("\"event_type\":\"\(type)\"") }, type) }
        return configured.count
    }

    func testExampleConfigGivesTheBuiltInRecordsOnTheSample() throws {
        let path = Self.root.appendingPathComponent("samples/sample.pcap").path
        let n = try compare { a, b, c in
            let reader = try CaptureFileReader(path: path)
            while let record = try reader.next() {
                a.process(record)
                b.process(record)
                c.process(record)
            }
        }
        print("analyze -c on sample.pcap: \(n) records equal")
    }

    func testExampleConfigGivesTheBuiltInRecordsOnGeneratedTraffic() throws {
        let options = TrafficGenerator.Options.analyzed(sessions: 1200, seed: 33)
        let n = try compare { a, b, c in
            _ = TrafficGenerator(options: options).generate { time, frame in
                frame.withUnsafeBytes { bytes in
                    let record = PacketRecord(timestamp: time, originalLength: bytes.count, linkType: .ethernet, interfaceID: 0, bytes: bytes)
                    a.process(record)
                    b.process(record)
                    c.process(record)
                }
            }
        }
        print("analyze -c on generated traffic: \(n) records equal")
        XCTAssertGreaterThan(n, 1000)
    }

    /// The command: `-c examples/flowtap.yaml` (with the config's engine limits) gives the built-in records on the
    /// sample, whose flows the example config all sends to an analyzer or to ssh/default, which have none.
    func testCommandWithConfigGivesTheSameRecordsOnTheSample() throws {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path
        guard FileManager.default.isExecutableFile(atPath: executable) else { throw OracleMissing.error("flowtap executable not built beside the tests") }
        let sample = Self.root.appendingPathComponent("samples/sample.pcap").path
        let (plain, status1) = try Corpus.run(executable, ["analyze", "-r", sample, "--quiet"])
        let (configured, status2) = try Corpus.run(executable, ["analyze", "-r", sample, "--quiet", "-C",
                                                                Self.root.appendingPathComponent("examples/flowtap.yaml").path])
        XCTAssertEqual([status1, status2], [0, 0])
        let lines = configured.split(separator: "\n").sorted()
        XCTAssertGreaterThan(lines.count, 10)
        XCTAssertEqual(lines, plain.split(separator: "\n").sorted())
    }
}
