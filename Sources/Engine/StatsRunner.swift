import Capture
import PacketCore
import Wire

/// Reads capture files and fills `TrafficStats`; the loop behind `flowtap stats`.
public struct StatsRunner {
    public var verifyChecksums = false
    public var maxTalkers = 100_000
    public var progress: ProgressReporter?

    public init() {}

    public struct Result: Sendable {
        public var stats: TrafficStats
        public var files: [String]
        /// Files that ended inside a record, with the bytes left over.
        public var truncatedFiles: [(String, Int)]
    }

    /// Reads every file in order. Throws on the first unreadable file, after counting what came before.
    public func run(files: [String]) throws(CaptureError) -> Result {
        var stats = TrafficStats(maxTalkers: maxTalkers)
        var decoder = PacketDecoder(verifyChecksums: verifyChecksums)
        var truncated: [(String, Int)] = []
        var progress = self.progress
        for file in files {
            let reader = try CaptureFileReader(path: file)
            progress?.begin(name: file, totalBytes: reader.totalBytes)
            try readAll(reader, &decoder, &stats, &progress)
            if reader.truncatedTail > 0 { truncated.append((file, reader.truncatedTail)) }
            progress?.end()
        }
        stats.anomalies = decoder.counters
        return Result(stats: stats, files: files, truncatedFiles: truncated)
    }

    private func readAll(
        _ reader: CaptureFileReader, _ decoder: inout PacketDecoder, _ stats: inout TrafficStats,
        _ progress: inout ProgressReporter?
    ) throws(CaptureError) {
        var packet = DecodedPacket()
        while let record = try reader.next() {
            decoder.decode(record.bytes, originalLength: record.originalLength, linkType: record.linkType, into: &packet)
            stats.add(record, packet)
            if stats.packets & 0x3FFF == 0 { progress?.update(bytes: reader.bytesConsumed, packets: stats.packets) }
        }
    }
}
