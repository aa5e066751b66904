import FlowCore
import Capture
import Filters
import PacketCore
import Wire

/// Reads capture files and fills `TrafficStats`; the loop behind `flowtap stats`.
public struct StatsRunner {
    public var verifyChecksums = false
    public var maxTalkers = 100_000
    public var progress: ProgressReporter?
    /// A tcpdump filter: only the packets it keeps are counted (those it rejects are counted apart).
    public var filter: BPFFilter?
    /// Stop after this many packets (that pass the filter).
    public var limit: UInt64?

    public init() {}

    public struct Result: Sendable {
        public var stats: TrafficStats
        public var files: [String]
        /// Files that ended inside a record, with the bytes left over.
        public var truncatedFiles: [(String, Int)]
        /// Packets the filter rejected.
        public var filteredOut: UInt64 = 0
    }

    /// Reads every file in order. Throws on the first unreadable file, after counting what came before.
    public func run(files: [String]) throws(CaptureError) -> Result {
        var stats = TrafficStats(maxTalkers: maxTalkers)
        var decoder = PacketDecoder(verifyChecksums: verifyChecksums)
        var truncated: [(String, Int)] = []
        var progress = self.progress
        var gate = PacketGate(filter: filter, limit: limit)
        for file in files {
            let reader = try CaptureFileReader(path: file)
            progress?.begin(name: file, totalBytes: reader.totalBytes)
            try readAll(reader, &decoder, &stats, &progress, &gate)
            if reader.truncatedTail > 0 { truncated.append((file, reader.truncatedTail)) }
            progress?.end()
            if gate.limitReached { break }
        }
        stats.anomalies = decoder.counters
        var result = Result(stats: stats, files: files, truncatedFiles: truncated)
        result.filteredOut = gate.rejected
        return result
    }

    private func readAll(
        _ reader: CaptureFileReader, _ decoder: inout PacketDecoder, _ stats: inout TrafficStats,
        _ progress: inout ProgressReporter?, _ gate: inout PacketGate
    ) throws(CaptureError) {
        var packet = DecodedPacket()
        while !gate.limitReached, let record = try reader.next() {
            do {
                guard try gate.admits(bytes: record.bytes, originalLength: record.originalLength, linkType: record.linkType) else { continue }
            } catch {
                throw CaptureError(source: reader.path, reason: error.description)
            }
            decoder.decode(record.bytes, originalLength: record.originalLength, linkType: record.linkType, into: &packet)
            stats.add(record, packet)
            if stats.packets & 0x3FFF == 0 { progress?.update(bytes: reader.bytesConsumed, packets: stats.packets) }
        }
    }
}
