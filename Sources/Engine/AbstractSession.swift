#if canImport(Glibc)
import Glibc
#endif
import Abstraction
import Capture
import Sharding
import FlowCore
import FlowExport
import FlowRecords
import PacketCore
import SFTapConfig
import Telemetry
import UnixSockets

/// `flowtap abstract` in sockets mode: the interface sockets under the config's home, the pcap
/// injection socket (`home/pcap`), the loopback7 socket (`home/loopback7`), and packets from capture
/// files, a live interface, or only what is injected, until the input ends or SIGINT/SIGTERM.
///
/// One shard runs the engine on this thread between socket polls. With several shards the workers
/// hand whole events to this thread (`EventChannel`), which alone touches the sockets; injected
/// packets always go through this thread's own engine.
public final class AbstractSession {
    public struct Options {
        public var files: [String] = []
        public var interface: String?
        public var shards = 1
        /// Before reading files, wait until every interface socket has a reader.
        public var waitReaders = false
        /// Seconds between statistics lines on standard error (0: only at the end).
        public var statsInterval: Double = 10
        /// Filter and packet count (its progress line is not drawn: statistics lines take its place).
        public var input = PipelineInput()
        /// tcpdump's expression text, for live capture (attached in the kernel).
        public var filterExpression: String?
        /// NetFlow/IPFIX collectors every captured flow is also exported to (each worker thread exports as
        /// its own exporter session; injected flows are not exported).
        public var exports: [ExportDestination] = []
        /// Where `--http` reads counters and flows (nil: no endpoint).
        public var telemetry: TelemetryHub?

        public init() {}
    }

    public let settings: SFTapSettings
    public let options: Options
    let server: SocketServer
    let outputs: SocketOutputs
    let abstractor: Abstractor<SocketOutputs>
    let inline: Pipeline<FlowSinkPair<Abstractor<SocketOutputs>, FlowRecordSink?>>
    let injector: Loopback7Injector<SocketOutputs>
    /// Worker shards for -r / -i with more than one thread; their events reach the sockets through `channels`.
    var shards: Pipeline<FlowSinkPair<Abstractor<EventChannel>, FlowRecordSink?>>?
    /// The flow records each engine exports from (`--export`): the inline engine's, then each worker's.
    var exportRecords: [FlowRecordSink] = []
    var channels: [EventChannel] = []
    /// The one capture handle of live capture without worker shards.
    var inlineCapture: LiveCapture?
    var parsers: [ConnectionID: CaptureFormatParser] = [:]
    var injectedPackets: UInt64 = 0
    var injectionErrors: UInt64 = 0
    var lastReport = 0.0
    var telemetryClock = TelemetryClock(interval: 0.5)
    /// The inline engine's flow-table walk for talkers and top flows (while the status is read).
    var viewWalker = FlowViewWalker()
    var shardTelemetry: PipelineTelemetry<FlowSinkPair<Abstractor<EventChannel>, FlowRecordSink?>>?
    /// An error met between packets (a socket poll): ends the run and is thrown at its end.
    var failure: (any Error)?

