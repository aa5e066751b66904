import ArgumentParser
import PacketCore
#if canImport(Glibc)
import Glibc
#endif

/// `flowtap incubate -r` splitting a capture over file cells, beside tcpdump copying the same file
/// (`-w /dev/null`) and only reading it (libpcap with a filter nothing passes), in alternating rounds;
/// medians of CPU seconds and wall seconds, frames per CPU-second.
struct BenchIncubateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incubate",
        abstract: "incubate -r into file cells against tcpdump's copy and a libpcap read of the same capture.",
        discussion: """
        Each round runs, in turn:
          flowtap incubate -r FILE --cell file:/dev/shm/…/c0.pcap … (--cells of them) --quiet
          tcpdump -r FILE -w /dev/null
          tcpdump -r FILE -w /dev/shm/…/copy.pcap   (the same bytes written, as incubate writes them)
          tcpdump -r FILE 'less 1'        (libpcap reads every frame; none passes)

        Example:
          flowtap generate -w big.pcap --sessions 30000 --seed 9 && flowtap-bench incubate -r big.pcap --runs 5
        """
    )

    @Option(name: [.customShort("r"), .customLong("read")], help: ArgumentHelp("The capture to split.", valueName: "file"))
    var file: String

    @Option(help: "File cells to split into (on /dev/shm).")
    var cells = 3

    @Option(help: "Rounds; medians are reported.")
    var runs = 5

    @Option(help: ArgumentHelp("The flowtap executable to measure (default: the one beside flowtap-bench).", valueName: "path"))
    var flowtap: String?

    func run() throws {
        guard runs > 0, cells > 0 else { throw ValidationError("--runs and --cells must be 1 or more") }
        let executable = flowtap ?? Subprocess.sibling("flowtap")
        let scratch = access("/dev/shm", W_OK) == 0 ? try Subprocess.temporaryDirectoryIn("/dev/shm", "flowtap-bench-incubate")
            : try Subprocess.temporaryDirectory("flowtap-bench-incubate")
        defer { Subprocess.removeTree(scratch) }
        var commands: [(String, [String])] = [
            ("flowtap incubate", [executable, "incubate", "-r", file, "--quiet"] + (0 ..< cells).flatMap { ["--cell", "file:\(scratch)/c\($0).pcap"] }),
        ]
        if let tcpdump = Subprocess.which("tcpdump") {
            commands.append(("tcpdump -w /dev/null", [tcpdump, "-r", file, "-w", "/dev/null"]))
            commands.append(("tcpdump -w FILE", [tcpdump, "-r", file, "-w", "\(scratch)/copy.pcap"]))
            commands.append(("tcpdump 'less 1'", [tcpdump, "-r", file, "less 1"]))
        } else {
            print("tcpdump: not installed (Debian: tcpdump)")
        }
        let (cpu, wall, errors) = try Subprocess.rounds(commands, runs: runs, scratch: scratch)
        let frames = errors.range(of: #"frames in [0-9]+"#, options: .regularExpression).map { Int(errors[$0].dropFirst(10)) ?? 0 } ?? 0
        print("\(file): \(frames) frames into \(cells) file cells; medians of \(runs) rounds, same run")
        print("command                 CPU s   wall s   frames/CPU-s   CPU vs tcpdump -w")
        let copyCPU = commands.count > 1 ? BenchLoops.median(cpu[1]) : nil
        for (i, command) in commands.enumerated() {
            let c = BenchLoops.median(cpu[i])
            let ratio = copyCPU.map { String(format3: c / max($0, 1e-9)) + "×" } ?? "—"
            print(command.0.padding(toLength: 22, withPad: " ", startingAt: 0) + "  " + String(format3: c).leftPadded(6)
                  + "  " + String(format3: BenchLoops.median(wall[i])).leftPadded(7)
                  + "  " + String(Int(Double(frames) / max(c, 1e-9))).leftPadded(13) + "  " + ratio.leftPadded(10))
        }
    }
}
