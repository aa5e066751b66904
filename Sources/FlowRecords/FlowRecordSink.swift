import FlowCore
import FlowDispatch
import FlowExport
import Flows
import Outputs
import PacketCore
import Reassembly
import RecordModel
import Wire

/// One JSON record per flow when it leaves the flow table, in Suricata EVE's `flow` shape (so EVE tooling
/// loads it) with Zeek's connection summary beside it:
///
///     {"timestamp","flow_id","community_id","event_type":"flow","src_ip","src_port","dest_ip","dest_port",
///      "proto","app_proto"?,"vlan"?:[id],"icmp_type"?,"icmp_code"?,
///      "flow":{"pkts_toserver","pkts_toclient","bytes_toserver","bytes_toclient","start","end","age","state","reason",
///              "conn_state","history","missed_bytes","duration","payload_bytes_toserver","payload_bytes_toclient",
///              "ip_bytes_toserver","ip_bytes_toclient"},
///      "tcp"?:{"tcp_flags","tcp_flags_ts","tcp_flags_tc","syn"?,"fin"?,"rst"?,"psh"?,"ack"?,"urg"?,"ecn"?,"cwr"?}}
///
/// - `src` is the originator: the sender of the first SYN; the receiver when the first packet seen is a
///   SYN-ACK (history then starts with "^"); otherwise the sender of the first packet.
/// - Packets and bytes count every packet of the flow as captured, whole frames as Suricata counts them
///   (a reassembled IP datagram: the frame that completed it), including the late ACKs and retransmitted
///   FINs a closed connection absorbs while it lingers. `ip_bytes_*` are Zeek's `orig_ip_bytes`/`resp_ip_bytes`
///   (IP total lengths); `payload_bytes_*` are Zeek's `orig_bytes`/`resp_bytes` (TCP: stream bytes
///   delivered plus missed; UDP and ICMP: payload); `missed_bytes` counts TCP bytes reassembly skipped.
/// - `state`: `closed` for a TCP connection that ended by FIN or RST, `established` when both sides sent,
///   else `new`. `reason`: `shutdown` when the input ended, `forced` when the flow table evicted it, else
///   `timeout` (a closed connection leaves the table after lingering, as in Suricata).
/// - `conn_state` and `history` follow Zeek's definitions (`ConnectionSummary`, `HistoryLetters`).
/// - `app_proto` is the protocol built-in routing reads from the first bytes (`ServiceGuess`), absent when none.
/// - `flow_id` is `FlowID` (from the key and the first packet's time: the same in `analyze`'s records of the
///   flow, whatever the thread count); `community_id` is Community ID v1. The shared fields are `RecordFlow`'s.
///
/// Memory: one fixed-size state per flow-table slot (`reserveSlots`), nothing allocated per packet.
public final class FlowRecordSink: FlowEventSink {
    public struct Counters: Sendable {
        public var records: UInt64 = 0
        /// Interval records written for long flows (with `interval`).
        public var intervalRecords: UInt64 = 0
        public init() {}
    }

    struct Side {
        var packets: UInt64 = 0
        var frameBytes: UInt64 = 0
        var ipBytes: UInt64 = 0
        var payloadBytes: UInt64 = 0
        var missedBytes: UInt64 = 0
        var tcpFlags: UInt8 = 0
        var state = EndpointState.inactive
        /// Letters recorded once, as bits: A 1, D 2, I 4, Q 8.
        var once: UInt8 = 0
        /// Last sequence numbers of S/H, F and R letters, and which are set.
        var lastSYN: UInt32 = 0, lastFIN: UInt32 = 0, lastRST: UInt32 = 0
        var lastSet: UInt8 = 0
        /// The end of the highest data sent so far (for retransmissions).
        var highest: UInt32 = 0
        var hasHighest = false
        var retransmissions: UInt32 = 0
        var zeroWindows: UInt32 = 0
        var gaps: UInt32 = 0
        var serviceChunks: UInt8 = 0
        /// This direction's first and last packet (nanoseconds), for export.
        var firstPacket: Int64 = 0
        var lastPacket: Int64 = 0
        /// ICMP: type × 256 + code of this direction's first message, and whether one was seen.
        var icmpTypeCode: UInt16 = 0
        var icmpSeen = false
        /// What earlier exports (interval records) already carried, and the first packet after them.
        var exportedPackets: UInt64 = 0
        var exportedIPBytes: UInt64 = 0
        var unexportedFirst: Int64 = 0
    }

