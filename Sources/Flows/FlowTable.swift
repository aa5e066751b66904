import PacketCore

/// Limits and timeouts of the flow table.
public struct FlowTableConfig: Sendable {
    /// At most this many flows at once; a new flow then evicts the least recently active (COMPROMISED).
    public var maxFlows = 1_000_000
    /// Idle timeout per timeout class, in nanoseconds of packet time. Class indices are the caller's
    /// (the engine uses 0 TCP, 1 UDP, 2 ICMP, 3 TCP closing).
    public var idleTimeouts: [Int64] = [300_000_000_000, 60_000_000_000, 30_000_000_000, 30_000_000_000]
    public init() {}
}

/// A bounded table of flows, keyed by `FlowKey`, with idle expiry in packet time.
///
/// Storage is slot-indexed: a flow keeps its slot from insert to remove, so
/// per-flow state elsewhere (TCP reassembly, counters) lives in arrays
/// indexed by the same slot. Lookup is open addressing with linear probing
/// and backward-shift deletion over a seeded hash; the index doubles while
/// it is more than half full. Each timeout class keeps an LRU list ordered by
/// last activity, so expiry pops from list heads in O(1) per expired flow.
///
/// Memory: an entry is 88 bytes and the index 4 bytes per bucket (at most
/// half full, so 8 to 16 bytes per flow). Entries are reserved for `maxFlows`
/// at once (up to `reservedEntriesLimit`): address space only, pages become
/// resident as slots are first used, and the array is never copied to grow,
/// which would hold two copies at once. Memory grows with the number of live
/// flows (slots are reused) and never past `maxFlows`; nothing is allocated
/// per packet once grown.
public final class FlowTable {
    /// Fields in this order pack into 88 bytes: the small ones fill the key's tail, the 8-byte ones follow.
    public struct Entry: Sendable {
        public var key: FlowKey
        public var timeoutClass: UInt8
        var live: Bool
        var previous: Int32
        var next: Int32
        /// Frames in both directions (wraps at 2^32; for the dashboard's top flows, not for records).
        public var packets: UInt32
        public var id: UInt64
        public var created: Timestamp
        public var lastSeen: Timestamp
        /// Frame bytes in both directions (the dashboard's top flows and talkers): added where
        /// `lastSeen` is written, in the same entry.
        public var bytes: UInt64
    }

    /// At most this many entries are reserved up front (1.3 GB of address space); a table allowed
    /// more flows grows past it by doubling.
    public static let reservedEntriesLimit = 1 << 24

    public let config: FlowTableConfig
    public private(set) var entries: [Entry] = []
    private var freeSlots: [Int32] = []
    private var index: [Int32]
    private var indexMask: Int
    private var heads: [Int32]
    private var tails: [Int32]
    private let seed: UInt64
    private var nextID: UInt64 = 1
    public private(set) var count = 0
    public private(set) var peakCount = 0

    public init(config: FlowTableConfig = FlowTableConfig()) {
        self.config = config
        entries.reserveCapacity(min(config.maxFlows, Self.reservedEntriesLimit))
        index = [Int32](repeating: -1, count: 1024)
        indexMask = 1023
        heads = [Int32](repeating: -1, count: config.idleTimeouts.count)
        tails = heads
        seed = UInt64.random(in: 1 ... UInt64.max)
    }

    @inline(__always)
    private func bucket(_ key: FlowKey) -> Int { Int(truncatingIfNeeded: key.tableHash(seed: seed)) & indexMask }

    /// The slot of `key`, or nil.
    @inline(__always)
    public func find(_ key: FlowKey) -> Int? {
        var i = bucket(key)
        while true {
            let slot = index[i]
            if slot < 0 { return nil }
            if entries[Int(slot)].key == key { return Int(slot) }
            i = (i + 1) & indexMask
        }
    }

    public var isFull: Bool { count >= config.maxFlows }

    /// Whether `slot` holds a flow (slots of removed flows wait on the free list).
    public func isLive(_ slot: Int) -> Bool { entries[slot].live }

    /// The least recently active flow of any class (the eviction victim).
    public var leastRecentlyActive: Int? {
        var best: Int32 = -1
        for head in heads where head >= 0 {
            if best < 0 || entries[Int(head)].lastSeen < entries[Int(best)].lastSeen { best = head }
        }
        return best < 0 ? nil : Int(best)
    }

    /// Adds a new flow; the caller has checked it is absent and made room (`isFull` is false).
    public func insert(_ key: FlowKey, time: Timestamp, timeoutClass: UInt8) -> Int {
        precondition(count < config.maxFlows, "FlowTable.insert on a full table")
        if 2 * (count + 1) > index.count { growIndex() }
        let slot: Int32
        let entry = Entry(key: key, timeoutClass: timeoutClass, live: true, previous: -1, next: -1, packets: 0, id: nextID, created: time, lastSeen: time, bytes: 0)
        nextID &+= 1
        if let reused = freeSlots.popLast() {
            slot = reused
            entries[Int(slot)] = entry
        } else {
            slot = Int32(entries.count)
            entries.append(entry)
        }
        var i = bucket(key)
        while index[i] >= 0 { i = (i + 1) & indexMask }
        index[i] = slot
        linkTail(slot)
        count += 1
        peakCount = max(peakCount, count)
        return Int(slot)
    }

