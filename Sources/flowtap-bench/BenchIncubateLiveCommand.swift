import ArgumentParser
import PacketCore
#if canImport(Glibc)
import Glibc
#endif

/// `flowtap incubate -i` as a tap against `tcpdump -i` writing a file, on the same veth of the
/// namespace topology (scripts/incubate-netns.sh), while tcpreplay offers rising rates: the highest rate
/// each takes without losing a frame (capture ring drops included; for incubate, every frame also
/// delivered to its `if:` cell), and CPU seconds per million frames.
struct BenchIncubateLiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incubate-live",
        abstract: "Tap mode: the lossless rate of incubate -i (three if: cells) against tcpdump -i writing a file, same veth, same run.",
        discussion: """
        Needs root, ip, tcpreplay and tcpdump. Each trial starts the tool, replays --seconds of the capture \
        at one rate with tcpreplay --limit, and stops the tool with SIGINT to read its own counts:
          flowtap incubate -i NAMEi0 --cell if:NAMEx0 --cell if:NAMEx1 --cell if:NAMEx2   (cells in three namespaces)
          flowtap incubate -i NAMEi0 --cell file:/dev/shm/…/c0.pcap … (three file cells)
          tcpdump -i NAMEi0 -B 32768 -w /dev/shm/…/tap.pcap

        Example:
          flowtap generate -w big.pcap --sessions 30000 --seed 9 && sudo flowtap-bench incubate-live -r big.pcap
        """
    )

    @Option(name: [.customShort("r"), .customLong("read")], help: ArgumentHelp("The capture to replay (frames up to 9,000 bytes).", valueName: "file"))
    var file: String

    @Option(help: ArgumentHelp("Offered rates, lowest first (frames per second).", valueName: "pps,…"))
    var rates = "20000,50000,100000,150000,200000"

    @Option(help: ArgumentHelp("Seconds of traffic per rate.", valueName: "seconds"))
    var seconds = 2.0

    @Option(help: ArgumentHelp("The topology script.", valueName: "path"))
    var topology = "scripts/incubate-netns.sh"

    @Option(help: ArgumentHelp("The flowtap executable to measure (default: the one beside flowtap-bench).", valueName: "path"))
    var flowtap: String?

    func run() throws {
        guard getuid() == 0 else { throw BenchError("needs root (network namespaces)") }
        guard let ip = Subprocess.which("ip"), let tcpreplay = Subprocess.which("tcpreplay"), let tcpdump = Subprocess.which("tcpdump") else {
            throw BenchError("ip, tcpreplay and tcpdump are needed")
        }
        let executable = flowtap ?? Subprocess.sibling("flowtap")
        let name = "bi\(getpid() % 100_000)"
        _ = try Subprocess.run(topology, ["down", name, "3"])
        guard try Subprocess.run(topology, ["up", name, "3"]).status == 0 else { throw BenchError("\(topology) up \(name) 3 failed") }
        defer { _ = try? Subprocess.run(topology, ["down", name, "3"]) }
        let scratch = access("/dev/shm", W_OK) == 0 ? try Subprocess.temporaryDirectoryIn("/dev/shm", "flowtap-bench-tap") : try Subprocess.temporaryDirectory("flowtap-bench-tap")
        defer { Subprocess.removeTree(scratch) }
        let tools: [(String, [String])] = [
            ("incubate -i, if:", [executable, "incubate", "-i", "\(name)i0"] + (0 ..< 3).flatMap { ["--cell", "if:\(name)x\($0)"] }),
            ("incubate -i, files", [executable, "incubate", "-i", "\(name)i0"] + (0 ..< 3).flatMap { ["--cell", "file:\(scratch)/c\($0).pcap"] }),
            ("tcpdump -i -w FILE", [tcpdump, "-i", "\(name)i0", "-B", "32768", "-w", "\(scratch)/tap.pcap"]),
        ]
        print("tap on a veth: \(file), \(seconds) s per rate; a trial passes when the tool has every frame tcpreplay sent")
        print(["tool", "pps (achieved)", "sent", "captured", "ring drops", "lost", "CPU s/M frames"].map { $0.padding(toLength: 20, withPad: " ", startingAt: 0) }.joined())
        for (label, command) in tools {
            var best: (Int, Double)?
            for rate in rates.split(separator: ",").compactMap({ Int($0) }) {
                let errors = "\(scratch)/tool.err"
                let tool = try BackgroundProcess(ip, ["netns", "exec", "\(name)-i"] + command, standardError: errors)
                usleep(1_000_000)
                let limit = Int(Double(rate) * seconds)
                let replay = "\(scratch)/tcpreplay.txt"
                _ = try Subprocess.run(ip, ["netns", "exec", "\(name)-s", tcpreplay, "-i", "\(name)s0", "--preload-pcap", "--pps", String(rate),
                                            "--limit", String(limit), "--loop", "0", file], standardOutput: replay)
                // tcpreplay's own report: "Rated: … Bps, … Mbps, N pps".
                var achieved = Double(rate)
                for line in Subprocess.readText(replay).split(separator: "\n") where line.contains("Rated:") {
                    let words = line.split(separator: " ")
                    if let i = words.firstIndex(of: "pps"), i > 0, let v = Double(words[i - 1]) { achieved = v }
                }
                // A ring block the kernel has not yet retired is not visible to a reader: give it time.
                usleep(1_500_000)
                let cpu = tool.treeCPUSeconds()
                tool.stop(signal: SIGINT)
                let text = Subprocess.readText(errors)
                let (captured, drops, delivered) = Self.counts(text, incubate: label.hasPrefix("incubate"))
                let lost = limit - min(captured, delivered)
                print([label, "\(rate) (\(Int(achieved)))", "\(limit)", "\(captured)", "\(drops)", "\(lost)", String(format3: cpu / Double(max(captured, 1)) * 1e6)]
                    .map { $0.padding(toLength: 20, withPad: " ", startingAt: 0) }.joined())
                if lost > 0 { break }
                best = (Int(achieved), cpu / Double(max(captured, 1)) * 1e6)
            }
            if let best { print("=> \(label): lossless up to \(best.0) frames/s (tcpreplay's achieved rate) (\(String(format3: best.1)) CPU s per million frames there)") }
            else { print("=> \(label): lost frames at the lowest rate") }
        }
    }

    /// Frames the tool captured, the ring's drops, and (incubate) frames its cells took; from its summary.
    static func counts(_ text: String, incubate: Bool) -> (Int, Int, Int) {
        func number(after phrase: String) -> Int? {
            guard let r = text.range(of: phrase) else { return nil }
            return Int(text[r.upperBound...].prefix { $0.isNumber })
        }
        func number(before phrase: String) -> Int? {
            guard let r = text.range(of: phrase) else { return nil }
            let head = text[..<r.lowerBound].reversed().drop { $0 == " " }.prefix { $0.isNumber }
            return Int(String(head.reversed()))
        }
        if incubate {
            let captured = number(after: "frames in ") ?? 0
            var delivered = 0
            for line in text.split(separator: "\n") where line.hasPrefix("cell ") {
                if let r = line.range(of: ": frames ") { delivered += Int(line[r.upperBound...].prefix { $0.isNumber }) ?? 0 }
            }
            return (captured, number(after: "capture ring dropped ") ?? 0, delivered)
        }
        let captured = number(before: " packets captured") ?? 0
        return (captured, number(before: " packets dropped by kernel") ?? 0, captured)
    }
}
