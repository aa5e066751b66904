import ArgumentParser
import PacketCore
#if canImport(Glibc)
import Glibc
#endif

/// `flowtap flows` and `flowtap analyze` beside the peers that do the same kind of work on the same
/// capture in the same run: ndpiReader (flows and protocol detection) and softflowd (flow records,
/// exported as IPFIX to a closed loopback port). Rounds alternate the commands so the machine's noise
/// falls on all of them; each figure is the median of the rounds, CPU seconds (user + system, the
/// child's own) first, since the machine may be shared.
struct BenchRecordsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "records",
        abstract: "flows and analyze against ndpiReader and softflowd on one capture: CPU seconds, packets per CPU-second, wall, peak RSS.",
        discussion: """
        Each round runs, in turn:
          cat FILE > /dev/shm/…                                                  (the floor: read the capture, write as many bytes)
          flowtap flows -r FILE -o /dev/null --quiet
          flowtap analyze -r FILE -o /dev/null --quiet
          flowtap flows -r FILE --export ipfix://127.0.0.1:9 --quiet            (IPFIX only, as softflowd below)
          ndpiReader -i FILE -q
          softflowd -r FILE -n 127.0.0.1:9 -v 10 -6 -d -m 1000000 -c none   (IPFIX to the discard port)
        A peer that is not installed is skipped and said. Ratios are packets per CPU-second against ndpiReader's; \
        "× floor" is the command's CPU seconds over the floor's. Every command reads a copy of the capture in \
        /dev/shm when it fits in half the available memory (a VM's page cache can drop part of a file between \
        rounds; --in-place reads the original). "steal" is the share of the machine's CPU time the hypervisor \
        gave to other guests while the command ran (/proc/stat): CPU seconds leave it out, wall times do not.

        Examples:
          flowtap generate -w big.pcap --sessions 30000 --rate 2000 --impaired
          flowtap-bench records -r big.pcap --runs 5
          flowtap-bench records -r big.pcap --flowtap .build/release/flowtap
        """
    )

    @Option(name: [.customShort("r"), .customLong("read")], help: ArgumentHelp("Capture to read.", valueName: "file"))
    var file: String

    @Option(help: "Rounds; medians are reported.")
    var runs = 5

    @Option(help: ArgumentHelp("The flowtap executable to measure (default: the one beside flowtap-bench).", valueName: "path"))
    var flowtap: String?

    @Flag(help: "Read the capture where it is, not from a copy in /dev/shm.")
    var inPlace = false

    struct Row {
        var label: String
        var command: [String]?
        var note: String?
        /// Where the command's standard output goes (the floor's copy).
        var output = "/dev/null"
        var cpu: [Double] = []
        var wall: [Double] = []
        var rss: [Int] = []
        var steal: [Double] = []
    }

    func run() throws {
        guard runs > 0 else { throw ValidationError("--runs must be 1 or more") }
        let staged: CaptureStaging.Staged
        do {
            staged = inPlace || access("/dev/shm", W_OK) != 0
                ? CaptureStaging.Staged(files: [file], directory: nil, note: "read in place")
                : try CaptureStaging.stage([file], under: "/dev/shm")
        } catch {
            writeStandardError("flowtap-bench records: \(error)\n")
            throw ExitCode(1)
        }
        defer { staged.remove() }
        try measure(file: staged.files[0], reading: staged.note)
    }

    /// The rounds on `file` (the staged copy of `self.file`).
    func measure(file: String, reading: String) throws {
        var ignored = 0
        let packets: Int
        do {
            packets = try BenchLoops.captureLoop([file], depth: .read, flows: &ignored).packets
        } catch {
            writeStandardError("flowtap-bench records: \(file): \(error)\n")
            throw ExitCode(1)
        }
        let executable = flowtap ?? Subprocess.sibling("flowtap")
        let timeTool = Subprocess.which("time")
        let ndpi = Subprocess.which("ndpiReader"), softflowd = Subprocess.which("softflowd")
        let scratch = try Subprocess.temporaryDirectory("flowtap-bench-records")
        defer { Subprocess.removeTree(scratch) }
        let floorTarget = (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : scratch) + "/flowtap-bench-floor-\(getpid())"
        defer { unlink(floorTarget) }
        var rows = [
            Row(label: "floor: cat", command: ["/bin/cat", file], output: floorTarget),
            Row(label: "flowtap flows", command: [executable, "flows", "-r", file, "-o", "/dev/null", "--quiet"]),
            Row(label: "flowtap analyze", command: [executable, "analyze", "-r", file, "-o", "/dev/null", "--quiet"]),
            Row(label: "flowtap flows --export", command: [executable, "flows", "-r", file, "--export", "ipfix://127.0.0.1:9", "--quiet"]),
            Row(label: "ndpiReader -q", command: ndpi.map { [$0, "-i", file, "-q"] }, note: ndpi == nil ? "not installed (Debian: libndpi-bin)" : nil),
            Row(label: "softflowd -r (IPFIX)", command: softflowd.map {
                // "-c none": with a control socket softflowd waits on it after the capture's end instead of exiting.
                [$0, "-r", file, "-n", "127.0.0.1:9", "-v", "10", "-6", "-d", "-m", "1000000", "-p", scratch + "/softflowd.pid", "-c", "none"]
            }, note: softflowd == nil ? "not installed (Debian: softflowd)" : nil),
            Row(label: "flowtap analyze --threads 2", command: [executable, "analyze", "-r", file, "-o", "/dev/null", "--quiet", "--threads", "2"]),
            Row(label: "flowtap flows --threads 2", command: [executable, "flows", "-r", file, "-o", "/dev/null", "--quiet", "--threads", "2"]),
        ]
        let progress = isatty(2) != 0
        for round in 0 ..< runs {
            for i in rows.indices {
                guard let command = rows[i].command, rows[i].note == nil else { continue }
                if progress { writeStandardError("\rround \(round + 1)/\(runs): \(rows[i].label)\u{1B}[K") }
                let result = try Subprocess.run(command[0], Array(command.dropFirst()), standardOutput: rows[i].output,
                                                standardError: scratch + "/stderr", timeTool: timeTool)
                guard result.status == 0 else {
                    rows[i].note = "exited with status \(result.status): \(Subprocess.readText(scratch + "/stderr").prefix(200))"
                    continue
                }
                rows[i].cpu.append(result.cpuSeconds)
                rows[i].wall.append(result.seconds)
                rows[i].rss.append(result.peakRSSKiB)
                if let share = result.stealShare { rows[i].steal.append(share) }
            }
        }
        if progress { writeStandardError("\r\u{1B}[K") }
        let ndpiRow = rows.first { $0.label == "ndpiReader -q" }
        let ndpiCPU = ndpiRow.flatMap { $0.cpu.isEmpty ? nil : BenchLoops.median($0.cpu) }
        print("\(self.file): \(packets) packets; medians of \(runs) rounds, same run; capture \(reading)")
        let floorCPU = rows[0].cpu.isEmpty ? nil : BenchLoops.median(rows[0].cpu)
        print("command                     CPU s    wall s   packets/CPU-s   vs ndpiReader   × floor   peak RSS MiB   steal")
        for row in rows {
            guard row.note == nil, !row.cpu.isEmpty else {
                print(row.label.padding(toLength: 28, withPad: " ", startingAt: 0) + "  skipped: \(row.note ?? "no run")")
                continue
            }
            let cpu = BenchLoops.median(row.cpu), wall = BenchLoops.median(row.wall)
            // The floor handles bytes, not packets: no rate or ratio to ndpiReader for it.
            let isFloor = row.label == rows[0].label
            let rate = isFloor ? "—" : String(Int(Double(packets) / max(cpu, 1e-9)))
            let ratio = isFloor ? "—" : ndpiCPU.map { String(format3: $0 / max(cpu, 1e-9)) + "×" } ?? "—"
            print(row.label.padding(toLength: 28, withPad: " ", startingAt: 0)
                  + "  " + String(format3: cpu).leftPadded(6) + "  " + String(format3: wall).leftPadded(8)
                  + "  " + rate.leftPadded(14) + "  " + ratio.leftPadded(14)
                  + "  " + (floorCPU.map { String(format3: cpu / max($0, 1e-9)) + "×" } ?? "—").leftPadded(8)
                  + "  " + String(format3: Double(BenchLoops.median(row.rss.map(Double.init))) / 1024).leftPadded(12)
                  + "  " + (row.steal.isEmpty ? "—" : HostSteal.percent(BenchLoops.median(row.steal))).leftPadded(6))
        }
        // 1 → 2 threads: the wall-time speed-up of each command (a shared machine makes CPU the steadier figure
        // above; this one needs both cores idle).
        for command in ["analyze", "flows"] {
            guard let one = rows.first(where: { $0.label == "flowtap \(command)" }), let two = rows.first(where: { $0.label == "flowtap \(command) --threads 2" }),
                  !one.wall.isEmpty, !two.wall.isEmpty else { continue }
            let speedUp = BenchLoops.median(one.wall) / max(BenchLoops.median(two.wall), 1e-9)
            print("\(command) 1 → 2 threads: wall \(String(format3: BenchLoops.median(one.wall))) s → \(String(format3: BenchLoops.median(two.wall))) s, speed-up \(String(format3: speedUp))×")
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
