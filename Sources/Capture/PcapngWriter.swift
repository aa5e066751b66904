#if canImport(Glibc)
import Glibc
#endif
import PacketCore

/// Writes pcapng: one section, one interface per link type, nanosecond
/// timestamps (`if_tsresol` = 9), Enhanced Packet Blocks in host byte order.
public final class PcapngWriter {
    public let path: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var interfaceIDs: [LinkType: UInt32] = [:]

    public init(path: String) throws(CaptureError) {
        self.path = path
        fd = path == "-" ? 1 : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CaptureError(source: path, reason: "cannot create: \(String(cString: strerror(errno)))") }
        // Section Header Block: BOM, version 1.0, section length unknown (-1).
        var body: [UInt8] = []
        put32(0x1A2B_3C4D, &body)
        put16(1, &body)
        put16(0, &body)
        put32(0xFFFF_FFFF, &body)
        put32(0xFFFF_FFFF, &body)
        block(0x0A0D_0D0A, body)
    }

    deinit {
        try? flush()
        if fd > 1 { close(fd) }
    }

    private func put32(_ v: UInt32, _ out: inout [UInt8]) { withUnsafeBytes(of: v) { out.append(contentsOf: $0) } }
    private func put16(_ v: UInt16, _ out: inout [UInt8]) { withUnsafeBytes(of: v) { out.append(contentsOf: $0) } }

    private func block(_ type: UInt32, _ body: [UInt8]) {
        let padded = (body.count + 3) & ~3
        let length = UInt32(12 + padded)
        put32(type, &buffer)
        put32(length, &buffer)
        buffer.append(contentsOf: body)
        buffer.append(contentsOf: [UInt8](repeating: 0, count: padded - body.count))
        put32(length, &buffer)
    }

    private func interface(for linkType: LinkType) -> UInt32 {
        if let id = interfaceIDs[linkType] { return id }
        let id = UInt32(interfaceIDs.count)
        interfaceIDs[linkType] = id
        var body: [UInt8] = []
        put16(UInt16(truncatingIfNeeded: linkType.rawValue), &body)
        put16(0, &body)
        put32(262_144, &body)
        // if_tsresol = 9 (nanoseconds), then opt_endofopt.
        put16(9, &body)
        put16(1, &body)
        body.append(contentsOf: [9, 0, 0, 0])
        put32(0, &body)
        block(1, body)
        return id
    }

    public func write(timestamp: Timestamp, originalLength: Int, linkType: LinkType, bytes: UnsafeRawBufferPointer) throws(CaptureError) {
        let id = interface(for: linkType)
        let units = UInt64(bitPattern: timestamp.nanoseconds)
        var body: [UInt8] = []
        body.reserveCapacity(20 + bytes.count)
        put32(id, &body)
        put32(UInt32(truncatingIfNeeded: units >> 32), &body)
        put32(UInt32(truncatingIfNeeded: units), &body)
        put32(UInt32(bytes.count), &body)
        put32(UInt32(truncatingIfNeeded: max(originalLength, bytes.count)), &body)
        body.append(contentsOf: bytes)
        block(6, body)
        if buffer.count >= 1 << 20 { try flush() }
    }

    public func write(_ record: PacketRecord) throws(CaptureError) {
        try write(timestamp: record.timestamp, originalLength: record.originalLength, linkType: record.linkType, bytes: record.bytes)
    }

    public func flush() throws(CaptureError) {
        if let failure = buffer.withUnsafeBytes({ writeAll(fd, $0) }) {
            throw CaptureError(source: path, reason: "write failed: \(errorText(failure))")
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
