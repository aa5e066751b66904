import FlowCore
import Capture
import Filters
import PacketCore
#if canImport(Glibc)
import Glibc
#endif

/// Copies the packets a tcpdump expression keeps from capture files to a
/// pcap or pcapng file; the loop behind `flowtap filter`.
public struct FilterRunner {
    public var expression: String
    public var output: String
    /// Write pcapng instead of pcap (needed when inputs mix link types).
    public var pcapng: Bool
    public var progress: ProgressReporter?
    public var limit: UInt64?

    public struct Summary: Sendable {
        public var read: UInt64 = 0
        public var kept: UInt64 = 0
        public var truncatedFiles: [(String, Int)] = []
    }

    public enum Failure: Error, CustomStringConvertible {
        case capture(CaptureError)
        case filter(BPFFilter.CompileError)
        case mixedLinkTypes(first: LinkType, then: LinkType, file: String)
        case outputIsInput(String)

        public var description: String {
            switch self {
            case .capture(let e): e.description
            case .filter(let e): e.description
            case .mixedLinkTypes(let first, let then, let file):
                "\(file): link type \(then) after \(first); a pcap file holds one link type, so write pcapng instead (an output name ending in .pcapng)"
            case .outputIsInput(let file):
                "\(file): the output is also an input; writing it would destroy it before it is read, so choose another output name"
            }
        }
    }

    public init(expression: String, output: String, pcapng: Bool? = nil) {
        self.expression = expression
        self.output = output
        self.pcapng = pcapng ?? output.hasSuffix(".pcapng")
    }

    private enum Sink {
        case pcap(PcapWriter)
        case pcapng(PcapngWriter)
    }

    /// Filters `files` in order into `output`.
    public func run(files: [String]) throws(Failure) -> Summary {
        var summary = Summary()
        var filter: BPFFilter?
        var sink: Sink?
        var progress = self.progress
        var firstLinkType: LinkType?
        if let same = files.first(where: { isSameFile($0, output) }) { throw .outputIsInput(same) }
        do {
            if pcapng { sink = .pcapng(try PcapngWriter(path: output)) }
            for file in files {
                let reader = try CaptureFileReader(path: file)
                progress?.begin(name: file, totalBytes: reader.totalBytes)
                while let record = try reader.next() {
                    summary.read &+= 1
                    if filter == nil { filter = try compile(record.linkType) }
                    let keep: Bool
                    do { keep = try filter!.matches(bytes: record.bytes, originalLength: record.originalLength, linkType: record.linkType) }
                    catch { throw Failure.filter(error) }
                    if keep {
                        summary.kept &+= 1
                        switch sink {
                        case .pcapng(let w): try w.write(record)
                        case .pcap(let w):
                            guard w.linkType == record.linkType else {
                                throw Failure.mixedLinkTypes(first: w.linkType, then: record.linkType, file: file)
                            }
                            try w.write(record)
                        case nil:
                            let w = try PcapWriter(path: output, linkType: record.linkType)
                            try w.write(record)
                            sink = .pcap(w)
                        }
                    }
                    if summary.read & 0x3FFF == 0 { progress?.update(bytes: reader.bytesConsumed, packets: summary.read) }
                    if let limit, summary.kept >= limit { break }
                }
                if reader.truncatedTail > 0 { summary.truncatedFiles.append((file, reader.truncatedTail)) }
                progress?.end()
                if firstLinkType == nil { firstLinkType = reader.linkTypes.first }
                if filter == nil { filter = try compile(firstLinkType ?? .ethernet) }
                if let limit, summary.kept >= limit { break }
            }
            if sink == nil { sink = .pcap(try PcapWriter(path: output, linkType: firstLinkType ?? .ethernet)) }
            switch sink {
            case .pcap(let w): try w.flush()
            case .pcapng(let w): try w.flush()
            case nil: break
            }
        } catch let error as CaptureError {
            throw .capture(error)
        } catch let error as Failure {
            throw error
        } catch {
            throw .capture(CaptureError(source: output, reason: "\(error)"))
        }
        return summary
    }

    private func compile(_ linkType: LinkType) throws(Failure) -> BPFFilter {
        do { return try BPFFilter(expression: expression, linkType: linkType) } catch { throw .filter(error) }
    }

    /// Captures live from `interface` with the filter attached in the kernel, writing pcap to `output`,
    /// until `limit` packets are kept or `shouldStop` says so (reads time out every 100 ms). Returns
    /// the summary line.
    public func runLive(interface: String, snapLength: Int, shouldStop: () -> Bool) throws -> String {
        let capture = try LiveCapture(interface: interface, snapLength: snapLength, filter: expression)
        let writer = try PcapWriter(path: output, linkType: capture.linkType, snapLength: snapLength)
        var kept: UInt64 = 0
        while !shouldStop() {
            guard let record = try capture.next() else { continue }
            try writer.write(record)
            kept += 1
            if let limit, kept >= limit { break }
            if kept & 0xFF == 0 { try writer.flush() }
        }
        try writer.flush()
        var line = "\(kept) packets written"
        if let s = capture.statistics {
            line += "; \(s.received) received by filter, \(s.droppedByKernel) dropped by kernel, \(s.droppedByInterface) dropped by interface"
        }
        return line
    }
}
