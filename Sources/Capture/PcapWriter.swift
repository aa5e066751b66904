#if canImport(Glibc)
import Glibc
#endif
import PacketCore

/// Writes classic pcap (version 2.4, host byte order), buffered.
public final class PcapWriter {
    public let path: String
    public let linkType: LinkType
    public let nanoseconds: Bool
    private let fd: Int32
    private var buffer: [UInt8] = []
    private let flushThreshold = 1 << 20
    public private(set) var packetsWritten = 0

    /// Creates (truncating) `path`; "-" writes to standard output.
    public init(path: String, linkType: LinkType, snapLength: Int = 262_144, nanoseconds: Bool = false) throws(CaptureError) {
        self.path = path
        self.linkType = linkType
        self.nanoseconds = nanoseconds
        if path == "-" {
            fd = 1
        } else {
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw CaptureError(source: path, reason: "cannot create: \(String(cString: strerror(errno)))") }
        }
        buffer.reserveCapacity(flushThreshold + 65_536)
        append32(nanoseconds ? 0xA1B2_3C4D : 0xA1B2_C3D4)
        append16(2)
        append16(4)
        append32(0) // thiszone
        append32(0) // sigfigs
        append32(UInt32(truncatingIfNeeded: snapLength))
        append32(linkType.rawValue)
    }

    deinit {
        try? flush()
        if fd > 1 { close(fd) }
    }

    private func append32(_ v: UInt32) { withUnsafeBytes(of: v) { buffer.append(contentsOf: $0) } }
    private func append16(_ v: UInt16) { withUnsafeBytes(of: v) { buffer.append(contentsOf: $0) } }

    public func write(timestamp: Timestamp, originalLength: Int, bytes: UnsafeRawBufferPointer) throws(CaptureError) {
        appendRecordHeader(timestamp, originalLength, bytes.count)
        buffer.append(contentsOf: bytes)
        if buffer.count >= flushThreshold { try flush() }
    }

    public func write(_ record: PacketRecord) throws(CaptureError) {
        try write(timestamp: record.timestamp, originalLength: record.originalLength, bytes: record.bytes)
    }

    public func write(timestamp: Timestamp, bytes: [UInt8], originalLength: Int? = nil) throws(CaptureError) {
        appendRecordHeader(timestamp, originalLength ?? bytes.count, bytes.count)
        buffer.append(contentsOf: bytes)
        if buffer.count >= flushThreshold { try flush() }
    }

    private func appendRecordHeader(_ timestamp: Timestamp, _ originalLength: Int, _ captured: Int) {
        append32(UInt32(truncatingIfNeeded: timestamp.seconds))
        append32(UInt32(truncatingIfNeeded: nanoseconds ? timestamp.subsecondNanoseconds : timestamp.microseconds))
        append32(UInt32(truncatingIfNeeded: captured))
        append32(UInt32(truncatingIfNeeded: max(originalLength, captured)))
        packetsWritten += 1
    }

    public func flush() throws(CaptureError) {
        if let failure = buffer.withUnsafeBytes({ writeAll(fd, $0) }) {
            throw CaptureError(source: path, reason: "write failed: \(errorText(failure))")
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
