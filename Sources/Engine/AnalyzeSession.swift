import Capture
import FlowCore
import FlowDispatch
import FlowExport
import FlowRecords
import Outputs
import PacketCore
import Telemetry
import SFTapConfig
import Synchronization

/// `flowtap analyze`: capture files through one flow engine into the built-in analyzers
/// (`AnalyzeSink`), one JSON record per line to `output`. Flows are routed by their first bytes, or
/// with `settings` by the SF-TAP config's classes.
public struct AnalyzeSession {
    public var settings: SFTapSettings?
    /// The config's path, as the summary names it.
    public var configName: String?
    public var engineConfig: FlowEngineConfig
    public var bodies = false
    /// Flows the DNS, TLS and QUIC analyzers each track at once; more are counted and said in the summary.
    public var analyzerFlows = AnalyzeSink.defaultAnalyzerFlows
    public var input = PipelineInput()
    /// NetFlow/IPFIX collectors every flow is also exported to (as `flows --export` does).
    public var exports: [ExportDestination] = []
    /// Community ID seed written in records (every tool comparing IDs must use the same).
    public var communityIDSeed: UInt16 = 0

    /// `engineConfig` with `tcpFlowsFromAnyPacket` set, as `flows` sets it: a connection picked up mid-stream
    /// starts at its first packet (an ACK too) in both commands, so its records share one `flow_id`.
    public init(settings: SFTapSettings?, engineConfig: FlowEngineConfig) {
        self.settings = settings
        self.engineConfig = engineConfig
        self.engineConfig.tcpFlowsFromAnyPacket = true
    }

    /// Flow shards (threads); each flow's records are the same whatever the count.
    public var shards = 1
    /// Where `--http` reads counters and flows (nil: no endpoint).
    public var telemetry: TelemetryHub?

    /// Builds a sink (compiling the config's rules, when there is a config): throws when they do not compile.
    public func makeSink(lines: @escaping RecordLines) throws -> AnalyzeSink {
        let sink = if let settings {
            try AnalyzeSink(bodies: bodies, analyzerFlows: analyzerFlows, settings: settings, lines: lines)
        } else {
            AnalyzeSink(bodies: bodies, analyzerFlows: analyzerFlows, lines: lines)
        }
        sink.communityIDSeed = communityIDSeed
        return sink
    }

    /// Rules that do not compile, named after the config.
    public struct SetupError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Runs `files` through new sinks writing to `output`; returns the summary for standard error.
    public func run(files: [String], output: RecordWriter) throws -> String {
        try run(output: output) { pipeline throws(CaptureError) in try pipeline.run(files: files) }
    }

    /// Captures on `interface` until SIGINT/SIGTERM (or `-c`), one capture handle per shard in one kernel
    /// fanout group; every open flow's records are written when it stops.
    public func run(interface: String, filter: String?, output: RecordWriter) throws -> String {
        let live = try LiveShards(command: "analyze", interface: interface, filter: filter, shards: shards)
        return try run(output: output, input: interface, captures: live.captures) { pipeline throws(CaptureError) in try live.run(pipeline) }
    }

    /// One sink per shard (analyzers are per flow, so a shard's flows need no other); with several,
    /// each shard buffers its records and hands them to the writer under one lock (`ShardedRecordOutput`).
    private func run(output: RecordWriter, input: String = "file", captures: [LiveCapture] = [], _ body: (Pipeline<FlowSinkPair<AnalyzeSink, FlowRecordSink?>>) throws(CaptureError) -> Void) throws -> String {
        let sharded = shards > 1 ? ShardedRecordOutput(output: output, shards: shards) : nil
        var sinks: [AnalyzeSink] = []
        var records: [FlowRecordSink?] = []
        for shard in 0 ..< max(1, shards) {
            do {
                sinks.append(try makeSink(lines: sharded?.lines(for: shard) ?? { output.write($0) }))
            } catch {
                throw SetupError(description: "\(configName ?? "config"): \(error)")
            }
            // The analyzers and the flow records for export see the same flows, one engine feeding both.
            records.append(try AbstractSession.exportSink(exports))
        }
        let pipeline = Pipeline(config: engineConfig, sinks: zip(sinks, records).map { FlowSinkPair($0, $1) })
        self.input.apply(to: pipeline)
        if let sharded { pipeline.afterBatch = { sharded.flush(shard: $0) } }
        let published = telemetry.map { hub in
            PipelineTelemetry(hub: hub, pipeline: pipeline, input: input) { shard, engine, s in
                Self.addAnalyzerMetrics(engine.sink.first, to: &s)
                if shard < captures.count { s.add(capture: captures[shard].statistics, input: input) }
                if shard == 0 {
                    if let sharded { sharded.withLock { s.add(outputs: output.statistics) } } else { s.add(outputs: output.statistics) }
                }
            }
        }
        try body(pipeline)
        published?.publishAll()
        for r in records.compactMap({ $0 }) { r.flushExports() }
        for sink in sinks { sink.http.closeAll(time: 0) }
        sharded?.flushAll()
        output.flush()
        var report = Self.report(sinks: sinks, engine: pipeline.counters, filteredOut: pipeline.packetsFilteredOut,
                                 configName: settings == nil ? nil : configName ?? "config")
        if shards > 1 {
            report += "  \(shards) worker threads (\(pipeline.workerSplit))\n"
        }
        for r in records.compactMap({ $0 }) { for exporter in r.exporters { report += exporter.summary + "\n" } }
        return report
    }

