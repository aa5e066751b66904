import FlowCore
import Flows
import PacketCore
import SFTapCodec
import SFTapConfig

/// SF-TAP's L7 loopback (reference §2.4): analyzers write flows back — as
/// event headers, text or binary, with DATA bodies — and they are classified
/// and served like captured flows, one hop deeper.
///
/// - Headers are read by the same reader as every SF-TAP stream
///   (`SFTapEventReader`, one per connection): text `key=value` headers in any
///   order with unknown keys ignored (so output lines can be echoed back
///   unchanged), or 64-byte binary headers. Injected flows are TCP or UDP.
///   Optional: `from` (1 or 2, else none), `time` (epoch seconds; default
///   now), `vlan` (-1 untagged), `reason` (for DESTROYED).
/// - Endpoints are put in SF-TAP order (swapping flips `from`); `hop` is
///   incremented. Deeper than `hopLimit` is dropped and counted.
/// - Unlike the original, a DATA body may arrive in several reads (the
///   original closed the connection on a short read), and a UDP CREATED, a
///   header the reader rejects or an impossible length closes only that
///   connection (the original crashed on the first). Header lines are at most
///   4096 bytes and bodies at most `maxBody`.
/// - Bounds: at most `maxFlows` injected flows open at once over all
///   connections; a CREATED past it is dropped and counted (`droppedFlowLimit`).
/// - When an injecting connection closes, every flow it created and did not
///   destroy is destroyed (reason NORMAL).
public final class Loopback7Injector<Outputs: InterfaceOutputs> {
    public struct Counters: Sendable {
        public var events: UInt64 = 0
        public var droppedHopLimit: UInt64 = 0
        public var droppedFlowLimit: UInt64 = 0
        public var malformed: UInt64 = 0
        public var connectionsClosed: UInt64 = 0
    }

    public enum Verdict: Equatable {
        /// Bytes consumed; wait for more.
        case consumed(Int)
        /// The connection sent something invalid: close it (reason for the log).
        case close(String)
    }

    public let abstractor: Abstractor<Outputs>
    public let binary: Bool
    public let hopLimit: Int
    public let maxBody = 1 << 20
    public let maxFlows: Int
    public private(set) var counters = Counters()
    /// Per connection: its stream reader, and the flows it created.
    private var readers: [Int: SFTapEventReader] = [:]
    private var flows: [Int: [FlowKey: FlowView]] = [:]
    private var openFlows = 0
    private var freeSlots: [Int] = []
    private var nextSlot = 0
    private var nextID: UInt64 = 1 << 48
    private let now: () -> Timestamp

    public init(abstractor: Abstractor<Outputs>, binary: Bool, hopLimit: Int, maxFlows: Int = 65_536, now: @escaping () -> Timestamp) {
        self.abstractor = abstractor
        self.binary = binary
        self.hopLimit = hopLimit
        self.maxFlows = maxFlows
        self.now = now
    }

    /// Parses and applies every whole event in `bytes` (a partial one is kept by the connection's reader).
    public func receive(connection: Int, _ bytes: UnsafeRawBufferPointer) -> Verdict {
        var reader = readers[connection] ?? SFTapEventReader(format: binary ? .binary : .text, maxBody: maxBody)
        var failure: String?
        reader.feed(bytes, event: { event, body in
            guard failure == nil else { return }
            failure = apply(connection, event, body)
        }, error: { error in
            if failure == nil { failure = error.description }
        })
        readers[connection] = reader
        if let failure {
            counters.malformed &+= 1
            return .close(failure)
        }
        return .consumed(bytes.count)
    }

    /// The connection ended: destroy what it left open.
    public func closed(connection: Int) {
        counters.connectionsClosed &+= 1
        readers[connection] = nil
        guard let open = flows.removeValue(forKey: connection) else { return }
        for (_, view) in open {
            abstractor.flowDestroyed(view, reason: .normal, time: now())
            freeSlots.append(view.slot)
            openFlows -= 1
        }
    }

    /// Feeds one injected event to the abstractor. Returns why the connection must close, or nil.
    private func apply(_ connection: Int, _ e: SFTapEvent, _ body: UnsafeRawBufferPointer) -> String? {
        guard e.transport == 6 || e.transport == 17 else { return "l4 must be tcp or udp: only TCP and UDP flows can be injected" }
        if e.transport == 17 && e.kind == .created { return "UDP flows have no CREATED event" }
        guard Int(e.hop) + 1 <= hopLimit else {
            counters.droppedHopLimit &+= 1
            return nil
        }
        counters.events &+= 1
        // SF-TAP order: the lower (address, port) is endpoint 1; swapping flips `from`.
        let swapped = !FlowKey.ordersFirst(e.address1, e.port1, e.address2, e.port2)
        let vlan = e.vlan <= 4094 ? e.vlan : FlowKey.noVLAN
        let key = FlowKey.make(source: e.address1, sourcePort: e.port1, destination: e.address2, destinationPort: e.port2,
                               ipProtocol: e.transport, vlan: vlan, hop: UInt8(clamping: Int(e.hop) + 1)).key
        let fromFirst = e.fromFirst.map { swapped ? !$0 : $0 } ?? true
        let time = e.time == .zero ? now() : e.time
        if e.transport == 17 {
            if e.kind == .data {
                abstractor.flowData(FlowView(key: key, id: 0, slot: 0, created: time), fromFirst: fromFirst, bytes: body, time: time)
            }
            return nil
        }
        switch e.kind {
        case .created:
            if flows[connection]?[key] != nil { return nil }
            guard openFlows < maxFlows else {
                counters.droppedFlowLimit &+= 1
                return nil
            }
            let slot = freeSlots.popLast() ?? { nextSlot += 1; return nextSlot - 1 }()
            let view = FlowView(key: key, id: nextID, slot: slot, created: time)
            nextID &+= 1
            openFlows += 1
            flows[connection, default: [:]][key] = view
            abstractor.flowCreated(view, time: time)
        case .data:
            guard let view = flows[connection]?[key] else { return nil } // DATA without CREATED is ignored
            abstractor.flowData(view, fromFirst: fromFirst, bytes: body, time: time)
        case .destroyed:
            guard let view = flows[connection]?.removeValue(forKey: key) else { return nil }
            abstractor.flowDestroyed(view, reason: DestroyReason(rawValue: e.reason) ?? .normal, time: time)
            freeSlots.append(view.slot)
            openFlows -= 1
        }
        return nil
    }
}
