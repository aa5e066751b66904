import Flows
import Wire
import PacketCore

/// What a consumer of flow events sees of a flow.
public struct FlowView: Sendable {
    public var key: FlowKey
    /// Unique per run, in creation order.
    public var id: UInt64
    /// The flow table slot (reused after the flow ends).
    public var slot: Int
    public var created: Timestamp

    public init(key: FlowKey, id: UInt64, slot: Int, created: Timestamp) {
        self.key = key
        self.id = id
        self.slot = slot
        self.created = created
    }
}

/// What flow records count of one packet (`FlowEventSink.flowPacket`).
public struct FlowPacket: Sendable {
    /// The captured frame's length on the wire (for a reassembled IP datagram, the frame that completed it).
    public var frameLength: Int
    /// The IP datagram's length: IPv4 total length, IPv6 header plus payload length.
    public var ipLength: Int
    /// Transport payload bytes the headers announce.
    public var payloadLength: Int
    /// TCP flags (0 for other transports), sequence and acknowledgement numbers and window.
    public var tcpFlags: UInt8
    public var sequence: UInt32
    public var acknowledgement: UInt32
    public var window: UInt16
    /// TCP options (MSS, window scale, SACK, timestamps).
    public var tcpOptions: TCPOptions

    public init(frameLength: Int, ipLength: Int, payloadLength: Int, tcpFlags: UInt8 = 0, sequence: UInt32 = 0, acknowledgement: UInt32 = 0,
                window: UInt16 = 0, tcpOptions: TCPOptions = TCPOptions()) {
        self.frameLength = frameLength
        self.ipLength = ipLength
        self.payloadLength = payloadLength
        self.tcpFlags = tcpFlags
        self.sequence = sequence
        self.acknowledgement = acknowledgement
        self.window = window
        self.tcpOptions = tcpOptions
    }
}

/// Receives the flow engine's events: SF-TAP's CREATED, DATA and DESTROYED (reference §2.3).
///
/// The engine is generic over its sink, so calls are static; the sink lives
/// inside the engine and is reached through `FlowEngine.sink`.
public protocol FlowEventSink {
    /// A flow's first packet was seen (for TCP: the first that can start a stream).
    mutating func flowCreated(_ flow: FlowView, time: Timestamp)
    /// In-order bytes from endpoint 1 (`fromFirst`) or 2: reassembled TCP data,
    /// a UDP payload, or a whole ICMP message. `bytes` is valid only during the call.
    mutating func flowData(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp)
    /// `length` bytes of a TCP stream were never captured and are skipped.
    mutating func flowGap(_ flow: FlowView, fromFirst: Bool, length: Int, time: Timestamp)
    mutating func flowDestroyed(_ flow: FlowView, reason: DestroyReason, time: Timestamp)
    /// Every packet of a flow as it arrives, before its data is delivered, including the packets a closed
    /// TCP connection absorbs while it lingers. Flow records count here; the default does nothing.
    mutating func flowPacket(_ flow: FlowView, fromFirst: Bool, packet: FlowPacket, time: Timestamp)
    /// The flow left the table: after DESTROYED, and for a closed TCP connection after it lingered. No
    /// packet is counted for it afterwards; the slot may be reused.
    mutating func flowReleased(_ flow: FlowView, time: Timestamp)
    /// The input ended: the flows destroyed and released next end because of it, not of their own.
    mutating func inputEnded(time: Timestamp)
    /// The engine reserved room for `slots` flow-table slots: per-slot state can be reserved at once
    /// (address space) rather than grown by doubling, which copies it and holds both copies at once.
    mutating func reserveSlots(_ slots: Int)
}

extension FlowEventSink {
    public mutating func reserveSlots(_ slots: Int) {}
    public mutating func flowGap(_ flow: FlowView, fromFirst: Bool, length: Int, time: Timestamp) {}
    @inline(__always)
    public mutating func flowPacket(_ flow: FlowView, fromFirst: Bool, packet: FlowPacket, time: Timestamp) {}
    @inline(__always)
    public mutating func flowReleased(_ flow: FlowView, time: Timestamp) {}
    public mutating func inputEnded(time: Timestamp) {}
}
