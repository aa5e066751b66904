@testable import Analyzers
import Outputs
import Foundation
import XCTest

/// One side's bytes (or a gap) at a capture time.
private enum Piece {
    case client(String)
    case server(String)
    case clientGap(Int)
    case serverGap(Int)
}

/// How each data piece is cut before it reaches the analyzer.
private enum Cut: Equatable {
    case whole
    case byteByByte
    /// Piece `index` is cut in two at `at`.
    case split(index: Int, at: Int)
    /// Every piece cut at seeded random points.
    case random(seed: UInt64)
}

private let client = HTTPEndpoint(ip: "10.0.0.1", port: 40000)
private let server = HTTPEndpoint(ip: "10.0.0.2", port: 80)

private func feed(_ pieces: [Piece], cut: Cut = .whole, options: HTTPAnalyzer.Options = .init(), vlan: Int? = nil) -> (lines: [String], counters: HTTPCounters) {
    var lines: [String] = []
    let analyzer = HTTPAnalyzer(options: options) { lines.append($0) }
    analyzer.open(flow: 7, client: client, server: server, vlan: vlan, time: 0)
    for (index, piece) in pieces.enumerated() {
        let time = Double(index + 1)
        switch piece {
        case .clientGap(let n): analyzer.gap(flow: 7, fromClient: true, length: n)
        case .serverGap(let n): analyzer.gap(flow: 7, fromClient: false, length: n)
        case .client(let text), .server(let text):
            var fromClient = false
            if case .client = piece { fromClient = true }
            let bytes = Array(text.utf8)
            var parts: [ArraySlice<UInt8>]
            switch cut {
            case .whole: parts = [bytes[...]]
            case .byteByByte: parts = bytes.indices.map { bytes[$0 ..< $0 + 1] }
            case .split(let i, let at) where i == index && at < bytes.count: parts = [bytes[..<at], bytes[at...]]
            case .split: parts = [bytes[...]]
            case .random(let seed):
                var rng = HTTPTestRandom(seed: seed &+ UInt64(index))
                parts = []
                var off = 0
                while off < bytes.count {
                    let k = min(bytes.count - off, Int(rng.next() % 9) + 1)
                    parts.append(bytes[off ..< off + k])
                    off += k
                }
            }
            for part in parts {
                Array(part).withUnsafeBytes { analyzer.data(flow: 7, fromClient: fromClient, bytes: $0, time: time) }
            }
        }
    }
    analyzer.close(flow: 7, time: Double(pieces.count + 1))
    return (lines, analyzer.counters)
}

private func objects(_ lines: [String], file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
    lines.map { text in
        XCTAssertTrue(text.hasSuffix("\n"), file: file, line: line)
        let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        XCTAssertNotNil(object, "not JSON: \(text)", file: file, line: line)
        return object ?? [:]
    }
}

private extension Dictionary where Key == String, Value == Any {
    func obj(_ key: String) -> [String: Any]? { self[key] as? [String: Any] }
    func value(_ path: [String]) -> Any? {
        var cur: [String: Any]? = self
        for k in path.dropLast() { cur = cur?.obj(k) }
        return path.last.flatMap { cur?[$0] }
    }
    func str(_ path: String...) -> String? { value(path) as? String }
    func int(_ path: String...) -> Int? { value(path) as? Int }
    func double(_ path: String...) -> Double? { value(path) as? Double }
    func flag(_ path: String...) -> Bool? { value(path) as? Bool }
    func has(_ path: String...) -> Bool { value(path) != nil }
}

private func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }

// MARK: - Fixtures

private let simpleGet: [Piece] = [
    .client("GET /index.html HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"),
    .server("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"),
]

private let pipelined: [Piece] = [
    .client("GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nabcdHEAD /c HTTP/1.1\r\nHost: h\r\n\r\n"),
    .server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
        + "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;name=val\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n"
        + "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
]

private let chunkedTrailers: [Piece] = [
    .client("POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n"),
    .server("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n1a; ext=\"x\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nExpires: never\r\nX-Md5: 1\r\n\r\n"),
]

private let interim: [Piece] = [
    .client("POST /p HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"),
    .server("HTTP/1.1 100 Continue\r\n\r\n"),
    .client("xyz"),
    .server("HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 99\r\n\r\n"),
    .client("GET /q HTTP/1.1\r\nIf-None-Match: \"e\"\r\n\r\n"),
    .server("HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\nContent-Length: 50\r\n\r\n"),
]

private let closeDelimited: [Piece] = [
    .client("GET / HTTP/1.0\r\n\r\n"),
    .server("HTTP/1.0 200 OK\r\nServer: old\r\n\r\nline one\n"),
    .server("line two\n"),
]

private let upgrade: [Piece] = [
    .client("GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\u{81}\u{05}hello"),
    .server("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\u{81}\u{02}ok"),
    .client("GET /not-http HTTP/1.1\r\n\r\n"),
]

