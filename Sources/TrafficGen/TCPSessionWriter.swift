import PacketCore
import Wire

/// One TCP session's packets: the handshake, then per application message a
/// burst of MSS-sized segments followed by the peer's ACK, then the ending
/// (FIN exchange, RST, or nothing). Applies the segment impairments.
///
/// Sequence numbers: each side's ISN comes from the generator's main stream
/// (or, with `sequenceWrap`, just below 2^32); byte `k` of a side's stream is
/// at `ISN + 1 + k` modulo 2^32 in every segment that carries it, originals,
/// copies and re-cuts alike. Acknowledgement numbers are the peer's next
/// sequence number at the time.
///
/// Within a burst the arrival order is built in three passes:
/// 1. reorder: an original segment is moved 1–3 places later;
/// 2. retransmit: an exact copy goes 1–4 places after its original, or after the ACK;
/// 3. overlap: a re-cut `[tail of i, head of i+1)` goes 1–2 places after both.
/// Copies and re-cuts always follow the bytes they repeat, so only originals
/// carry new bytes, and the counts in `ImpairmentCounts` are exactly what a
/// decoder measures.
struct TCPSessionWriter {
    var output: SessionOutput
    let mss: Int
    let halfRTT: Int64
    /// The next sequence number each side sends.
    private var clientSeq: UInt32
    private var serverSeq: UInt32

    init(output: SessionOutput, mss: Int, halfRTT: Int64, clientISN: UInt32, serverISN: UInt32) {
        self.output = output
        self.mss = mss
        self.halfRTT = halfRTT
        clientSeq = clientISN
        serverSeq = serverISN
    }

    private enum Ending { case fin, rst(fromClient: Bool), none }

    mutating func run() {
        let s = output.session
        let impairments = output.impairments
        output.counts.tcpSessions += 1

        // Session-level decisions, always drawn in this order.
        let midstream = output.rng.chance(impairments.midstream) ? output.rng.below(3) : -1
        let endingRoll = output.rng.unit()
        if output.rng.chance(impairments.sequenceWrap) {
            // Byte `m` of each stream lands on sequence number 0.
            let clientLength = s.messages.reduce(0) { $0 + ($1.fromClient ? $1.bytes.count : 0) }
            let serverLength = s.messages.reduce(0) { $0 + ($1.fromClient ? 0 : $1.bytes.count) }
            clientSeq = UInt32.max &- UInt32(truncatingIfNeeded: output.rng.below(clientLength))
            serverSeq = UInt32.max &- UInt32(truncatingIfNeeded: output.rng.below(serverLength))
            output.counts.wrappedSessions += 1
            output.impaired.insert(.sequenceWrap)
        }
        let ending: Ending
        if endingRoll < impairments.rst {
            ending = .rst(fromClient: output.rng.chance(0.5))
            output.counts.rstSessions += 1
            output.impaired.insert(.rst)
        } else if endingRoll < impairments.rst + impairments.noFIN {
            ending = .none
            output.counts.noFINSessions += 1
            output.impaired.insert(.noFIN)
        } else {
            ending = .fin
        }
        if midstream >= 0 {
            output.counts.midstreamSessions += 1
            output.impaired.insert([.noSYN, .noSYNACK, .noHandshake][midstream])
        }

        // RFC 9293 §3.5 three-way handshake; the capture may have missed the start.
        segment(true, seq: clientSeq, [.syn], gap: 0, captured: midstream < 0)
        clientSeq &+= 1
        segment(false, seq: serverSeq, [.syn, .ack], gap: halfRTT, captured: midstream < 1)
        serverSeq &+= 1
        segment(true, seq: clientSeq, [.ack], gap: halfRTT, captured: midstream < 2)

        var started = (client: false, server: false)
        for (fromClient, bytes) in s.messages {
            let first = fromClient ? !started.client : !started.server
            burst(fromClient, bytes, keepFirstInPlace: midstream >= 0 && first && !impairments.reorderMidstreamStart)
            if fromClient { started.client = true } else { started.server = true }
        }

        switch ending {
        case .fin:
            segment(true, seq: clientSeq, [.fin, .ack], gap: halfRTT)
            clientSeq &+= 1
            segment(false, seq: serverSeq, [.fin, .ack], gap: halfRTT)
            serverSeq &+= 1
            segment(true, seq: clientSeq, [.ack], gap: halfRTT)
        case .rst(let fromClient):
            segment(fromClient, seq: fromClient ? clientSeq : serverSeq, [.rst, .ack], gap: halfRTT)
        case .none:
            break
        }
    }

    private struct Piece {
        enum Role: Equatable { case original(Int), copy, recut }
        var range: Range<Int>
        var role: Role
    }

