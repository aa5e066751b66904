import ArgumentParser
import PacketCore
#if canImport(Glibc)
import Glibc
#endif

/// `flowtap collect -r` beside tshark decoding the same exporters' datagrams (NetFlow/IPFIX with its cflow
/// dissector, sFlow with its sflow dissector), in alternating rounds; medians of CPU seconds, and
/// records per CPU-second from flowtap's own count.
struct BenchCollectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collect",
        abstract: "collect -r against tshark's decoders on one capture of export datagrams: CPU seconds, records per CPU-second.",
        discussion: """
        Each round runs, in turn:
          flowtap collect -r FILE -o /dev/null --quiet
          tshark -r FILE -d udp.port==PORT,cflow -d udp.port==PORT,sflow -T fields -e frame.number   (to /dev/null)

        Examples:
          softflowd -r big.pcap -n 127.0.0.1:2055 -v 10 & tcpdump -i lo -w ipfix.pcap udp port 2055
          flowtap-bench collect -r ipfix.pcap --port 2055 --runs 5
        """
    )

    @Option(name: [.customShort("r"), .customLong("read")], help: ArgumentHelp("Capture of export datagrams.", valueName: "file"))
    var file: String

    @Option(help: "The UDP port the datagrams were sent to (for tshark's decoder).")
    var port: UInt16 = 2055

    @Option(help: "The dissector tshark decodes that port with: cflow (NetFlow/IPFIX) or sflow.")
    var dissector = "cflow"

    @Option(help: "Rounds; medians are reported.")
    var runs = 5

    @Option(help: ArgumentHelp("The flowtap executable to measure (default: the one beside flowtap-bench).", valueName: "path"))
    var flowtap: String?

    func run() throws {
        guard runs > 0 else { throw ValidationError("--runs must be 1 or more") }
        let executable = flowtap ?? Subprocess.sibling("flowtap")
        let scratch = try Subprocess.temporaryDirectory("flowtap-bench-collect")
        defer { Subprocess.removeTree(scratch) }
        var commands: [(String, [String])] = [("flowtap collect -r", [executable, "collect", "-r", file, "-o", "/dev/null", "--quiet"])]
        if let tshark = Subprocess.which("tshark") {
            commands.append(("tshark -T fields", [tshark, "-r", file, "-d", "udp.port==\(port),\(dissector)", "-T", "fields", "-e", "frame.number"]))
        } else {
            print("tshark: not installed (Debian: tshark)")
        }
        let (cpu, _, errors) = try Subprocess.rounds(commands, runs: runs, scratch: scratch)
        let records = errors.range(of: #"; records [0-9]+"#, options: .regularExpression).map { Int(errors[$0].dropFirst(10)) ?? 0 } ?? 0
        print("\(file): \(records) records (flowtap's count); medians of \(runs) rounds, same run")
        print("command                CPU s   records/CPU-s   vs tshark")
        let tsharkCPU = commands.count > 1 ? BenchLoops.median(cpu[1]) : nil
        for (i, command) in commands.enumerated() {
            let c = BenchLoops.median(cpu[i])
            let ratio = tsharkCPU.map { String(format3: $0 / max(c, 1e-9)) + "×" } ?? "—"
            print(command.0.padding(toLength: 20, withPad: " ", startingAt: 0) + "  " + String(format3: c).leftPadded(6)
                  + "  " + String(Int(Double(records) / max(c, 1e-9))).leftPadded(14) + "  " + ratio.leftPadded(10))
        }
    }
}
