import ArgumentParser
import Defragment
import Filters
import FlowCore
import Engine
import FlowExport
import Outputs
import PacketCore

/// `-r FILE`, as tcpdump and tshark take it: every command that reads packets.
struct ReadOptions: ParsableArguments {
    @Option(name: [.customShort("r"), .customLong("read")],
            help: ArgumentHelp("Capture file to read: pcap or pcapng, gzip-compressed or not, '-' for standard input. Repeat for several; they are read in order.", valueName: "file"))
    var files: [String] = []
}

/// What every record command that reads packets takes: `-r`, `-c` (a packet count, as tcpdump's) and
/// a tcpdump filter. (`abstract` takes the parts apart: there `-c` is SF-TAP's config.)
struct PacketInputOptions: ParsableArguments {
    @OptionGroup var read: ReadOptions

    @Option(name: [.customShort("c"), .customLong("count")], help: ArgumentHelp("Stop after this many packets (that pass the filter).", valueName: "n"))
    var count: UInt64?

    @OptionGroup var filter: FilterOptions

    var files: [String] { read.files }

    func validate() throws {
        if read.files.isEmpty { throw ValidationError("give at least one capture file with -r FILE") }
        if count == 0 { throw ValidationError("--count must be at least 1") }
    }

    /// The pipeline's input settings: progress line, compiled filter, packet count.
    func pipelineInput(quiet: Bool) throws -> PipelineInput {
        var input = PipelineInput()
        input.progress = quiet ? nil : ProgressReporter.forTerminal()
        input.filter = try filter.compiled()
        input.packetLimit = count
        return input
    }
}

/// `PacketInputOptions` or a live interface: `-r FILE…` or `-i IFACE` (with `--threads` the capture is
/// one handle per thread in a kernel fanout group), `-c` and a tcpdump filter (in the kernel when live).
struct LivePacketInputOptions: ParsableArguments {
    @OptionGroup var read: ReadOptions

    @Option(name: [.customShort("i"), .customLong("interface")], help: ArgumentHelp("Capture live from this interface until SIGINT or SIGTERM (instead of -r).", valueName: "iface"))
    var interface: String?

    @Option(name: [.customShort("c"), .customLong("count")], help: ArgumentHelp("Stop after this many packets (that pass the filter).", valueName: "n"))
    var count: UInt64?

    @OptionGroup var filter: FilterOptions

    var files: [String] { read.files }

    func validate() throws {
        if read.files.isEmpty == (interface == nil) { throw ValidationError("give either capture files with -r FILE or a live interface with -i IFACE") }
        if count == 0 { throw ValidationError("--count must be at least 1") }
    }

    /// The pipeline's input settings; a live capture's filter runs in the kernel, not here.
    func pipelineInput(quiet: Bool) throws -> PipelineInput {
        var input = PipelineInput()
        input.progress = quiet || interface != nil ? nil : ProgressReporter.forTerminal()
        input.filter = interface == nil ? try filter.compiled() : nil
        if interface != nil { _ = try filter.compiled() }
        input.packetLimit = count
        return input
    }
}

/// A tcpdump filter, `-f EXPR` or the words after the options as tcpdump takes them; libpcap runs
/// it on every packet before anything else sees it.
struct FilterOptions: ParsableArguments {
    @Option(name: [.customShort("f"), .customLong("filter")],
            help: ArgumentHelp("Keep only the packets this tcpdump expression matches (libpcap's filter, run before anything else).", valueName: "expr"))
    var filter: String?

    @Argument(help: ArgumentHelp("A tcpdump filter expression after the options, as tcpdump takes it (instead of -f).", valueName: "expression"))
    var expression: [String] = []

    /// The expression, from -f or the trailing words; nil for none.
    var text: String? {
        if let filter { return filter }
        return expression.isEmpty ? nil : expression.joined(separator: " ")
    }

    func validate() throws {
        if filter != nil && !expression.isEmpty {
            throw ValidationError("give the filter once: either -f '\(filter!)' or the words after the options ('\(expression.joined(separator: " "))'), not both")
        }
    }

    /// The compiled filter (checked now against Ethernet, so a typo stops the command before it reads);
    /// other link types compile when their first packet comes.
    func compiled() throws(BPFFilter.CompileError) -> BPFFilter? {
        guard let text else { return nil }
        return try BPFFilter(expression: text, linkType: .ethernet)
    }
}

/// The flow engine's knobs, the same on every command that rebuilds flows. Each overrides the
/// default (or, for `abstract` and `analyze --config`, the config's `global` value) only when given.
struct EngineOptions: ParsableArguments {
    @Flag(help: "Only reassemble TCP connections whose SYN was captured (SF-TAP's behaviour); otherwise connections are picked up mid-stream.")
    var requireSyn = false

    @Flag(help: "Leave VLAN IDs out of flow identity (SF-TAP master's behaviour).")
    var ignoreVlan = false

    @Option(help: ArgumentHelp("IP fragment overlap policy: \(OverlapPolicy.allCases.map(\.rawValue).joined(separator: ", ")) (default \(DefragmentConfig().policy.rawValue)).", valueName: "policy"))
    var overlapPolicy: String?

    @Option(help: ArgumentHelp("Skip a TCP hole after this many seconds of packet time (default 10).", valueName: "seconds"))
    var gapTimeout: Double?

    @Option(help: ArgumentHelp("At most this many flows at once; when full, the least recently active flow is ended (default 1000000).", valueName: "n"))
    var maxFlows: Int?

    func validate() throws {
        if let overlapPolicy, OverlapPolicy(rawValue: overlapPolicy) == nil {
            throw ValidationError("unknown --overlap-policy '\(overlapPolicy)'; choose from \(OverlapPolicy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let gapTimeout, !(gapTimeout > 0) { throw ValidationError("--gap-timeout must be above 0") }
        if let maxFlows, maxFlows < 1 { throw ValidationError("--max-flows must be at least 1") }
    }

    /// `config` with every knob given on the command line applied.
    func applied(to config: FlowEngineConfig) -> FlowEngineConfig {
        var config = config
        if requireSyn { config.tcp.requireSYN = true }
        if ignoreVlan { config.vlanInKey = false }
        if let overlapPolicy, let policy = OverlapPolicy(rawValue: overlapPolicy) { config.defragment.policy = policy }
        if let gapTimeout { config.tcp.gapTimeoutNanoseconds = Int64(gapTimeout * 1e9) }
        if let maxFlows { config.table.maxFlows = maxFlows }
        return config
    }
}

/// Reports a failure as "flowtap COMMAND: …" on standard error and exits 1.
func fail(_ command: String, _ error: Any) -> ExitCode {
    writeStandardError("flowtap \(command): \(error)\n")
    return ExitCode(1)
}

/// `--export` URLs, each checked now so a typo stops the command before it reads.
func parseExports(_ texts: [String]) throws -> [ExportDestination] {
    do {
        return try texts.map { text throws(ExportDestination.ParseError) in try ExportDestination(parsing: text) }
    } catch {
        throw ValidationError(error.description)
    }
}

/// A record-writing command's run: opens `output` (standard output when nil; refused when it is one of
/// `inputs`), stops cleanly on SIGINT/SIGTERM, runs `body` and prints the summary it returns.
func writeRecords(_ command: String, to output: String?, inputs: [String], _ body: (RecordWriter) throws -> String) throws {
    let writer: RecordWriter
    do {
        writer = try RecordWriter(path: output, inputs: inputs)
    } catch {
        throw fail(command, error)
    }
    StopSignal.install()
    do {
        writeStandardError(try body(writer))
        try writer.finish()
    } catch {
        throw fail(command, error)
    }
}
