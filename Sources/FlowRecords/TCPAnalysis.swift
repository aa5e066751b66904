import Reassembly
import Wire

/// Passive TCP analysis of one direction, as Wireshark's `tcp.analysis` and tcptrace read a capture: what
/// the sender retransmitted, what arrived out of order, the receiver's duplicate ACKs and zero windows,
/// the bytes in flight, and the options the handshake negotiated.
///
/// Classification of a segment that starts before the sender's highest sequence number so far (with
/// payload, SYN or FIN; a 1-byte keep-alive just below it is not counted):
/// 1. fast retransmission: the peer has sent at least two duplicate ACKs for this sequence number, the
///    last within 20 ms;
/// 2. spurious retransmission: the peer had already acknowledged all of it;
/// 3. out of order: it comes within the handshake RTT (3 ms when none was measured) of the segment that
///    advanced the highest sequence number, and does not end where that one ends;
/// 4. else a retransmission.
/// Fast and spurious retransmissions count as retransmissions too, as Wireshark flags them.
///
/// A duplicate ACK carries no payload, SYN, FIN or RST, and repeats the sender's previous acknowledgement
/// number and (non-zero) window at its next sequence number. A zero window is a window of 0 in any packet
/// without SYN, FIN or RST.
///
/// What passive analysis cannot know: whether a segment was lost before or after the capture point (a
/// retransmission of a segment the capture saw is still counted), the sender's congestion window (only
/// the bytes in flight bound it from below), and RTT beyond the handshake for segments whose ACK is
/// delayed or cumulative.
public struct TCPDirectionAnalysis: Sendable {
    public var retransmissions: UInt32 = 0
    public var fastRetransmissions: UInt32 = 0
    public var spuriousRetransmissions: UInt32 = 0
    public var outOfOrder: UInt32 = 0
    public var duplicateAcks: UInt32 = 0
    public var zeroWindows: UInt32 = 0
    public var maxBytesInFlight: UInt32 = 0
    /// Segments with payload, for the loss estimate (retransmissions per data segment).
    public var dataSegments: UInt32 = 0
    /// Options from this side's SYN or SYN-ACK.
    public var mss: UInt16 = 0
    public var windowScale: Int8 = -1
    public var sackPermitted = false
    public var timestamps = false

    var nextSequence: UInt32 = 0
    var hasNext = false
    var nextSequenceTime: Int64 = 0
    var lastAck: UInt32 = 0
    var lastWindow: UInt16 = 0
    var hasLastAck = false
    var consecutiveDuplicateAcks: UInt32 = 0
    var lastDuplicateAckTime: Int64 = 0

    public init() {}
}

/// Both directions' analysis and the handshake's round-trip times.
public struct TCPAnalysis: Sendable {
    public var originator = TCPDirectionAnalysis()
    public var responder = TCPDirectionAnalysis()
    var synTime: Int64 = 0
    var synAckTime: Int64 = 0
    var ackTime: Int64 = 0

    public init() {}

    /// SYN to the first ACK without SYN after it, from either side (Wireshark's `tcp.analysis.initial_rtt`).
    public var initialRTT: Double? { synTime > 0 && ackTime > 0 ? Double(ackTime - synTime) / 1e9 : nil }
    /// SYN to SYN-ACK: the responder's side of the path from the capture point.
    public var responderRTT: Double? { synTime > 0 && synAckTime > 0 ? Double(synAckTime - synTime) / 1e9 : nil }
    /// SYN-ACK to ACK: the originator's side.
    public var originatorRTT: Double? { synAckTime > 0 && ackTime > 0 ? Double(ackTime - synAckTime) / 1e9 : nil }

