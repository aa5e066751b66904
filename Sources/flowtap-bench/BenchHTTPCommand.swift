import PacketCore
import FlowDispatch
import Analyzers
import ArgumentParser
import Engine
import TrafficGen
#if canImport(Glibc)
import Glibc
#endif

/// HTTP transactions per second through the built-in HTTP/1.x analyzer on one thread.
///
/// A synthetic set of connections is built in memory first (typical browser and server header sets,
/// keep-alive and pipelined connections, Content-Length and chunked bodies, segments of at most 1460
/// bytes); each round feeds all of it to a fresh `HTTPAnalyzer` the way `flowtap analyze` does (records are
/// built and handed over, then dropped), and the medians of `--runs` rounds are reported. With
/// `--sessions` above 0, a generated capture of HTTP sessions also goes through the whole `analyze`
/// pipeline (capture reader, flow engine, reassembly, routing, analyzer).
struct BenchHTTPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "HTTP analyzer speed: transactions per second on one core.",
        discussion: """
        The reference line is SF-TAP's published figure for its Python HTTP analyzer (about 2,500 requests/s \
        saturating one core, LISA 2015); it is quoted, not measured here.

        Examples:
          flowtap-bench http --runs 7
          flowtap-bench http --transactions 500000 --sessions 0
        """
    )

    @Option(help: "Rounds to run; medians are reported.")
    var runs: Int = 5

    @Option(help: "HTTP transactions in the in-memory set.")
    var transactions: Int = 100_000

    @Option(help: "HTTP sessions in the generated capture for the full-pipeline figure (0: skip it).")
    var sessions: Int = 20_000

    @Option(help: "Seed of the synthetic traffic.")
    var seed: UInt64 = 1

    /// SF-TAP's Python HTTP analyzer, as published (requests per second on one saturated core).
    static let publishedSFTapRate = 2_500.0

    func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be at least 1") }
        if transactions < 1 { throw ValidationError("--transactions must be at least 1") }
    }

    /// One connection: each side's segments in the order they are fed.
    struct Connection {
        var segments: [(fromClient: Bool, bytes: [UInt8])] = []
        var transactions = 0
    }

    func run() throws {
        let connections = Self.connections(transactions: transactions, seed: seed)
        let bytes = connections.reduce(0) { $0 + $1.segments.reduce(0) { $0 + $1.bytes.count } }
        print("in-memory set: \(transactions) transactions in \(connections.count) connections, \(bytes >> 20) MiB")
        var rates: [Double] = [], throughputs: [Double] = []
        for _ in 0 ..< runs {
            let (done, seconds) = Self.drive(connections)
            guard done == transactions else { throw ValidationError("analyzer paired \(done) transactions, expected \(transactions)") }
            rates.append(Double(done) / seconds)
            throughputs.append(Double(bytes) / seconds)
        }
        let rate = Self.median(rates)
        print("HTTPAnalyzer, one thread, \(runs) runs, medians:")
        print("  \(String(format3: rate / 1000)) k transactions/s  \(String(format3: Self.median(throughputs) * 8 / 1e9)) Gbit/s of HTTP payload")
        print("  ratio to SF-TAP's published Python HTTP analyzer figure (\(Int(Self.publishedSFTapRate)) requests/s per core, not measured here): \(String(format3: rate / Self.publishedSFTapRate))x")
        if sessions > 0 { try pipeline() }
    }

    /// The whole `flowtap analyze` pipeline on a generated capture of HTTP sessions.
    func pipeline() throws {
        let path = "/tmp/flowtap-bench-http-\(getpid()).pcap"
        defer { unlink(path) }
        var options = TrafficGenerator.Options()
        options.sessions = sessions
        options.seed = seed
        options.kinds = [.http]
        options.sessionsPerSecond = 2000
        let summary = try TrafficGenerator(options: options).write(to: path)
        var rates: [Double] = [], packetRates: [Double] = []
        var paired = 0
        for _ in 0 ..< runs {
            let sink = AnalyzeSink(lines: { _ in })
            let start = MonotonicClock.seconds()
            try Pipeline(sink: sink).run(files: [path])
            sink.http.closeAll(time: 0)
            let seconds = MonotonicClock.seconds() - start
            paired = sink.http.counters.transactions
            rates.append(Double(paired) / seconds)
            packetRates.append(Double(summary.packets) / seconds)
        }
        print("flowtap analyze on \(path): \(summary.sessions) HTTP sessions, \(summary.packets) packets, \(paired) transactions, \(runs) runs, medians:")
        print("  \(String(format3: Self.median(rates) / 1000)) k transactions/s  \(String(format3: Self.median(packetRates) / 1e6)) Mpps (capture read to records)")
    }

    static func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

    /// Feeds every connection to a fresh analyzer; returns the transactions paired and the seconds taken.
    static func drive(_ connections: [Connection]) -> (Int, Double) {
        var recordBytes = 0
        let analyzer = HTTPAnalyzer { recordBytes &+= $0.utf8.count }
        let client = HTTPEndpoint(ip: "192.0.2.1", port: 50000), server = HTTPEndpoint(ip: "198.51.100.7", port: 80)
        let start = MonotonicClock.seconds()
        for (id, connection) in connections.enumerated() {
            let flow = UInt64(id)
            analyzer.open(flow: flow, client: client, server: server, vlan: nil, time: 0)
            for segment in connection.segments {
                segment.bytes.withUnsafeBytes { analyzer.data(flow: flow, fromClient: segment.fromClient, bytes: $0, time: 1) }
            }
            analyzer.close(flow: flow, time: 2)
        }
        let seconds = MonotonicClock.seconds() - start
        if recordBytes == 42 { print("") }
        return (analyzer.counters.transactions, seconds)
    }

    // MARK: - Synthetic traffic

    static let paths = ["/", "/index.html", "/static/app.js", "/static/style.css", "/api/v1/items?page=2&sort=desc",
                        "/images/logo.png", "/search?q=network+traffic+analysis", "/favicon.ico"]
    static let agents = ["Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                         "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
                         "curl/8.5.0"]
    static let types = ["text/html; charset=utf-8", "application/javascript", "text/css", "application/json", "image/png"]

    /// Connections of 1–12 transactions each: keep-alive (request, response, request, …) or pipelined
    /// (all requests, then all responses); a third of the responses chunked, bodies up to 4 KiB.
    static func connections(transactions: Int, seed: UInt64) -> [Connection] {
        var rng = SplitMix64(seed: seed)
        func pick(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
        var out: [Connection] = []
        var left = transactions
        while left > 0 {
            let count = min(left, 1 + pick(12))
            left -= count
            let pipelined = pick(4) == 0
            var connection = Connection(transactions: count)
            var requests: [[UInt8]] = [], responses: [[UInt8]] = []
            for _ in 0 ..< count {
                let post = pick(8) == 0
                let body = [UInt8](repeating: UInt8(ascii: "x"), count: post ? 64 + pick(512) : 0)
                var request = "\(post ? "POST" : "GET") \(paths[pick(paths.count)]) HTTP/1.1\r\nHost: www.example.com\r\n"
                request += "User-Agent: \(agents[pick(agents.count)])\r\n"
                request += "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\n"
                request += "Accept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n"
                request += "Cookie: session=\(rng.next()); theme=dark\r\n"
                if post { request += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.count)\r\n" }
                requests.append(Array((request + "\r\n").utf8) + body)

                let length = pick(4 << 10)
                var response = "HTTP/1.1 200 OK\r\nDate: Mon, 01 Jul 2024 12:00:00 GMT\r\nServer: nginx/1.24.0\r\n"
                response += "Content-Type: \(types[pick(types.count)])\r\nCache-Control: max-age=3600\r\nETag: \"\(rng.next() % 1_000_000)\"\r\n"
                var bytes: [UInt8]
                if pick(3) == 0 {
                    response += "Transfer-Encoding: chunked\r\n\r\n"
                    bytes = Array(response.utf8)
                    var rest = length
                    while rest > 0 {
                        let chunk = min(rest, 1 + pick(4096))
                        bytes += Array((String(chunk, radix: 16) + "\r\n").utf8) + [UInt8](repeating: UInt8(ascii: "y"), count: chunk) + [13, 10]
                        rest -= chunk
                    }
                    bytes += Array("0\r\n\r\n".utf8)
                } else {
                    response += "Content-Length: \(length)\r\n\r\n"
                    bytes = Array(response.utf8) + [UInt8](repeating: UInt8(ascii: "y"), count: length)
                }
                responses.append(bytes)
            }
            func add(_ message: [UInt8], fromClient: Bool) {
                var at = 0
                while at < message.count {
                    let end = min(message.count, at + 1460)
                    connection.segments.append((fromClient, Array(message[at ..< end])))
                    at = end
                }
            }
            if pipelined {
                add(requests.flatMap { $0 }, fromClient: true)
                add(responses.flatMap { $0 }, fromClient: false)
            } else {
                for (request, response) in zip(requests, responses) {
                    add(request, fromClient: true)
                    add(response, fromClient: false)
                }
            }
            out.append(connection)
        }
        return out
    }
}