    /// One application message: its segments in arrival order, the peer's ACK,
    /// then any retransmissions the sender's timer fired after that ACK.
    private mutating func burst(_ fromClient: Bool, _ bytes: [UInt8], keepFirstInPlace: Bool) {
        let originals = stride(from: 0, to: bytes.count, by: mss).map { $0 ..< min($0 + mss, bytes.count) }
        let n = originals.count
        var arrival = originals.enumerated().map { Piece(range: $1, role: .original($0)) }
        var afterACK: [Piece] = []
        func position(ofOriginal i: Int) -> Int { arrival.firstIndex { $0.role == .original(i) } ?? arrival.count - 1 }
        let impairments = output.impairments

        output.counts.dataSegments += n
        let firstMovable = keepFirstInPlace ? 1 : 0
        output.counts.reorderCandidates += max(0, n - 1 - firstMovable)
        for i in firstMovable ..< max(firstMovable, n - 1) where output.rng.chance(impairments.reorder) {
            let from = position(ofOriginal: i)
            let to = min(from + 1 + output.rng.below(3), n - 1)
            let piece = arrival.remove(at: from)
            arrival.insert(piece, at: to)
        }

        var copies = 0
        for i in 0 ..< n where output.rng.chance(impairments.retransmit) {
            copies += 1
            let copy = Piece(range: originals[i], role: .copy)
            if output.rng.below(4) == 0 {
                afterACK.append(copy)
            } else {
                arrival.insert(copy, at: min(position(ofOriginal: i) + 1 + output.rng.below(4), arrival.count))
            }
        }

        var recuts = 0
        output.counts.overlapCandidates += max(0, n - 1)
        for i in 0 ..< max(0, n - 1) where output.rng.chance(impairments.overlap) {
            // Originals before the last are a full MSS (at least 536 bytes), so
            // the tail starts strictly inside segment i and never equals a segment.
            let tail = 1 + output.rng.below(min(originals[i].count - 1, mss / 2))
            let head = 1 + output.rng.below(min(originals[i + 1].count, mss - tail))
            let boundary = originals[i + 1].lowerBound
            let after = max(position(ofOriginal: i), position(ofOriginal: i + 1))
            arrival.insert(Piece(range: boundary - tail ..< boundary + head, role: .recut),
                           at: min(after + 1 + output.rng.below(2), arrival.count))
            recuts += 1
        }

        var late = 0
        var highest = 0
        for piece in arrival {
            guard case .original = piece.role else { continue }
            if piece.range.lowerBound < highest { late += 1 }
            highest = max(highest, piece.range.upperBound)
        }
        output.counts.lateSegments += late
        output.counts.duplicateSegments += copies
        output.counts.overlappingSegments += recuts
        if late > 0 { output.impaired.insert(.reorder) }
        if copies > 0 { output.impaired.insert(.retransmit) }
        if recuts > 0 { output.impaired.insert(.overlap) }

        let base = fromClient ? clientSeq : serverSeq
        func send(_ piece: Piece, gap: Int64) {
            let flags: TCPFlags = piece.range.upperBound == bytes.count ? [.ack, .psh] : [.ack]
            segment(fromClient, seq: base &+ UInt32(truncatingIfNeeded: piece.range.lowerBound), flags,
                    payload: Array(bytes[piece.range]), gap: gap)
        }
        for piece in arrival { send(piece, gap: 20_000) }
        if fromClient { clientSeq = base &+ UInt32(truncatingIfNeeded: bytes.count) } else { serverSeq = base &+ UInt32(truncatingIfNeeded: bytes.count) }
        segment(!fromClient, seq: fromClient ? serverSeq : clientSeq, [.ack], gap: halfRTT)
        for piece in afterACK { send(piece, gap: halfRTT) }
    }

    /// One segment from the client (or server) acknowledging everything the
    /// peer has sent so far; `captured: false` lets time pass without it.
    private mutating func segment(_ fromClient: Bool, seq: UInt32, _ flags: TCPFlags, payload: [UInt8] = [], gap: Int64, captured: Bool = true) {
        guard captured else { return output.skip(gap: gap) }
        let s = output.session
        var t = fromClient
            ? PacketBuilder.TCP(sourcePort: s.clientPort, destinationPort: s.serverPort, sequence: seq, acknowledgement: serverSeq, flags: flags)
            : PacketBuilder.TCP(sourcePort: s.serverPort, destinationPort: s.clientPort, sequence: seq, acknowledgement: clientSeq, flags: flags)
        if flags.contains(.syn) { t.options = [.mss(UInt16(mss)), .sackPermitted, .windowScale(7)] }
        if !flags.contains(.ack) { t.acknowledgement = 0 }
        output.send(fromClient, .tcp(t), payload, gap: gap, fragmentable: !payload.isEmpty)
    }
}