    /// One packet from the originator (`fromOrig`) or the responder.
    public mutating func packet(fromOrig: Bool, flags: UInt8, sequence: UInt32, acknowledgement: UInt32, window: UInt16,
                                payloadLength: Int, options: TCPOptions, time: Int64) {
        let syn = flags & 0x02 != 0, fin = flags & 0x01 != 0, rst = flags & 0x04 != 0, ack = flags & 0x10 != 0
        // The handshake's times.
        if syn && !ack && fromOrig && synTime == 0 { synTime = time }
        if syn && ack && !fromOrig && synAckTime == 0 { synAckTime = time }
        if !syn && ack && synTime > 0 && ackTime == 0 { ackTime = time }
        let rtt = initialRTT.map { Int64($0 * 1e9) } ?? 3_000_000
        // The sender's side is updated in place (no copy of either side per packet).
        @inline(__always) func update(_ own: inout TCPDirectionAnalysis, _ peer: TCPDirectionAnalysis) {
            Self.sent(by: &own, peer: peer, syn: syn, fin: fin, rst: rst, ack: ack, sequence: sequence, acknowledgement: acknowledgement,
                      window: window, payloadLength: payloadLength, options: options, time: time, rtt: rtt)
        }
        if fromOrig { update(&originator, responder) } else { update(&responder, originator) }
    }

    /// One packet's effect on its sender's side `own`; `peer` is the other side as it stands.
    @inline(__always)
    private static func sent(by own: inout TCPDirectionAnalysis, peer: TCPDirectionAnalysis, syn: Bool, fin: Bool, rst: Bool, ack: Bool,
                             sequence: UInt32, acknowledgement: UInt32, window: UInt16, payloadLength: Int, options: TCPOptions,
                             time: Int64, rtt: Int64) {
        if syn {
            if options.hasMSS { own.mss = options.mss }
            if options.hasWindowScale { own.windowScale = Int8(clamping: options.windowScale) }
            own.sackPermitted = own.sackPermitted || options.sackPermitted
            own.timestamps = own.timestamps || options.hasTimestamp
        }
        let length = UInt32(truncatingIfNeeded: max(0, payloadLength)) &+ (syn ? 1 : 0) &+ (fin ? 1 : 0)
        let end = sequence &+ length
        if length > 0 && own.hasNext && SequenceNumber.lessThan(sequence, own.nextSequence) {
            let keepAlive = payloadLength <= 1 && !syn && !fin && sequence &+ 1 == own.nextSequence
            if !keepAlive {
                if peer.hasLastAck && peer.consecutiveDuplicateAcks >= 2 && peer.lastAck == sequence
                    && time - peer.lastDuplicateAckTime < 20_000_000 {
                    own.fastRetransmissions &+= 1
                    own.retransmissions &+= 1
                } else if peer.hasLastAck && !SequenceNumber.lessThan(peer.lastAck, end) {
                    own.spuriousRetransmissions &+= 1
                    own.retransmissions &+= 1
                } else if time - own.nextSequenceTime < rtt && end != own.nextSequence {
                    own.outOfOrder &+= 1
                } else {
                    own.retransmissions &+= 1
                }
            }
        }
        if length > 0 && (!own.hasNext || SequenceNumber.lessThan(own.nextSequence, end)) {
            own.nextSequence = end
            own.nextSequenceTime = time
            own.hasNext = true
        }
        if payloadLength > 0 {
            own.dataSegments &+= 1
            if peer.hasLastAck {
                // Sent and not yet acknowledged by the peer, as far as the capture shows.
                let inFlight = own.nextSequence &- peer.lastAck
                if Int32(bitPattern: inFlight) > 0 { own.maxBytesInFlight = max(own.maxBytesInFlight, inFlight) }
            }
        }
        // This packet's acknowledgement of the peer's data.
        if ack && !syn {
            let duplicate = payloadLength == 0 && !fin && !rst && window != 0 && own.hasLastAck
                && acknowledgement == own.lastAck && window == own.lastWindow && (!own.hasNext || sequence == own.nextSequence)
            if duplicate {
                own.duplicateAcks &+= 1
                own.consecutiveDuplicateAcks &+= 1
                own.lastDuplicateAckTime = time
            } else if !own.hasLastAck || acknowledgement != own.lastAck || payloadLength > 0 {
                own.consecutiveDuplicateAcks = 0
            }
            own.lastAck = acknowledgement
            own.lastWindow = window
            own.hasLastAck = true
        } else if ack && syn {
            own.lastAck = acknowledgement
            own.lastWindow = window
            own.hasLastAck = true
        }
        if window == 0 && !syn && !fin && !rst { own.zeroWindows &+= 1 }
    }
}
