import Flows
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
    /// The engine reserved room for `slots` flow-table slots: per-slot state can be reserved at once
    /// (address space) rather than grown by doubling, which copies it and holds both copies at once.
    mutating func reserveSlots(_ slots: Int)
}

extension FlowEventSink {
    public mutating func reserveSlots(_ slots: Int) {}
    public mutating func flowGap(_ flow: FlowView, fromFirst: Bool, length: Int, time: Timestamp) {}
}
