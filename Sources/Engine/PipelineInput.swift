import Filters
import FlowCore
import PacketCore

/// How a pipeline takes its packets, the same for every command: the progress line, a tcpdump
/// filter run before any shard, and a packet count.
public struct PipelineInput {
    public var progress: ProgressReporter?
    public var filter: BPFFilter?
    /// Stop after this many packets have passed the filter.
    public var packetLimit: UInt64?

    public init() {}

    /// Sets `pipeline` to read this way; SIGINT and SIGTERM end its input early (flows are still ended).
    public func apply<Sink: FlowEventSink>(to pipeline: Pipeline<Sink>) {
        pipeline.progress = progress
        pipeline.filter = filter
        pipeline.packetLimit = packetLimit
        pipeline.shouldStop = { StopSignal.requested }
    }
}
