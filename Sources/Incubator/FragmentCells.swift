import Capture
import PacketCore
import Wire

/// Keeps every fragment of an IP datagram on the cell of its flow, whatever order the fragments come in.
///
/// The first fragment (offset 0) carries the ports, so its cell is the flow's; its cell is remembered
/// under (source, destination, identification, protocol). A later fragment goes to the remembered cell.
/// A fragment that comes before its first is held (copied) until the first arrives, then sent after it.
/// Bounds: `capacity` remembered datagrams (the oldest forgotten first), `maxHeldBytes` held in all and
/// `maxHeldPerDatagram` fragments per datagram, `holdSeconds` of packet time. A fragment that cannot be
/// held, or whose first does not come in time, goes to the cell of its address pair and protocol (ports
/// taken as 0) and is counted: it may then not be with the rest of its flow.
public struct FragmentCells {
    public struct Key: Hashable, Sendable {
        var source: IPAddress
        var destination: IPAddress
        var identification: UInt32
        var proto: UInt8
    }

    public struct Held {
        public var bytes: [UInt8]
        public var timestamp: Timestamp
        public var originalLength: Int
        public var linkType: LinkType
    }

    public struct Counters: Sendable {
        /// Fragments placed by a remembered first fragment.
        public var followed: UInt64 = 0
        /// Fragments held for their first, and later sent after it.
        public var held: UInt64 = 0
        public var releasedWithFirst: UInt64 = 0
        /// Sent to their address pair's cell: the first never came in time, or the hold was full.
        public var withoutFirst: UInt64 = 0
        public var holdFull: UInt64 = 0
        /// Datagrams forgotten to keep within `capacity`.
        public var evicted: UInt64 = 0
        public var peakRemembered = 0
        public var peakHeldBytes = 0

        public init() {}

        /// Adds another thread's counts (peaks add up: each thread has its own table).
        public mutating func add(_ o: Counters) {
            followed &+= o.followed
            held &+= o.held
            releasedWithFirst &+= o.releasedWithFirst
            withoutFirst &+= o.withoutFirst
            holdFull &+= o.holdFull
            evicted &+= o.evicted
            peakRemembered += o.peakRemembered
            peakHeldBytes += o.peakHeldBytes
        }
    }

    public let capacity: Int
    public let maxHeldBytes: Int
    public let maxHeldPerDatagram: Int
    public let holdNanoseconds: Int64
    public private(set) var counters = Counters()

    var cells: [Key: Int32] = [:]
    /// Remembered keys in arrival order, for eviction (a ring of `capacity`).
    var order: [Key?]
    var orderNext = 0
    var held: [Key: [Held]] = [:]
    /// Held datagrams in arrival order; `heldHead` is the first still in use (the array is compacted
    /// when half of it is spent, so taking the oldest costs O(1)).
    var heldOrder: [(key: Key, since: Int64)] = []
    var heldHead = 0
    var heldBytes = 0

    public init(capacity: Int = 65536, maxHeldBytes: Int = 16 << 20, maxHeldPerDatagram: Int = 64, holdSeconds: Double = 2) {
        self.capacity = max(capacity, 1)
        self.maxHeldBytes = maxHeldBytes
        self.maxHeldPerDatagram = maxHeldPerDatagram
        holdNanoseconds = Int64(holdSeconds * 1e9)
        order = Array(repeating: nil, count: self.capacity)
    }

    public static func key(_ p: DecodedPacket) -> Key {
        Key(source: p.source, destination: p.destination, identification: p.ipIdentification, proto: p.ipProtocol)
    }

    public var remembered: Int { cells.count }
    public var heldCount: Int { held.values.reduce(0) { $0 + $1.count } }

    /// A first fragment went to `cell`: remember it, and hand back what was held for it.
    public mutating func first(_ key: Key, cell: Int) -> [Held] {
        if cells.updateValue(Int32(cell), forKey: key) == nil {
            if let old = order[orderNext], old != key, cells.removeValue(forKey: old) != nil { counters.evicted &+= 1 }
            order[orderNext] = key
            orderNext = (orderNext + 1) % capacity
            counters.peakRemembered = max(counters.peakRemembered, cells.count)
        }
        guard let waiting = held.removeValue(forKey: key) else { return [] }
        for h in waiting { heldBytes -= h.bytes.count }
        counters.releasedWithFirst &+= UInt64(waiting.count)
        return waiting
    }

    /// The cell of a later fragment whose first was seen, or nil.
    public mutating func cell(of key: Key) -> Int? {
        guard let c = cells[key] else { return nil }
        counters.followed &+= 1
        return Int(c)
    }

    /// Holds a copy of a fragment that came before its first; false when the bounds do not allow it.
    public mutating func hold(_ key: Key, _ record: PacketRecord) -> Bool {
        let list = held[key]
        guard heldBytes + record.bytes.count <= maxHeldBytes, (list?.count ?? 0) < maxHeldPerDatagram else {
            counters.holdFull &+= 1
            return false
        }
        if list == nil { heldOrder.append((key, record.timestamp.nanoseconds)) }
        held[key, default: []].append(Held(bytes: Array(record.bytes), timestamp: record.timestamp, originalLength: record.originalLength, linkType: record.linkType))
        heldBytes += record.bytes.count
        counters.peakHeldBytes = max(counters.peakHeldBytes, heldBytes)
        counters.held &+= 1
        return true
    }

    /// Fragments held longer than the hold time at packet time `now` (all of them when `now` is nil),
    /// to be sent to their address pair's cell.
    public mutating func expired(now: Timestamp?) -> [(Key, [Held])] {
        if let now, heldHead < heldOrder.count, now.nanoseconds - heldOrder[heldHead].since <= holdNanoseconds { return [] }
        var out: [(Key, [Held])] = []
        while heldHead < heldOrder.count {
            let oldest = heldOrder[heldHead]
            if let now, now.nanoseconds - oldest.since <= holdNanoseconds { break }
            heldHead += 1
            if let list = held.removeValue(forKey: oldest.key) {
                for h in list { heldBytes -= h.bytes.count }
                counters.withoutFirst &+= UInt64(list.count)
                out.append((oldest.key, list))
            }
        }
        if heldHead > 1024 && heldHead * 2 > heldOrder.count {
            heldOrder.removeFirst(heldHead)
            heldHead = 0
        }
        return out
    }

    /// Counts a fragment sent to its address pair's cell at once (the hold was full).
    public mutating func sentWithoutFirst() { counters.withoutFirst &+= 1 }
}
