import CaptureTools
import ArgumentParser
import Capture
import Engine
import TrafficGen
import PacketCore
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// Compares FlowTap's capture reading with libpcap's on the same file, in one process.
///
/// Each round reads the whole file four ways — FlowTap's reader alone,
/// FlowTap's reader plus the decoder, the whole `flowtap stats` pipeline
/// (reader, decoder, counters and talker table), and libpcap's `pcap_next_ex`
/// touching each packet's first byte — and the medians of `--runs` rounds are
/// reported with ratios (above 1 means FlowTap is faster).
struct BenchReadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read",
        abstract: "Capture read speed: FlowTap's reader versus libpcap on the same file.",
        discussion: """
        Without -r, a capture of --sessions sessions is generated first (as 'flowtap generate' does).

        Examples:
          flowtap-bench read -r big.pcap --runs 7
          flowtap-bench read --sessions 100000
        """
    )

    @Option(name: [.customShort("r"), .customLong("read")], help: "Capture file to measure.")
    var file: String?

    @Option(help: "Rounds to run; medians are reported.")
    var runs: Int = 5

    @Option(help: "Sessions in the generated capture when no file is given (about 10 packets each).")
    var sessions: Int = 30_000

    func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be at least 1") }
    }

    func run() throws {
        let path: String
        if let file {
            path = file
        } else {
            path = "/tmp/flowtap-bench-\(getpid()).pcap"
            var options = TrafficGenerator.Options()
            options.sessions = sessions
            options.sessionsPerSecond = 2000
            let summary = try TrafficGenerator(options: options).write(to: path)
            print("generated \(path): \(summary.sessions) sessions, \(summary.packets) packets")
        }
        defer { if file == nil { unlink(path) } }

        var flowtapRead: [Double] = [], flowtapDecode: [Double] = [], flowtapStats: [Double] = [], libpcap: [Double] = []
        var count = 0
        for _ in 0 ..< runs {
            let (n1, t1) = try timeFlowTap(path, decode: false)
            let (_, t2) = try timeFlowTap(path, decode: true)
            let statsStart = MonotonicClock.seconds()
            let statsResult = try StatsRunner().run(files: [path])
            flowtapStats.append(MonotonicClock.seconds() - statsStart)
            let (n3, t3) = try timeLibpcap(path)
            guard statsResult.stats.packets == UInt64(n3) else {
                throw ValidationError("packet counts differ: flowtap stats \(statsResult.stats.packets), libpcap \(n3)")
            }
            guard n1 == n3 else {
                throw ValidationError("packet counts differ: FlowTap \(n1), libpcap \(n3)")
            }
            count = n1
            flowtapRead.append(t1)
            flowtapDecode.append(t2)
            libpcap.append(t3)
        }
        let median = BenchLoops.median
        let p = Double(count)
        let rows = [("flowtap read", median(flowtapRead)), ("flowtap read+decode", median(flowtapDecode)), ("flowtap stats", median(flowtapStats)), ("libpcap pcap_next_ex", median(libpcap))]
        print("file \(path): \(count) packets, \(runs) runs, medians")
        for (name, t) in rows {
            let rate = p / t
            print("  \(name.padding(20)) \(String(format3: t * 1000)) ms  \(String(format3: rate / 1e6)) Mpps")
        }
        print("  ratio read/libpcap         \(String(format3: median(libpcap) / median(flowtapRead)))x")
        print("  ratio read+decode/libpcap  \(String(format3: median(libpcap) / median(flowtapDecode)))x")
        print("  ratio stats/libpcap        \(String(format3: median(libpcap) / median(flowtapStats)))x")
    }


    func timeFlowTap(_ path: String, decode: Bool) throws -> (Int, Double) {
        var flows = 0
        let pass = try BenchLoops.captureLoop([path], depth: decode ? .decode : .read, flows: &flows)
        return (pass.packets, pass.seconds)
    }

    func timeLibpcap(_ path: String) throws -> (Int, Double) {
        let pass = try BenchLoops.libpcapLoop([path])
        return (pass.packets, pass.seconds)
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
