import Abstraction
import FlowCore
import FlowExport
import FlowRecords
import PacketCore
import SFTapConfig

/// `flowtap abstract --output DIR`: capture files through the abstractor, each interface's event
/// stream written to `DIR/tcp/<if>`, `DIR/udp/<if>`, `DIR/icmp/<if>` (exactly the bytes a socket
/// reader would receive), one abstractor per shard over one set of files.
public struct AbstractToFiles {
    public var settings: SFTapSettings
    public var engineConfig: FlowEngineConfig
    public var directory: String
    public var shards: Int
    public var input = PipelineInput()
    /// The config's path, as errors about its rules name it.
    public var configName = "config"
    /// NetFlow/IPFIX collectors every flow is also exported to (one exporter session per shard).
    public var exports: [ExportDestination] = []

    /// Rules that do not compile, or an output that cannot be made, named after the config.
    public struct SetupError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(settings: SFTapSettings, engineConfig: FlowEngineConfig, directory: String, shards: Int) {
        self.settings = settings
        self.engineConfig = engineConfig
        self.directory = directory
        self.shards = max(1, shards)
    }

    /// What a run did, for the summary line.
    public struct Summary: Sendable {
        public var engine = FlowEngineCounters()
        public var abstractor = AbstractorCounters()
        public var shards = 1
        /// Packets and CPU seconds per worker thread (several shards only).
        public var workerSplit = ""
        public var packetsFilteredOut: UInt64 = 0
        /// One line per exporter (`--export`).
        public var exports: [String] = []
        /// Per stream file (relative path): events and bytes written.
        public var streams: [(path: String, events: UInt64, bytes: UInt64)] = []
        /// The first output error, when events could not be written.
        public var outputError: String?

        public var report: String {
            let e = engine, c = abstractor
            var text = "packets \(e.packets), flows \(e.flowsCreated); TCP flows classified \(c.tcpFlowsClassified), unclassified \(c.tcpFlowsUnclassified), given up \(c.tcpFlowsGivenUp); UDP datagrams without a rule \(c.udpDatagramsUnclassified); events \(c.events)\(shards > 1 ? "; \(shards) worker threads (\(workerSplit))" : "")"
            if packetsFilteredOut > 0 { text += "; packets the filter rejected \(packetsFilteredOut)" }
            text += "\n"
            for s in streams { text += "  \(s.path): \(s.events) events, \(s.bytes) bytes\n" }
            for line in exports { text += "  \(line)\n" }
            return text
        }
    }

    /// Builds the abstractors (compiling the config's rules once); throws when the rules do not compile
    /// or an output cannot be made.
    public func run(files: [String]) throws -> Summary {
        let fileSet = OutputFileSet(directory: directory)
        var outputs: [FileEventOutputs] = []
        var abstractors: [Abstractor<FileEventOutputs>] = []
        var records: [FlowRecordSink?] = []
        do {
            for _ in 0 ..< shards {
                outputs.append(FileEventOutputs(sharing: fileSet))
                abstractors.append(try Abstractor(settings: settings, outputs: outputs[outputs.count - 1], compiled: abstractors.first?.compiledRules))
                records.append(try AbstractSession.exportSink(exports))
            }
        } catch let error as UDPExporter.SetupError {
            throw error
        } catch {
            throw SetupError(description: "\(configName): \(error)")
        }
        let pipeline = Pipeline(config: engineConfig, sinks: zip(abstractors, records).map { FlowSinkPair($0, $1) })
        input.apply(to: pipeline)
        try pipeline.run(files: files)
        for r in records.compactMap({ $0 }) { r.flushExports() }
        for o in outputs { try o.close() }
        fileSet.closeAll()

        var summary = Summary()
        summary.shards = shards
        summary.workerSplit = pipeline.workerSplit
        summary.engine = pipeline.counters
        summary.packetsFilteredOut = pipeline.packetsFilteredOut
        summary.exports = records.compactMap { $0 }.flatMap { $0.exporters.map(\.summary) }
        summary.abstractor = abstractors[0].counters
        for a in abstractors.dropFirst() { summary.abstractor.add(a.counters) }
        for o in outputs {
            for (path, events, bytes) in o.summary {
                if let i = summary.streams.firstIndex(where: { $0.path == path }) {
                    summary.streams[i].events += events
                    summary.streams[i].bytes += bytes
                } else {
                    summary.streams.append((path, events, bytes))
                }
            }
        }
        if let failed = abstractors.first(where: { $0.firstError != nil }), let error = failed.firstError {
            summary.outputError = "\(error) (\(summary.abstractor.outputErrors) events not written)"
        }
        return summary
    }
}
