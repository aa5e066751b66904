@testable import FlowDispatch
import Engine
import SFTapCodec
import CaptureTools
import Abstraction
import FlowCore
import Flows
import PacketCore
import XCTest

/// The socket analyzers (`flowtap analyzer`) hold split first bytes as `flowtap analyze` does: the same TCP
/// chunks, fed as SF-TAP DATA events to `SFTapStreamAnalyzer` and as flow-engine data to `AnalyzeSink`, give
/// the same records and the same count of undecided flows.
final class SocketAnalyzerFirstBytesTests: XCTestCase {
    struct Chunk {
        var fromClient: Bool
        var bytes: [UInt8]
        var match: SFTapEvent.Match = .none
    }

    /// One TCP flow: client and server, whether the client is SF-TAP's endpoint 1, and its chunks in order.
    struct Flow {
        var clientPort: UInt16
        var serverPort: UInt16 = 80
        var clientIsFirst = true
        var chunks: [Chunk]

        var key: FlowKey {
            let client = IPAddress(ipv4: clientIsFirst ? 0x0A00_0001 : 0x0A00_0003), server = IPAddress(ipv4: 0x0A00_0002)
            return clientIsFirst
                ? FlowKey(address1: client, port1: clientPort, address2: server, port2: serverPort, ipProtocol: 6)
                : FlowKey(address1: server, port1: serverPort, address2: client, port2: clientPort, ipProtocol: 6)
        }
    }

    /// A chunk's time: flow `f`, chunk `i`.
    static func time(_ f: Int, _ i: Int) -> Timestamp { Timestamp(seconds: 1_700_000_000 + Int64(f), microseconds: Int64(i) * 1_003 + 17) }
    static func end(_ f: Int) -> Timestamp { Timestamp(seconds: 1_700_000_000 + Int64(f), microseconds: 900_000) }

    /// What `flowtap analyze` writes for the flows (each created, fed and destroyed in turn), and its counters.
    func analyze(_ flows: [Flow]) -> (records: [String], counters: AnalyzeSink.Counters) {
        var records: [String] = []
        let sink = AnalyzeSink { records.append($0) }
        for (f, flow) in flows.enumerated() {
            let view = FlowView(key: flow.key, id: UInt64(f + 1), slot: f, created: Self.time(f, 0))
            sink.flowCreated(view, time: view.created)
            // As the engine does, the flow's first packet (here the first chunk's) comes before its data.
            if let first = flow.chunks.first {
                sink.flowPacket(view, fromFirst: first.fromClient == flow.clientIsFirst,
                                packet: FlowPacket(frameLength: 0, ipLength: 0, payloadLength: first.bytes.count), time: view.created)
            }
            for (i, chunk) in flow.chunks.enumerated() {
                chunk.bytes.withUnsafeBytes {
                    sink.flowData(view, fromFirst: chunk.fromClient == flow.clientIsFirst, bytes: $0, time: Self.time(f, i + 1))
                }
            }
            sink.flowDestroyed(view, reason: .normal, time: Self.end(f))
        }
        return (records, sink.counters)
    }

    /// The SF-TAP stream `flowtap abstract` would serve for the flows: CREATED, a DATA per chunk, DESTROYED
    /// (unless `destroyed` is false).
    func stream(_ flows: [Flow], binary: Bool, destroyed: Bool = true) -> [UInt8] {
        var formatter = SFTapHeaderWriter()
        defer { formatter.deallocate() }
        var out: [UInt8] = []
        for (f, flow) in flows.enumerated() {
            out += binary ? formatter.binary(key: flow.key, event: .created, fromFirst: nil, match: .none, length: 0, reason: .normal, time: Self.time(f, 0))
                : formatter.text(key: flow.key, event: .created, fromFirst: nil, match: .none, length: 0, reason: .normal, time: Self.time(f, 0))
            for (i, chunk) in flow.chunks.enumerated() {
                let fromFirst = chunk.fromClient == flow.clientIsFirst
                let match = SFTapEvent.Match(rawValue: chunk.match.rawValue)!
                out += binary
                    ? formatter.binary(key: flow.key, event: .data, fromFirst: fromFirst, match: match, length: chunk.bytes.count, reason: .normal,
                                       time: Self.time(f, i + 1))
                    : formatter.text(key: flow.key, event: .data, fromFirst: fromFirst, match: match, length: chunk.bytes.count, reason: .normal,
                                     time: Self.time(f, i + 1))
                out += chunk.bytes
            }
            guard destroyed else { continue }
            out += binary ? formatter.binary(key: flow.key, event: .destroyed, fromFirst: nil, match: .none, length: 0, reason: .normal, time: Self.end(f))
                : formatter.text(key: flow.key, event: .destroyed, fromFirst: nil, match: .none, length: 0, reason: .normal, time: Self.end(f))
        }
        return out
    }