    /// Compiles the rules and makes every socket; throws what cannot be made.
    public init(settings: SFTapSettings, engineConfig: FlowEngineConfig, options: Options) throws {
        self.settings = settings
        self.options = options
        server = SocketServer(configuration: .init(flushThresholdBytes: 64 << 10))
        outputs = SocketOutputs(home: settings.global.home, server: server)
        abstractor = try Abstractor(settings: settings, outputs: outputs)
        let inlineRecords = try Self.exportSink(options.exports)
        exportRecords = inlineRecords.map { [$0] } ?? []
        inline = Pipeline(config: engineConfig, sink: FlowSinkPair(abstractor, inlineRecords))
        // Injected flows get their own abstractor (and slot space) over the same sockets.
        injector = Loopback7Injector(abstractor: try Abstractor(settings: settings, outputs: outputs, compiled: abstractor.compiledRules),
                                     binary: settings.loopback7Format == .binary, hopLimit: settings.global.hopLimit,
                                     now: { Timestamp.wallClock() })
        if let pcap = settings.pcapInterface {
            _ = try server.addInput(path: settings.global.home + "/" + pcap,
                                    onData: { [unowned self] id, bytes in injected(id, bytes) },
                                    onClose: { [unowned self] id, _ in parsers[id] = nil })
        }
        if let loopback = settings.loopback7Interface {
            _ = try server.addInput(path: settings.global.home + "/" + loopback, onData: { [unowned self] id, bytes in
                switch injector.receive(connection: Int(truncatingIfNeeded: id.serial), bytes) {
                case .consumed(let n): return .consumed(n)
                case .close(let why):
                    writeStandardError("flowtap abstract: loopback7 connection \(id): \(why); closing it\n")
                    return .close
                }
            }, onClose: { [unowned self] id, _ in injector.closed(connection: Int(truncatingIfNeeded: id.serial)) })
        }
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
                inline.engine.process(record)
            case .needMore:
                return .consumed(offset)
            case .failure(let at, let reason):
                injectionErrors &+= 1
                writeStandardError("flowtap abstract: pcap socket connection \(id): byte \(at): \(reason); closing it\n")
                return .close
            }
        }
    }

    /// Serves until the input ends (files), or until SIGINT/SIGTERM (live, or injection only); then ends
    /// every flow, lets readers take what is queued (at most 10 s), prints the final statistics and
    /// removes the sockets.
    public func run() throws {
        StopSignal.install()
        defer {
            inline.engine.finish()
            for records in exportRecords { records.flushExports() }
            drain()
            publishTelemetry(final: true)
            shardTelemetry?.publishAll()
            writeStandardError(report(final: true))
            server.close()
        }
        lastReport = MonotonicClock.seconds()
        if options.waitReaders {
            writeStandardError("flowtap abstract: waiting for a reader on each of \(outputs.relativePaths.count) interface sockets under \(settings.global.home)\n")
            while !StopSignal.requested && outputs.outputIDs.contains(where: { server.readerCount($0) == 0 }) {
                try server.poll(timeoutMilliseconds: 100)
            }
        }
        let packetInput = !options.files.isEmpty || options.interface != nil
        if options.shards > 1 && packetInput {
            try runSharded()
        } else if packetInput {
            inline.filter = options.input.filter
            inline.packetLimit = options.input.packetLimit
            inline.shouldStop = { [unowned self] in StopSignal.requested || failure != nil }
            inline.onTick = { [unowned self] in tick() }
            if let name = options.interface {
                let capture = try LiveCapture(interface: name, filter: options.filterExpression, immediate: true)
                inlineCapture = capture
                writeStandardError("flowtap abstract: capturing on \(name); SIGINT or SIGTERM stops\n")
                try inline.run(live: capture)
            } else {
                try inline.run(files: options.files)
            }
        } else {
            writeStandardError("flowtap abstract: serving \(settings.global.home) (pcap injection: \(settings.pcapInterface ?? "none"), loopback7: \(settings.loopback7Interface ?? "none")); SIGINT or SIGTERM stops\n")
            while !StopSignal.requested && failure == nil {
                try server.poll(timeoutMilliseconds: 200)
                tick()
            }
        }
        if let failure { throw failure }
    }

    /// Between packets: lets the sockets move, and prints statistics when due.
    func tick() {
        do {
            try server.poll(timeoutMilliseconds: 0)
        } catch {
            if failure == nil { failure = error }
        }
        if options.statsInterval > 0 && MonotonicClock.seconds() - lastReport >= options.statsInterval {
            lastReport = MonotonicClock.seconds()
            writeStandardError(report(final: false))
        }
        if options.telemetry != nil && telemetryClock.isDue() { publishTelemetry() }
    }

    /// This thread's part of the `--http` snapshot: the inline engine (injected packets, or every
    /// packet with one thread), the sockets, injection and loopback7. Worker shards publish their own.
    func publishTelemetry(final: Bool = false) {
        guard let hub = options.telemetry else { return }
        let input = options.interface ?? (options.files.isEmpty ? "injected" : "file")
        var s = FlowTelemetry.snapshot(engine: inline.engine, input: input, views: final || hub.viewsWanted, walker: &viewWalker)
        Self.add(abstractor: abstractor.counters, to: &s)
        let l = injector.counters
        s.counter("flowtap_injected_packets_total", "Packets read from the pcap injection socket.", injectedPackets)
        s.counter("flowtap_injection_errors_total", "Injection connections closed for a malformed pcap stream.", injectionErrors)
        s.counter("flowtap_loopback7_events_total", "Events injected through the loopback7 socket.", l.events)
        s.counter("flowtap_loopback7_dropped_total", "Loopback7 events dropped, by reason.", l.droppedHopLimit, ["reason": "hop_limit"])
        s.counter("flowtap_loopback7_dropped_total", "Loopback7 events dropped, by reason.", l.droppedFlowLimit, ["reason": "flow_limit"])
        s.counter("flowtap_loopback7_dropped_total", "Loopback7 events dropped, by reason.", l.malformed, ["reason": "malformed"])
        for channel in channels.indices {
            s.counter("flowtap_events_dropped_total", "Events dropped, by output and reason.", self.channels[channel].eventsDropped,
                      labels: [MetricLabel(name: "output", value: "worker \(channel)"), MetricLabel(name: "reason", value: "handover_full")])
        }
        var table = StatusTable(title: "SF-TAP interface sockets under \(settings.global.home)", columns: ["socket", "readers", "events", "bytes", "dropped events", "dropped bytes"])
        let home = settings.global.home.hasSuffix("/") ? settings.global.home : settings.global.home + "/"
        for o in server.outputStatistics {
            // Sockets by their name under the home (tcp/http), as the config names them.
            let name = o.path.hasPrefix(home) ? String(o.path.dropFirst(home.count)) : o.path
            let label = [MetricLabel(name: "output", value: name)]
            s.gauge("flowtap_socket_readers", "Readers connected to an interface socket.", Double(o.readers), labels: label)
            s.counter("flowtap_events_total", "Events written to an interface socket.", o.eventsPublished, labels: label)
            s.counter("flowtap_event_bytes_total", "Bytes of events written to an interface socket.", o.bytesPublished, labels: label)
            s.counter("flowtap_events_dropped_total", "Events dropped, by output and reason.", o.eventsDropped, labels: label + [MetricLabel(name: "reason", value: "slow_reader")])
            table.rows.append([name, "\(o.readers)", "\(o.eventsPublished)", "\(o.bytesPublished)", "\(o.eventsDropped)", "\(o.bytesDropped)"])
        }
        s.tables.append(table)
        if shards == nil, let capture = inlineCapture { s.add(capture: capture.statistics, input: input) }
        hub.publish(s, part: 0)
    }

    static func add(abstractor c: AbstractorCounters, to s: inout TelemetrySnapshot) {
        s.counter("flowtap_abstract_events_total", "Events the abstractor made (CREATED, DATA, DESTROYED).", c.events)
        s.counter("flowtap_abstract_tcp_flows_total", "TCP flows by classification outcome.", c.tcpFlowsClassified, ["result": "classified"])
        s.counter("flowtap_abstract_tcp_flows_total", "TCP flows by classification outcome.", c.tcpFlowsUnclassified, ["result": "unclassified"])
        s.counter("flowtap_abstract_tcp_flows_total", "TCP flows by classification outcome.", c.tcpFlowsGivenUp, ["result": "given_up"])
        s.counter("flowtap_abstract_udp_datagrams_unclassified_total", "UDP datagrams no rule matched.", c.udpDatagramsUnclassified)
        s.counter("flowtap_abstract_output_errors_total", "Events an output refused.", c.outputErrors)
    }

    /// Capture files or a live interface through worker shards; this thread serves the sockets and
    /// publishes what the workers hand over. A live interface gets one capture handle per shard in
    /// one kernel fanout group.
    func runSharded() throws {
        let live = options.interface != nil
        channels = (0 ..< options.shards).map { _ in EventChannel(target: outputs, waitWhenFull: !live) }
        var sinks: [FlowSinkPair<Abstractor<EventChannel>, FlowRecordSink?>] = []
        for channel in channels {
            let records = try Self.exportSink(options.exports)
            if let records { exportRecords.append(records) }
            sinks.append(FlowSinkPair(try Abstractor(settings: settings, outputs: channel, compiled: abstractor.compiledRules), records))
        }
        let runner = Pipeline(config: inline.config, sinks: sinks)
        shards = runner
        let channels = self.channels
        runner.afterBatch = { channels[$0].handOver() }
        runner.shouldStop = { StopSignal.requested }
        runner.filter = options.input.filter
        runner.packetLimit = options.input.packetLimit
        let run: BackgroundRun
        var captures: [LiveCapture] = []
        if let name = options.interface {
            captures = try LiveShards(command: "abstract", interface: name, filter: options.filterExpression, shards: options.shards).captures
        }
        if let hub = options.telemetry {
            let handles = captures, input = options.interface ?? "file"
            shardTelemetry = PipelineTelemetry(hub: hub, pipeline: runner, input: input) { shard, engine, s in
                Self.add(abstractor: engine.sink.first.counters, to: &s)
                if shard < handles.count { s.add(capture: handles[shard].statistics, input: input) }
            }
        }
        if options.interface != nil {
            let handles = captures
            run = BackgroundRun { try runner.run(live: handles) }
        } else {
            let files = options.files
            run = BackgroundRun { try runner.run(files: files) }
        }
        var broken = false
        while !run.isFinished {
            // Workers hand events over after each batch; 2 ms bounds how long they wait here.
            try server.poll(timeoutMilliseconds: 2)
            for channel in channels { channel.drain() }
            tick()
            if (StopSignal.requested || failure != nil) && !broken {
                for capture in captures { capture.breakLoop() }
                broken = true
            }
        }
        try run.join()
        for channel in channels { channel.drain() }
    }

    /// Flow records exporting to `exports`, or nil when there are none.
    static func exportSink(_ exports: [ExportDestination]) throws -> FlowRecordSink? {
        guard !exports.isEmpty else { return nil }
        let records = FlowRecordSink(emit: nil)
        records.exporters = try exports.map { destination throws(UDPExporter.SetupError) in try UDPExporter(destination: destination) }
        return records
    }

    /// Lets connected readers take what is queued for them (at most 10 s, or until a signal).
    func drain() {
        let deadline = MonotonicClock.seconds() + 10
        while MonotonicClock.seconds() < deadline {
            server.flush()
            let pending = server.outputStatistics.contains { $0.readerDetails.contains { $0.pendingBytes > 0 } }
            if !pending { break }
            _ = try? server.poll(timeoutMilliseconds: 50)
        }
    }

    /// A statistics line (and per-socket lines); worker shards' counters are read only at the end.
    public func report(final: Bool) -> String {
        var e = inline.engine.counters
        var c = abstractor.counters
        var handOverDrops: UInt64 = 0
        if let shards, final {
            // Read only once the workers are done: their counters are theirs while they run.
            e.add(shards.counters)
            for engine in shards.engines { c.add(engine.sink.first.counters) }
        }
        for channel in channels { handOverDrops &+= channel.eventsDropped }
        let l = injector.counters
        var text = "\(final ? "final" : "stats"): packets \(e.packets) (injected \(injectedPackets)), flows \(e.flowsCreated), classified \(c.tcpFlowsClassified), events \(c.events); loopback7: events \(l.events), dropped at the hop limit \(l.droppedHopLimit), malformed \(l.malformed)\n"
        if let shards {
            let perShard = final ? " (packets per worker: " + shards.engines.map { "\($0.counters.packets)" }.joined(separator: ", ") + ")" : " (their packets are counted at the end)"
            text += "  \(shards.engines.count) worker threads\(perShard); events dropped at the hand-over to the socket thread: \(handOverDrops)\n"
        }
        let filtered = inline.packetsFilteredOut + (shards?.packetsFilteredOut ?? 0)
        if filtered > 0 { text += "  packets the filter rejected: \(filtered)\n" }
        if final { for records in exportRecords { for exporter in records.exporters { text += "  \(exporter.summary)\n" } } }
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
