#if canImport(Glibc)
import Glibc
#endif
import Capture
import PacketCore
import Synchronization

/// A bounded single-producer, single-consumer ring of small integers (batch numbers).
///
/// The producer owns `tail`, the consumer owns `head`; each publishes its index with release
/// ordering and reads the other's with acquire, so a batch's contents written before `push`
/// are visible after the matching `pop`. Capacity is a power of two.
final class TokenRing: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<Int>
    private let mask: Int
    private let head = Atomic<Int>(0)
    private let tail = Atomic<Int>(0)

    init(capacity: Int) {
        var size = 1
        while size < capacity { size <<= 1 }
        slots = .allocate(capacity: size)
        slots.initialize(repeating: 0, count: size)
        mask = size - 1
    }

    deinit { slots.deallocate() }

    /// Adds `token`; false when the ring is full.
    func push(_ token: Int) -> Bool {
        let t = tail.load(ordering: .relaxed)
        guard t &- head.load(ordering: .acquiring) <= mask else { return false }
        slots[t & mask] = token
        tail.store(t &+ 1, ordering: .releasing)
        return true
    }

    /// Takes the oldest token, or nil when the ring is empty.
    func pop() -> Int? {
        let h = head.load(ordering: .relaxed)
        guard h != tail.load(ordering: .acquiring) else { return nil }
        let token = slots[h & mask]
        head.store(h &+ 1, ordering: .releasing)
        return token
    }
}

/// How a thread waits for a ring: up to `yields` yields, then sleeps that grow to 200 µs.
/// Hand-offs are per batch (hundreds of packets), so waiting never sits on the packet path.
/// A worker waiting for packets yields for long (the reader is quick to refill); the reader
/// waiting for a free batch sleeps almost at once, leaving the core to the workers it waits for
/// (measured on 2 cores with 3 threads: yielding there cost 10% of the run in the scheduler).
struct Backoff {
    private var rounds = 0
    private let yields: Int
    init(yields: Int = 256) { self.yields = yields }
    mutating func wait() {
        rounds += 1
        if rounds <= yields {
            sched_yield()
        } else {
            usleep(UInt32(min(200, 10 << min(rounds - yields, 5))))
        }
    }
    mutating func reset() { rounds = 0 }
}

/// Packets copied out of the reader's window for one shard: bytes in one arena, records beside
/// them. Batches are made once and recycled between the reader and a worker; nothing is allocated
/// per packet or per hand-off.
final class PacketBatch: @unchecked Sendable {
    struct Entry {
        /// The packet's bytes in this batch's arena (nil for a clock tick).
        var bytes: UnsafeRawPointer?
        var length: Int
        var originalLength: Int
        var linkType: LinkType
        var interfaceID: Int
        var timestamp: Timestamp
    }

    static let byteCapacity = 512 << 10
    static let recordCapacity = 1024

    private let arena: UnsafeMutableRawPointer
    private let entries: UnsafeMutablePointer<Entry>
    private(set) var count = 0
    private var used = 0
    /// The last batch a worker gets: after it, the worker ends its flows.
    var endOfInput = false

    init() {
        arena = .allocate(byteCount: Self.byteCapacity, alignment: 64)
        entries = .allocate(capacity: Self.recordCapacity)
    }

    deinit {
        arena.deallocate()
        entries.deallocate()
    }

    /// Copies `record` in; false when the batch is full (the record is not taken).
    /// A record larger than the whole arena (possible only with a hostile snaplen) is cut to it: an IP
    /// packet ends within 64 KiB of its link header, so the cut never changes what the engine decodes.
    func append(_ record: PacketRecord) -> Bool {
        let length = min(record.bytes.count, Self.byteCapacity)
        guard count < Self.recordCapacity, used + length <= Self.byteCapacity else { return false }
        if length > 0, let base = record.bytes.baseAddress { (arena + used).copyMemory(from: base, byteCount: length) }
        entries[count] = Entry(bytes: UnsafeRawPointer(arena + used), length: length, originalLength: record.originalLength,
                               linkType: record.linkType, interfaceID: record.interfaceID, timestamp: record.timestamp)
        count += 1
        used += length
        return true
    }

    /// Adds a clock tick (no packet): the worker moves its engine's time to `time`, expiring idle
    /// flows when `expire`. False when the batch is full.
    func appendTick(_ time: Timestamp, expire: Bool) -> Bool {
        guard count < Self.recordCapacity else { return false }
        entries[count] = Entry(bytes: nil, length: expire ? Self.expiringTick : Self.tick, originalLength: 0, linkType: .ethernet,
                               interfaceID: 0, timestamp: time)
        count += 1
        return true
    }

    static var tick: Int { -1 }
    static var expiringTick: Int { -2 }

    /// The tick at `i` (`tick` or `expiringTick`) and its time, or nil when `i` is a packet.
    @inline(__always)
    func tick(_ i: Int) -> (expire: Bool, time: Timestamp)? {
        let e = entries[i]
        return e.length >= 0 ? nil : (e.length == Self.expiringTick, e.timestamp)
    }

    @inline(__always)
    func record(_ i: Int) -> PacketRecord {
        let e = entries[i]
        return PacketRecord(timestamp: e.timestamp, originalLength: e.originalLength, linkType: e.linkType, interfaceID: e.interfaceID,
                            bytes: UnsafeRawBufferPointer(start: e.bytes, count: e.length))
    }

    func reset() {
        count = 0
        used = 0
        endOfInput = false
    }
}

/// One worker shard's batches and the two rings between the reading thread and the worker:
/// `filled` carries batches to the worker, `free` brings them back. The reading thread owns
/// `current`, the batch it is filling.
final class ShardQueue: @unchecked Sendable {
    static var batchCount: Int { 16 }

    let batches: [PacketBatch]
    let filled = TokenRing(capacity: ShardQueue.batchCount)
    let free = TokenRing(capacity: ShardQueue.batchCount)
    private var current: Int
    /// Batches handed to the worker, and times the reading thread found no free batch and waited.
    private(set) var handedOver: UInt64 = 0
    private(set) var waits: UInt64 = 0

    init() {
        batches = (0 ..< Self.batchCount).map { _ in PacketBatch() }
        for k in 1 ..< Self.batchCount { _ = free.push(k) }
        current = 0
    }

    /// Reading side: adds a packet (copied: the reader's window is reused).
    @inline(__always)
    func append(_ record: PacketRecord) {
        if batches[current].append(record) { return }
        handOver(last: false)
        _ = batches[current].append(record)
    }

    /// Reading side: adds a clock tick.
    func appendTick(_ time: Timestamp, expire: Bool) {
        if batches[current].appendTick(time, expire: expire) { return }
        handOver(last: false)
        _ = batches[current].appendTick(time, expire: expire)
    }

    /// Reading side: sends the current batch (the last one with `last`) and, unless last, takes a free one,
    /// sleeping while the worker catches up.
    func handOver(last: Bool) {
        batches[current].endOfInput = last
        // The ring holds every batch, so this push always succeeds.
        _ = filled.push(current)
        handedOver &+= 1
        guard !last else { return }
        var sleeper = Backoff(yields: 2)
        while true {
            if let token = free.pop() {
                current = token
                return
            }
            waits &+= 1
            sleeper.wait()
        }
    }
}
