import PacketCore

/// An incremental parser for classic pcap and pcapng, over a contiguous buffer.
///
/// It never copies packet bytes: records point into the buffer it was given.
/// The same parser serves memory-mapped files (the whole file is one buffer)
/// and streams (the caller refills a window and calls again on `.needMore`).
///
/// Formats:
/// - pcap: magic `a1b2c3d4` (µs) or `a1b23c4d` (ns), either byte order; link
///   type from the header's low 16 bits (upper bits hold FCS flags).
/// - pcapng: SHB, IDB, EPB, SPB and the obsolete PB; several sections and
///   interfaces; per-interface link type, `if_tsresol` and `if_tsoffset`.
///   Other blocks are skipped.
/// - A new file header at a record boundary starts a new file, so several
///   captures can follow each other in one stream.
///
/// Limits: one record at most `maxRecordLength` bytes (default 16 MiB);
/// larger lengths are taken as corruption.
public struct CaptureFormatParser: Sendable {
    public enum Step {
        case packet(PacketRecord)
        /// At least this many bytes from the current offset are needed to continue.
        case needMore(Int)
        case failure(offset: Int, reason: String)
    }

    public enum Format: Sendable, Equatable {
        case undetermined
        case pcap(bigEndian: Bool, nanoseconds: Bool)
        case pcapng
    }

    /// Per-interface facts from a pcapng IDB (or the pcap header).
    public struct Interface: Sendable {
        public var linkType: LinkType
        public var snapLength: Int
        /// Units per second of timestamps: 10^n or 2^n.
        var unitsPerSecond: UInt64
        /// Nanoseconds per unit when it divides evenly, else 0 (use the general path).
        var nanosecondsPerUnit: UInt64
        var offsetSeconds: Int64
    }

    public private(set) var format: Format = .undetermined
    public private(set) var interfaces: [Interface] = []
    /// Link types seen, in first-seen order.
    public private(set) var linkTypesSeen: [LinkType] = []
    public var maxRecordLength = 16 << 20
    var bigEndian = false
    var pcapLinkType = LinkType.ethernet
    var pcapNanoseconds = false
    var pcapSnapLength = CaptureFormatParser.maxSnapLength
    /// libpcap's MAXIMUM_SNAPLEN.
    public static let maxSnapLength = 262_144

    public init() {}

    static let pcapMicro: UInt32 = 0xA1B2_C3D4
    static let pcapNano: UInt32 = 0xA1B2_3C4D
    static let pcapngSHB: UInt32 = 0x0A0D_0D0A
    static let pcapngBOM: UInt32 = 0x1A2B_3C4D

    /// True when `word` (read big-endian) is a capture file magic in either byte order.
    static func isFileMagic(_ word: UInt32) -> Bool {
        word == pcapMicro || word == pcapMicro.byteSwapped || word == pcapNano
            || word == pcapNano.byteSwapped || word == pcapngSHB
    }

