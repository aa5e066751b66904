import ArgumentParser
import Foundation
import PacketCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Whether `--http` costs the packet path anything: `flows` and `analyze` on one capture, each
/// without `--http`, with it but not asked, and with it scraped every 100 ms (`/metrics` and
/// `/api/v1/status` in turn) while the capture is read. Rounds alternate the six commands; medians of
/// CPU seconds (the child's, which includes the HTTP thread's start and answers) and wall seconds.
struct BenchScrapeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scrape",
        abstract: "flows and analyze with and without --http scraped every 100 ms: CPU and wall seconds, the ratio, scrapes answered.",
        discussion: """
        Each round runs, in turn, for flows and for analyze:
          flowtap COMMAND -r FILE -o /dev/null --quiet
          flowtap COMMAND -r FILE -o /dev/null --quiet --http 127.0.0.1:PORT     (nobody asks)
          flowtap COMMAND -r FILE -o /dev/null --quiet --http 127.0.0.1:PORT     (scraped every 100 ms)

        Examples:
          flowtap generate -w big.pcap --sessions 30000 --seed 5 --impaired
          flowtap-bench scrape -r big.pcap --runs 5
        """
    )

    @Option(name: [.customShort("r"), .customLong("read")], help: ArgumentHelp("Capture to read.", valueName: "file"))
    var file: String

    @Option(help: "Rounds; medians are reported.")
    var runs = 5

    @Option(help: ArgumentHelp("Milliseconds between scrapes.", valueName: "ms"))
    var interval = 100

    @Option(help: ArgumentHelp("The flowtap executable to measure (default: the one beside flowtap-bench).", valueName: "path"))
    var flowtap: String?

    struct Row {
        var label: String
        var arguments: [String]
        var http: Bool
        var scraped: Bool
        var cpu: [Double] = []
        var wall: [Double] = []
        var scrapes: [Int] = []
    }

    func run() throws {
        guard runs > 0, interval > 0 else { throw ValidationError("--runs and --interval must be 1 or more") }
        var ignored = 0
        let packets = try BenchLoops.captureLoop([file], depth: .read, flows: &ignored).packets
        let executable = flowtap ?? Subprocess.sibling("flowtap")
        let scratch = try Subprocess.temporaryDirectory("flowtap-bench-scrape")
        defer { Subprocess.removeTree(scratch) }
        var rows: [Row] = []
        for command in ["flows", "analyze"] {
            let arguments = [command, "-r", file, "-o", "/dev/null", "--quiet"]
            rows.append(Row(label: "flowtap \(command)", arguments: arguments, http: false, scraped: false))
            rows.append(Row(label: "flowtap \(command) --http, idle", arguments: arguments, http: true, scraped: false))
            rows.append(Row(label: "flowtap \(command) --http, scraped", arguments: arguments, http: true, scraped: true))
        }
        for round in 0 ..< runs {
            for i in rows.indices {
                if isatty(2) != 0 { writeStandardError("\rround \(round + 1)/\(runs): \(rows[i].label)\u{1B}[K") }
                var arguments = rows[i].arguments
                var scraper: Scraper?
                if rows[i].http {
                    let port = try Self.freePort()
                    arguments += ["--http", "127.0.0.1:\(port)"]
                    if rows[i].scraped {
                        scraper = Scraper(port: port, intervalMilliseconds: interval)
                        scraper!.start()
                    }
                }
                let result = try Subprocess.run(executable, arguments, standardError: scratch + "/stderr")
                scraper?.stop()
                guard result.status == 0 else {
                    throw ValidationError("\(rows[i].label) exited with status \(result.status): \(Subprocess.readText(scratch + "/stderr").prefix(300))")
                }
                rows[i].cpu.append(result.cpuSeconds)
                rows[i].wall.append(result.seconds)
                rows[i].scrapes.append(scraper?.answered ?? 0)
            }
        }
        if isatty(2) != 0 { writeStandardError("\r\u{1B}[K") }
        print("\(file): \(packets) packets; medians of \(runs) rounds, same run; scraped every \(interval) ms")
        print("command                              CPU s    wall s   packets/CPU-s   scrapes answered")
        for row in rows {
            let cpu = BenchLoops.median(row.cpu), wall = BenchLoops.median(row.wall)
            print(row.label.padding(toLength: 34, withPad: " ", startingAt: 0) + "  " + String(format3: cpu).leftPadded(6) + "  " + String(format3: wall).leftPadded(8)
                  + "  " + String(Int(Double(packets) / max(cpu, 1e-9))).leftPadded(14) + "  " + (row.scraped ? String(Int(BenchLoops.median(row.scrapes.map(Double.init)))) : "—").leftPadded(17))
        }
        for command in ["flows", "analyze"] {
            guard let plain = rows.first(where: { $0.label == "flowtap \(command)" }) else { continue }
            for variant in rows where variant.http && variant.label.hasPrefix("flowtap \(command) ") {
                // Paired per round: each round's ratio, then their median (the machine's drift cancels within a round).
                let cpuRatios = zip(variant.cpu, plain.cpu).map { $0 / max($1, 1e-9) }, wallRatios = zip(variant.wall, plain.wall).map { $0 / max($1, 1e-9) }
                let extra = BenchLoops.median(zip(variant.cpu, plain.cpu).map { $0 - $1 })
                print("\(variant.label) / without, paired per round: CPU \(String(format3: BenchLoops.median(cpuRatios)))× (\(String(format3: extra)) s more), wall \(String(format3: BenchLoops.median(wallRatios)))×")
            }
        }
    }

    /// A loopback port nobody holds now (the kernel's pick, released at once).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { throw ValidationError("cannot find a free loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// GETs /metrics and /api/v1/status in turn every `intervalMilliseconds` on its own thread until stopped.
final class Scraper: Sendable {
    let port: Int
    let intervalMilliseconds: Int
    let stopped = Atomic<Bool>(false)
    let answeredCount = Atomic<Int>(0)
    let done = Atomic<Bool>(false)

    init(port: Int, intervalMilliseconds: Int) {
        self.port = port
        self.intervalMilliseconds = intervalMilliseconds
    }

    var answered: Int { answeredCount.load(ordering: .relaxed) }

    func start() {
        let thread = Thread { [self] in
            var n = 0
            while !stopped.load(ordering: .relaxed) {
                if get(n % 2 == 0 ? "/metrics" : "/api/v1/status") { answeredCount.wrappingAdd(1, ordering: .relaxed) }
                n += 1
                usleep(useconds_t(intervalMilliseconds * 1000))
            }
            done.store(true, ordering: .relaxed)
        }
        thread.start()
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        while !done.load(ordering: .relaxed) { usleep(1000) }
    }

    /// One request; true when a 200 came back whole.
    func get(_ path: String) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { return false }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { return false }
        var head = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            if head.count < 16 { head += buffer[0 ..< min(n, 16)] }
        }
        return String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 200")
    }
}