    struct State {
        var id: UInt64 = 0
        var live = false
        /// Whether endpoint 1 of the flow key is the originator.
        var firstIsOrig = true
        var started = false
        var start = Timestamp.zero
        var end = Timestamp.zero
        var first = Side()
        var second = Side()
        var history = HistoryLetters()
        var service: String?
        var serviceFinal = false
        var icmpType: UInt8 = 0
        var icmpCode: UInt8 = 0
        var icmpSeen = false
        var closedOrReset = false
        var evicted = false
        var tcp = TCPAnalysis()
        /// When the last interval record was written (or the flow started).
        var lastInterval: Int64 = 0
    }

    public private(set) var counters = Counters()
    private var states: [State] = []
    private var inputEnded = false
    private var writer = JSONWriter(capacity: 1024)
    private let emit: ((UnsafeRawBufferPointer) -> Void)?
    /// Community ID seed (0 unless the user chose another, as every tool must agree on it).
    public var communityIDSeed: UInt16 = 0
    /// NetFlow/IPFIX collectors every ended flow is also exported to (two records: one per direction that sent).
    public var exporters: [UDPExporter] = []
    /// With a positive value (nanoseconds of packet time), a flow active that long since its start or its
    /// last interval record gets another: a JSON record with `"reason":"interval"` and its totals so far,
    /// and export records with what it sent since the last export (NetFlow's active timeout).
    public var interval: Int64 = 0
    /// The latest time a flow started or ended at: the exporters' clock.
    public private(set) var clock = Timestamp.zero

    /// `emit` receives each JSON record, one line with its newline, valid during the call; nil writes
    /// none (export only).
    public init(emit: ((UnsafeRawBufferPointer) -> Void)?) {
        self.emit = emit
    }

    /// Sends what the exporters hold (at the end of the input).
    public func flushExports() {
        for exporter in exporters { exporter.flush(now: clock) }
    }

    public func reserveSlots(_ slots: Int) { states.reserveCapacity(slots) }

    public func inputEnded(time: Timestamp) { inputEnded = true }

    public func flowCreated(_ flow: FlowView, time: Timestamp) {
        if flow.slot >= states.count { states.append(contentsOf: repeatElement(State(), count: flow.slot + 1 - states.count)) }
        states[flow.slot] = State(id: flow.id, live: true, start: time, end: time)
        states[flow.slot].lastInterval = time.nanoseconds
        // New flows move the exporters' clock: a message that waited long enough for company goes out.
        if !exporters.isEmpty && time > clock {
            clock = time
            for exporter in exporters { exporter.flushIfDue(now: time) }
        }
    }

    public func flowPacket(_ flow: FlowView, fromFirst: Bool, packet: FlowPacket, time: Timestamp) {
        guard flow.slot < states.count, states[flow.slot].id == flow.id else { return }
        let flags = packet.tcpFlags
        if !states[flow.slot].started {
            states[flow.slot].started = true
            let synAck = flags & 0x12 == 0x12
            states[flow.slot].firstIsOrig = synAck ? !fromFirst : fromFirst
            if synAck { states[flow.slot].history.append(UInt8(ascii: "^")) }
        }
        // Zeek's duration ends when the connection closed: packets after both sides closed (the last ACK,
        // retransmitted FINs) are counted but do not extend it.
        if !(Self.ended(states[flow.slot].first.state) && Self.ended(states[flow.slot].second.state)) { states[flow.slot].end = time }
        let fromOrig = fromFirst == states[flow.slot].firstIsOrig
        withSide(flow.slot, fromFirst) { side in
            if side.packets == 0 { side.firstPacket = time.nanoseconds }
            if side.packets == side.exportedPackets { side.unexportedFirst = time.nanoseconds }
            side.lastPacket = time.nanoseconds
            side.packets &+= 1
            side.frameBytes &+= UInt64(packet.frameLength)
            side.ipBytes &+= UInt64(max(0, packet.ipLength))
            side.tcpFlags |= flags
        }
        if flow.key.ipProtocol == 6 {
            tcpPacket(flow.slot, fromFirst: fromFirst, fromOrig: fromOrig, packet, time: time)
        } else if flow.key.ipProtocol == 17 && packet.payloadLength > 0 {
            once(flow.slot, fromFirst: fromFirst, fromOrig: fromOrig, bit: 2, "D")
        }
        if interval > 0 && time.nanoseconds - states[flow.slot].lastInterval >= interval {
            states[flow.slot].lastInterval = time.nanoseconds
            if time > clock { clock = time }
            if emit != nil { write(flow, states[flow.slot], reason: "interval") }
            if !exporters.isEmpty { export(flow, slot: flow.slot, reason: .activeTimeout) }
            counters.intervalRecords &+= 1
        }
    }

