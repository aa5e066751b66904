#if canImport(Glibc)
import Glibc
#endif
import CaptureTools
import FlowCore
import Outputs
import PacketCore

/// `flowtap streams`: capture files through one flow engine; each finished flow becomes one JSON
/// line (`StreamCollector.Flow.summaryLine`) and, with a directory, one file per direction holding
/// the bytes an analyzer would read.
public struct StreamsSession {
    public var engineConfig: FlowEngineConfig
    public var directory: String?
    public var input = PipelineInput()

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `engineConfig` with `tcpFlowsFromAnyPacket` set, as `flows` and `analyze` set it: a connection picked up
    /// mid-stream starts at its first packet, so its record's `flow_id` is the one the other commands give it.
    /// Community ID seed written in records (every tool comparing IDs must use the same).
    public var communityIDSeed: UInt16 = 0

    public init(engineConfig: FlowEngineConfig, directory: String?) {
        self.engineConfig = engineConfig
        self.engineConfig.tcpFlowsFromAnyPacket = true
        self.directory = directory
    }

    /// Runs `files`, writing flow lines to `output`; returns the summary for standard error.
    public func run(files: [String], output: RecordWriter) throws -> String {
        if let directory, mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw Failure(description: "cannot create \(directory): \(errorText(errno))")
        }
        let directory = self.directory, seed = communityIDSeed
        var writeFailure: String?
        var writer = JSONWriter(capacity: 1024)
        let sink = StreamCollector { flow in
            flow.writeRecord(into: &writer, communityIDSeed: seed)
            writer.withLine { output.write($0) }
            guard let directory, writeFailure == nil else { return }
            for d in 0 ..< 2 where !flow.streams[d].isEmpty {
                let path = directory + "/" + flow.fileName(fromFirst: d == 0)
                if let failure = Self.write(flow.streams[d], to: path) { writeFailure = failure }
            }
        }
        let pipeline = Pipeline(config: engineConfig, sink: sink)
        input.apply(to: pipeline)
        try pipeline.run(files: files)
        output.flush()
        if let writeFailure { throw Failure(description: writeFailure) }
        let engine = pipeline.engine
        let c = engine.counters, t = engine.tcp.counters, f = engine.defragmenter.counters
        var report = """
            packets \(c.packets), flows \(c.flowsCreated) (normal \(c.destroyed[0]), reset \(c.destroyed[1]), timeout \(c.destroyed[2]), compromised \(c.destroyed[3])), \
            non-IP \(c.nonIP), fragments \(c.fragments) → datagrams \(c.reassembledDatagrams); \
            TCP: delivered \(t.deliveredBytes) B, retransmitted \(t.retransmittedBytes) B, overlap discarded \(t.overlapBytesDiscarded) B, \
            gaps \(t.gaps) (\(t.gapBytes) B), holes skipped at the direction cap \(t.directionCapSkips), under pool pressure \(t.pressureSkips), \
            memcap drops \(t.memcapDrops), mid-stream pickups \(t.midstreamPickups) (start moved back \(t.midstreamStartsMovedBack)), stray segments \(c.tcpWithoutFlow); \
            defragment: \(f)
            """
        if pipeline.packetsFilteredOut > 0 { report += "; packets the filter rejected \(pipeline.packetsFilteredOut)" }
        return report + "\n"
    }

    static func write(_ bytes: [UInt8], to path: String) -> String? {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return "cannot create \(path): \(errorText(errno))" }
        defer { close(fd) }
        if let failure = bytes.withUnsafeBytes({ writeAll(fd, $0) }) { return "cannot write \(path): \(errorText(failure))" }
        return nil
    }
}
