import Capture
import FlowCore
import Flows
import FlowRecords
import Outputs
import PacketCore
import Reports

/// `flowtap report`: one pass over capture files through one flow engine feeding the analyzers
/// (`analyze`'s records), the flow records (`flows`'s) and a per-second packet count; `ReportData`
/// reduces them to what the page draws.
public struct ReportSession {
    public var input = PipelineInput()

    public init() {}

    public func run(files: [String]) throws -> ReportData {
        let data = ReportData()
        data.capture.files = files
        let analyze = AnalyzeSession(settings: nil, engineConfig: FlowEngineConfig())
        let analyzers = try analyze.makeSink(lines: { data.add(record: $0) })
        let records = FlowRecordSink(emit: { data.add(record: $0) })
        let pipeline = Pipeline(config: analyze.engineConfig, sink: FlowSinkPair(FlowSinkPair(analyzers, records), TimelineSink(data: data)))
        input.apply(to: pipeline)
        try pipeline.run(files: files)
        analyzers.http.closeAll(time: 0)
        let c = pipeline.counters
        data.capture.packets = c.packets
        data.capture.bytes = c.bytes
        data.capture.fragments = c.fragments
        data.capture.flowsEvicted = c.evictions
        data.capture.notInFlows = [("not IP", c.nonIP), ("other transports", c.otherTransport), ("TCP without a connection", c.tcpWithoutFlow),
                                   ("undecodable", c.undecodable)]
        data.capture.anomalies = pipeline.engine.anomalies.nonZero.map { ($0.0.name, $0.1) }
        return data
    }
}

/// Packets and bytes of flow traffic over capture time, for the report's timeline.
struct TimelineSink: FlowEventSink {
    let data: ReportData

    mutating func flowCreated(_ flow: FlowView, time: Timestamp) {}
    mutating func flowData(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {}
    mutating func flowDestroyed(_ flow: FlowView, reason: DestroyReason, time: Timestamp) {}

    mutating func flowPacket(_ flow: FlowView, fromFirst: Bool, packet: FlowPacket, time: Timestamp) {
        data.timeline.add(nanoseconds: time.nanoseconds, bytes: packet.frameLength)
    }
}
