import ArgumentParser
import Telemetry
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

/// Where and how a record-writing command writes (analyze, flows, collect): one output layer for all.
struct OutputOptions: ParsableArguments {
    @Option(name: [.customShort("o"), .customLong("output")],
            help: ArgumentHelp("""
                Write records here: a file path, '-' for standard output, or \
                redis://[USER:PASSWORD@]HOST:PORT[/DB]?key=K&mode=stream|list|publish (stream: XADD with MAXLEN ~ maxlen=N, \
                default 1000000; list: RPUSH; publish: PUBLISH; a key with {type} gives each record type its own key). \
                Repeat for several outputs; default standard output.
                """, valueName: "path|url"))
    var outputs: [String] = []

    @Option(help: ArgumentHelp("Start a new output file before a record would take it past this many bytes (suffixes k, M, G). Rotated files are named PATH-<UTC time>-<sequence>.EXT.", valueName: "bytes"))
    var rotateSize: String?

    @Option(help: ArgumentHelp("Start a new output file when the current one has been open this many seconds (checked at each record).", valueName: "seconds"))
    var rotateInterval: Double?

    @Flag(help: "Compress each closed output file to NAME.gz (in the background) and remove the uncompressed one.")
    var rotateGzip = false

    @Option(help: ArgumentHelp("Bytes of records each Redis output holds while its server is slow or away (suffixes k, M, G; default 64M).", valueName: "bytes"))
    var outputQueue: String?

    @Option(help: ArgumentHelp("When a Redis output's queue is full: 'wait' (nothing lost; capture waits) or 'drop' (records dropped and counted). Default: wait when reading files, drop when capturing live.", valueName: "wait|drop"))
    var whenFull: String?

    static func bytes(_ text: String, option: String) throws -> UInt64 {
        let units: [Character: UInt64] = ["k": 1 << 10, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var digits = Substring(text), scale: UInt64 = 1
        if let last = text.last, let unit = units[last] { digits = digits.dropLast(); scale = unit }
        guard let n = UInt64(digits), n > 0, n <= UInt64.max / scale else {
            throw ValidationError("\(option) \(text): write a positive number of bytes, optionally with k, M or G (e.g. 100M)")
        }
        return n * scale
    }

    func destinations() throws -> [RecordDestination] {
        do {
            return try outputs.map { text throws(RecordOutputError) in try RecordDestination.parse(text) }
        } catch {
            throw ValidationError(error.description)
        }
    }

    func options() throws -> RecordOutputOptions {
        var options = RecordOutputOptions()
        options.rotation.maxBytes = try rotateSize.map { try Self.bytes($0, option: "--rotate-size") }
        if let rotateInterval {
            guard rotateInterval > 0 else { throw ValidationError("--rotate-interval \(rotateInterval): write a positive number of seconds") }
            options.rotation.interval = rotateInterval
        }
        options.rotation.gzip = rotateGzip
        if rotateGzip && !options.rotation.rotates {
            throw ValidationError("--rotate-gzip compresses closed files; give --rotate-size or --rotate-interval as well")
        }
        if let outputQueue { options.queueBytes = Int(try Self.bytes(outputQueue, option: "--output-queue")) }
        switch whenFull {
        case nil: break
        case "wait": options.waitWhenFull = true
        case "drop": options.waitWhenFull = false
        case let other?: throw ValidationError("--when-full \(other): write 'wait' or 'drop'")
        }
        options.interrupted = { StopSignal.requested }
        return options
    }
}

/// A record-writing command's run: opens its outputs (standard output when none; a file that is one of
/// `inputs` is refused), stops cleanly on SIGINT/SIGTERM, reopens its files on SIGHUP, runs `body` and
/// prints the summary it returns and what each output wrote and dropped.
func writeRecords(_ command: String, to outputs: OutputOptions, inputs: [String], _ body: (RecordWriter) throws -> String) throws {
    let writer: RecordWriter
    do {
        writer = try RecordWriter(destinations: try outputs.destinations(), options: try outputs.options(), inputs: inputs)
    } catch let error as ValidationError {
        throw fail(command, error.message)
    } catch {
        throw fail(command, error)
    }
    StopSignal.install()
    HangupSignal.install()
    do {
        writeStandardError(try body(writer))
        try writer.finish()
        writeStandardError(writer.summary)
    } catch {
        writeStandardError(writer.summary)
        throw fail(command, error)
    }
}

/// `--http ADDR:PORT` on the long-running commands.
struct HTTPOptions: ParsableArguments {
    @Option(name: .customLong("http"),
            help: ArgumentHelp("Serve Prometheus metrics (/metrics), a JSON status (/api/v1/status) and a live dashboard (/) on this address, e.g. 127.0.0.1:9100 or [::1]:9100 (port 0: the kernel picks one and the startup line says which). There is no authentication: bind to localhost or put a proxy in front.",
                               valueName: "addr:port"))
    var http: String?

    func validate() throws {
        if let http {
            do { _ = try TelemetryServer.parse(address: http) } catch { throw ValidationError(error.description) }
        }
    }

    /// Binds the endpoint (nil without --http); a bind failure names the address.
    func start(command: String) throws -> TelemetryEndpoint? {
        do {
            return try TelemetryEndpoint.start(command: command, address: http)
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