    /// History letters and endpoint states for one TCP packet.
    private func tcpPacket(_ slot: Int, fromFirst: Bool, fromOrig: Bool, _ p: FlowPacket, time: Timestamp) {
        let flags = p.tcpFlags
        let syn = flags & 0x02 != 0, fin = flags & 0x01 != 0, rst = flags & 0x04 != 0, ack = flags & 0x10 != 0
        if syn && (fin || rst) {
            once(slot, fromFirst: fromFirst, fromOrig: fromOrig, bit: 8, "Q")
        } else {
            if syn { repeating(slot, fromFirst: fromFirst, fromOrig: fromOrig, bit: 1, sequence: p.sequence, ack ? "H" : "S") }
            if fin && rst {
                once(slot, fromFirst: fromFirst, fromOrig: fromOrig, bit: 4, "I")
            } else if fin {
                repeating(slot, fromFirst: fromFirst, fromOrig: fromOrig, bit: 2, sequence: p.sequence, "F")
            } else if rst {
                repeating(slot, fromFirst: fromFirst, fromOrig: fromOrig, bit: 4, sequence: p.sequence, "R")
            }
        }
        if p.payloadLength > 0 {
            once(slot, fromFirst: fromFirst, fromOrig: fromOrig, bit: 2, "D")
            let end = p.sequence &+ UInt32(truncatingIfNeeded: p.payloadLength)
            var retransmitted = false
            withSide(slot, fromFirst) { side in
                if side.hasHighest && SequenceNumber.lessThan(p.sequence, side.highest) {
                    retransmitted = true
                    side.retransmissions &+= 1
                }
                if !side.hasHighest || SequenceNumber.lessThan(side.highest, end) { side.highest = end }
                side.hasHighest = true
            }
            if retransmitted { logarithmic(slot, fromFirst: fromFirst, fromOrig: fromOrig, \.retransmissions, "T") }
        } else if ack && !syn && !fin && !rst {
            once(slot, fromFirst: fromFirst, fromOrig: fromOrig, bit: 1, "A")
        }
        if syn { withSide(slot, fromFirst) { side in side.highest = p.sequence &+ 1; side.hasHighest = true } }
        if p.window == 0 && !syn && !fin && !rst {
            withSide(slot, fromFirst) { $0.zeroWindows &+= 1 }
            logarithmic(slot, fromFirst: fromFirst, fromOrig: fromOrig, \.zeroWindows, "W")
        }
        var own = fromFirst ? states[slot].first.state : states[slot].second.state
        var peer = fromFirst ? states[slot].second.state : states[slot].first.state
        ConnectionSummary.advance(&own, peer: &peer, flags: flags)
        if fromFirst {
            states[slot].first.state = own
            states[slot].second.state = peer
        } else {
            states[slot].second.state = own
            states[slot].first.state = peer
        }
        if fin || rst { states[slot].closedOrReset = true }
        states[slot].tcp.packet(fromOrig: fromOrig, flags: flags, sequence: p.sequence, acknowledgement: p.acknowledgement, window: p.window,
                                payloadLength: p.payloadLength, options: p.tcpOptions, time: time.nanoseconds)
    }

    static func ended(_ s: EndpointState) -> Bool { s == .closed || s == .reset }