    /// One shard's analyzers: flows each took, records, parse errors, and flows over a limit.
    static func addAnalyzerMetrics(_ sink: AnalyzeSink, to s: inout TelemetrySnapshot) {
        func u<T: BinaryInteger>(_ value: T) -> UInt64 { UInt64(truncatingIfNeeded: value) }
        let flows: [(String, UInt64)] = [("http", u(sink.counters.httpFlows)), ("tls", u(sink.counters.tlsFlows)), ("dns_tcp", u(sink.counters.dnsTCPFlows)), ("quic", u(sink.counters.quicFlows))]
        for (name, value) in flows {
            s.counter("flowtap_analyzer_flows_total", "Flows an analyzer took, by protocol.", value, labels: [MetricLabel(name: "protocol", value: name)])
        }
        s.counter("flowtap_analyzer_dns_datagrams_total", "UDP datagrams the DNS analyzer took.", u(sink.counters.dnsDatagrams))
        let records: [(String, UInt64)] = [("http", u(sink.http.counters.transactions)), ("dns", u(sink.dns.counters.messages)), ("quic", u(sink.quic.counters.records))]
        for (name, value) in records {
            s.counter("flowtap_analyzer_records_total", "Records (transactions, messages) the analyzers produced, by protocol.", value, labels: [MetricLabel(name: "protocol", value: name)])
        }
        let errors: [(String, UInt64)] = [("http", u(sink.http.counters.parseErrors)), ("dns", u(sink.dns.counters.errors)), ("quic", u(sink.quic.counters.errors))]
        for (name, value) in errors {
            s.counter("flowtap_analyzer_errors_total", "Messages an analyzer could not parse, by protocol.", value, labels: [MetricLabel(name: "protocol", value: name)])
        }
        let dropped: [(String, UInt64)] = [("dns", u(sink.dns.counters.droppedFlows)), ("tls", u(sink.tls.counters.droppedFlows)), ("quic", u(sink.quic.counters.droppedFlows))]
        for (name, value) in dropped {
            s.counter("flowtap_analyzer_flows_dropped_total", "Flows an analyzer left out because its flow limit was reached, by protocol.", value, labels: [MetricLabel(name: "protocol", value: name)])
        }
    }

    static func report(sinks: [AnalyzeSink], engine: FlowEngineCounters, filteredOut: UInt64, configName: String?) -> String {
        func sum<T: BinaryInteger>(_ value: (AnalyzeSink) -> T) -> Int { sinks.reduce(0) { $0 &+ Int(truncatingIfNeeded: value($1)) } }
        let first = sinks[0]
        var report = "packets \(engine.packets), flows \(engine.flowsCreated); HTTP flows \(sum { $0.counters.httpFlows }) (\(sum { $0.http.counters.transactions }) transactions, \(sum { $0.http.counters.parseErrors }) errors), TLS flows \(sum { $0.counters.tlsFlows }), DNS: \(sum { $0.counters.dnsDatagrams }) datagrams, \(sum { $0.counters.dnsTCPFlows }) TCP flows (\(sum { $0.dns.counters.messages }) messages, \(sum { $0.dns.counters.errors }) errors), QUIC flows \(sum { $0.counters.quicFlows }) (\(sum { $0.quic.counters.records }) records, \(sum { $0.quic.counters.decrypted }) Initial packets decrypted, \(sum { $0.quic.counters.errors }) errors)"
        if filteredOut > 0 { report += "; packets the filter rejected \(filteredOut)" }
        let connect = sum { $0.counters.connectTunnels }, socks = sum { $0.counters.socksFlows }
        if connect > 0 || socks > 0 {
            report += "; tunnels: CONNECT \(connect), SOCKS \(sum { $0.counters.socksTunnels }) of \(socks) handshakes (\(sum { $0.counters.socksFailed }) refused or malformed)"
        }
        // A limit that was hit is said, not only counted.
        let over = [("DNS", sum { $0.dns.counters.droppedFlows }, first.dns.maxFlows), ("TLS", sum { $0.tls.counters.droppedFlows }, first.tls.maxFlows),
                    ("QUIC", sum { $0.quic.counters.droppedFlows }, first.quic.maxFlows)].filter { $0.1 > 0 }
        for (name, dropped, limit) in over {
            report += "; \(name) flows over the analyzer's \(limit)-flow limit\(sinks.count > 1 ? " (per thread)" : ""), not analyzed: \(dropped)"
        }
        if let configName {
            report += "\n  by \(configName): TCP flows unclassified \(sum { $0.counters.unclassifiedTCPFlows }), given up \(sum { $0.counters.givenUpTCPFlows }); UDP datagrams without a rule \(sum { $0.counters.unclassifiedDatagrams })"
            var unanalyzed: [(String, UInt64, UInt64)] = []
            for sink in sinks {
                for (interface, flows, datagrams) in sink.unanalyzed {
                    if let i = unanalyzed.firstIndex(where: { $0.0 == interface }) {
                        unanalyzed[i].1 += flows
                        unanalyzed[i].2 += datagrams
                    } else {
                        unanalyzed.append((interface, flows, datagrams))
                    }
                }
            }
            for (interface, flows, datagrams) in unanalyzed {
                report += "\n  \(interface) (no analyzer): \(flows) TCP flows, \(datagrams) UDP datagrams"
            }
        } else {
            report += "; TCP flows not routed \(sum { $0.counters.unroutedFlows }), undecided \(sum { $0.counters.undecidedFlows })"
        }
        return report + "\n"
    }
}