private let declinedUpgrade: [Piece] = [
    .client("GET /a HTTP/1.1\r\nUpgrade: h2c\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
    .server("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"),
    .server("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nB"),
]

private let connect: [Piece] = [
    .client("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\u{16}\u{03}\u{01}"),
    .server("HTTP/1.1 200 Connection established\r\n\r\n\u{16}\u{03}\u{03}"),
]

private let gapInBody: [Piece] = [
    .client("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
    .server("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
    .serverGap(4),
    .server("hijHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\na"),
    .serverGap(3),
    .server("e\r\n0\r\n\r\n"),
]

/// Plain HTTP proxied through a CONNECT tunnel (suricata-verify http-connect-simple).
private let connectHTTP: [Piece] = [
    .client("CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\r\nGET /in HTTP/1.1\r\nHost: example.com\r\n\r\n"),
    .server("HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    .client("POST /more HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1\r\n\r\nx"),
    .server("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
]

/// The tunnelled request arrives only after the proxy's answer.
private let connectHTTPLater: [Piece] = [
    .client("CONNECT example.com:80 HTTP/1.1\r\n\r\n"),
    .server("HTTP/1.1 200 Connection established\r\n\r\n"),
    .client("GET /late HTTP/1.1\r\n\r\n"),
    .server("HTTP/1.1 204 No Content\r\n\r\n"),
]

/// HTTP/0.9 (RFC 1945 §4.1): a request line without version, answered by a bare body up to close.
private let simpleRequest: [Piece] = [
    .client("GET /zeek.html\n"),
    .server("<html>\n  hello\n</html>\n"),
]

/// Lenient request lines and header lines that deployed servers accept.
private let lenientLines: [Piece] = [
    .client("GET HTTP/1.1\r\nHost: bro.org\r\n0123User-Agent: Wget\r\nNo colon here\r\n\r\n"
        + "OPTIONS  a b  HTTP/1.0\r\n\r\n"),
    .server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
]

/// A gap that swallows the rest of a body and the next status line's start (http-gap-whole-body).
private let gapPastBody: [Piece] = [
    .client("GET /1 HTTP/1.0\r\n\r\nGET /2 HTTP/1.0\r\n\r\nGET /3 HTTP/1.0\r\n\r\n"),
    .server("HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\nab"), .serverGap(9),
    .server("HTTP/1.0 404 Not Found\r\nContent-Length: 2\r\n\r\nno"),
    .server("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nyes"),
]

private let allFixtures: [(String, [Piece])] = [
    ("gapInBody", gapInBody), ("gapPastBody", gapPastBody), ("simpleRequest", simpleRequest), ("lenientLines", lenientLines),
    ("simpleGet", simpleGet), ("pipelined", pipelined), ("chunkedTrailers", chunkedTrailers),
    ("interim", interim), ("closeDelimited", closeDelimited), ("upgrade", upgrade),
    ("declinedUpgrade", declinedUpgrade), ("connect", connect), ("connectHTTP", connectHTTP),
    ("connectHTTPLater", connectHTTPLater),
]

final class HTTPTests: XCTestCase {
    // MARK: Streaming equivalence

    func testEveryCutGivesTheSameRecords() {
        for options in [HTTPAnalyzer.Options(), HTTPAnalyzer.Options(bodies: true)] {
            for (name, pieces) in allFixtures {
                let reference = feed(pieces, options: options)
                XCTAssertFalse(reference.lines.isEmpty, name)
                XCTAssertEqual(reference.counters.parseErrors, 0, "\(name): \(reference.lines)")
                XCTAssertEqual(feed(pieces, cut: .byteByByte, options: options).lines, reference.lines, "\(name) byte by byte")
                for seed in 0 ..< 20 as Range<UInt64> {
                    XCTAssertEqual(feed(pieces, cut: .random(seed: seed), options: options).lines, reference.lines, "\(name) seed \(seed)")
                }
                for (index, piece) in pieces.enumerated() {
                    switch piece {
                    case .client(let text), .server(let text):
                        checkSplits(name, pieces, index, text.utf8.count, options, reference.lines)
                    default:
                        break
                    }
                }
            }
        }
    }

    private func checkSplits(_ name: String, _ pieces: [Piece], _ index: Int, _ count: Int, _ options: HTTPAnalyzer.Options, _ reference: [String]) {
        for at in 1 ..< max(count, 1) {
            let got = feed(pieces, cut: .split(index: index, at: at), options: options).lines
            if got != reference {
                XCTFail("\(name): piece \(index) split at \(at) differs:\n\(got)\nvs\n\(reference)")
                return
            }
        }
    }

    // MARK: Shapes

    func testSimpleGetRecordShape() {
        let (lines, counters) = feed(simpleGet, options: .init(bodies: true), vlan: 12)
        let records = objects(lines)
        XCTAssertEqual(records.count, 1)
        let r = records[0]
        XCTAssertEqual(r.str("type"), "http")
        XCTAssertEqual(r["vlan"] as? [Int], [12])
        XCTAssertEqual(r.str("client", "ip"), "10.0.0.1")
        XCTAssertEqual(r.int("client", "port"), 40000)
        XCTAssertEqual(r.double("client", "time"), 1)
        XCTAssertEqual(r.obj("client")?.obj("method") as? [String: String], ["method": "GET", "uri": "/index.html", "ver": "HTTP/1.1"])
        XCTAssertEqual(r.obj("client")?.obj("header") as? [String: String], ["host": "example.com", "accept": "*/*"])
        XCTAssertEqual(r.str("client", "body"), "")
        XCTAssertEqual(r.obj("server")?.obj("response").map { NSDictionary(dictionary: $0) }, ["ver": "HTTP/1.1", "code": "200", "status": 200, "msg": "OK"] as NSDictionary)
        XCTAssertEqual(r.str("server", "body"), b64("hello"))
        XCTAssertEqual(r.double("server", "time"), 2)
        XCTAssertEqual(counters.transactions, 1)
        // Bodies are off by default.
        XCTAssertFalse(objects(feed(simpleGet).lines)[0].has("server", "body"))
    }

    /// Set-Cookie values hold commas ("Expires=Wed, 09 Jun 2021 …"): joining them corrupts the cookies
    /// (RFC 6265 §3). They are an array, one value per header line, in order, even when sent once; other
    /// repeated names are arrays too, a name sent once a string.
    func testSetCookieIsAnArrayOfItsValues() throws {
        let pieces: [Piece] = [
            .client("GET / HTTP/1.1\r\nHost: a\r\nAccept: a\r\nAccept: b\r\n\r\n"),
            .server("HTTP/1.1 200 OK\r\nSet-Cookie: id=1; Expires=Wed, 09 Jun 2021 10:18:14 GMT\r\nVia: x\r\n"
                    + "set-cookie: lang=en, fr; Path=/\r\nVia: y\r\nContent-Length: 0\r\n\r\n"),
            .client("GET /2 HTTP/1.1\r\nHost: a\r\n\r\n"),
            .server("HTTP/1.1 200 OK\r\nSet-Cookie: only=1\r\nContent-Length: 0\r\n\r\n"),
        ]
        for cut in [Cut.whole, .byteByByte] {
            let records = objects(feed(pieces, cut: cut).lines)
            XCTAssertEqual(records.count, 2)
            let header = try XCTUnwrap(records[0].obj("server")?.obj("header"))
            XCTAssertEqual(header["set-cookie"] as? [String], ["id=1; Expires=Wed, 09 Jun 2021 10:18:14 GMT", "lang=en, fr; Path=/"])
            XCTAssertEqual(header["via"] as? [String], ["x", "y"])
            XCTAssertEqual(records[0].obj("client")?.obj("header")?["accept"] as? [String], ["a", "b"])
            XCTAssertEqual(records[0].obj("client")?.obj("header")?["host"] as? String, "a")
            XCTAssertEqual(records[1].obj("server")?.obj("header")?["set-cookie"] as? [String], ["only=1"])
        }
    }

    func testPipeliningPairsInOrderWithHEADAndChunked() {
        let records = objects(feed(pipelined, options: .init(bodies: true)).lines)
        XCTAssertEqual(records.map { $0.str("client", "method", "uri") }, ["/a", "/b", "/c"])
        XCTAssertEqual(records.map { $0.str("server", "response", "code") }, ["200", "201", "200"])
        XCTAssertEqual(records[0].str("server", "body"), b64("hi"))
        XCTAssertEqual(records[1].str("client", "body"), b64("abcd"))
        XCTAssertEqual(records[1].str("server", "body"), b64("abc"))
        XCTAssertEqual(records[1].obj("server")?.obj("trailer") as? [String: String], ["x-sum": "1"])
        // HEAD: Content-Length describes the entity, no body follows.
        XCTAssertEqual(records[2].str("server", "body"), "")
        XCTAssertFalse(records[2].has("server", "incomplete"))
    }

    func testChunkedWithTrailersAndExtensions() {
        let records = objects(feed(chunkedTrailers, options: .init(bodies: true)).lines)
        XCTAssertEqual(records.count, 1)
        XCTAssertEqual(records[0].str("client", "body"), b64("Wikipedia in\r\n\r\nchunks."))
        XCTAssertEqual(records[0].str("server", "body"), b64("abcdefghijklmnopqrstuvwxyz"))
        XCTAssertEqual(records[0].obj("server")?.obj("trailer") as? [String: String], ["expires": "never", "x-md5": "1"])
        XCTAssertFalse(records[0].has("client", "trailer"))
    }

    /// 100 Continue and 103 Early Hints are reported inside the final response they precede, in order and
    /// with their times; a response without interim ones has no "interim" key.
    func testInterimResponsesReported204And304HaveNoBody() throws {
        let (lines, counters) = feed(interim, options: .init(bodies: true))
        let records = objects(lines)
        XCTAssertEqual(records.count, 2)
        let reported = try XCTUnwrap(records[0].obj("server")?["interim"] as? [[String: Any]])
        XCTAssertEqual(reported.map { $0["code"] as? String }, ["100", "103"])
        XCTAssertEqual(reported.map { $0["msg"] as? String }, ["Continue", "Early Hints"])
        XCTAssertEqual(reported.map { $0["time"] as? Double }, [2, 4])
        XCTAssertNil(records[1].obj("server")?["interim"])
        // The same in every cut.
        XCTAssertEqual(feed(interim, cut: .byteByByte, options: .init(bodies: true)).lines, lines)
        XCTAssertEqual(records[0].str("client", "body"), b64("xyz"))
        XCTAssertEqual(records[0].str("server", "response", "code"), "204")
        XCTAssertEqual(records[1].str("server", "response", "code"), "304")
        XCTAssertEqual(records[1].str("server", "body"), "")
        XCTAssertEqual(counters.interimResponses, 2)
        XCTAssertEqual(counters.transactions, 2)
        XCTAssertEqual(counters.incompleteMessages, 0)
    }

    func testCloseDelimitedBody() {
        let records = objects(feed(closeDelimited, options: .init(bodies: true)).lines)
        XCTAssertEqual(records.count, 1)
        XCTAssertEqual(records[0].str("server", "body"), b64("line one\nline two\n"))
        XCTAssertFalse(records[0].has("server", "incomplete"))
    }

    func testRequestWithoutResponse() {
        let (lines, counters) = feed([.client("GET /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\n"), .server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")])
        let records = objects(lines)
        XCTAssertEqual(records.count, 2)
        XCTAssertTrue(records[0].has("server"))
        XCTAssertEqual(records[1].str("client", "method", "uri"), "/y")
        XCTAssertFalse(records[1].has("server"))
        XCTAssertEqual(counters.requestsWithoutResponse, 1)
    }

    func testTruncatedMessagesAtCloseAreMarkedIncomplete() {
        let (lines, counters) = feed([.client("GET / HTTP/1.1\r\n\r\n"), .server("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")])
        let records = objects(lines)
        XCTAssertEqual(records.count, 1)
        XCTAssertEqual(records[0].flag("server", "incomplete"), true)
        XCTAssertEqual(counters.incompleteMessages, 1)
    }

    func testProtocolSwitchesStopParsing() {
        let (lines, counters) = feed(upgrade)
        XCTAssertEqual(lines.count, 1)
        XCTAssertEqual(objects(lines)[0].str("server", "response", "code"), "101")
        XCTAssertEqual(counters.parseErrors, 0)
        XCTAssertEqual(counters.protocolSwitches, 1)
        let tunnel = feed(connect)
        XCTAssertEqual(tunnel.lines.count, 1)
        XCTAssertEqual(tunnel.counters.protocolSwitches, 1)
        XCTAssertEqual(tunnel.counters.parseErrors, 0)
        XCTAssertEqual(tunnel.counters.tunnelsOpaque, 1)
        XCTAssertEqual(tunnel.counters.tunnelsParsed, 0)
    }

    func testHTTPInsideAConnectTunnelIsParsed() {
        let (lines, counters) = feed(connectHTTP, options: .init(bodies: true))
        let records = objects(lines)
        XCTAssertEqual(records.map { $0.str("client", "method", "method") }, ["CONNECT", "GET", "POST"])
        XCTAssertEqual(records.map { $0.str("client", "method", "uri") }, ["example.com:80", "/in", "/more"])
        XCTAssertEqual(records.map { $0.str("server", "response", "code") }, ["200", "200", "404"])
        XCTAssertEqual(records[1].str("server", "body"), b64("ok"))
        XCTAssertEqual(records[2].str("client", "body"), b64("x"))
        // Held tunnel bytes keep the time they arrived at.
        XCTAssertEqual(records[1].double("client", "time"), 1)
        XCTAssertEqual(counters.tunnelsParsed, 1)
        XCTAssertEqual(counters.tunnelsOpaque, 0)
        XCTAssertEqual(counters.transactions, 3)
        // A stray line ending after the CONNECT request (as in http-connect-simple) is skipped.
        let stray = objects(feed([
            .client("CONNECT h:80 HTTP/1.1\r\n\r\n\n"), .server("HTTP/1.1 200 OK\r\n\r\n\n"),
            .client("\r\nGET /s HTTP/1.1\r\n\r\n"), .server("HTTP/1.1 200 OK\r\n\r\n"),
        ]).lines)
        XCTAssertEqual(stray.map { $0.str("client", "method", "uri") }, ["h:80", "/s"])
        let later = objects(feed(connectHTTPLater).lines)
        XCTAssertEqual(later.map { $0.str("client", "method", "uri") }, ["example.com:80", "/late"])
        XCTAssertEqual(later.map { $0.str("server", "response", "code") }, ["200", "204"])
    }

    func testOpaqueTunnels() {
        let connectLine = Piece.client("CONNECT h:443 HTTP/1.1\r\n\r\n")
        let established = Piece.server("HTTP/1.1 200 Connection established\r\n\r\n")
        // Not a request line: lower-case method, TLS, the server speaking first, a gap first.
        let cases: [(String, [Piece])] = [
            ("lower case", [connectLine, established, .client("get / HTTP/1.1\r\n\r\n"), .server("HTTP/1.1 200 OK\r\n\r\n")]),
            ("server first", [connectLine, established, .server("220 smtp ready\r\n"), .client("GET / HTTP/1.1\r\n\r\n")]),
            ("gap first", [connectLine, established, .clientGap(5), .client("GET / HTTP/1.1\r\n\r\n")]),
            ("too many empty lines", [connectLine, established, .client(String(repeating: "\r\n", count: 13) + "GET / HTTP/1.1\r\n\r\n")]),
        ]
        for (name, pieces) in cases {
            for cut in [Cut.whole, .byteByByte] {
                let (lines, counters) = feed(pieces, cut: cut)
                XCTAssertEqual(lines.count, 1, name)
                XCTAssertEqual(counters.tunnelsOpaque, 1, name)
                XCTAssertEqual(counters.tunnelsParsed, 0, name)
                XCTAssertEqual(counters.parseErrors, 0, name)
            }
        }
        // A declined CONNECT replays the held bytes as requests, as before.
        let declined = objects(feed([
            .client("CONNECT h:443 HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
            .server("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ]).lines)
        XCTAssertEqual(declined.map { $0.str("client", "method", "uri") }, ["h:443", "/b"])
        XCTAssertEqual(declined.map { $0.str("server", "response", "code") }, ["407", "200"])
    }

    func testDeclinedUpgradeReplaysHeldRequests() {
        let records = objects(feed(declinedUpgrade, options: .init(bodies: true)).lines)
        XCTAssertEqual(records.map { $0.str("client", "method", "uri") }, ["/a", "/b"])
        XCTAssertEqual(records.map { $0.str("server", "body") }, [b64("A"), b64("B")])
    }

    func testRepeatedHeadersAreArraysAndObsFoldIsJoined() {
        let records = objects(feed([
            .client("GET / HTTP/1.1\r\nAccept: a\r\nX-Long: one\r\n  two\r\naccept: b\r\n\r\n"),
            .server("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"),
        ]).lines)
        XCTAssertEqual(records[0].obj("client")?.obj("header").map { NSDictionary(dictionary: $0) }, ["accept": ["a", "b"], "x-long": "one two"] as NSDictionary)
        XCTAssertEqual(records[0].obj("server")?.obj("response").map { NSDictionary(dictionary: $0) }, ["ver": "HTTP/1.1", "code": "200", "status": 200, "msg": ""] as NSDictionary)
    }

    // MARK: Gaps

    func testGapInBodyCountsMissingBytesAndContinues() {
        let pieces: [Piece] = [
            .client("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
            .server("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
            .serverGap(4),
            .server("hij"),
            .server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ]
        let (lines, counters) = feed(pieces, options: .init(bodies: true))
        let records = objects(lines)
        XCTAssertEqual(records.count, 2)
        XCTAssertEqual(records[0].str("server", "body"), b64("abchij"))
        XCTAssertEqual(records[0].int("server", "body_missing"), 4)
        XCTAssertEqual(records[1].str("server", "body"), b64("ok"))
        XCTAssertEqual(counters.gapBytes, 4)
        XCTAssertEqual(counters.parseErrors, 0)
        // A gap that ends the body exactly completes the message.
        let exact = objects(feed([pieces[0], .server("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), .serverGap(7), pieces[4]]).lines)
        XCTAssertEqual(exact.count, 2)
        // Gaps inside chunk data and close-delimited bodies.
        let chunked = objects(feed([
            .client("GET / HTTP/1.1\r\n\r\n"),
            .server("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\na"), .serverGap(3), .server("e\r\n0\r\n\r\n"),
        ]).lines)
        XCTAssertEqual(chunked[0].int("server", "body_missing"), 3)
        XCTAssertFalse(chunked[0].has("error"))
    }

    func testGapPastTheBodyResynchronisesAtTheNextStatusLine() {
        // As in suricata-verify http-gap-whole-body: the gap swallows a whole body and the bytes after it.
        let (lines, counters) = feed(gapPastBody, options: .init(bodies: true))
        let records = objects(lines)
        XCTAssertEqual(records.map { $0.str("client", "method", "uri") }, ["/1", "/2", "/3"])
        XCTAssertEqual(records.map { $0.str("server", "response", "code") }, ["200", "404", "200"])
        XCTAssertEqual(records[0].int("server", "body_missing"), 5)
        XCTAssertEqual(records[0].str("server", "body"), b64("ab"))
        XCTAssertEqual(records[1].str("server", "body"), b64("no"))
        XCTAssertFalse(records[1].has("server", "body_missing"))
        XCTAssertEqual(records[2].str("server", "body"), b64("yes"))
        XCTAssertEqual(counters.resyncs, 1)
        XCTAssertEqual(counters.resyncGiveUps, 0)
        XCTAssertEqual(counters.transactions, 3)
        XCTAssertEqual(counters.parseErrors, 0)
    }

    func testResyncSkipsToALineStartThatParses() {
        // The gap ends mid-line: the tail of the lost message, a body line that
        // starts like a method, and a status-like line that does not parse are skipped.
        let (lines, counters) = feed([
            .client("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
            .server("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\na"), .serverGap(30),
            .server("tail of something\r\nHTTP/1.1 abc\r\nxHTTP/1.1 200 OK\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nz"),
        ], options: .init(bodies: true))
        let records = objects(lines)
        XCTAssertEqual(records.map { $0.str("server", "response", "code") }, ["200", "201"])
        XCTAssertEqual(records[1].str("server", "body"), b64("z"))
        XCTAssertEqual(records[1].double("server", "time"), 4)
        XCTAssertEqual(counters.resyncs, 1)
        XCTAssertEqual(counters.parseErrors, 0)
    }

    func testClientResyncAfterAGapPastARequestBody() {
        let (lines, counters) = feed([
            .client("POST /up HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123"), .clientGap(40),
            .client("lost rest\r\nHTTP/1.1 x\r\nthe end GET\r\nPUT /next HTTP/1.1\r\nHost: h\r\n\r\n"),
            .server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
        ])
        let records = objects(lines)
        XCTAssertEqual(records.map { $0.str("client", "method", "uri") }, ["/up", "/next"])
        XCTAssertEqual(records[0].int("client", "body_missing"), 6)
        XCTAssertEqual(records[1].str("client", "method", "method"), "PUT")
        XCTAssertEqual(records[1].str("server", "response", "code"), "201")
        XCTAssertEqual(counters.resyncs, 1)
        XCTAssertEqual(counters.parseErrors, 0)
        // An HTTP/0.9-looking line is no resync point: a version is required.
        let simple = feed([
            .client("GET /a HTTP/1.1\r\nContent-Length: 2\r\n\r\n"), .clientGap(9),
            .client("GET /b\r\nGET /c HTTP/1.0\r\n\r\n"),
        ])
        XCTAssertEqual(objects(simple.lines).map { $0.str("client", "method", "uri") }, ["/a", "/c"])
    }

    func testResyncedResponseWithoutRequestAndChunkedGap() {
        // A gap past a chunk ends the message incomplete; the resynced response has no request left.
        let (lines, counters) = feed([
            .client("GET /1 HTTP/1.1\r\n\r\n"),
            .server("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"), .serverGap(50),
            .server("HTTP/1.1 304 Not Modified\r\n\r\n"),
        ])
        let records = objects(lines)
        XCTAssertEqual(records.count, 2)
        XCTAssertEqual(records[0].int("server", "body_missing"), 3)
        XCTAssertEqual(records[0].flag("server", "incomplete"), true)
        XCTAssertEqual(records[1].str("server", "response", "code"), "304")
        XCTAssertFalse(records[1].has("client"))
        XCTAssertEqual(counters.responsesWithoutRequest, 1)
        XCTAssertEqual(counters.resyncs, 1)
    }

    func testResyncGivesUpAfterTheLimit() {
        let noise = String(repeating: "some body text without a status line\r\n", count: HTTPParser.maxResyncBytes / 38 + 2)
        let (lines, counters) = feed([
            .client("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
            .server("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"), .serverGap(20),
            .server(noise), .server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ])
        let records = objects(lines)
        XCTAssertEqual(records.count, 3)
        XCTAssertEqual(records[1].str("error"), "no message start after gap")
        XCTAssertEqual(records[1].str("direction"), "server")
        XCTAssertEqual(records[2].str("client", "method", "uri"), "/2")
        XCTAssertFalse(records[2].has("server"))
        XCTAssertEqual(counters.resyncGiveUps, 1)
        XCTAssertEqual(counters.resyncs, 0)
        // Just under the limit the status line is still found.
        let short = String(noise.utf8.prefix(HTTPParser.maxResyncBytes - 40))!
        let found = feed([
            .client("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
            .server("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"), .serverGap(20),
            .server(short + "\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ])
        XCTAssertEqual(found.counters.resyncs, 1)
        XCTAssertEqual(found.counters.transactions, 2)
    }

    func testStartVerdicts() {
        func req(_ s: String) -> HTTPParser.StartVerdict { HTTPParser.requestStartVerdict(Array(s.utf8)) }
        XCTAssertEqual(req("GE"), .undecided)
        XCTAssertEqual(req("GET "), .undecided)
        XCTAssertEqual(req("GET /"), .match)
        XCTAssertEqual(req("M-SEARCH *"), .match)
        XCTAssertEqual(req("CONNECT h:443"), .match)
        XCTAssertEqual(req("get /"), .mismatch)
        XCTAssertEqual(req("GE /"), .mismatch)
        XCTAssertEqual(req("GET  /"), .mismatch)
        XCTAssertEqual(req("-ET /"), .mismatch)
        XCTAssertEqual(req("\u{16}\u{03}\u{01}"), .mismatch)
        XCTAssertEqual(req(String(repeating: "A", count: 20)), .undecided)
        XCTAssertEqual(req(String(repeating: "A", count: 21)), .mismatch)
        XCTAssertEqual(req("GET\r\n"), .mismatch)
        func status(_ s: String) -> HTTPParser.StartVerdict { HTTPParser.statusStartVerdict(Array(s.utf8)) }
        XCTAssertEqual(status("HTT"), .undecided)
        XCTAssertEqual(status("HTTP/1."), .match)
        XCTAssertEqual(status("HTTP/2"), .mismatch)
        XCTAssertEqual(status("xHTTP/1."), .mismatch)
    }

    func testGapInHeaderIsAnErrorForThatDirection() {
        let (lines, counters) = feed([
            .client("GET / HTTP/1.1\r\n\r\n"),
            .server("HTTP/1.1 200 OK\r\nContent-"), .serverGap(10), .server("Length: 0\r\n\r\n"),
        ])
        let records = objects(lines)
        XCTAssertEqual(records.first?.str("error"), "gap in header")
        XCTAssertEqual(records.first?.str("direction"), "server")
        XCTAssertEqual(records.first?.str("server", "ip"), "10.0.0.2")
        XCTAssertEqual(counters.parseErrors, 1)
        XCTAssertEqual(counters.requestsWithoutResponse, 1)
        XCTAssertEqual(records.count, 2)
        XCTAssertFalse(records[1].has("server"))
    }

    // MARK: Malformed input

    func testMalformedStartLine() {
        for bad in ["GARBAGE\r\n\r\n", "GET / HTTP/1.1 extra\r\n\r\n", "GET\r\n\r\n", "GET / HTTP/x.y\r\n\r\n", "\u{1}GET / HTTP/1.1\r\n\r\n"] {
            let (lines, counters) = feed([.client(bad), .server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")])
            let records = objects(lines)
            XCTAssertEqual(records.first?.str("error"), "bad start line", bad)
            XCTAssertEqual(records.first?.str("direction"), "client", bad)
            XCTAssertEqual(counters.parseErrors, 1, bad)
            XCTAssertEqual(counters.responsesWithoutRequest, 1, bad)
        }
        let (lines, _) = feed([.client("GET / HTTP/1.1\r\n\r\n"), .server("HTTP/1.1 OK\r\n\r\n")])
        XCTAssertEqual(objects(lines).first?.str("error"), "bad start line")
    }

    func testHTTP09RequestsAndSimpleResponses() {
        let (lines, counters) = feed(simpleRequest, options: .init(bodies: true))
        let records = objects(lines)
        XCTAssertEqual(records.count, 1)
        XCTAssertEqual(records[0].obj("client")?.obj("method") as? [String: String], ["method": "GET", "uri": "/zeek.html", "ver": "HTTP/0.9"])
        XCTAssertEqual(records[0].obj("server")?.obj("response") as? [String: String], ["ver": "HTTP/0.9", "code": "", "msg": ""])
        XCTAssertEqual(records[0].str("server", "body"), b64("<html>\n  hello\n</html>\n"))
        XCTAssertNil(records[0].flag("client", "incomplete"))
        XCTAssertEqual(counters.simpleResponses, 1)
        XCTAssertEqual(counters.transactions, 1)
        XCTAssertEqual(counters.parseErrors, 0)

        // Headers after a request line without version are read; an answer with a status line is a full response.
        let full = objects(feed([.client("GET /HTTP/1.1\r\nHost: h\r\n\r\n"),
                                 .server("HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")]).lines)
        XCTAssertEqual(full.count, 1)
        XCTAssertEqual(full[0].str("client", "method", "uri"), "/HTTP/1.1")
        XCTAssertEqual(full[0].str("client", "header", "host"), "h")
        XCTAssertEqual(full[0].str("server", "response", "code"), "400")

        // A request cut short inside its headers is kept, marked incomplete.
        let cut = objects(feed([.client("GET /x HTTP/1.1\r\nHost: h\r\n")]).lines)
        XCTAssertEqual(cut.count, 1)
        XCTAssertEqual(cut[0].str("client", "method", "uri"), "/x")
        XCTAssertEqual(cut[0].flag("client", "incomplete"), true)
    }

    func testLenientRequestLinesAndHeaderLines() {
        let (lines, counters) = feed(lenientLines)
        let records = objects(lines)
        XCTAssertEqual(records.count, 2)
        XCTAssertEqual(records[0].obj("client")?.obj("method") as? [String: String], ["method": "GET", "uri": "", "ver": "HTTP/1.1"])
        XCTAssertEqual(records[0].obj("client")?.obj("header") as? [String: String], ["host": "bro.org", "0123user-agent": "Wget"])
        XCTAssertEqual(records[0].str("server", "response", "code"), "200")
        XCTAssertEqual(records[1].obj("client")?.obj("method") as? [String: String], ["method": "OPTIONS", "uri": "a b", "ver": "HTTP/1.0"])
        XCTAssertEqual(records[1].str("server", "response", "code"), "400")
        XCTAssertEqual(counters.ignoredHeaderLines, 1)
        XCTAssertEqual(counters.parseErrors, 0)
    }

    func testMalformedFraming() {
        let cases: [(Piece, String)] = [
            (.client("POST / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n"), "bad content-length"),
            (.client("POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n"), "bad content-length"),
            (.client("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), "bad transfer-encoding"),
            (.client("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), "bad chunk"),
            (.client("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n"), "bad chunk"),
            (.client("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"), "bad header"),
            (.client("GET / HTTP/1.1\r\n: empty name\r\n\r\n"), "bad header"),
        ]
        for (piece, text) in cases {
            let records = objects(feed([piece]).lines)
            XCTAssertEqual(records.first?.str("error"), text, "\(piece)")
        }
        // Equal repeated Content-Length values are one length.
        XCTAssertEqual(HTTPParser.parseContentLength(Array("5, 5".utf8)), 5)
    }

    func testHeaderTooLong() {
        let options = HTTPAnalyzer.Options(maxHeaderBytes: 256)
        let long = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 300) + "\r\n\r\n"
        for cut in [Cut.whole, .byteByByte] {
            let (lines, counters) = feed([.client(long)], cut: cut, options: options)
            XCTAssertEqual(objects(lines).map { $0.str("error") }, ["header too long"])
            XCTAssertEqual(counters.parseErrors, 1)
        }
        // Many short lines add up as well.
        let many = "GET / HTTP/1.1\r\n" + String(repeating: "A: b\r\n", count: 100) + "\r\n"
        XCTAssertEqual(objects(feed([.client(many)], options: options).lines).first?.str("error"), "header too long")
        // Without a line end at all.
        XCTAssertEqual(objects(feed([.client(String(repeating: "G", count: 1000))], options: options).lines).first?.str("error"), "header too long")
    }

    func testBodyLimitAndTooManyPending() {
        let (lines, counters) = feed([
            .client("GET / HTTP/1.1\r\n\r\n"),
            .server("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"),
        ], options: .init(bodies: true, maxBodyBytes: 4))
        let r = objects(lines)[0]
        XCTAssertEqual(r.str("server", "body"), b64("0123"))
        XCTAssertEqual(r.flag("server", "body_truncated"), true)
        XCTAssertEqual(counters.bodiesTruncated, 1)

        let flood = String(repeating: "GET / HTTP/1.1\r\n\r\n", count: 5)
        let result = feed([.client(flood)], options: .init(maxPending: 3))
        let records = objects(result.lines)
        XCTAssertEqual(records.first?.str("error"), "too many pipelined requests")
        XCTAssertEqual(result.counters.requestsWithoutResponse, 3)
    }

    func testUnrequestedResponsesAreBoundedAndTimesArePerMessage() {
        let flood = String(repeating: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", count: 5)
        let (lines, counters) = feed([.server(flood)], options: .init(maxPending: 2))
        XCTAssertEqual(lines.count, 5)
        XCTAssertEqual(counters.responsesWithoutRequest, 5)
        XCTAssertFalse(objects(lines)[0].has("client"))

        let records = objects(feed([
            .client("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r"),
            .client("\n\r\n"),
            .server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            .server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ]).lines)
        XCTAssertEqual(records.map { $0.double("client", "time") }, [1, 1])
        XCTAssertEqual(records.map { $0.double("server", "time") }, [3, 4])
    }

    func testUnknownFlowAndReopen() {
        var lines: [String] = []
        let analyzer = HTTPAnalyzer { lines.append($0) }
        [UInt8](repeating: 0x41, count: 3).withUnsafeBytes { analyzer.data(flow: 1, fromClient: true, bytes: $0, time: 0) }
        analyzer.gap(flow: 1, fromClient: true, length: 3)
        analyzer.close(flow: 1, time: 0)
        XCTAssertEqual(analyzer.counters.unknownFlows, 3)
        analyzer.open(flow: 1, client: client, server: server, vlan: nil, time: 0)
        Array("GET / HTTP/1.1\r\n\r\n".utf8).withUnsafeBytes { analyzer.data(flow: 1, fromClient: true, bytes: $0, time: 0) }
        analyzer.closeAll(time: 1)
        XCTAssertEqual(lines.count, 1)
        XCTAssertEqual(analyzer.openFlows, 0)
    }

    func testBase64MatchesFoundation() {
        var rng = HTTPTestRandom(seed: 1)
        for n in 0 ..< 70 {
            let bytes = (0 ..< n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            XCTAssertEqual(String(decoding: Base64.encode(bytes), as: UTF8.self), Data(bytes).base64EncodedString())
        }
    }

    func testChunkSizeParsing() {
        XCTAssertEqual(HTTPParser.parseChunkSize(Array("1a".utf8)), 26)
        XCTAssertEqual(HTTPParser.parseChunkSize(Array("FF ; a=b".utf8)), 255)
        XCTAssertNil(HTTPParser.parseChunkSize(Array("".utf8)))
        XCTAssertNil(HTTPParser.parseChunkSize(Array("-1".utf8)))
        XCTAssertNil(HTTPParser.parseChunkSize(Array("1 2".utf8)))
        XCTAssertNil(HTTPParser.parseChunkSize(Array("ffffffffffffffff".utf8)))
    }

    // MARK: Fuzz

    /// Mutated exchanges, valid or not, give the same records however they are cut.
    func testMutatedExchangesAreCutIndependent() {
        var rng = HTTPTestRandom(seed: 42)
        let options = HTTPAnalyzer.Options(bodies: true, maxHeaderBytes: 300, maxBodyBytes: 32)
        for _ in 0 ..< 300 {
            var pieces = allFixtures[Int(rng.next() % UInt64(allFixtures.count))].1
            for _ in 0 ..< Int(rng.next() % 3) {
                let i = Int(rng.next() % UInt64(pieces.count))
                switch pieces[i] {
                case .client(let t), .server(let t):
                    var bytes = Array(t.utf8)
                    guard !bytes.isEmpty else { continue }
                    bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                    let text = String(decoding: bytes, as: UTF8.self)
                    if case .client = pieces[i] { pieces[i] = .client(text) } else { pieces[i] = .server(text) }
                default:
                    pieces[i] = .serverGap(Int(rng.next() % 8))
                }
            }
            let reference = feed(pieces, options: options).lines
            XCTAssertEqual(objects(reference).count, reference.count)
            XCTAssertEqual(feed(pieces, cut: .byteByByte, options: options).lines, reference)
            XCTAssertEqual(feed(pieces, cut: .random(seed: rng.next()), options: options).lines, reference)
        }
    }

    func testRandomInputNeverTraps() {
        var rng = HTTPTestRandom(seed: 0x5EED)
        let seeds = allFixtures.flatMap { $0.1 }.compactMap { piece -> [UInt8]? in
            switch piece {
            case .client(let t), .server(let t): Array(t.utf8)
            default: nil
            }
        }
        var lines: [String] = []
        let analyzer = HTTPAnalyzer(options: .init(bodies: true, maxHeaderBytes: 512, maxBodyBytes: 64)) { lines.append($0) }
        for round in 0 ..< 1500 {
            let flow = UInt64(round % 7)
            analyzer.open(flow: flow, client: client, server: server, vlan: round % 2 == 0 ? nil : 5, time: 0)
            for _ in 0 ..< Int(rng.next() % 6 + 1) {
                var bytes: [UInt8]
                if rng.next() % 3 == 0 {
                    bytes = (0 ..< Int(rng.next() % 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                } else {
                    // A valid message with a few bytes flipped, cut short or repeated.
                    bytes = seeds[Int(rng.next() % UInt64(seeds.count))]
                    for _ in 0 ..< Int(rng.next() % 4) where !bytes.isEmpty {
                        bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                    }
                    if rng.next() % 4 == 0 { bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count + 1)))) }
                }
                let fromClient = rng.next() % 2 == 0
                if rng.next() % 8 == 0 { analyzer.gap(flow: flow, fromClient: fromClient, length: Int(rng.next() % 50)) }
                var off = 0
                while off < bytes.count {
                    let k = min(bytes.count - off, Int(rng.next() % 64) + 1)
                    bytes[off ..< off + k].withUnsafeBytes { analyzer.data(flow: flow, fromClient: fromClient, bytes: $0, time: 1) }
                    off += k
                }
            }
            if rng.next() % 2 == 0 { analyzer.close(flow: flow, time: 2) }
        }
        analyzer.closeAll(time: 3)
        XCTAssertGreaterThan(lines.count, 0)
        XCTAssertEqual(objects(lines).count, lines.count)
    }
}

/// Deterministic generator so failures reproduce.
private struct HTTPTestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
