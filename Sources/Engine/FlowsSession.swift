import Capture
import Synchronization
import FlowCore
import FlowExport
import FlowRecords
import Outputs
import PacketCore
import Telemetry

/// `flowtap flows`: capture files through one flow engine into `FlowRecordSink`, one JSON flow record
/// per line to `output`, written as each flow leaves the flow table.
public struct FlowsSession {
    public var engineConfig: FlowEngineConfig
    public var input = PipelineInput()
    public var communityIDSeed: UInt16 = 0
    /// NetFlow/IPFIX collectors to export every flow to.
    public var exports: [ExportDestination] = []
    /// Seconds of packet time between interval records of a long flow (0: none).
    public var intervalSeconds: Double = 0
    /// Whether JSON records are written (off when only exporting).
    public var writesRecords = true
    /// Flow shards (threads); each flow's record is the same whatever the count.
    public var shards = 1
    /// Where `--http` reads counters and flows (nil: no endpoint).
    public var telemetry: TelemetryHub?

    /// `engineConfig` with `tcpFlowsFromAnyPacket` set: a record counts every packet of its connection.
    public init(engineConfig: FlowEngineConfig) {
        self.engineConfig = engineConfig
        self.engineConfig.tcpFlowsFromAnyPacket = true
    }

    /// Runs `files`; returns the summary for standard error.
    public func run(files: [String], output: RecordWriter) throws -> String {
        try run(output: output) { pipeline throws(CaptureError) in try pipeline.run(files: files) }
    }

    /// Captures on `interface` until SIGINT/SIGTERM (or `-c`), with one capture handle per shard in one
    /// kernel fanout group; every open flow is written when it stops.
    public func run(interface: String, filter: String?, output: RecordWriter) throws -> String {
        let live = try LiveShards(command: "flows", interface: interface, filter: filter, shards: shards)
        return try run(output: output, input: interface, captures: live.captures) { pipeline throws(CaptureError) in try live.run(pipeline) }
    }

    private func run(output: RecordWriter, input: String = "file", captures: [LiveCapture] = [], _ body: (Pipeline<FlowRecordSink>) throws(CaptureError) -> Void) throws -> String {
        // Shards write records from their own threads, each through a buffer of its own (`ShardedRecordOutput`).
        let sharded = shards > 1 && writesRecords ? ShardedRecordOutput(output: output, shards: shards) : nil
        var sinks: [FlowRecordSink] = []
        for shard in 0 ..< shards {
            let sink = FlowRecordSink(emit: writesRecords ? sharded?.lines(for: shard) ?? { output.write($0) } : nil)
            sink.communityIDSeed = communityIDSeed
            sink.interval = Int64(intervalSeconds * 1e9)
            sink.exporters = try exports.map { destination throws(UDPExporter.SetupError) in try UDPExporter(destination: destination) }
            sinks.append(sink)
        }
        let pipeline = Pipeline(config: engineConfig, sinks: sinks)
        self.input.apply(to: pipeline)
        if let sharded { pipeline.afterBatch = { sharded.flush(shard: $0) } }
        let published = telemetry.map { hub in
            PipelineTelemetry(hub: hub, pipeline: pipeline, input: input) { shard, engine, s in
                s.counter("flowtap_flow_records_total", "Flow records written (interval records included).", engine.sink.counters.records &+ engine.sink.counters.intervalRecords)
                if shard < captures.count { s.add(capture: captures[shard].statistics, input: input) }
                if shard == 0 {
                    if let sharded { sharded.withLock { s.add(outputs: output.statistics) } } else { s.add(outputs: output.statistics) }
                }
            }
        }
        try body(pipeline)
        published?.publishAll()
        for sink in sinks { sink.flushExports() }
        sharded?.flushAll()
        output.flush()
        let c = pipeline.counters
        let records = sinks.reduce(0) { $0 + $1.counters.records }, intervals = sinks.reduce(0) { $0 + $1.counters.intervalRecords }
        var report = "packets \(c.packets), flows \(c.flowsCreated), flow records \(records)\(intervals > 0 ? " and \(intervals) interval records" : ""); "
            + "not in any flow: non-IP \(c.nonIP), other transports \(c.otherTransport), TCP without a flow \(c.tcpWithoutFlow), undecodable \(c.undecodable)"
        if shards > 1 { report += "; \(shards) worker threads (\(pipeline.workerSplit))" }
        if c.evictions > 0 { report += "; flows evicted at the \(engineConfig.table.maxFlows)-flow limit \(c.evictions) (reason \"forced\")" }
        if pipeline.packetsFilteredOut > 0 { report += "; packets the filter rejected \(pipeline.packetsFilteredOut)" }
        for sink in sinks { for exporter in sink.exporters { report += "\n" + exporter.summary } }
        return report + "\n"
    }
}