    /// Parses the next record at `offset`, advancing it past what was consumed.
    public mutating func next(_ buffer: UnsafeRawBufferPointer, offset: inout Int) -> Step {
        while true {
            let available = buffer.count - offset
            if format == .undetermined || (available >= 4 && Self.isFileMagic(buffer.beUInt32(at: offset))) {
                guard available >= 4 else { return .needMore(4) }
                let magic = buffer.beUInt32(at: offset)
                if magic == Self.pcapngSHB {
                    guard available >= 12 else { return .needMore(12) }
                    let bom = buffer.beUInt32(at: offset + 8)
                    guard bom == Self.pcapngBOM || bom == Self.pcapngBOM.byteSwapped else {
                        return .failure(offset: offset, reason: "pcapng section header has an invalid byte-order magic")
                    }
                    format = .pcapng
                    bigEndian = bom == Self.pcapngBOM
                    // Fall through to the pcapng block reader, which handles the SHB itself.
                } else {
                    guard available >= 24 else { return .needMore(24) }
                    switch magic {
                    case Self.pcapMicro: bigEndian = true; pcapNanoseconds = false
                    case Self.pcapMicro.byteSwapped: bigEndian = false; pcapNanoseconds = false
                    case Self.pcapNano: bigEndian = true; pcapNanoseconds = true
                    case Self.pcapNano.byteSwapped: bigEndian = false; pcapNanoseconds = true
                    default:
                        return .failure(offset: offset, reason: "not a pcap or pcapng file (magic 0x\(String(magic, radix: 16)))")
                    }
                    let major = buffer.uint16(at: offset + 4, bigEndian: bigEndian)
                    let minor = buffer.uint16(at: offset + 6, bigEndian: bigEndian)
                    guard major == 2, minor <= 4 else {
                        return .failure(offset: offset, reason: "unsupported pcap version \(major).\(minor) (expected 2.4)")
                    }
                    var snap = Int(buffer.uint32(at: offset + 16, bigEndian: bigEndian))
                    // As libpcap does: a zero or oversized snaplen means the largest one.
                    if snap == 0 || snap > Self.maxSnapLength { snap = Self.maxSnapLength }
                    pcapSnapLength = snap
                    let linkField = buffer.uint32(at: offset + 20, bigEndian: bigEndian)
                    pcapLinkType = LinkType(rawValue: linkField & 0xFFFF)
                    noteLinkType(pcapLinkType)
                    format = .pcap(bigEndian: bigEndian, nanoseconds: pcapNanoseconds)
                    interfaces = [Interface(
                        linkType: pcapLinkType, snapLength: snap,
                        unitsPerSecond: pcapNanoseconds ? 1_000_000_000 : 1_000_000,
                        nanosecondsPerUnit: pcapNanoseconds ? 1 : 1000, offsetSeconds: 0)]
                    offset += 24
                    continue
                }
            }
            switch format {
            case .pcap: return nextPcapRecord(buffer, offset: &offset)
            case .pcapng:
                let step = nextPcapngBlock(buffer, offset: &offset)
                if case .some(let s) = step { return s }
                continue
            case .undetermined: return .needMore(4)
            }
        }
    }

    /// Classic pcap's usual record, read inline: the same record and the same advance of `offset` as
    /// `next(_:offset:)`, or nil — not pcap, the record not whole in the buffer, longer than
    /// `maxRecordLength`, or a file magic where it starts (another capture follows) — and then
    /// `next(_:offset:)` decides. (Going through `Step` for every record cost about 150 instructions a
    /// packet; this is about 30.)
    @inline(__always)
    public mutating func nextPcapRecordQuickly(_ base: UnsafeRawPointer?, count: Int, offset: inout Int) -> PacketRecord? {
        guard case .pcap = format, let base, count - offset >= 16 else { return nil }
        if Self.isFileMagic(UInt32(bigEndian: (base + offset).loadUnaligned(as: UInt32.self))) { return nil }
        return wholePcapRecord(base, count: count, offset: &offset)
    }

    /// The pcap record at `offset` when its 16-byte header and all its bytes are in the buffer and it is
    /// no longer than `maxRecordLength`; nil otherwise. A record longer than the file's snaplen is cut to
    /// it, as libpcap does (the rest is skipped).
    @inline(__always)
    func wholePcapRecord(_ base: UnsafeRawPointer, count: Int, offset: inout Int) -> PacketRecord? {
        guard count - offset >= 16 else { return nil }
        let header = base + offset
        func field(_ at: Int) -> UInt32 {
            let raw = header.loadUnaligned(fromByteOffset: at, as: UInt32.self)
            return bigEndian ? UInt32(bigEndian: raw) : UInt32(littleEndian: raw)
        }
        let captured = Int(field(8))
        guard captured <= maxRecordLength, count - offset - 16 >= captured else { return nil }
        let seconds = Int64(field(0)), fraction = Int64(field(4))
        offset += 16 + captured
        return PacketRecord(
            timestamp: Timestamp(nanoseconds: seconds &* 1_000_000_000 &+ (pcapNanoseconds ? fraction : fraction &* 1000)),
            originalLength: Int(field(12)), linkType: pcapLinkType, interfaceID: 0,
            bytes: UnsafeRawBufferPointer(start: header + 16, count: min(captured, pcapSnapLength)))
    }

    mutating func noteLinkType(_ type: LinkType) {
        if !linkTypesSeen.contains(type) { linkTypesSeen.append(type) }
    }

    mutating func nextPcapRecord(_ buffer: UnsafeRawBufferPointer, offset: inout Int) -> Step {
        if let base = buffer.baseAddress, let record = wholePcapRecord(base, count: buffer.count, offset: &offset) {
            return .packet(record)
        }
        let available = buffer.count - offset
        guard available >= 16 else { return .needMore(16) }
        let captured = Int(buffer.uint32(at: offset + 8, bigEndian: bigEndian))
        guard captured <= maxRecordLength else {
            return .failure(offset: offset, reason: "record claims \(captured) captured bytes, more than the \(maxRecordLength)-byte limit; the file is corrupt")
        }
        return .needMore(16 + captured)
    }

