import Flows
import PacketCore
import SFTapConfig

/// SF-TAP's L7 loopback (reference §2.4): analyzers write flows back — as
/// event headers, text or binary, with DATA bodies — and they are classified
/// and served like captured flows, one hop deeper.
///
/// - Text headers: `key=value` pairs split on `,`; unknown keys are ignored
///   (so output lines can be echoed back unchanged). Required: `l3`, `l4`,
///   `ip1`, `ip2`, `port1`, `port2`, `hop`, `event`; DATA needs `len`.
///   Optional: `from` (1 or 2, else none), `time` (epoch seconds; default
///   now), `vlan` (-1 untagged), `reason` (for DESTROYED).
/// - Endpoints are put in SF-TAP order (swapping flips `from`); `hop` is
///   incremented. Deeper than `hopLimit` is dropped and counted.
/// - Unlike the original, a DATA body may arrive in several reads (the
///   original closed the connection on a short read), and a UDP CREATED, a
///   malformed header or an impossible length closes only that connection
///   (the original crashed on the first). Header lines are at most 4096
///   bytes and bodies at most `maxBody`.
/// - When an injecting connection closes, every flow it created and did not
///   destroy is destroyed (reason NORMAL).
public final class Loopback7Injector<Outputs: InterfaceOutputs> {
    public struct Counters: Sendable {
        public var events: UInt64 = 0
        public var droppedHopLimit: UInt64 = 0
        public var malformed: UInt64 = 0
        public var connectionsClosed: UInt64 = 0
    }

    public enum Verdict: Equatable {
        /// Bytes consumed; wait for more.
        case consumed(Int)
        /// The connection sent something invalid: close it (reason for the log).
        case close(String)
    }

    struct Injected {
        var view: FlowView
    }

    public let abstractor: Abstractor<Outputs>
    public let binary: Bool
    public let hopLimit: Int
    public let maxBody = 1 << 20
    public private(set) var counters = Counters()
    /// Per connection: the flows it created.
    private var flows: [Int: [FlowKey: Injected]] = [:]
    private var freeSlots: [Int] = []
    private var nextSlot = 0
    private var nextID: UInt64 = 1 << 48
    private let now: () -> Timestamp

    public init(abstractor: Abstractor<Outputs>, binary: Bool, hopLimit: Int, now: @escaping () -> Timestamp) {
        self.abstractor = abstractor
        self.binary = binary
        self.hopLimit = hopLimit
        self.now = now
    }

    /// Parses and applies every whole event in `bytes`.
    public func receive(connection: Int, _ bytes: UnsafeRawBufferPointer) -> Verdict {
        var offset = 0
        while offset < bytes.count {
            let step = binary ? binaryEvent(connection, bytes, offset) : textEvent(connection, bytes, offset)
            switch step {
            case .needMore: return .consumed(offset)
            case .done(let used): offset += used
            case .invalid(let why):
                counters.malformed &+= 1
                return .close(why)
            }
        }
        return .consumed(offset)
    }

    /// The connection ended: destroy what it left open.
    public func closed(connection: Int) {
        counters.connectionsClosed &+= 1
        guard let open = flows.removeValue(forKey: connection) else { return }
        for (_, flow) in open {
            abstractor.flowDestroyed(flow.view, reason: .normal, time: now())
            freeSlots.append(flow.view.slot)
        }
    }

    enum Step {
        case needMore
        case done(Int)
        case invalid(String)
    }

    struct Header {
        var l3v6 = false
        var l4: UInt8 = 0
        var ip1: IPAddress?
        var ip2: IPAddress?
        var port1: UInt16?
        var port2: UInt16?
        var hop: Int?
        var event: SFTapFormatter.Event?
        var fromFirst: Bool?
        var length = 0
        var time: Timestamp?
        var vlan = FlowKey.noVLAN
        var reason = DestroyReason.normal
    }

