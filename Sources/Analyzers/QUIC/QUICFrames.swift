import PacketCore

/// Frames of a decrypted Initial payload (RFC 9000 §12.4, §19).
///
/// Initial packets may carry PADDING, PING, ACK, CRYPTO and CONNECTION_CLOSE (§12.4, Table 3);
/// each is skipped or handed on. The walk stops at the first frame that does not fit
/// (`malformedFrame`) or whose type is not one of these (`unknownFrame`); frames before it count.
enum QUICFrames {
    struct Summary {
        var cryptoFrames = 0
        var ackFrames = 0
        /// The error code of a CONNECTION_CLOSE (§19.19), if one was seen.
        var closeCode: UInt64? = nil
    }

    /// Calls `crypto(offset, data)` for each CRYPTO frame (§19.6) in payload order.
    static func walk(_ payload: UnsafeRawBufferPointer, summary: inout Summary,
                     crypto: (UInt64, UnsafeRawBufferPointer) -> Void) -> QUICError? {
        var r = ByteCursor(payload)
        while r.remaining > 0 {
            guard let type = r.varint() else { return .malformedFrame }
            switch type {
            case 0x00: // PADDING, §19.1: runs of zero bytes
                while r.at < payload.count && payload[r.at] == 0 { r.at &+= 1 }
            case 0x01: // PING, §19.2
                break
            case 0x02, 0x03: // ACK, §19.3
                guard r.varint() != nil, r.varint() != nil, // largest acknowledged, ACK delay
                      let ranges = r.varint(), r.varint() != nil // range count, first range
                else { return .malformedFrame }
                // Each further range is two varints of at least one byte: the count is bounded by the payload.
                guard ranges <= UInt64(r.remaining / 2) else { return .malformedFrame }
                for _ in 0 ..< ranges {
                    guard r.varint() != nil, r.varint() != nil else { return .malformedFrame }
                }
                if type == 0x03 { // ECN counts
                    guard r.varint() != nil, r.varint() != nil, r.varint() != nil else { return .malformedFrame }
                }
                summary.ackFrames &+= 1
            case 0x06: // CRYPTO, §19.6
                guard let offset = r.varint(), let length = r.varint(), let at = r.take(length),
                      offset <= (1 << 62) &- 1 &- length // §19.6: offset + length < 2^62
                else { return .malformedFrame }
                summary.cryptoFrames &+= 1
                crypto(offset, payload.slice(at, Int(length)))
            case 0x1C, 0x1D: // CONNECTION_CLOSE, §19.19
                guard let code = r.varint(), type == 0x1D || r.varint() != nil, // frame type (0x1c only)
                      let reasonLength = r.varint(), r.take(reasonLength) != nil
                else { return .malformedFrame }
                summary.closeCode = code
            default:
                return .unknownFrame
            }
        }
        return nil
    }
}

/// Reassembles one direction's CRYPTO stream (RFC 9000 §19.6) by offset, in any order, and finds
/// the first TLS handshake message in it (RFC 8446 §4: type(1), length(3), body).
///
/// Limits: bytes at offsets past `limit` (64 KiB) are dropped and counted in `droppedBytes`;
/// at most `maxRanges` disjoint received ranges are kept (a fragment that would need more is
/// dropped and counted). The buffer grows to the highest offset received, never past `limit`.
struct QUICCryptoStream {
    static let limit = 64 * 1024
    static let maxRanges = 32

    enum Message: Equatable {
        case incomplete
        /// The first message is whole: its type and the body's range in `bytes`.
        case complete(type: UInt8, body: Range<Int>)
        /// The first message announces a length past `limit`.
        case tooLarge
    }

    private(set) var bytes: [UInt8] = []
    /// Received ranges, sorted, disjoint and not touching.
    private var ranges: [Range<Int>] = []
    private(set) var droppedBytes = 0

    mutating func reset() {
        bytes = []
        ranges = []
    }

    mutating func insert(offset: UInt64, _ data: UnsafeRawBufferPointer) {
        guard !data.isEmpty else { return }
        guard offset < UInt64(Self.limit) else {
            droppedBytes &+= data.count
            return
        }
        let start = Int(offset)
        let end = min(start &+ data.count, Self.limit)
        droppedBytes &+= start &+ data.count &- end
        // Where the new range goes, and which existing ranges it touches.
        let first = ranges.firstIndex { $0.upperBound >= start } ?? ranges.count
        var last = first
        while last < ranges.count && ranges[last].lowerBound <= end { last &+= 1 }
        if first == last && ranges.count >= Self.maxRanges {
            droppedBytes &+= end &- start
            return
        }
        if bytes.count < end { bytes.append(contentsOf: repeatElement(0, count: end &- bytes.count)) }
        bytes.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[start ..< end]).copyMemory(from: data.slice(0, end &- start)) }
        let merged = min(start, first < last ? ranges[first].lowerBound : start)
            ..< max(end, first < last ? ranges[last &- 1].upperBound : end)
        ranges.replaceSubrange(first ..< last, with: CollectionOfOne(merged))
    }

    /// Bytes received without a hole from offset 0.
    var contiguous: Int { ranges.first.map { $0.lowerBound == 0 ? $0.upperBound : 0 } ?? 0 }

    var firstMessage: Message {
        let have = contiguous
        guard have >= 4 else { return .incomplete }
        let length = Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
        guard 4 &+ length <= Self.limit else { return .tooLarge }
        guard have >= 4 &+ length else { return .incomplete }
        return .complete(type: bytes[0], body: 4 ..< 4 &+ length)
    }
}