    @inline(__always)
    private func withSide(_ slot: Int, _ fromFirst: Bool, _ body: (inout Side) -> Void) {
        if fromFirst { body(&states[slot].first) } else { body(&states[slot].second) }
    }

    private func letter(_ c: Character, fromOrig: Bool) -> UInt8 {
        let byte = c.asciiValue!
        return fromOrig ? byte : (byte | 0x20)
    }

    private func once(_ slot: Int, fromFirst: Bool, fromOrig: Bool, bit: UInt8, _ c: Character) {
        var fresh = false
        withSide(slot, fromFirst) { side in
            if side.once & bit == 0 { side.once |= bit; fresh = true }
        }
        if fresh { states[slot].history.append(letter(c, fromOrig: fromOrig)) }
    }

    private func repeating(_ slot: Int, fromFirst: Bool, fromOrig: Bool, bit: UInt8, sequence: UInt32, _ c: Character) {
        var fresh = false
        withSide(slot, fromFirst) { side in
            let last = bit == 1 ? side.lastSYN : bit == 2 ? side.lastFIN : side.lastRST
            if side.lastSet & bit == 0 || last != sequence {
                fresh = true
                side.lastSet |= bit
                if bit == 1 { side.lastSYN = sequence } else if bit == 2 { side.lastFIN = sequence } else { side.lastRST = sequence }
            }
        }
        if fresh { states[slot].history.append(letter(c, fromOrig: fromOrig)) }
    }

    /// A letter at the 1st, 10th, 100th … occurrence of what `counter` counts.
    private func logarithmic(_ slot: Int, fromFirst: Bool, fromOrig: Bool, _ counter: KeyPath<Side, UInt32>, _ c: Character) {
        let n = fromFirst ? states[slot].first[keyPath: counter] : states[slot].second[keyPath: counter]
        var power: UInt32 = 1
        while power < n && power < 1_000_000_000 { power *= 10 }
        if power == n { states[slot].history.append(letter(c, fromOrig: fromOrig)) }
    }

    public func flowData(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        guard flow.slot < states.count, states[flow.slot].id == flow.id else { return }
        let slot = flow.slot
        withSide(slot, fromFirst) { $0.payloadBytes &+= UInt64(bytes.count) }
        switch flow.key.ipProtocol {
        case 6:
            // Each direction's first two chunks are read, as built-in routing reads them; no more, so a
            // long transfer of an unknown protocol costs nothing per chunk.
            guard !states[slot].serviceFinal, !bytes.isEmpty,
                  (fromFirst ? states[slot].first : states[slot].second).serviceChunks < 2 else { return }
            withSide(slot, fromFirst) { $0.serviceChunks &+= 1 }
            if let name = ServiceGuess.tcp(bytes, key: flow.key, fromFirst: fromFirst) {
                states[slot].service = name
                states[slot].serviceFinal = true
            }
        case 17:
            if !states[slot].serviceFinal {
                states[slot].service = ServiceGuess.udp(bytes, key: flow.key)
                states[slot].serviceFinal = true
            }
        default:
            if bytes.count >= 2 {
                withSide(slot, fromFirst) { side in
                    if !side.icmpSeen { side.icmpSeen = true; side.icmpTypeCode = UInt16(bytes[0]) << 8 | UInt16(bytes[1]) }
                }
            }
            if !states[slot].icmpSeen && bytes.count >= 2 {
                states[slot].icmpSeen = true
                states[slot].icmpType = bytes[0]
                states[slot].icmpCode = bytes[1]
            }
        }
    }

    public func flowGap(_ flow: FlowView, fromFirst: Bool, length: Int, time: Timestamp) {
        guard flow.slot < states.count, states[flow.slot].id == flow.id else { return }
        withSide(flow.slot, fromFirst) { side in
            side.missedBytes &+= UInt64(length)
            side.payloadBytes &+= UInt64(length)
            side.gaps &+= 1
        }
        let fromOrig = fromFirst == states[flow.slot].firstIsOrig
        logarithmic(flow.slot, fromFirst: fromFirst, fromOrig: fromOrig, \.gaps, "G")
    }

