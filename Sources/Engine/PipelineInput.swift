import Capture
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

    /// Reads `files` in order ("-" is standard input) for a command that works on frames without a
    /// pipeline: the filter, the count and the progress line applied, SIGINT/SIGTERM ending early.
    /// Returns the packets that passed the filter and those it rejected.
    public func forEachRecord(in files: [String], _ body: (PacketRecord) throws -> Void) throws -> (packets: UInt64, filtered: UInt64) {
        var progress = self.progress
        var packets: UInt64 = 0, filtered: UInt64 = 0
        read: for file in files {
            let reader = try CaptureFileReader(path: file)
            progress?.begin(name: file, totalBytes: reader.totalBytes)
            defer { progress?.end() }
            while let record = try reader.next() {
                if StopSignal.requested { break read }
                if let filter, try filter.verdict(bytes: record.bytes, originalLength: record.originalLength, linkType: record.linkType) == 0 {
                    filtered &+= 1
                    continue
                }
                packets &+= 1
                if let packetLimit, packets > packetLimit { break read }
                if packets & 0x3FF == 0 { progress?.update(bytes: reader.bytesConsumed, packets: packets) }
                try body(record)
            }
        }
        return (packets, filtered)
    }
}
