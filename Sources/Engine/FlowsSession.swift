import FlowCore
import FlowExport
import FlowRecords
import Outputs
import PacketCore

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

    /// `engineConfig` with `tcpFlowsFromAnyPacket` set: a record counts every packet of its connection.
    public init(engineConfig: FlowEngineConfig) {
        self.engineConfig = engineConfig
        self.engineConfig.tcpFlowsFromAnyPacket = true
    }

    /// Runs `files`; returns the summary for standard error.
    public func run(files: [String], output: RecordWriter) throws -> String {
        let sink = FlowRecordSink(emit: writesRecords ? { output.write($0) } : nil)
        sink.communityIDSeed = communityIDSeed
        sink.interval = Int64(intervalSeconds * 1e9)
        sink.exporters = try exports.map { destination throws(UDPExporter.SetupError) in try UDPExporter(destination: destination) }
        let pipeline = Pipeline(config: engineConfig, sink: sink)
        input.apply(to: pipeline)
        try pipeline.run(files: files)
        sink.flushExports()
        output.flush()
        let c = pipeline.counters
        var report = "packets \(c.packets), flows \(c.flowsCreated), flow records \(sink.counters.records)\(sink.counters.intervalRecords > 0 ? " and \(sink.counters.intervalRecords) interval records" : ""); "
            + "not in any flow: non-IP \(c.nonIP), other transports \(c.otherTransport), TCP without a flow \(c.tcpWithoutFlow), undecodable \(c.undecodable)"
        if c.evictions > 0 { report += "; flows evicted at the \(engineConfig.table.maxFlows)-flow limit \(c.evictions) (reason \"forced\")" }
        if pipeline.packetsFilteredOut > 0 { report += "; packets the filter rejected \(pipeline.packetsFilteredOut)" }
        for exporter in sink.exporters { report += "\n" + exporter.summary }
        return report + "\n"
    }
}
