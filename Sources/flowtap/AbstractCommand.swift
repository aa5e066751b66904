import ArgumentParser
import Engine
import FlowCore
import PacketCore
import SFTapConfig
#if canImport(Glibc)
import Glibc
#endif

struct AbstractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abstract",
        abstract: "SF-TAP flow abstraction: classify flows by an SF-TAP config and serve each interface's event stream.",
        discussion: """
        Reads SF-TAP configuration files as they are (see docs/abstract.md for FlowTap's extra keys). \
        Here -c is the config, as SF-TAP users type it; the packet count is --count.

        Without -o, each interface is a UNIX socket under the config's home (home/tcp/<if>, home/udp/<if>, \
        home/icmp/<if>); every connected analyzer gets a copy of the stream, and one that falls behind loses \
        whole events (counted), never capture. Capture files (-r) are read, then their flows flushed, and the \
        command exits once readers have their data. With no -r and no -i it serves the injection sockets \
        home/pcap (cat a.pcap | nc -U /tmp/sf-tap/pcap) and home/loopback7 (flows written back by analyzers, one \
        hop deeper, up to global.hop_limit) until SIGINT or SIGTERM, which remove the sockets.

        With -o DIR, each interface's byte stream goes to DIR/tcp/<if>, DIR/udp/<if> or DIR/icmp/<if> (exactly \
        the bytes a socket reader would receive) and the command exits when the input ends.

        The config's rules are compiled by Vectorscan once and kept in ~/.cache/flowtap/vectorscan \
        (FLOWTAP_CACHE_DIR=DIR to keep them elsewhere, FLOWTAP_CACHE_DIR= to turn it off); a start with \
        the same rules loads them instead of compiling. A file is used only when it was made from exactly \
        these rules by this libhs; otherwise the rules are compiled and the file written anew.

        --threads N runs N flow shards; each flow's events are those of one engine, only the interleaving of \
        flows differs. Live capture then opens one handle per shard in a kernel PACKET_FANOUT group.

        Examples:
          flowtap abstract -c examples/flowtap.yaml -r capture.pcap -o out/
          flowtap abstract -c examples/flowtap.yaml -r big.pcap.gz -o out/ --threads 2
          flowtap abstract -c examples/flowtap.yaml -r capture.pcap -o out/ 'tcp port 80'
          flowtap abstract -c examples/flowtap.yaml -r capture.pcap --wait-readers
          sudo flowtap abstract -c fabs.yaml -i eth0 --threads 4
          flowtap abstract -c fabs.yaml      # serve home/pcap for injected captures
          sudo flowtap abstract -c fabs.yaml -i eth0 --http 127.0.0.1:9100   # metrics and dashboard
        """
    )

    @Option(name: [.customShort("c"), .customLong("config")], help: ArgumentHelp("SF-TAP YAML configuration.", valueName: "file"))
    var config: String

    @OptionGroup(title: "Input")
    var input: ReadOptions

    @Option(name: [.customShort("i"), .customLong("interface")], help: ArgumentHelp("Capture live from this interface (sockets mode).", valueName: "iface"))
    var interfaces: [String] = []

    @Option(name: [.customLong("count")], help: ArgumentHelp("Stop after this many packets (that pass the filter).", valueName: "n"))
    var count: UInt64?

    @OptionGroup(title: "Filter")
    var filter: FilterOptions

    @Option(name: [.customShort("o"), .customLong("output")],
            help: ArgumentHelp("Write interface streams as files under this directory and exit at the end of the input.", valueName: "dir"))
    var output: String?

    @Option(name: .customLong("out-dir"), help: .hidden)
    var outDir: String?

    @Option(help: ArgumentHelp("Flow shards (threads) for -r and -i; default: global.tcp_threads of the config, else one per CPU up to 8.", valueName: "n"))
    var threads: Int?

    @Option(name: .customLong("export"), help: ArgumentHelp("Also export every captured flow to a NetFlow/IPFIX collector: ipfix://HOST:PORT, netflow9://HOST:PORT or netflow5://HOST:PORT (see flowtap flows --help). Repeat for several.", valueName: "url"))
    var exports: [String] = []

    @Flag(help: "Before reading capture files, wait until every interface socket has a reader, so nothing is lost.")
    var waitReaders = false

    @Option(help: ArgumentHelp("Seconds between statistics lines on standard error in sockets mode (0: only at the end).", valueName: "seconds"))
    var statsInterval: Double = 10

    @OptionGroup(title: "Flow engine (each overrides the config's global value)")
    var engine: EngineOptions

    @OptionGroup(title: "Monitoring (sockets mode)")
    var monitoring: HTTPOptions

    @Flag(help: "Ignore unknown config keys with a warning, as SF-TAP does (by default they are errors naming the nearest known key).")
    var lenient = false

    @Flag(help: "Never show the progress line, even on a terminal.")
    var quiet = false

    var directory: String? { output ?? outDir }

    func validate() throws {
        if output != nil && outDir != nil { throw ValidationError("give the directory once, with -o DIR") }
        if directory != nil && input.files.isEmpty { throw ValidationError("-o DIR needs capture files to read: give -r FILE") }
        if directory != nil && !interfaces.isEmpty { throw ValidationError("-o DIR reads files only; drop -i, or drop -o to serve sockets") }
        if interfaces.count > 1 { throw ValidationError("one -i interface at a time in this version") }
        if statsInterval < 0 { throw ValidationError("--stats-interval must be 0 or more") }
        if let threads, threads < 1 || threads > 256 { throw ValidationError("--threads must be between 1 and 256") }
        if count == 0 { throw ValidationError("--count must be at least 1") }
        if monitoring.http != nil && directory != nil { throw ValidationError("--http serves sockets mode; -o DIR ends with the input (drop one of them)") }
    }

    func run() throws {
        let settings = try SFTapSettings.load(path: config, command: "abstract", lenient: lenient)
        let engineConfig = engine.applied(to: FlowEngineConfig(abstracting: settings))
        let shards = Self.shards(threads, settings)
        let exportDestinations = try parseExports(exports)
        var pipelineInput = PipelineInput()
        pipelineInput.filter = try filter.compiled()
        pipelineInput.packetLimit = count
        guard let directory else {
            var options = AbstractSession.Options()
            options.files = input.files
            options.interface = interfaces.first
            options.shards = shards
            options.waitReaders = waitReaders
            options.statsInterval = statsInterval
            options.input = pipelineInput
            options.filterExpression = filter.text
            options.exports = exportDestinations
            let endpoint = try monitoring.start(command: "abstract")
            defer { endpoint?.stop() }
            options.telemetry = endpoint?.hub
            do {
                try AbstractSession(settings: settings, engineConfig: engineConfig, options: options).run()
            } catch {
                throw fail("abstract", error)
            }
            return
        }
        var run = AbstractToFiles(settings: settings, engineConfig: engineConfig, directory: directory, shards: shards)
        pipelineInput.progress = quiet ? nil : ProgressReporter.forTerminal()
        run.input = pipelineInput
        run.exports = exportDestinations
        StopSignal.install()
        run.configName = config
        let summary: AbstractToFiles.Summary
        do {
            summary = try run.run(files: input.files)
        } catch {
            throw fail("abstract", error)
        }
        writeStandardError(summary.report)
        if let outputError = summary.outputError { throw fail("abstract", outputError) }
    }

    /// `--threads`, else `global.tcp_threads` (the original accepts up to 1024; one thread each is
    /// capped at 256, as `--threads` is), else one shard per online CPU up to 8.
    static func shards(_ threads: Int?, _ settings: SFTapSettings) -> Int {
        if let threads { return threads }
        if let configured = settings.global.tcpThreads { return min(configured, 256) }
        return min(8, max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }
}
