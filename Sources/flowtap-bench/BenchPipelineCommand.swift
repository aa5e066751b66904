import Abstraction
import FlowCore
import Analyzers
import ArgumentParser
import Capture
import Defragment
import Engine
import PacketCore
import SFTapConfig
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// Throughput of each stage of the `abstract` pipeline on the same capture, and of peers, in one run.
///
/// Every round measures, in this order: the five in-process stages (each including the ones
/// before it), `flowtap abstract --out-dir` as a child process of this binary (with `--threads 1`
/// and `--threads 2` when `abstract --help` lists `--threads`), libpcap's `pcap_next_ex` loop,
/// `ndpiReader` and `tcpflow`, and with `--threads 2` two one-thread runs at once (what two busy
/// processes get from this machine). Rounds interleave the measurements so that noise from the machine
/// spreads over all of them; medians, minima and maxima of `--runs` rounds are reported.
struct BenchPipelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Per-stage throughput of the abstract pipeline, end to end, and peers on the same capture.",
        discussion: """
        Stages, each including the ones before it, all in this process on one thread:
          1 read            FlowTap's capture reader over the files
          2 decode          + PacketDecoder (tunnels opened, as the flow engine does)
          3 flows           + a flow-table lookup per IP packet, inserting new flows, idle flows removed each
                            second of packet time; no defragmentation, no TCP start rule, no reassembly (the
                            engine cannot run without reassembly, so this stage drives the flow table itself)
          4 reassembly      the whole flow engine (defragmentation, flows, TCP reassembly) with a sink that
                            does nothing with its events
          5 classification  + the SF-TAP abstractor (Vectorscan classification, event formatting) into
                            outputs that discard; its set-up (config, Vectorscan compile) is timed apart
          6 end to end      flowtap abstract -c CONFIG -r FILE --out-dir TMPDIR --quiet, run as a child process
                            (the flowtap beside flowtap-bench, or --flowtap PATH): wall time and peak RSS
                            (wait4); the output is removed after each run, outside the time; with --threads
                            1 and 2 when abstract has that option
        Stages 4 to 6 use the engine limits of CONFIG (default: examples/flowtap.yaml of the repository the \
        binary was built in, or of the current directory).

        Peers on the same files, when installed (otherwise skipped with a note):
          ceiling           two flowtap abstract --threads 1 at once, each into its own directory (with
                            --threads 2 only): twice the work, so its rates count both; against one run's
                            time it says what two busy processes get from this machine (shared memory,
                            caches, page cache), the bound to read the 1 -> 2 thread speed-up against
          ideal             the capture split in two by flow with flowtap incubate (once, untimed), then two
                            flowtap abstract --threads 1 at once, one on each half (with --threads 2 only):
                            the most sharding by flow can give here, start-up and an even split included
                            (the halves take as much room under --scratch as the captures)
          floor             cat FILE > SCRATCH/floor: reading the capture and writing as many bytes, the least
                            any tool that writes its input's bytes out pays (abstract's CPU is compared to it)
          libpcap           pcap_next_ex touching each packet's first byte, in this process
          ndpiReader        ndpiReader -i FILE -q (nDPI: flows and protocol detection, prints nothing)
          tcpflow           tcpflow -r FILE -o TMPDIR (stream reassembly into a file per flow direction,
                            the nearest peer of abstract --out-dir); its output is removed outside the time
        Outputs (abstract's, the floor's, tcpflow's) go under --scratch, /dev/shm by default (memory: the \
        file system's speed stays out of the figures). The captures are copied there too when it is tmpfs \
        and they fit in half the available memory, and every row reads the copies: a VM's page cache can \
        drop part of a file between rounds (--in-place reads the originals). Each row also gives the host's \
        steal (/proc/stat): the share of this machine's CPU time the hypervisor gave to other guests while \
        the row ran. Process CPU seconds leave it out, wall times do not; the 1 -> 2 thread speed-up is \
        meaningful only when it is near zero. With --threads 2, abstract's summary gives each \
        thread's CPU seconds; the last round's split is printed. \
        Ratios are the peer's time over FlowTap's: above 1 means FlowTap is faster. Gbit/s counts captured \
        bytes. Peak RSS of a child is ru_maxrss from wait4; Linux carries a process's peak across exec, so \
        children run under GNU time (/usr/bin/time, Debian package time) when it is installed, which reports \
        the child's own; without it a figure is marked '*' (at least this process's peak at the spawn). \
        Progress goes to standard error when it is a terminal.

        Examples:
          flowtap generate --sessions 60000 --rate 2000 --seed 7 -w /tmp/big.pcap
          flowtap-bench pipeline -r /tmp/big.pcap --runs 5
          flowtap-bench pipeline -r a.pcap -r b.pcap -C fabs.yaml --json
        """
    )

    @Option(name: [.customShort("r"), .customLong("read")], help: ArgumentHelp("Capture file to measure; repeat for several (read in order).", valueName: "file"))
    var files: [String] = []

    @Option(help: "Rounds to run; medians are reported with minima and maxima.")
    var runs: Int = 5

    @Option(name: [.customShort("C"), .customLong("config")], help: ArgumentHelp("SF-TAP YAML configuration for stages 4 to 6.", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("The flowtap binary stage 6 runs (default: the one beside flowtap-bench); give an older build to compare two in one run.", valueName: "path"))
    var flowtap: String?

    @Option(help: ArgumentHelp("Directory for outputs (abstract's event files, the floor's copy, tcpflow's files).", valueName: "dir"))
    var scratch: String = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"

    @Flag(help: "Print the results as one JSON object.")
    var json = false

    @Flag(help: "Read the captures where they are, not from copies in --scratch.")
    var inPlace = false

    func validate() throws {
        if files.isEmpty { throw ValidationError("give a capture file with -r FILE") }
        if runs < 1 { throw ValidationError("--runs must be at least 1") }
    }

    /// One line of the results: a FlowTap stage or a peer, with every round's measurements.
    struct Row {
        var key: String
        var label: String
        /// 1…6 for FlowTap's stages, nil for peers.
        var stage: Int?
        var command: String?
        var packets: Int?
        var seconds: [Double] = []
        var peakRSSKiB: [Int] = []
        /// Whether the peak RSS is the child's own (measured under GNU time), not raised to this process's.
        var peakRSSExact = false
        var cpuSeconds: [Double] = []
        /// Why the row was not measured, or what else to know.
        var note: String?
        /// Counts the stage produced (flows, events), from the last round.
        var counts: [(String, Int)] = []
        /// abstract with several threads: packets and CPU seconds per thread, from the last round's summary.
        var split: String?
        /// How many copies of the work one measurement does (the two-process ceiling runs two), for rates.
        var copies = 1
        /// Each measurement's host steal share (`HostSteal`).
        var stealShares: [Double] = []
        var measured: Bool { !seconds.isEmpty }
        var median: Double { BenchLoops.median(seconds) }
    }

    func run() throws {
        do {
            let staged = inPlace ? CaptureStaging.Staged(files: files, directory: nil, note: "read in place (--in-place)")
                : try CaptureStaging.stage(files, under: scratch)
            defer { staged.remove() }
            var bench = self
            bench.files = staged.files
            try bench.measure(originals: files, reading: staged.note)
        } catch {
            writeStandardError("flowtap-bench pipeline: \(error)\n")
            throw ExitCode(1)
        }
    }

    /// Measures with `files` (the staged copies); the report names `originals` and says where they were read.
    func measure(originals: [String], reading: String) throws {
        let progress = isatty(2) != 0
        let configPath = try resolveConfig()
        let settings: SFTapSettings
        do {
            var cwd = [CChar](repeating: 0, count: 4096)
            settings = try SFTapSettings.load(path: configPath, currentDirectory: getcwd(&cwd, cwd.count).map { String(cString: $0) } ?? ".")
        } catch {
            throw BenchError("\(error)")
        }
        let engineConfig = FlowEngineConfig(abstracting: settings)
        let executable = flowtap ?? Subprocess.sibling("flowtap")
        let threadsOption = try abstractHasThreads(executable)
        let ndpiReader = Subprocess.which("ndpiReader"), tcpflow = Subprocess.which("tcpflow")
        let timeTool = Subprocess.which("time")

        var rows = [
            Row(key: "read", label: "1 read", stage: 1),
            Row(key: "decode", label: "2 + decode", stage: 2),
            Row(key: "flows", label: "3 + flow tracking", stage: 3),
            Row(key: "reassembly", label: "4 + reassembly", stage: 4),
            Row(key: "classification", label: "5 + classification", stage: 5),
        ]
        let threadCounts: [Int?] = threadsOption ? [1, 2] : [nil]
        for threads in threadCounts {
            let suffix = threads.map { " --threads \($0)" } ?? ""
            rows.append(Row(key: threads.map { "abstract_threads_\($0)" } ?? "abstract", label: "6 abstract" + suffix, stage: 6,
                            command: "flowtap abstract -c \(configPath) \(fileArguments("-r")) --out-dir TMPDIR --quiet" + suffix))
        }
        if threadsOption {
            // What two busy processes get from this machine (memory, caches, the kernel's page cache), to
            // read the 1 -> 2 thread speed-up against.
            var pair = Row(key: "abstract_pair", label: "ceiling: 2 x --threads 1",
                           command: "two of flowtap abstract ... --threads 1 at once, each with its own TMPDIR")
            pair.copies = 2
            rows.append(pair)
            // What sharding by flow can give on this machine at best: the capture split in two by flow
            // beforehand, two one-thread processes on the halves at once (no reading of the other's
            // packets, no shared files, an even split), against one run on the whole.
            rows.append(Row(key: "abstract_halves", label: "ideal: 2 halves at once",
                            command: "flowtap incubate splits the capture in two by flow (untimed); two of flowtap abstract ... --threads 1 at once, one on each half"))
        }
        rows.append(Row(key: "floor", label: "floor: cat > \(scratch)", command: files.map { "cat \($0) > \(scratch)/floor" }.joined(separator: "; ")))
        rows.append(Row(key: "libpcap", label: "libpcap pcap_next_ex", command: "pcap_next_ex loop (in process)"))
        rows.append(Row(key: "ndpiReader", label: "ndpiReader -q", command: files.map { "ndpiReader -i \($0) -q" }.joined(separator: "; "),
                        note: ndpiReader == nil ? "ndpiReader not installed (Debian: libndpi-bin); skipped" : nil))
        rows.append(Row(key: "tcpflow", label: "tcpflow -o", command: "tcpflow \(fileArguments("-r")) -o TMPDIR",
                        note: tcpflow == nil ? "tcpflow not installed (Debian: tcpflow); skipped" : nil))
        // The halves for the ideal row, made once, removed at the end.
        var halves: [String] = []
        let halvesDirectory = threadsOption ? try Subprocess.temporaryDirectoryIn(scratch, "flowtap-bench-halves") : nil
        defer { if let halvesDirectory { Subprocess.removeTree(halvesDirectory) } }
        if let halvesDirectory {
            halves = try splitInHalves(executable: executable, into: halvesDirectory)
        }
        var setupSeconds: [Double] = []
        var capturedBytes = 0
        // One untimed pass, so that the first round does not pay for a cold page cache.
        var ignored = 0
        _ = try BenchLoops.captureLoop(files, depth: .read, flows: &ignored)

        for round in 0 ..< runs {
            for index in rows.indices where rows[index].note == nil {
                if progress { writeStandardError("\rround \(round + 1)/\(runs): \(rows[index].label)\u{1B}[K") }
                var row = rows[index]
                let steal = HostSteal.sample()
                switch row.key {
                case "read", "decode", "flows":
                    var flows = 0
                    let depth: BenchLoops.Depth = row.key == "read" ? .read : row.key == "decode" ? .decode : .flows
                    var decoder = PacketDecoder(verifyChecksums: engineConfig.verifyChecksums)
                    decoder.decapsulateTunnels = engineConfig.decapsulateTunnels
                    let pass = try BenchLoops.captureLoop(files, depth: depth, decoder: decoder, flows: &flows)
                    row.record(pass)
                    if depth == .read { capturedBytes = pass.bytes }
                    if depth == .flows { row.counts = [("flows", flows)] }
                case "reassembly":
                    let start = MonotonicClock.seconds()
                    let pipeline = Pipeline(config: engineConfig, sink: NullFlowSink())
                    try pipeline.run(files: files)
                    let engine = pipeline.engine
                    row.record(PassResult(packets: Int(engine.counters.packets), seconds: MonotonicClock.seconds() - start))
                    row.counts = [("flows", Int(engine.counters.flowsCreated)), ("stream_bytes", Int(engine.sink.dataBytes))]
                case "classification":
                    let setup = MonotonicClock.seconds()
                    let outputs = DiscardingOutputs()
                    let abstractor = try Abstractor(settings: settings, outputs: outputs)
                    let start = MonotonicClock.seconds()
                    setupSeconds.append(start - setup)
                    let pipeline = Pipeline(config: engineConfig, sink: abstractor)
                    try pipeline.run(files: files)
                    let engine = pipeline.engine
                    row.record(PassResult(packets: Int(engine.counters.packets), seconds: MonotonicClock.seconds() - start))
                    let c = abstractor.counters
                    row.counts = [("flows", Int(engine.counters.flowsCreated)), ("tcp_flows_classified", Int(c.tcpFlowsClassified)),
                                  ("events", Int(outputs.events)), ("event_bytes", Int(outputs.bytes))]
                case "libpcap":
                    row.record(try BenchLoops.libpcapLoop(files))
                case "floor":
                    try runPeer(&row, timeTool: timeTool, keepStandardOutput: true) { _ in files.map { ["/bin/cat", $0] } }
                case "ndpiReader":
                    guard let ndpiReader else { break }
                    try runPeer(&row, timeTool: timeTool) { _ in files.map { [ndpiReader, "-i", $0, "-q"] } }
                case "tcpflow":
                    guard let tcpflow else { break }
                    try runPeer(&row, timeTool: timeTool) { out in [[tcpflow] + files.flatMap { ["-r", $0] } + ["-o", out]] }
                case "abstract_pair":
                    try runAbstractPair(&row, executable: executable, config: configPath)
                case "abstract_halves":
                    try runAbstractPair(&row, executable: executable, config: configPath, inputs: halves.map { [$0] })
                default:
                    try runAbstract(&row, executable: executable, config: configPath, timeTool: timeTool)
                }
                // Children's rows measure their own spans; the in-process stages and several-command peers this whole span.
                if row.seconds.count > row.stealShares.count, let share = HostSteal.share(from: steal, to: HostSteal.sample()) {
                    row.stealShares.append(share)
                }
                rows[index] = row
            }
        }
        if progress { writeStandardError("\r\u{1B}[K") }

        let packets = rows[0].packets ?? 0
        for row in rows where row.measured && !["ndpiReader", "tcpflow", "floor"].contains(row.key) && row.packets != packets {
            throw BenchError("\(row.label) saw \(row.packets.map(String.init) ?? "an unknown number of") packets, the reader \(packets)")
        }
        let report = Report(files: originals, reading: reading, config: configPath, runs: runs, packets: packets, bytes: capturedBytes, rows: rows,
                            setupSeconds: setupSeconds.isEmpty ? nil : BenchLoops.median(setupSeconds), threadsOption: threadsOption)
        print(json ? report.json() : report.text(), terminator: "")
    }

    /// The files as repeated options, for a command line (`-r a -r b`).
    func fileArguments(_ option: String) -> String { files.map { "\(option) \($0)" }.joined(separator: " ") }

    /// `-c`, or examples/flowtap.yaml of the repository holding this binary, or of the current directory.
    func resolveConfig() throws -> String {
        if let config { return config }
        var directory = Subprocess.ownExecutable()
        while let slash = directory.lastIndex(of: "/"), slash != directory.startIndex {
            directory = String(directory[..<slash])
            let candidate = directory + "/examples/flowtap.yaml"
            if access(candidate, R_OK) == 0 { return candidate }
        }
        if access("examples/flowtap.yaml", R_OK) == 0 { return "examples/flowtap.yaml" }
        throw BenchError("no examples/flowtap.yaml above the binary or in the current directory; give the SF-TAP config with -c FILE")
    }

    /// Whether `flowtap abstract --help` of this binary lists `--threads` (asked once).
    func abstractHasThreads(_ executable: String) throws -> Bool {
        let directory = try Subprocess.temporaryDirectory("flowtap-bench-help")
        defer { Subprocess.removeTree(directory) }
        let result = try Subprocess.run(executable, ["abstract", "--help"], standardOutput: directory + "/help")
        return result.status == 0 && Subprocess.readText(directory + "/help").contains("--threads")
    }

    /// `flowtap abstract` on `inputs` (the files, unless given) into `outDir`, quiet, with `--threads` when given.
    func abstractArguments(config: String, outDir: String, threads: String?, inputs: [String]? = nil) -> [String] {
        ["abstract", "-c", config] + (inputs ?? files).flatMap { ["-r", $0] } + ["--out-dir", outDir, "--quiet"] + (threads.map { ["--threads", $0] } ?? [])
    }

    /// One run of `flowtap abstract --out-dir` on the files; its summary's packet count is kept.
    func runAbstract(_ row: inout Row, executable: String, config: String, timeTool: String?) throws {
        let scratch = try Subprocess.temporaryDirectoryIn(self.scratch, "flowtap-bench-abstract")
        defer { Subprocess.removeTree(scratch) }
        let threads = row.key.hasPrefix("abstract_threads_") ? String(row.key.dropFirst("abstract_threads_".count)) : nil
        let arguments = abstractArguments(config: config, outDir: scratch + "/out", threads: threads)
        let result = try Subprocess.run(executable, arguments, standardError: scratch + "/stderr", timeTool: timeTool)
        let summary = Subprocess.readText(scratch + "/stderr")
        guard result.status == 0 else {
            throw BenchError("flowtap \(arguments.joined(separator: " ")) exited with status \(result.status): \(summary)")
        }
        row.packets = Self.packetCount(in: summary)
        if let range = summary.range(of: "(packets per worker: ") {
            row.split = String(summary[range.upperBound...].prefix { $0 != "\n" }.dropLast())
        }
        row.seconds.append(result.seconds)
        row.peakRSSKiB.append(result.peakRSSKiB)
        row.peakRSSExact = result.peakRSSExact
        row.cpuSeconds.append(result.cpuSeconds)
        if let share = result.stealShare { row.stealShares.append(share) }
    }

    /// The capture split in two by flow (`flowtap incubate`, both directions and every fragment of a flow
    /// in one half): the two files.
    func splitInHalves(executable: String, into directory: String) throws -> [String] {
        let halves = [directory + "/half0.pcap", directory + "/half1.pcap"]
        let arguments = ["incubate"] + files.flatMap { ["-r", $0] } + halves.flatMap { ["--cell", "file:" + $0] } + ["--quiet"]
        let result = try Subprocess.run(executable, arguments, standardError: directory + "/stderr")
        guard result.status == 0 else {
            throw BenchError("flowtap \(arguments.joined(separator: " ")) exited with status \(result.status): \(Subprocess.readText(directory + "/stderr"))")
        }
        return halves
    }

    /// Two `flowtap abstract --threads 1` at once, each into its own directory, on the files each (or on
    /// `inputs[0]` and `inputs[1]`): the wall time until both ended, their CPU seconds and packets added up.
    func runAbstractPair(_ row: inout Row, executable: String, config: String, inputs: [[String]]? = nil) throws {
        let scratch = try Subprocess.temporaryDirectoryIn(self.scratch, "flowtap-bench-pair")
        defer { Subprocess.removeTree(scratch) }
        let commands = (0 ..< 2).map { i in
            (executable, abstractArguments(config: config, outDir: "\(scratch)/out\(i)", threads: "1", inputs: inputs?[i]), "\(scratch)/stderr\(i)")
        }
        let (seconds, results) = try Subprocess.runTogether(commands)
        for (result, command) in zip(results, commands) where result.status != 0 {
            throw BenchError("flowtap \(command.1.joined(separator: " ")) exited with status \(result.status): \(Subprocess.readText(command.2))")
        }
        // The ceiling's two runs each see the whole capture (its rates count both); the halves add up to it.
        let counts = commands.map { Self.packetCount(in: Subprocess.readText($0.2)) }
        let known = counts.compactMap { $0 }
        row.packets = inputs == nil ? counts[0] : known.count == 2 ? known.reduce(0, +) : nil
        row.seconds.append(seconds)
        row.cpuSeconds.append(results.reduce(0) { $0 + $1.cpuSeconds })
        row.peakRSSKiB.append(results.map(\.peakRSSKiB).max() ?? 0)
        if let share = results.first?.stealShare { row.stealShares.append(share) }
    }

    /// Runs a peer's commands one after another as one measurement (times added, the largest peak RSS).
    /// `commands` is given a fresh output directory, which is removed after the run, outside the time;
    /// with `keepStandardOutput` each command's standard output goes to a file in it (the floor's copy).
    /// A peer that fails is reported and not run again.
    func runPeer(_ row: inout Row, timeTool: String?, keepStandardOutput: Bool = false, _ commands: (String) -> [[String]]) throws {
        let scratch = try Subprocess.temporaryDirectoryIn(self.scratch, "flowtap-bench-peer")
        defer { Subprocess.removeTree(scratch) }
        var seconds = 0.0, cpu = 0.0, peak = 0
        for command in commands(scratch + "/out") {
            let result = try Subprocess.run(command[0], Array(command.dropFirst()), standardOutput: keepStandardOutput ? scratch + "/stdout" : "/dev/null",
                                            standardError: scratch + "/stderr", timeTool: timeTool)
            guard result.status == 0 else {
                row.note = "\(command[0]) exited with status \(result.status): \(Subprocess.readText(scratch + "/stderr").prefix(300)); skipped"
                row.seconds = []
                return
            }
            seconds += result.seconds
            cpu += result.cpuSeconds
            peak = max(peak, result.peakRSSKiB)
            row.peakRSSExact = result.peakRSSExact
        }
        row.seconds.append(seconds)
        row.cpuSeconds.append(cpu)
        row.peakRSSKiB.append(peak)
    }

    /// The first "packets N" in abstract's summary on standard error.
    static func packetCount(in summary: String) -> Int? {
        guard let range = summary.range(of: "packets ") else { return nil }
        return Int(summary[range.upperBound...].prefix { $0.isASCII && $0.isNumber })
    }
}

extension BenchPipelineCommand.Row {
    mutating func record(_ pass: PassResult) {
        packets = pass.packets
        seconds.append(pass.seconds)
    }
}

/// Interface outputs that only count the events and bytes the abstractor publishes:
/// classification and formatting run, nothing is written.
final class DiscardingOutputs: InterfaceOutputs {
    private var paths: [String] = []
    private(set) var events: UInt64 = 0
    private(set) var bytes: UInt64 = 0

    func output(_ relativePath: String) throws -> Int {
        if let index = paths.firstIndex(of: relativePath) { return index }
        paths.append(relativePath)
        return paths.count - 1
    }

    func publish(_ output: Int, header: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) throws {
        events &+= 1
        bytes &+= UInt64(header.count + body.count)
    }
}
