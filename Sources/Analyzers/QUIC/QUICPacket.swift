import PacketCore

/// Why a QUIC packet, frame or handshake message was not used. Counted per code.
public enum QUICError: UInt8, CaseIterable, Sendable, Error {
    /// A long header that ends before its connection IDs, token or length (RFC 9000 §17.2).
    case truncatedHeader
    /// A Length field past the datagram's end, or too short for a packet number and sample (RFC 9001 §5.4.2).
    case badLength
    /// AEAD authentication failed (RFC 9001 §5.3): wrong keys or altered bytes.
    case decryptFailed
    /// A server Initial before any client Initial: its keys come from the client's Destination Connection ID.
    case noKeys
    /// A frame that runs past the payload (RFC 9000 §12.4).
    case malformedFrame
    /// A frame type not allowed in Initial packets; the rest of that payload is skipped.
    case unknownFrame
    /// CRYPTO data or a handshake message beyond the per-direction buffering limit.
    case cryptoLimit
    /// The first handshake message was not the expected hello.
    case unexpectedMessage
    /// A hello whose vectors do not fit their lengths.
    case malformedHello

    public var name: String {
        switch self {
        case .truncatedHeader: "truncated_header"
        case .badLength: "bad_length"
        case .decryptFailed: "decrypt_failed"
        case .noKeys: "no_keys"
        case .malformedFrame: "malformed_frame"
        case .unknownFrame: "unknown_frame"
        case .cryptoLimit: "crypto_limit"
        case .unexpectedMessage: "unexpected_message"
        case .malformedHello: "malformed_hello"
        }
    }
}

/// The long header of one packet inside a datagram (RFC 9000 §17.2; invariants RFC 8999 §5.1).
/// Offsets are into the datagram; `end` is where the next coalesced packet starts (RFC 9000 §12.2).
struct QUICLongHeader {
    var start: Int
    var firstByte: UInt8
    var version: UInt32
    var dcid: Range<Int>
    var scid: Range<Int>
    /// nil for versions whose packet types are not known.
    var type: QUICPacketType?
    /// Where the protected packet number starts (Initial, 0-RTT, Handshake).
    var pnOffset: Int
    var end: Int

    /// Parses the long header at `start`; the caller has checked that the header form bit is set.
    static func parse(_ datagram: UnsafeRawBufferPointer, at start: Int) -> Result<QUICLongHeader, QUICError> {
        var r = ByteCursor(datagram, at: start)
        guard let first = r.u8(), r.remaining >= 4 else { return .failure(.truncatedHeader) }
        let version = datagram.beUInt32(at: r.at)
        r.at &+= 4
        guard let dcidLength = r.u8(), let dcidAt = r.take(UInt64(dcidLength)),
              let scidLength = r.u8(), let scidAt = r.take(UInt64(scidLength))
        else { return .failure(.truncatedHeader) }
        var header = QUICLongHeader(start: start, firstByte: first, version: version,
                                    dcid: dcidAt ..< dcidAt &+ Int(dcidLength), scid: scidAt ..< scidAt &+ Int(scidLength),
                                    type: nil, pnOffset: r.at, end: datagram.count)
        // Version negotiation (version 0) and unknown versions: the rest of the datagram is theirs.
        guard version != 0, let known = QUICVersion.known(version) else { return .success(header) }
        // RFC 9000 §17.2: connection IDs of at most 20 bytes in v1 (and the versions known here).
        guard dcidLength <= 20, scidLength <= 20 else { return .failure(.truncatedHeader) }
        let type = known.packetType(first)
        header.type = type
        switch type {
        case .retry:
            return .success(header)
        case .initial:
            guard let tokenLength = r.varint(), r.take(tokenLength) != nil else { return .failure(.truncatedHeader) }
        case .zeroRTT, .handshake:
            break
        }
        guard let length = r.varint() else { return .failure(.truncatedHeader) }
        guard length <= UInt64(r.remaining) else { return .failure(.badLength) }
        header.pnOffset = r.at
        header.end = r.at &+ Int(length)
        return .success(header)
    }
}

/// Packet number recovery (RFC 9000 §17.1, Appendix A.3) from its truncated form.
@inlinable
func decodePacketNumber(largest: Int64, truncated: UInt64, bits: Int) -> Int64 {
    let expected = largest &+ 1
    let window = Int64(1) << bits
    let half = window / 2
    let mask = window &- 1
    let candidate = (expected & ~mask) | Int64(truncated)
    if candidate <= expected &- half && candidate < (Int64(1) << 62) &- window {
        return candidate &+ window
    }
    if candidate > expected &+ half && candidate >= window {
        return candidate &- window
    }
    return candidate
}
