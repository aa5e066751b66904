/// A TCP endpoint's state as Zeek's connection summary names it, and the per-direction history letters:
/// what `conn_state` and `history` in a flow record are made from.
///
/// An endpoint moves, on the packets it sends:
/// - SYN without ACK: inactive → `synSent`; SYN-ACK: inactive, partial or synSent → `synAckSent`;
/// - an ACK without SYN, FIN or RST: from `synSent`/`synAckSent` to `established` (and a peer that sent a
///   SYN-ACK this ACK answers is established too); from inactive to `partial` (no handshake seen);
/// - FIN: `closed`; RST: `reset` (whatever came before).
public enum EndpointState: UInt8, Sendable {
    case inactive, synSent, synAckSent, partial, established, closed, reset

    var isInactive: Bool { self == .inactive || self == .partial }
}

/// Zeek's `conn_state` for a connection whose originator and responder ended in `orig` and `resp`
/// (Zeek's base/protocols/conn documentation): S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, RSTRH, SH,
/// SHR, OTH; UDP and ICMP: SF when both sides sent, S0 when only the originator did, SHR when only the responder.
public enum ConnectionSummary {
    public static func tcpState(orig: EndpointState, resp: EndpointState, origBytes: UInt64, respBytes: UInt64, history: HistoryLetters) -> String {
        switch (orig, resp) {
        case (_, .reset):
            if orig == .synSent || orig == .synAckSent || (orig == .reset && origBytes == 0 && respBytes == 0) { return "REJ" }
            return orig.isInactive ? "RSTRH" : "RSTR"
        case (.reset, _):
            if resp.isInactive { return history.isSYNThenReset ? "RSTOS0" : "OTH" }
            return "RSTO"
        case (.closed, .closed): return "SF"
        case (.closed, _): return resp.isInactive ? "SH" : "S2"
        case (_, .closed): return orig.isInactive ? "SHR" : "S3"
        case (.synSent, .inactive): return "S0"
        case (.established, .established): return "S1"
        default: return "OTH"
        }
    }

    public static func datagramState(origSent: Bool, respSent: Bool) -> String {
        origSent ? (respSent ? "SF" : "S0") : (respSent ? "SHR" : "OTH")
    }

    /// The state after `flags` from an endpoint (`own`) whose peer is `peer`; the peer may change too.
    public static func advance(_ own: inout EndpointState, peer: inout EndpointState, flags: UInt8) {
        let syn = flags & 0x02 != 0, ack = flags & 0x10 != 0, fin = flags & 0x01 != 0, rst = flags & 0x04 != 0
        if rst { own = .reset; return }
        if fin { own = .closed; return }
        if syn {
            if ack {
                if own == .inactive || own == .partial || own == .synSent { own = .synAckSent }
            } else if own == .inactive {
                own = .synSent
            }
            return
        }
        switch own {
        case .synSent, .synAckSent:
            if ack {
                own = .established
                if peer == .synAckSent || peer == .synSent { peer = .established }
            }
        case .inactive:
            own = .partial
        default:
            break
        }
    }
}

/// Zeek's history string, built packet by packet: upper case for the originator, lower case for the
/// responder. S (SYN), H (SYN-ACK), A (pure ACK), D (payload), F (FIN), R (RST), Q (SYN with FIN or RST),
/// I (FIN with RST), T (retransmitted payload), W (zero window), G (content gap), ^ (the first packet
/// seen was the responder's SYN-ACK). A, D, I and Q appear once per direction; S, H, F and R again when
/// their sequence number changes; T, W and G at the 1st, 10th, 100th … occurrence. At most 32 letters.
public struct HistoryLetters: Sendable {
    public static let capacity = 32
    private var storage: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    public private(set) var count = 0

    public init() {}

    public mutating func append(_ letter: UInt8) {
        guard count < Self.capacity else { return }
        let word = count / 8, shift = UInt64(count % 8) * 8
        switch word {
        case 0: storage.0 |= UInt64(letter) << shift
        case 1: storage.1 |= UInt64(letter) << shift
        case 2: storage.2 |= UInt64(letter) << shift
        default: storage.3 |= UInt64(letter) << shift
        }
        count += 1
    }

    public subscript(i: Int) -> UInt8 {
        let word = switch i / 8 {
        case 0: storage.0
        case 1: storage.1
        case 2: storage.2
        default: storage.3
        }
        return UInt8(truncatingIfNeeded: word >> (UInt64(i % 8) * 8))
    }

    public var bytes: [UInt8] { withLetters { Array($0) } }

    /// The letters lent to `body` from a copy on the stack (records write them so, without an array).
    public func withLetters<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        // Letter i is byte i % 8 of word i / 8, counted from the least significant byte.
        let words = (storage.0.littleEndian, storage.1.littleEndian, storage.2.littleEndian, storage.3.littleEndian)
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.capacity) { letters in
            withUnsafeBytes(of: words) { raw in
                UnsafeMutableRawBufferPointer(letters).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0 ..< count]))
            }
            return body(UnsafeBufferPointer(rebasing: letters[0 ..< count]))
        }
    }
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// Zeek's RSTOS0 shape: an optional "^", an "S", then no H, A, F, G, I or Q before an "R".
    var isSYNThenReset: Bool {
        var i = 0
        if i < count && self[i] == UInt8(ascii: "^") { i += 1 }
        guard i < count, self[i] == UInt8(ascii: "S") else { return false }
        i += 1
        while i < count {
            let c = self[i]
            if c == UInt8(ascii: "R") { return true }
            if "HAFGIQ".utf8.contains(c) { return false }
            i += 1
        }
        return false
    }
}