    /// Reads one pcapng block. Returns nil when the block was consumed without yielding a packet.
    mutating func nextPcapngBlock(_ buffer: UnsafeRawBufferPointer, offset: inout Int) -> Step? {
        let available = buffer.count - offset
        guard available >= 12 else { return .needMore(12) }
        let type = buffer.uint32(at: offset, bigEndian: bigEndian)
        if type == Self.pcapngSHB {
            // Byte order may change at each section.
            let bom = buffer.beUInt32(at: offset + 8)
            guard bom == Self.pcapngBOM || bom == Self.pcapngBOM.byteSwapped else {
                return .failure(offset: offset, reason: "pcapng section header has an invalid byte-order magic")
            }
            bigEndian = bom == Self.pcapngBOM
        }
        let length = Int(buffer.uint32(at: offset + 4, bigEndian: bigEndian))
        guard length >= 12, length % 4 == 0, length <= maxRecordLength else {
            return .failure(offset: offset, reason: "pcapng block length \(length) is invalid (must be a multiple of 4, at least 12)")
        }
        guard available >= length else { return .needMore(length) }
        let trailer = Int(buffer.uint32(at: offset + length - 4, bigEndian: bigEndian))
        guard trailer == length else {
            return .failure(offset: offset, reason: "pcapng block length \(length) does not match its trailing copy \(trailer)")
        }
        let body = buffer.slice(offset + 8, length - 12)
        let blockOffset = offset
        offset += length
        switch type {
        case Self.pcapngSHB:
            guard body.count >= 16 else { return .failure(offset: blockOffset, reason: "pcapng section header block is too short") }
            let major = body.uint16(at: 4, bigEndian: bigEndian)
            let minor = body.uint16(at: 6, bigEndian: bigEndian)
            // 1.0 is the only published version; libpcap also accepts 1.2, written by some old tools.
            guard major == 1, minor == 0 || minor == 2 else {
                return .failure(offset: blockOffset, reason: "unsupported pcapng version \(major).\(minor) (expected 1.0)")
            }
            interfaces.removeAll(keepingCapacity: true)
            return nil
        case 1: // Interface Description Block
            guard body.count >= 8 else { return .failure(offset: blockOffset, reason: "pcapng interface description block is too short") }
            var interface = Interface(
                linkType: LinkType(rawValue: UInt32(body.uint16(at: 0, bigEndian: bigEndian))),
                snapLength: Int(body.uint32(at: 4, bigEndian: bigEndian)),
                unitsPerSecond: 1_000_000, nanosecondsPerUnit: 1000, offsetSeconds: 0)
            if let failure = readInterfaceOptions(body, from: 8, into: &interface, blockOffset: blockOffset) { return failure }
            interfaces.append(interface)
            noteLinkType(interface.linkType)
            return nil
        case 6: // Enhanced Packet Block
            guard body.count >= 20 else { return .failure(offset: blockOffset, reason: "pcapng enhanced packet block is too short") }
            let id = Int(body.uint32(at: 0, bigEndian: bigEndian))
            guard id < interfaces.count else {
                return .failure(offset: blockOffset, reason: "packet names interface \(id) but the section has \(interfaces.count)")
            }
            let units = UInt64(body.uint32(at: 4, bigEndian: bigEndian)) << 32 | UInt64(body.uint32(at: 8, bigEndian: bigEndian))
            let captured = Int(body.uint32(at: 12, bigEndian: bigEndian))
            let original = Int(body.uint32(at: 16, bigEndian: bigEndian))
            guard captured <= body.count - 20 else {
                return .failure(offset: blockOffset, reason: "packet claims \(captured) captured bytes but its block holds \(body.count - 20)")
            }
            return .packet(PacketRecord(
                timestamp: timestamp(units, interfaces[id]), originalLength: original,
                linkType: interfaces[id].linkType, interfaceID: id, bytes: body.slice(20, captured)))
        case 3: // Simple Packet Block: interface 0, no timestamp
            guard body.count >= 4 else { return .failure(offset: blockOffset, reason: "pcapng simple packet block is too short") }
            guard !interfaces.isEmpty else {
                return .failure(offset: blockOffset, reason: "simple packet block before any interface description")
            }
            let original = Int(body.uint32(at: 0, bigEndian: bigEndian))
            var captured = min(original, body.count - 4)
            if interfaces[0].snapLength > 0 { captured = min(captured, interfaces[0].snapLength) }
            return .packet(PacketRecord(
                timestamp: .zero, originalLength: original, linkType: interfaces[0].linkType,
                interfaceID: 0, bytes: body.slice(4, captured)))
        case 2: // Obsolete Packet Block
            guard body.count >= 20 else { return .failure(offset: blockOffset, reason: "pcapng packet block is too short") }
            let id = Int(body.uint16(at: 0, bigEndian: bigEndian))
            guard id < interfaces.count else {
                return .failure(offset: blockOffset, reason: "packet names interface \(id) but the section has \(interfaces.count)")
            }
            let units = UInt64(body.uint32(at: 4, bigEndian: bigEndian)) << 32 | UInt64(body.uint32(at: 8, bigEndian: bigEndian))
            let captured = Int(body.uint32(at: 12, bigEndian: bigEndian))
            let original = Int(body.uint32(at: 16, bigEndian: bigEndian))
            guard captured <= body.count - 20 else {
                return .failure(offset: blockOffset, reason: "packet claims \(captured) captured bytes but its block holds \(body.count - 20)")
            }
            return .packet(PacketRecord(
                timestamp: timestamp(units, interfaces[id]), originalLength: original,
                linkType: interfaces[id].linkType, interfaceID: id, bytes: body.slice(20, captured)))
        default:
            return nil
        }
    }