    public func flowDestroyed(_ flow: FlowView, reason: DestroyReason, time: Timestamp) {
        guard flow.slot < states.count, states[flow.slot].id == flow.id else { return }
        if reason == .compromised { states[flow.slot].evicted = true }
    }

    public func flowReleased(_ flow: FlowView, time: Timestamp) {
        guard flow.slot < states.count, states[flow.slot].id == flow.id, states[flow.slot].live else { return }
        states[flow.slot].live = false
        if time > clock { clock = time }
        let s = states[flow.slot]
        if emit != nil { write(flow, s, reason: inputEnded ? "shutdown" : s.evicted ? "forced" : "timeout") }
        if !exporters.isEmpty {
            let closed = flow.key.ipProtocol == 6 && s.closedOrReset
            export(flow, slot: flow.slot, reason: inputEnded ? .forcedEnd : s.evicted ? .lackOfResources : closed ? .endOfFlow : .idleTimeout)
        }
        counters.records &+= 1
    }

    // MARK: Export

    /// Each direction's packets and bytes since the last export (all of them without interval records),
    /// from its first packet since then to its last.
    private func export(_ flow: FlowView, slot: Int, reason: ExportedFlow.EndReason) {
        let key = flow.key
        let vlan = key.vlan == FlowKey.noVLAN ? 0 : key.vlan
        let firstIsOrig = states[slot].firstIsOrig
        for firstSide in [firstIsOrig, !firstIsOrig] {
            let side = firstSide ? states[slot].first : states[slot].second
            guard side.packets > side.exportedPackets else { continue }
            let record = ExportedFlow(
                source: firstSide ? key.address1 : key.address2, destination: firstSide ? key.address2 : key.address1,
                sourcePort: firstSide ? key.port1 : key.port2, destinationPort: firstSide ? key.port2 : key.port1,
                ipProtocol: key.ipProtocol, tcpFlags: side.tcpFlags, packets: side.packets - side.exportedPackets,
                bytes: side.ipBytes - side.exportedIPBytes, start: Timestamp(nanoseconds: side.unexportedFirst),
                end: Timestamp(nanoseconds: side.lastPacket), vlan: vlan, icmpTypeCode: side.icmpTypeCode, endReason: reason,
                fromOriginator: firstSide == firstIsOrig)
            for exporter in exporters { exporter.export(record, now: clock) }
            withSide(slot, firstSide) { side in
                side.exportedPackets = side.packets
                side.exportedIPBytes = side.ipBytes
            }
        }
    }

    // MARK: The record

