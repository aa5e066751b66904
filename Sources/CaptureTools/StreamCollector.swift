import FlowCore
import Flows
import PacketCore

/// A flow event sink that keeps each flow's bytes per direction until the flow
/// ends, then hands the finished flow to `onFinished`. Behind `flowtap streams`
/// and the stream tests.
///
/// Memory: at most `maxBytesPerDirection` bytes are kept per direction (the
/// rest is counted in `truncatedBytes`) and the lengths of at most
/// `maxListedDatagrams` datagrams (the rest counted in `datagramCount`), for
/// the flows open at once.
public struct StreamCollector: FlowEventSink {
    public struct Flow: Sendable {
        public var view: FlowView
        /// Bytes from endpoint 1 and from endpoint 2.
        public var streams: [[UInt8]] = [[], []]
        /// UDP/ICMP: the lengths of the first `StreamCollector.maxListedDatagrams` datagrams per direction, in order.
        public var datagrams: [[Int]] = [[], []]
        /// UDP/ICMP: every datagram per direction, listed or not.
        public var datagramCount: [Int] = [0, 0]
        public var gapBytes: [Int] = [0, 0]
        /// Of `gapBytes`, those after the direction's last delivered byte (sent but never captured at its end).
        public var trailingGapBytes: [Int] = [0, 0]
        public var truncatedBytes: [Int] = [0, 0]
        public var reason: DestroyReason = .timeout
        /// Whether endpoint 1 sent the flow's first packet (the originator, `src` in the record).
        public var firstSentFirst: Bool?
        public var destroyed: Timestamp = .zero
    }

    public static let maxListedDatagrams = 1 << 16
    public var maxBytesPerDirection: Int
    public var open: [UInt64: Flow] = [:]
    public var onFinished: (Flow) -> Void

    public init(maxBytesPerDirection: Int = 64 << 20, onFinished: @escaping (Flow) -> Void) {
        self.maxBytesPerDirection = maxBytesPerDirection
        self.onFinished = onFinished
    }

    public mutating func flowCreated(_ flow: FlowView, time: Timestamp) {
        open[flow.id] = Flow(view: flow)
        awaitingFirstPacket = flow.id
    }

    /// The flow created last, until its first packet names its originator.
    var awaitingFirstPacket: UInt64?

    /// The first packet names the originator, as flow records decide it (the SYN's sender, a SYN-ACK's receiver).
    /// The engine hands a flow's first packet right after creating it, so only that flow is looked up: one
    /// comparison per packet, not a dictionary access.
    public mutating func flowPacket(_ flow: FlowView, fromFirst: Bool, packet: FlowPacket, time: Timestamp) {
        guard awaitingFirstPacket == flow.id else { return }
        awaitingFirstPacket = nil
        open[flow.id]?.firstSentFirst = packet.tcpFlags & 0x12 == 0x12 ? !fromFirst : fromFirst
    }

    public mutating func flowData(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        // One dictionary access per event: the flow is changed in place.
        Self.add(bytes, to: &open[flow.id, default: Flow(view: flow)], direction: fromFirst ? 0 : 1,
                 datagram: flow.key.ipProtocol != 6, limit: maxBytesPerDirection)
    }

    static func add(_ bytes: UnsafeRawBufferPointer, to flow: inout Flow, direction d: Int, datagram: Bool, limit: Int) {
        if !bytes.isEmpty { flow.trailingGapBytes[d] = 0 }
        let room = max(0, limit - flow.streams[d].count)
        flow.streams[d].append(contentsOf: bytes.prefix(room))
        if bytes.count > room { flow.truncatedBytes[d] += bytes.count - room }
        if datagram {
            flow.datagramCount[d] += 1
            if flow.datagrams[d].count < maxListedDatagrams { flow.datagrams[d].append(bytes.count) }
        }
    }

    public mutating func flowGap(_ flow: FlowView, fromFirst: Bool, length: Int, time: Timestamp) {
        let d = fromFirst ? 0 : 1
        Self.gap(length, to: &open[flow.id, default: Flow(view: flow)], direction: d)
    }

    static func gap(_ length: Int, to flow: inout Flow, direction d: Int) {
        flow.gapBytes[d] += length
        flow.trailingGapBytes[d] += length
    }

    public mutating func flowDestroyed(_ flow: FlowView, reason: DestroyReason, time: Timestamp) {
        guard var finished = open.removeValue(forKey: flow.id) else { return }
        finished.reason = reason
        finished.destroyed = time
        onFinished(finished)
    }
}
