import ArgumentParser
import Capture
import Defragment
import Engine
import Interfaces
import PacketCore
import SFTapConfig
#if canImport(Glibc)
import Glibc
#endif

struct AbstractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abstract",
        abstract: "SF-TAP flow abstraction: classify flows by an SF-TAP config and write each interface's event stream.",
        discussion: """
        Reads SF-TAP configuration files as they are (see docs/abstract.md for
        FlowTap's extra keys).

        Without --out-dir, each interface is a UNIX socket under the config's
        home (home/tcp/<if>, home/udp/<if>, home/icmp/<if>); every connected
        analyzer gets a copy of the stream, and one that falls behind loses
        whole events (counted), never capture. Capture files (-r) are read,
        then their flows flushed, and the command exits once readers have their
        data; with no -r and no -i it serves the injection sockets home/pcap
        (cat a.pcap | nc -U /tmp/sf-tap/pcap) and home/loopback7 (flows written
        back by analyzers, one hop deeper, up to global.hop_limit) until SIGINT
        or SIGTERM, which remove the sockets.

        With --out-dir DIR, each interface's byte stream goes to DIR/tcp/<if>,
        DIR/udp/<if> or DIR/icmp/<if> (exactly the bytes a socket reader would
        receive) and the command exits when the input ends.

        --threads N runs N flow shards; each flow's events are those of one
        engine, only the interleaving of flows differs. Live capture then opens
        one handle per shard in a kernel PACKET_FANOUT group.

        Examples:
          flowtap abstract -c examples/flowtap.yaml -r capture.pcap --out-dir out/
          flowtap abstract -c examples/flowtap.yaml -r big.pcap --out-dir o/ --threads 2
          flowtap abstract -c examples/flowtap.yaml -r capture.pcap --wait-readers
          sudo flowtap abstract -c fabs.yaml -i eth0 --threads 4
          flowtap abstract -c fabs.yaml      # serve home/pcap for injected captures
        """
    )

    @Option(name: [.customShort("c"), .customLong("config")], help: ArgumentHelp("SF-TAP YAML configuration.", valueName: "file"))
    var config: String

    @Option(name: [.customShort("r"), .customLong("read")], help: ArgumentHelp("Capture file to read; repeat for several.", valueName: "file"))
    var files: [String] = []

    @Option(name: [.customShort("i"), .customLong("interface")], help: ArgumentHelp("Capture live from this interface (sockets mode).", valueName: "iface"))
    var interfaces: [String] = []

    @Option(help: ArgumentHelp("Write interface streams as files under this directory and exit at the end of the input.", valueName: "dir"))
    var outDir: String?

    @Option(help: ArgumentHelp("Flow shards (threads) for -r and -i; default: global.tcp_threads of the config, else one per CPU up to 8. Any positive number.", valueName: "n"))
    var threads: Int?

    @Flag(help: "Before reading capture files, wait until every interface socket has a reader, so nothing is lost.")
    var waitReaders = false

    @Option(help: "Seconds between statistics lines on standard error in sockets mode (0: only at the end).")
    var statsInterval: Double = 10

    @Flag(help: "Never show the progress line, even on a terminal.")
    var quiet = false

    func validate() throws {
        if outDir != nil && files.isEmpty { throw ValidationError("--out-dir needs capture files to read: give -r FILE") }
        if outDir != nil && !interfaces.isEmpty { throw ValidationError("--out-dir reads files only; drop -i, or drop --out-dir to serve sockets") }
        if interfaces.count > 1 { throw ValidationError("one -i interface at a time in this version") }
        if statsInterval < 0 { throw ValidationError("--stats-interval must be 0 or more") }
        if let threads, threads < 1 || threads > 256 { throw ValidationError("--threads must be between 1 and 256") }
    }

    func run() throws {
        let settings = try SFTapSettings.load(path: config, command: "abstract")
        let engineConfig = FlowEngineConfig(abstracting: settings)
        guard let outDir else {
            try serve(settings: settings, engineConfig: engineConfig)
            return
        }
        let shards = Self.shards(threads, settings)
        let files = OutputFileSet(directory: outDir)
        var outputs: [FileEventOutputs] = []
        var abstractors: [Abstractor<FileEventOutputs>] = []
        do {
            for _ in 0 ..< shards {
                outputs.append(FileEventOutputs(sharing: files))
                abstractors.append(try Abstractor(settings: settings, outputs: outputs[outputs.count - 1], compiled: abstractors.first?.compiledRules))
            }
        } catch {
            writeStandardError("flowtap abstract: \(config): \(error)\n")
            throw ExitCode(1)
        }
        let progress = quiet ? nil : ProgressReporter.forTerminal()
        do {
            var e = FlowEngineCounters()
            if shards == 1 {
                var runner = FlowRunner(config: engineConfig)
                runner.progress = progress
                e = try runner.run(files: self.files, sink: abstractors[0]).counters
            } else {
                let runner = ShardedRunner(config: engineConfig, sinks: abstractors)
                runner.progress = progress
                try runner.run(files: self.files)
                for engine in runner.engines { e.add(engine.counters) }
            }
            for o in outputs { try o.close() }
            files.closeAll()
            var c = abstractors[0].counters
            for a in abstractors.dropFirst() { c.add(a.counters) }
            var report = "packets \(e.packets), flows \(e.flowsCreated); TCP flows classified \(c.tcpFlowsClassified), unclassified \(c.tcpFlowsUnclassified), given up \(c.tcpFlowsGivenUp); UDP datagrams without a rule \(c.udpDatagramsUnclassified); events \(c.events)\(shards > 1 ? "; \(shards) worker threads" : "")\n"
            var totals: [(String, UInt64, UInt64)] = []
            for o in outputs {
                for (path, events, bytes) in o.summary {
                    if let i = totals.firstIndex(where: { $0.0 == path }) {
                        totals[i].1 += events
                        totals[i].2 += bytes
                    } else {
                        totals.append((path, events, bytes))
                    }
                }
            }
            for (path, events, bytes) in totals { report += "  \(path): \(events) events, \(bytes) bytes\n" }
            writeStandardError(report)
            if let failed = abstractors.first(where: { $0.firstError != nil }), let error = failed.firstError {
                writeStandardError("flowtap abstract: \(error) (\(c.outputErrors) events not written)\n")
                throw ExitCode(1)
            }
        } catch let error as ExitCode {
            throw error
        } catch {
            writeStandardError("flowtap abstract: \(error)\n")
            throw ExitCode(1)
        }
    }

    /// `--threads`, else `global.tcp_threads` (the original accepts up to 1024; one thread each is
    /// capped at 256, as `--threads` is), else one shard per online CPU up to 8.
    static func shards(_ threads: Int?, _ settings: SFTapSettings) -> Int {
        if let threads { return threads }
        if let configured = settings.global.tcpThreads { return min(configured, 256) }
        return min(8, max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    // MARK: Sockets mode

    final class Session {
        let server: SocketServer
        let outputs: SocketOutputs
        let abstractor: Abstractor<SocketOutputs>
        let engine: FlowEngine<Abstractor<SocketOutputs>>
        let injector: Loopback7Injector<SocketOutputs>
        /// Worker shards for -r / -i with more than one thread; their events reach the sockets through `channels`.
        var shards: ShardedRunner<Abstractor<EventChannel>>?
        var channels: [EventChannel] = []
        var parsers: [ConnectionID: CaptureFormatParser] = [:]
        var injectedPackets: UInt64 = 0
        var injectionErrors: UInt64 = 0

        init(settings: SFTapSettings, engineConfig: FlowEngineConfig) throws {
            server = SocketServer(configuration: .init(flushThresholdBytes: 64 << 10))
            outputs = SocketOutputs(home: settings.global.home, server: server)
            abstractor = try Abstractor(settings: settings, outputs: outputs)
            engine = FlowEngine(config: engineConfig, sink: abstractor)
            // Injected flows get their own abstractor (and slot space) over the same sockets.
            injector = Loopback7Injector(abstractor: try Abstractor(settings: settings, outputs: outputs),
                                         binary: settings.loopback7Format == .binary, hopLimit: settings.global.hopLimit,
                                         now: { Session.wallClock() })
        }

        static func wallClock() -> Timestamp {
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            return Timestamp(seconds: Int64(ts.tv_sec), nanosecondsPart: Int64(ts.tv_nsec))
        }

        /// Parses a pcap or pcapng stream from one injecting connection; packets keep their timestamps.
        func injected(_ id: ConnectionID, _ bytes: UnsafeRawBufferPointer) -> InputVerdict {
            var parser = parsers[id] ?? CaptureFormatParser()
            var offset = 0
            defer { parsers[id] = parser }
            while true {
                switch parser.next(bytes, offset: &offset) {
                case .packet(let record):
                    injectedPackets &+= 1
                    engine.process(record)
                case .needMore:
                    return .consumed(offset)
                case .failure(let at, let reason):
                    injectionErrors &+= 1
                    writeStandardError("flowtap abstract: pcap socket connection \(id): byte \(at): \(reason); closing it\n")
                    return .close
                }
            }
        }

        func report(final: Bool) -> String {
            var e = engine.counters
            var c = abstractor.counters
            var handOverDrops: UInt64 = 0
            if let shards, final {
                // Read only once the workers are done: their counters are theirs while they run.
                for engine in shards.engines { e.add(engine.counters) }
                for engine in shards.engines { c.add(engine.sink.counters) }
            }
            for channel in channels { handOverDrops &+= channel.eventsDropped }
            let l = injector.counters
            var text = "\(final ? "final" : "stats"): packets \(e.packets) (injected \(injectedPackets)), flows \(e.flowsCreated), classified \(c.tcpFlowsClassified), events \(c.events); loopback7: events \(l.events), dropped at the hop limit \(l.droppedHopLimit), malformed \(l.malformed)\n"
            if let shards {
                let perShard = final ? " (packets per worker: " + shards.engines.map { "\($0.counters.packets)" }.joined(separator: ", ") + ")" : " (their packets are counted at the end)"
                text += "  \(shards.engines.count) worker threads\(perShard); events dropped at the hand-over to the socket thread: \(handOverDrops)\n"
            }
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
            text += "  CPU \(String(format3: cpu)) s, peak RSS \(usage.ru_maxrss / 1024) MiB\n"
            for s in server.outputStatistics where s.eventsPublished > 0 || s.readers > 0 {
                text += "  \(s.path): readers \(s.readers), events \(s.eventsPublished), bytes \(s.bytesPublished), dropped \(s.eventsDropped) events / \(s.bytesDropped) bytes\n"
            }
            return text
        }
    }

    func serve(settings: SFTapSettings, engineConfig: FlowEngineConfig) throws {
        let session: Session
        do {
            session = try Session(settings: settings, engineConfig: engineConfig)
            if let pcap = settings.pcapInterface {
                _ = try session.server.addInput(path: settings.global.home + "/" + pcap,
                                                onData: { id, bytes in session.injected(id, bytes) },
                                                onClose: { id, _ in session.parsers[id] = nil })
            }
        } catch {
            writeStandardError("flowtap abstract: \(error)\n")
            throw ExitCode(1)
        }
        if let loopback = settings.loopback7Interface {
            do {
                _ = try session.server.addInput(path: settings.global.home + "/" + loopback, onData: { id, bytes in
                    switch session.injector.receive(connection: Int(truncatingIfNeeded: id.serial), bytes) {
                    case .consumed(let n): return .consumed(n)
                    case .close(let why):
                        writeStandardError("flowtap abstract: loopback7 connection \(id): \(why); closing it\n")
                        return .close
                    }
                }, onClose: { id, _ in session.injector.closed(connection: Int(truncatingIfNeeded: id.serial)) })
            } catch {
                writeStandardError("flowtap abstract: \(error)\n")
                throw ExitCode(1)
            }
        }
        StopSignal.install()
        defer {
            session.engine.finish()
            drain(session)
            writeStandardError(session.report(final: true))
            session.server.close()
        }
        var lastReport = BenchReadCommand.now()
        func tick() throws {
            try session.server.poll(timeoutMilliseconds: 0)
            if statsInterval > 0 && BenchReadCommand.now() - lastReport >= statsInterval {
                lastReport = BenchReadCommand.now()
                writeStandardError(session.report(final: false))
            }
        }
        do {
            if waitReaders {
                writeStandardError("flowtap abstract: waiting for a reader on each of \(session.outputs.relativePaths.count) interface sockets under \(settings.global.home)\n")
                while !StopSignal.requested && session.outputs.outputIDs.contains(where: { session.server.readerCount($0) == 0 }) {
                    try session.server.poll(timeoutMilliseconds: 100)
                }
            }
            let shardCount = Self.shards(threads, settings)
            if shardCount > 1 && (!files.isEmpty || !interfaces.isEmpty) {
                try runSharded(session, shards: shardCount, settings: settings, engineConfig: engineConfig, tick: tick)
                return
            }
            for file in files where !StopSignal.requested {
                let reader = try CaptureFileReader(path: file)
                var n: UInt64 = 0
                while !StopSignal.requested, let record = try reader.next() {
                    session.engine.process(record)
                    n &+= 1
                    if n & 0xFF == 0 { try tick() }
                }
            }
            if let name = interfaces.first {
                let capture = try LiveCapture(interface: name)
                while !StopSignal.requested {
                    if let record = try capture.next() { session.engine.process(record) }
                    try tick()
                }
            } else if files.isEmpty {
                writeStandardError("flowtap abstract: serving \(settings.global.home) (pcap injection: \(settings.pcapInterface ?? "none"), loopback7: \(settings.loopback7Interface ?? "none")); SIGINT or SIGTERM stops\n")
                while !StopSignal.requested {
                    try session.server.poll(timeoutMilliseconds: 200)
                    try tick()
                }
            }
        } catch {
            writeStandardError("flowtap abstract: \(error)\n")
            throw ExitCode(1)
        }
    }

    /// Capture files or a live interface through worker shards; this thread serves the sockets and
    /// publishes what the workers hand over. A live interface gets one capture handle per shard in
    /// one kernel fanout group.
    func runSharded(_ session: Session, shards: Int, settings: SFTapSettings, engineConfig: FlowEngineConfig, tick: () throws -> Void) throws {
        let live = !interfaces.isEmpty
        session.channels = (0 ..< shards).map { _ in EventChannel(target: session.outputs, waitWhenFull: !live) }
        var abstractors: [Abstractor<EventChannel>] = []
        for channel in session.channels {
            abstractors.append(try Abstractor(settings: settings, outputs: channel, compiled: abstractors.first?.compiledRules))
        }
        let runner = ShardedRunner(config: engineConfig, sinks: abstractors)
        session.shards = runner
        let channels = session.channels
        runner.afterBatch = { channels[$0].handOver() }
        runner.shouldStop = { StopSignal.requested }
        let run: BackgroundRun
        var captures: [LiveCapture] = []
        if let name = interfaces.first {
            let group = UInt16(truncatingIfNeeded: getpid())
            captures = try (0 ..< shards).map { _ throws(CaptureError) in try LiveCapture(interface: name) }
            for capture in captures { try capture.joinFanout(group: group) }
            writeStandardError("flowtap abstract: capturing on \(name) with \(shards) worker threads (packet fanout group \(group)); SIGINT or SIGTERM stops\n")
            let handles = captures
            run = BackgroundRun { try runner.run(live: handles) }
        } else {
            let files = self.files
            run = BackgroundRun { try runner.run(files: files) }
        }
        var broken = false
        while !run.isFinished {
            // Workers hand events over after each batch; 2 ms bounds how long they wait here.
            try session.server.poll(timeoutMilliseconds: 2)
            for channel in channels { channel.drain() }
            try tick()
            if StopSignal.requested && !broken {
                for capture in captures { capture.breakLoop() }
                broken = true
            }
        }
        try run.join()
        for channel in channels { channel.drain() }
    }

    /// Lets connected readers take what is queued for them (at most 10 s, or until a signal).
    func drain(_ session: Session) {
        let deadline = BenchReadCommand.now() + 10
        while BenchReadCommand.now() < deadline {
            session.server.flush()
            let pending = session.server.outputStatistics.contains { $0.readerDetails.contains { $0.pendingBytes > 0 } }
            if !pending { break }
            _ = try? session.server.poll(timeoutMilliseconds: 50)
        }
    }
}