    private func write(_ flow: FlowView, _ s: State, reason: String) {
        let key = flow.key
        let orig = s.firstIsOrig ? s.first : s.second, resp = s.firstIsOrig ? s.second : s.first
        let origAddress = s.firstIsOrig ? key.address1 : key.address2, respAddress = s.firstIsOrig ? key.address2 : key.address1
        let origPort = s.firstIsOrig ? key.port1 : key.port2, respPort = s.firstIsOrig ? key.port2 : key.port1
        let icmp = key.ipProtocol == 1 || key.ipProtocol == 58
        writer.reset()
        writer.beginObject()
        writer.timestamp("timestamp", s.start)
        writer.number("flow_id", Int(truncatingIfNeeded: FlowID.make(key: key, created: flow.created)))
        writer.string("event_type", "flow")
        writer.flowMembers(key: key, originatorIsFirst: s.firstIsOrig, communityIDSeed: communityIDSeed, icmp: icmp ? (s.icmpType, s.icmpCode) : nil)
        if let service = s.service { writer.string("app_proto", service) }
        if icmp && s.icmpSeen {
            writer.number("icmp_type", Int(s.icmpType))
            writer.number("icmp_code", Int(s.icmpCode))
        }
        writer.beginObject("flow")
        writer.number("pkts_toserver", Int(truncatingIfNeeded: orig.packets))
        writer.number("pkts_toclient", Int(truncatingIfNeeded: resp.packets))
        writer.number("bytes_toserver", Int(truncatingIfNeeded: orig.frameBytes))
        writer.number("bytes_toclient", Int(truncatingIfNeeded: resp.frameBytes))
        writer.timestamp("start", s.start)
        writer.timestamp("end", s.end)
        writer.number("age", Int(s.end.seconds - s.start.seconds))
        let state = key.ipProtocol == 6 && s.closedOrReset ? "closed" : (orig.packets > 0 && resp.packets > 0 ? "established" : "new")
        writer.string("state", state)
        writer.string("reason", reason)
        let connState: String = switch key.ipProtocol {
        case 6: ConnectionSummary.tcpState(orig: orig.state, resp: resp.state, origBytes: orig.payloadBytes, respBytes: resp.payloadBytes, history: s.history)
        case 17: ConnectionSummary.datagramState(origSent: orig.packets > 0, respSent: resp.packets > 0)
        default: "OTH"
        }
        writer.string("conn_state", connState)
        s.history.withLetters { writer.string("history", bytes: $0) }
        writer.number("missed_bytes", Int(truncatingIfNeeded: orig.missedBytes + resp.missedBytes))
        writer.number("duration", Double(s.end.nanoseconds - s.start.nanoseconds) / 1e9)
        writer.number("payload_bytes_toserver", Int(truncatingIfNeeded: orig.payloadBytes))
        writer.number("payload_bytes_toclient", Int(truncatingIfNeeded: resp.payloadBytes))
        writer.number("ip_bytes_toserver", Int(truncatingIfNeeded: orig.ipBytes))
        writer.number("ip_bytes_toclient", Int(truncatingIfNeeded: resp.ipBytes))
        writer.endObject()
        if key.ipProtocol == 6 {
            writer.beginObject("tcp")
            writer.hexByte("tcp_flags", orig.tcpFlags | resp.tcpFlags)
            writer.hexByte("tcp_flags_ts", orig.tcpFlags)
            writer.hexByte("tcp_flags_tc", resp.tcpFlags)
            let all = orig.tcpFlags | resp.tcpFlags
            for (bit, name) in Self.flagNames where Int(all) & bit != 0 {
                writer.bool(name, true)
            }
            writeAnalysis(s.tcp)
            writer.endObject()
        }
        writer.endObject()
        if let emit { writer.withLine(emit) }
    }

    /// `tcp.analysis`: handshake RTTs (seconds, when the handshake was seen), and per direction what
    /// `TCPDirectionAnalysis` counts, the negotiated options and a loss estimate.
    /// EVE's names of the TCP flags, in EVE's order (a table, not an array per record).
    static let flagNames: [(Int, StaticString)] = [(0x02, "syn"), (0x01, "fin"), (0x04, "rst"), (0x08, "psh"), (0x10, "ack"), (0x20, "urg"), (0x40, "ecn"), (0x80, "cwr")]

    private func writeAnalysis(_ a: TCPAnalysis) {
        writer.beginObject("analysis")
        if let rtt = a.initialRTT { writer.number("rtt_initial", rtt) }
        if let rtt = a.originatorRTT { writer.number("rtt_client", rtt) }
        if let rtt = a.responderRTT { writer.number("rtt_server", rtt) }
        func direction(_ key: StaticString, _ d: TCPDirectionAnalysis) {
            writer.beginObject(key)
            writer.number("retransmissions", Int(d.retransmissions))
            writer.number("fast_retransmissions", Int(d.fastRetransmissions))
            writer.number("spurious_retransmissions", Int(d.spuriousRetransmissions))
            writer.number("out_of_order", Int(d.outOfOrder))
            writer.number("duplicate_acks", Int(d.duplicateAcks))
            writer.number("zero_windows", Int(d.zeroWindows))
            writer.number("max_bytes_in_flight", Int(d.maxBytesInFlight))
            writer.number("data_segments", Int(d.dataSegments))
            writer.number("loss_rate", d.dataSegments == 0 ? 0 : Double(d.retransmissions) / Double(d.dataSegments))
            if d.mss > 0 { writer.number("mss", Int(d.mss)) }
            if d.windowScale >= 0 { writer.number("window_scale", Int(d.windowScale)) }
            if d.sackPermitted { writer.bool("sack_permitted", true) }
            if d.timestamps { writer.bool("timestamps", true) }
            writer.endObject()
        }
        direction("toserver", a.originator)
        direction("toclient", a.responder)
        writer.endObject()
    }

}
