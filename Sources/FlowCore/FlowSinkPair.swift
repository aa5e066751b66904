import Flows
import PacketCore

/// Two sinks fed the same events, in order (`first`, then `second`): a command's own sink and a second
/// consumer of the same flows, such as `analyze --export`'s flow records. Generic, so each call is
/// still a direct call.
public struct FlowSinkPair<First: FlowEventSink, Second: FlowEventSink>: FlowEventSink {
    public var first: First
    public var second: Second

    public init(_ first: First, _ second: Second) {
        self.first = first
        self.second = second
    }

    @inline(__always)
    public mutating func flowCreated(_ flow: FlowView, time: Timestamp) {
        first.flowCreated(flow, time: time)
        second.flowCreated(flow, time: time)
    }

    @inline(__always)
    public mutating func flowData(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        first.flowData(flow, fromFirst: fromFirst, bytes: bytes, time: time)
        second.flowData(flow, fromFirst: fromFirst, bytes: bytes, time: time)
    }

    @inline(__always)
    public mutating func flowGap(_ flow: FlowView, fromFirst: Bool, length: Int, time: Timestamp) {
        first.flowGap(flow, fromFirst: fromFirst, length: length, time: time)
        second.flowGap(flow, fromFirst: fromFirst, length: length, time: time)
    }

    @inline(__always)
    public mutating func flowDestroyed(_ flow: FlowView, reason: DestroyReason, time: Timestamp) {
        first.flowDestroyed(flow, reason: reason, time: time)
        second.flowDestroyed(flow, reason: reason, time: time)
    }

    @inline(__always)
    public mutating func flowPacket(_ flow: FlowView, fromFirst: Bool, packet: FlowPacket, time: Timestamp) {
        first.flowPacket(flow, fromFirst: fromFirst, packet: packet, time: time)
        second.flowPacket(flow, fromFirst: fromFirst, packet: packet, time: time)
    }

    @inline(__always)
    public mutating func flowReleased(_ flow: FlowView, time: Timestamp) {
        first.flowReleased(flow, time: time)
        second.flowReleased(flow, time: time)
    }

    public mutating func inputEnded(time: Timestamp) {
        first.inputEnded(time: time)
        second.inputEnded(time: time)
    }

    public mutating func reserveSlots(_ slots: Int) {
        first.reserveSlots(slots)
        second.reserveSlots(slots)
    }
}

/// A sink that may be absent: `FlowSinkPair<A, B?>` feeds `B` only when there is one (a command's
/// optional second consumer, such as `abstract --export`), at the cost of one branch per event.
extension Optional: FlowEventSink where Wrapped: FlowEventSink {
    @inline(__always)
    public mutating func flowCreated(_ flow: FlowView, time: Timestamp) { self?.flowCreated(flow, time: time) }

    @inline(__always)
    public mutating func flowData(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        self?.flowData(flow, fromFirst: fromFirst, bytes: bytes, time: time)
    }

    @inline(__always)
    public mutating func flowGap(_ flow: FlowView, fromFirst: Bool, length: Int, time: Timestamp) {
        self?.flowGap(flow, fromFirst: fromFirst, length: length, time: time)
    }

    @inline(__always)
    public mutating func flowDestroyed(_ flow: FlowView, reason: DestroyReason, time: Timestamp) {
        self?.flowDestroyed(flow, reason: reason, time: time)
    }

    @inline(__always)
    public mutating func flowPacket(_ flow: FlowView, fromFirst: Bool, packet: FlowPacket, time: Timestamp) {
        self?.flowPacket(flow, fromFirst: fromFirst, packet: packet, time: time)
    }

    @inline(__always)
    public mutating func flowReleased(_ flow: FlowView, time: Timestamp) { self?.flowReleased(flow, time: time) }

    public mutating func inputEnded(time: Timestamp) { self?.inputEnded(time: time) }

    public mutating func reserveSlots(_ slots: Int) { self?.reserveSlots(slots) }
}