    private func textEvent(_ connection: Int, _ bytes: UnsafeRawBufferPointer, _ start: Int) -> Step {
        guard let newline = bytes[start...].firstIndex(of: 0x0A) else {
            return bytes.count - start > 4096 ? .invalid("header line longer than 4096 bytes") : .needMore
        }
        let line = String(decoding: bytes[start ..< newline], as: UTF8.self)
        var h = Header()
        for pair in line.split(separator: ",") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { continue }
            let value = kv[1]
            switch kv[0] {
            case "l3":
                switch value {
                case "ipv4": h.l3v6 = false
                case "ipv6": h.l3v6 = true
                default: return .invalid("l3=\(value): expected ipv4 or ipv6")
                }
            case "l4":
                switch value {
                case "tcp": h.l4 = 6
                case "udp": h.l4 = 17
                default: return .invalid("l4=\(value): expected tcp or udp")
                }
            case "ip1": h.ip1 = IPAddress(value)
            case "ip2": h.ip2 = IPAddress(value)
            case "port1": h.port1 = UInt16(value)
            case "port2": h.port2 = UInt16(value)
            case "hop": h.hop = Int(value)
            case "event":
                switch value {
                case "CREATED": h.event = .created
                case "DATA": h.event = .data
                case "DESTROYED": h.event = .destroyed
                default: return .invalid("event=\(value): expected CREATED, DATA or DESTROYED")
                }
            case "from": h.fromFirst = value == "1" ? true : value == "2" ? false : nil
            case "len":
                guard let n = Int(value), n >= 0, n <= maxBody else { return .invalid("len=\(value): expected 0 to \(maxBody)") }
                h.length = n
            case "time":
                if let t = Double(value), t.isFinite, t >= 0, t < 1e11 {
                    h.time = Timestamp(nanoseconds: Int64(t * 1e9))
                }
            case "vlan":
                if let v = Int(value), (0 ... 4094).contains(v) { h.vlan = UInt16(v) }
            case "reason":
                switch value {
                case "RESET": h.reason = .reset
                case "TIMEOUT": h.reason = .timeout
                case "COMPROMISED": h.reason = .compromised
                default: h.reason = .normal
                }
            default:
                break // unknown keys (e.g. match) are ignored
            }
        }
        let headerLength = newline - start + 1
        let bodyLength = h.event == .data ? h.length : 0
        guard bytes.count - start >= headerLength + bodyLength else { return .needMore }
        let body = UnsafeRawBufferPointer(rebasing: bytes[newline + 1 ..< newline + 1 + bodyLength])
        if let why = apply(connection, h, body) { return .invalid(why) }
        return .done(headerLength + bodyLength)
    }

    private func binaryEvent(_ connection: Int, _ bytes: UnsafeRawBufferPointer, _ start: Int) -> Step {
        guard bytes.count - start >= 64 else { return .needMore }
        let b = UnsafeRawBufferPointer(rebasing: bytes[start ..< start + 64])
        var h = Header()
        h.l3v6 = b[57] == 41
        guard b[57] == 0 || b[57] == 41 else { return .invalid("binary header: l3 \(b[57]) is neither 0 (IPv4) nor 41 (IPv6)") }
        h.l4 = b[58]
        guard h.l4 == 6 || h.l4 == 17 else { return .invalid("binary header: l4 \(h.l4) is neither 6 nor 17") }
        let a1 = IPAddress(high: b.beUInt64(at: 0), low: b.beUInt64(at: 8), isIPv6: h.l3v6)
        let a2 = IPAddress(high: b.beUInt64(at: 16), low: b.beUInt64(at: 24), isIPv6: h.l3v6)
        h.ip1 = a1
        h.ip2 = a2
        let seconds = Int64(littleEndian: b.loadUnaligned(fromByteOffset: 32, as: Int64.self))
        let micros = Int64(littleEndian: b.loadUnaligned(fromByteOffset: 40, as: Int64.self))
        if seconds > 0 && seconds < 100_000_000_000 && (0 ..< 1_000_000).contains(micros) {
            h.time = Timestamp(seconds: seconds, microseconds: micros)
        }
        h.port1 = b.beUInt16(at: 48)
        h.port2 = b.beUInt16(at: 50)
        switch b[52] {
        case 0: h.event = .created
        case 1: h.event = .destroyed
        case 2: h.event = .data
        default: return .invalid("binary header: event \(b[52]) is not 0, 1 or 2")
        }
        h.fromFirst = b[53] == 0 ? true : b[53] == 1 ? false : nil
        h.length = Int(b.leUInt16(at: 54))
        h.hop = Int(b[56])
        h.reason = DestroyReason(rawValue: b[60]) ?? .normal
        let vlan = b.beUInt16(at: 61)
        h.vlan = vlan < 4095 ? vlan : FlowKey.noVLAN
        let bodyLength = h.event == .data ? h.length : 0
        guard bytes.count - start >= 64 + bodyLength else { return .needMore }
        let body = UnsafeRawBufferPointer(rebasing: bytes[start + 64 ..< start + 64 + bodyLength])
        if let why = apply(connection, h, body) { return .invalid(why) }
        return .done(64 + bodyLength)
    }

    /// Feeds one injected event to the abstractor. Returns why the connection must close, or nil.
    private func apply(_ connection: Int, _ h: Header, _ body: UnsafeRawBufferPointer) -> String? {
        guard let ip1 = h.ip1, let ip2 = h.ip2, ip1.isIPv6 == h.l3v6, ip2.isIPv6 == h.l3v6 else { return "ip1 and ip2 must be addresses of the l3 given" }
        guard h.l4 != 0, let port1 = h.port1, let port2 = h.port2, let hop = h.hop, let event = h.event else {
            return "a header needs l3, l4, ip1, ip2, port1, port2, hop and event"
        }
        if h.l4 == 17 && event == .created { return "UDP flows have no CREATED event" }
        guard hop + 1 <= hopLimit else {
            counters.droppedHopLimit &+= 1
            return nil
        }
        counters.events &+= 1
        // SF-TAP order: the lower (address, port) is endpoint 1; swapping flips `from`.
        let swapped = !FlowKey.ordersFirst(ip1, port1, ip2, port2)
        let key = FlowKey.make(source: ip1, sourcePort: port1, destination: ip2, destinationPort: port2, ipProtocol: h.l4,
                               vlan: h.vlan, hop: UInt8(hop + 1)).key
        let fromFirst = h.fromFirst.map { swapped ? !$0 : $0 } ?? true
        let time = h.time ?? now()
        if h.l4 == 17 {
            if event == .data {
                abstractor.flowData(FlowView(key: key, id: 0, slot: 0, created: time), fromFirst: fromFirst, bytes: body, time: time)
            }
            return nil
        }
        switch event {
        case .created:
            if flows[connection]?[key] != nil { return nil }
            let slot = freeSlots.popLast() ?? { nextSlot += 1; return nextSlot - 1 }()
            let view = FlowView(key: key, id: nextID, slot: slot, created: time)
            nextID &+= 1
            flows[connection, default: [:]][key] = Injected(view: view)
            abstractor.flowCreated(view, time: time)
        case .data:
            guard let flow = flows[connection]?[key] else { return nil } // DATA without CREATED is ignored
            abstractor.flowData(flow.view, fromFirst: fromFirst, bytes: body, time: time)
        case .destroyed:
            guard let flow = flows[connection]?.removeValue(forKey: key) else { return nil }
            abstractor.flowDestroyed(flow.view, reason: h.reason, time: time)
            freeSlots.append(flow.view.slot)
        }
        return nil
    }
}
