import FlowCore
import FlowDispatch
import FlowExport
import FlowRecords
import Outputs
import PacketCore
import SFTapConfig

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

    public init(settings: SFTapSettings?, engineConfig: FlowEngineConfig) {
        self.settings = settings
        self.engineConfig = engineConfig
    }

    /// Builds the sink (compiling the config's rules, when there is a config): throws when they do not compile.
    public func makeSink(output: RecordWriter) throws -> AnalyzeSink {
        let emit: (String) -> Void = { output.write($0) }
        if let settings { return try AnalyzeSink(bodies: bodies, analyzerFlows: analyzerFlows, settings: settings, emit: emit) }
        return AnalyzeSink(bodies: bodies, analyzerFlows: analyzerFlows, emit: emit)
    }

    /// Rules that do not compile, named after the config.
    public struct SetupError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Runs `files` through a new sink writing to `output`; returns the summary for standard error.
    public func run(files: [String], output: RecordWriter) throws -> String {
        let sink: AnalyzeSink
        do {
            sink = try makeSink(output: output)
        } catch {
            throw SetupError(description: "\(configName ?? "config"): \(error)")
        }
        return try run(files: files, sink: sink, output: output)
    }

    /// Runs `files` through `sink`; returns the summary for standard error.
    public func run(files: [String], sink: AnalyzeSink, output: RecordWriter) throws -> String {
        guard !exports.isEmpty else {
            let (counters, filtered) = try run(files: files, Pipeline(config: engineConfig, sink: sink))
            return finish(sink: sink, output: output, counters: counters, filtered: filtered)
        }
        // The analyzers and flow records for export see the same flows, one engine feeding both.
        let records = FlowRecordSink(emit: nil)
        records.exporters = try exports.map { destination throws(UDPExporter.SetupError) in try UDPExporter(destination: destination) }
        let (counters, filtered) = try run(files: files, Pipeline(config: engineConfig, sink: FlowSinkPair(sink, records)))
        records.flushExports()
        return finish(sink: sink, output: output, counters: counters, filtered: filtered)
            + records.exporters.map { $0.summary + "\n" }.joined()
    }

    private func run<Sink: FlowEventSink>(files: [String], _ pipeline: Pipeline<Sink>) throws -> (FlowEngineCounters, UInt64) {
        input.apply(to: pipeline)
        try pipeline.run(files: files)
        return (pipeline.counters, pipeline.packetsFilteredOut)
    }

    private func finish(sink: AnalyzeSink, output: RecordWriter, counters: FlowEngineCounters, filtered: UInt64) -> String {
        sink.http.closeAll(time: 0)
        output.flush()
        return Self.report(sink: sink, engine: counters, filteredOut: filtered, configName: settings == nil ? nil : configName ?? "config")
    }

    static func report(sink: AnalyzeSink, engine: FlowEngineCounters, filteredOut: UInt64, configName: String?) -> String {
        let c = sink.counters
        var report = "packets \(engine.packets), flows \(engine.flowsCreated); HTTP flows \(c.httpFlows) (\(sink.http.counters.transactions) transactions, \(sink.http.counters.parseErrors) errors), TLS flows \(c.tlsFlows), DNS: \(c.dnsDatagrams) datagrams, \(c.dnsTCPFlows) TCP flows (\(sink.dns.counters.messages) messages, \(sink.dns.counters.errors) errors), QUIC flows \(c.quicFlows) (\(sink.quic.counters.records) records, \(sink.quic.counters.decrypted) Initial packets decrypted, \(sink.quic.counters.errors) errors)"
        if filteredOut > 0 { report += "; packets the filter rejected \(filteredOut)" }
        if c.connectTunnels > 0 || c.socksFlows > 0 {
            report += "; tunnels: CONNECT \(c.connectTunnels), SOCKS \(c.socksTunnels) of \(c.socksFlows) handshakes (\(c.socksFailed) refused or malformed)"
        }
        // A limit that was hit is said, not only counted.
        let over = [("DNS", sink.dns.counters.droppedFlows, sink.dns.maxFlows), ("TLS", sink.tls.counters.droppedFlows, sink.tls.maxFlows),
                    ("QUIC", sink.quic.counters.droppedFlows, sink.quic.maxFlows)].filter { $0.1 > 0 }
        for (name, dropped, limit) in over {
            report += "; \(name) flows over the analyzer's \(limit)-flow limit, not analyzed: \(dropped)"
        }
        if let configName {
            report += "\n  by \(configName): TCP flows unclassified \(c.unclassifiedTCPFlows), given up \(c.givenUpTCPFlows); UDP datagrams without a rule \(c.unclassifiedDatagrams)"
            for (interface, flows, datagrams) in sink.unanalyzed {
                report += "\n  \(interface) (no analyzer): \(flows) TCP flows, \(datagrams) UDP datagrams"
            }
        } else {
            report += "; TCP flows not routed \(c.unroutedFlows), undecided \(c.undecidedFlows)"
        }
        return report + "\n"
    }
}