    /// What `flowtap analyzer KIND` writes for the stream, fed in pieces of `piece` bytes, and the analyzer.
    func socketAnalyzer(_ kind: SFTapStreamAnalyzer.Kind, _ bytes: [UInt8], piece: Int) throws -> (records: [String], analyzer: SFTapStreamAnalyzer) {
        var records: [String] = []
        let analyzer = try SFTapStreamAnalyzer(kind: kind) { records.append($0) }
        analyzer.onStreamError = { XCTFail("\($0)") }
        bytes.withUnsafeBytes { raw in
            var at = 0
            while at < raw.count {
                let next = min(raw.count, at + piece)
                analyzer.feed(UnsafeRawBufferPointer(rebasing: raw[at ..< next]))
                at = next
            }
        }
        analyzer.finish()
        return (records, analyzer)
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
    static let response = bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    func testRequestsOneBytePerDataEventGiveAnalyzesRecords() throws {
        let get = Self.bytes("GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
        let token = Self.bytes("CCM_POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
        let flows = [
            // Every byte of the request in its own DATA event, then the response.
            Flow(clientPort: 40001, chunks: get.map { Chunk(fromClient: true, bytes: [$0]) } + [Chunk(fromClient: false, bytes: Self.response)]),
            // The client is endpoint 2, and `match` names the wrong side: the held first bytes decide.
            Flow(clientPort: 40002, clientIsFirst: false,
                 chunks: token.map { Chunk(fromClient: true, bytes: [$0], match: .down) } + [Chunk(fromClient: false, bytes: Self.response, match: .up)]),
            // The response also one byte per event, and a second request split in two.
            Flow(clientPort: 40003, chunks: get.map { Chunk(fromClient: true, bytes: [$0]) } + Self.response.map { Chunk(fromClient: false, bytes: [$0]) }
                 + [Chunk(fromClient: true, bytes: Array(get[..<3])), Chunk(fromClient: true, bytes: Array(get[3...])),
                    Chunk(fromClient: false, bytes: Self.response)]),
        ]
        let expected = analyze(flows)
        XCTAssertEqual(expected.records.count, 4)
        XCTAssertEqual(expected.counters.httpFlows, 3)
        XCTAssertEqual(expected.counters.undecidedFlows, 0)
        for binary in [false, true] {
            for piece in [1, 7, 100_000] {
                let (records, analyzer) = try socketAnalyzer(.http, stream(flows, binary: binary), piece: piece)
                XCTAssertEqual(records, expected.records, "binary \(binary), piece \(piece)")
                XCTAssertEqual(analyzer.counters.flows, 3)
                XCTAssertEqual(analyzer.counters.undecidedFlows, 0)
            }
        }
        // The records hold the whole requests, times of the first bytes included.
        let first = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(expected.records[0].utf8)) as? [String: Any])
        let method = (first["client"] as? [String: Any])?["method"] as? [String: Any]
        XCTAssertEqual(method?["method"] as? String, "GET")
        XCTAssertEqual(method?["uri"] as? String, "/a")
        let second = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(expected.records[1].utf8)) as? [String: Any])
        XCTAssertEqual(((second["client"] as? [String: Any])?["method"] as? [String: Any])?["method"] as? String, "CCM_POST")
        XCTAssertEqual((second["client"] as? [String: Any])?["port"] as? Int, 40002)
    }

    func testTLSClientHelloInPiecesGivesAnalyzesRecords() throws {
        // A ClientHello record cut inside its five-byte header and after it.
        var hello: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x2F, 0x01, 0x00, 0x00, 0x2B, 0x03, 0x03]
        hello += [UInt8](repeating: 0x11, count: 32) + [0x00, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00, 0x00, 0x00]
        let flows = [Flow(clientPort: 40010, serverPort: 443, chunks: [Chunk(fromClient: true, bytes: Array(hello[..<1])),
                                                                          Chunk(fromClient: true, bytes: Array(hello[1 ..< 4])),
                                                                          Chunk(fromClient: true, bytes: Array(hello[4...]))])]
        let expected = analyze(flows)
        XCTAssertEqual(expected.counters.tlsFlows, 1)
        XCTAssertFalse(expected.records.isEmpty)
        let (records, analyzer) = try socketAnalyzer(.tls, stream(flows, binary: true), piece: 5)
        XCTAssertEqual(records, expected.records)
        XCTAssertEqual(analyzer.counters.undecidedFlows, 0)
    }

    func testHoldingIsBoundedAndUndecidedFlowsAreCounted() throws {
        let request = Self.bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        let flows = [
            // A first line that never ends, one byte per event: given up at HeldStream.maxEvents chunks; the
            // request after that is not analyzed.
            Flow(clientPort: 40020, chunks: [Chunk(fromClient: true, bytes: Self.bytes("CCM_POST /"))]
                 + Array(repeating: Chunk(fromClient: true, bytes: Self.bytes("x")), count: HeldStream.maxEvents + 10)
                 + [Chunk(fromClient: true, bytes: request), Chunk(fromClient: false, bytes: Self.response)]),
            // A first line that never completes: given up at firstBytesLimit bytes of the direction.
            Flow(clientPort: 40021, chunks: [Chunk(fromClient: true, bytes: Self.bytes("CCM_POST /")),
                                             Chunk(fromClient: true, bytes: [UInt8](repeating: UInt8(ascii: "x"), count: AnalyzeSink.firstBytesLimit)),
                                             Chunk(fromClient: true, bytes: request), Chunk(fromClient: false, bytes: Self.response)]),
            // Just below both bounds, then the line ends: analyzed.
            Flow(clientPort: 40022, chunks: [Chunk(fromClient: true, bytes: Self.bytes("CCM_POST /"))]
                 + Array(repeating: Chunk(fromClient: true, bytes: Self.bytes("x")), count: HeldStream.maxEvents - 2)
                 + [Chunk(fromClient: true, bytes: Self.bytes(" HTTP/1.1\r\n\r\n")), Chunk(fromClient: false, bytes: Self.response)]),
            // The flow ends with its first bytes still held.
            Flow(clientPort: 40023, chunks: [Chunk(fromClient: true, bytes: Self.bytes("GE"), match: .up)]),
        ]
        let expected = analyze(flows)
        XCTAssertEqual(expected.counters.undecidedFlows, 3)
        XCTAssertEqual(expected.counters.httpFlows, 1)
        XCTAssertEqual(expected.records.count, 1)
        for binary in [false, true] {
            let (records, analyzer) = try socketAnalyzer(.http, stream(flows, binary: binary), piece: 4096)
            XCTAssertEqual(records, expected.records, "binary \(binary)")
            XCTAssertEqual(analyzer.counters.undecidedFlows, expected.counters.undecidedFlows)
            XCTAssertEqual(analyzer.counters.flows, 1)
            XCTAssertTrue(analyzer.summary.contains("flows without a known client 3"), analyzer.summary)
        }
        // A stream that ends (no DESTROYED) while a flow holds its first bytes counts it too.
        let (records, analyzer) = try socketAnalyzer(.http, stream([flows[3]], binary: false, destroyed: false), piece: 4096)
        XCTAssertTrue(records.isEmpty)
        XCTAssertEqual(analyzer.counters.events, 2)
        XCTAssertEqual(analyzer.counters.undecidedFlows, 1)
    }

    /// Chunks that cannot start a request leave the client to SF-TAP's `match`, as before; without it the
    /// flow is ignored after two of them.
    func testMatchDecidesWhenFirstBytesStartNothing() throws {
        let junk = Chunk(fromClient: true, bytes: [0x01, 0x02, 0x03])
        var labelled = junk
        labelled.match = .up
        let flows = [Flow(clientPort: 40030, serverPort: 8080, chunks: [labelled, junk]),
                     Flow(clientPort: 40031, serverPort: 8080, chunks: [junk, junk, labelled])]
        let (_, analyzer) = try socketAnalyzer(.http, stream(flows, binary: false), piece: 64)
        XCTAssertEqual(analyzer.counters.flows, 1)
        XCTAssertEqual(analyzer.counters.undecidedFlows, 1)
    }
}