    /// Marks activity at `time` (packet time; never moves backwards) by a frame of `frameLength` bytes.
    /// (Entries are written through one buffer pointer per call: each `entries[i].x = …` on the
    /// class's array would test its uniqueness again, about 6 runtime calls a packet.)
    @inline(__always)
    public func touch(_ slot: Int, time: Timestamp, frameLength: Int = 0) {
        let s = Int32(slot)
        entries.withUnsafeMutableBufferPointer { e in
            if e[slot].lastSeen < time { e[slot].lastSeen = time }
            e[slot].packets &+= 1
            e[slot].bytes &+= UInt64(truncatingIfNeeded: frameLength)
            guard tails[Int(e[slot].timeoutClass)] != s else { return }
            unlink(s, e)
            linkTail(s, e)
        }
    }

    /// Moves a flow to another timeout class.
    public func setTimeoutClass(_ slot: Int, _ timeoutClass: UInt8) {
        guard entries[slot].timeoutClass != timeoutClass else { return }
        unlink(Int32(slot))
        entries[slot].timeoutClass = timeoutClass
        linkTail(Int32(slot))
    }

    /// A flow idle past its class's timeout at `now`, or nil. Call until nil, removing each.
    public func expired(now: Timestamp) -> Int? {
        for (c, head) in heads.enumerated() where head >= 0 {
            if now.nanoseconds - entries[Int(head)].lastSeen.nanoseconds > config.idleTimeouts[c] { return Int(head) }
        }
        return nil
    }

    /// Any live flow, oldest activity first within a class (for flushing at the end).
    public var anyLive: Int? {
        for head in heads where head >= 0 { return Int(head) }
        return nil
    }

    public func remove(_ slot: Int) {
        guard entries[slot].live else { return }
        let s = Int32(slot)
        unlink(s)
        // Backward-shift deletion keeps probe chains intact without tombstones.
        var i = bucket(entries[slot].key)
        while index[i] != s { i = (i + 1) & indexMask }
        var hole = i
        var j = (i + 1) & indexMask
        while index[j] >= 0 {
            let home = bucket(entries[Int(index[j])].key)
            // Move j into the hole if its home is not in (hole, j] cyclically.
            let inRange = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j)
            if !inRange {
                index[hole] = index[j]
                hole = j
            }
            j = (j + 1) & indexMask
        }
        index[hole] = -1
        entries[slot].live = false
        freeSlots.append(s)
        count -= 1
    }

    private func growIndex() {
        let capacity = index.count * 2
        index = [Int32](repeating: -1, count: capacity)
        indexMask = capacity - 1
        for (slot, entry) in entries.enumerated() where entry.live {
            var i = bucket(entry.key)
            while index[i] >= 0 { i = (i + 1) & indexMask }
            index[i] = Int32(slot)
        }
    }

    private func linkTail(_ slot: Int32) { entries.withUnsafeMutableBufferPointer { linkTail(slot, $0) } }

    private func unlink(_ slot: Int32) { entries.withUnsafeMutableBufferPointer { unlink(slot, $0) } }

    /// Appends `slot` to its class's activity list.
    @inline(__always)
    private func linkTail(_ slot: Int32, _ e: UnsafeMutableBufferPointer<Entry>) {
        let c = Int(e[Int(slot)].timeoutClass)
        e[Int(slot)].previous = tails[c]
        e[Int(slot)].next = -1
        if tails[c] >= 0 { e[Int(tails[c])].next = slot } else { heads[c] = slot }
        tails[c] = slot
    }

    /// Takes `slot` out of its class's activity list.
    @inline(__always)
    private func unlink(_ slot: Int32, _ e: UnsafeMutableBufferPointer<Entry>) {
        let c = Int(e[Int(slot)].timeoutClass)
        let p = e[Int(slot)].previous, n = e[Int(slot)].next
        if p >= 0 { e[Int(p)].next = n } else { heads[c] = n }
        if n >= 0 { e[Int(n)].previous = p } else { tails[c] = p }
        e[Int(slot)].previous = -1
        e[Int(slot)].next = -1
    }

    /// Entries the table has room for without growing.
    public var reservedSlots: Int { entries.capacity }

    /// Bytes held by the table's arrays (capacity, not just live entries).
    public var reservedBytes: Int {
        entries.capacity * MemoryLayout<Entry>.stride + index.count * 4 + freeSlots.capacity * 4
    }
}