    /// Reads `if_tsresol` (9) and `if_tsoffset` (14) from an IDB's options.
    func readInterfaceOptions(_ body: UnsafeRawBufferPointer, from start: Int, into interface: inout Interface, blockOffset: Int) -> Step? {
        var i = start
        while i + 4 <= body.count {
            let code = body.uint16(at: i, bigEndian: bigEndian)
            let length = Int(body.uint16(at: i + 2, bigEndian: bigEndian))
            if code == 0 { break }
            let padded = (length + 3) & ~3
            guard i + 4 + padded <= body.count else {
                return .failure(offset: blockOffset, reason: "interface option \(code) runs past the end of its block")
            }
            if code == 9 && length >= 1 {
                let v = body[i + 4]
                let exponent = UInt64(v & 0x7F)
                if v & 0x80 != 0 {
                    guard exponent <= 63 else { return .failure(offset: blockOffset, reason: "if_tsresol 2^-\(exponent) is out of range") }
                    interface.unitsPerSecond = 1 << exponent
                } else {
                    guard exponent <= 19 else { return .failure(offset: blockOffset, reason: "if_tsresol 10^-\(exponent) is out of range") }
                    var u: UInt64 = 1
                    for _ in 0 ..< exponent { u &*= 10 }
                    interface.unitsPerSecond = u
                }
                interface.nanosecondsPerUnit = 1_000_000_000 % interface.unitsPerSecond == 0
                    ? 1_000_000_000 / interface.unitsPerSecond : 0
            } else if code == 14 && length == 8 {
                interface.offsetSeconds = Int64(bitPattern:
                    UInt64(body.uint32(at: i + 4, bigEndian: bigEndian)) << 32 | UInt64(body.uint32(at: i + 8, bigEndian: bigEndian)))
            }
            i += 4 + padded
        }
        return nil
    }

    @inline(__always)
    func timestamp(_ units: UInt64, _ interface: Interface) -> Timestamp {
        let base = interface.offsetSeconds &* 1_000_000_000
        if interface.nanosecondsPerUnit != 0 {
            return Timestamp(nanoseconds: base &+ Int64(bitPattern: units &* interface.nanosecondsPerUnit))
        }
        let seconds = units / interface.unitsPerSecond
        let rest = units % interface.unitsPerSecond
        // rest < unitsPerSecond ≤ 2^63, so rest × 10^9 fits in 128 bits.
        let product = rest.multipliedFullWidth(by: 1_000_000_000)
        let nanos = interface.unitsPerSecond.dividingFullWidth((product.high, product.low)).quotient
        return Timestamp(nanoseconds: base &+ Int64(bitPattern: seconds &* 1_000_000_000 &+ nanos))
    }
}
