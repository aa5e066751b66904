import Capture
import PacketCore

/// Runs a `FlowEngine` over capture files in order, then flushes every open flow.
public struct FlowRunner {
    public var config: FlowEngineConfig
    public var progress: ProgressReporter?

    public init(config: FlowEngineConfig = FlowEngineConfig()) { self.config = config }

    /// Reads `files` through a new engine with `sink`; returns the engine for its counters and sink.
    public func run<Sink: FlowEventSink>(files: [String], sink: Sink) throws(CaptureError) -> FlowEngine<Sink> {
        let engine = FlowEngine(config: config, sink: sink)
        var progress = self.progress
        for file in files {
            let reader = try CaptureFileReader(path: file)
            progress?.begin(name: file, totalBytes: reader.totalBytes)
            var n: UInt64 = 0
            while let record = try reader.next() {
                engine.process(record)
                n &+= 1
                if n & 0x3FFF == 0 { progress?.update(bytes: reader.bytesConsumed, packets: n) }
            }
            progress?.end()
        }
        engine.finish()
        return engine
    }
}
