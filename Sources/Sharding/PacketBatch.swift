#if canImport(Glibc)
import Glibc
#endif
import Capture
import PacketCore
import Synchronization

/// Packets copied out of the reader's window for one shard: bytes in one arena, records beside
/// them. Batches are made once and recycled between the reader and a worker; nothing is allocated
/// per packet or per hand-off.
public final class PacketBatch: @unchecked Sendable {
    public struct Entry {
        /// The packet's bytes in this batch's arena (nil for a clock tick).
        public var bytes: UnsafeRawPointer?
        public var length: Int
        public var originalLength: Int
        public var linkType: LinkType
        public var interfaceID: Int
        public var timestamp: Timestamp
    }

    public static let byteCapacity = 512 << 10
    public static let recordCapacity = 1024

    private let arena: UnsafeMutableRawPointer
    private let entries: UnsafeMutablePointer<Entry>
    public private(set) var count = 0
    private var used = 0
    /// The last batch a worker gets: after it, the worker ends its flows.
    public var endOfInput = false

    public init() {
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
    public func append(_ record: PacketRecord) -> Bool {
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
    public func appendTick(_ time: Timestamp, expire: Bool) -> Bool {
        guard count < Self.recordCapacity else { return false }
        entries[count] = Entry(bytes: nil, length: expire ? Self.expiringTick : Self.tick, originalLength: 0, linkType: .ethernet,
                               interfaceID: 0, timestamp: time)
        count += 1
        return true
    }

    public static var tick: Int { -1 }
    public static var expiringTick: Int { -2 }

    /// The tick at `i` (`tick` or `expiringTick`) and its time, or nil when `i` is a packet.
    @inline(__always)
    public func tick(_ i: Int) -> (expire: Bool, time: Timestamp)? {
        let e = entries[i]
        return e.length >= 0 ? nil : (e.length == Self.expiringTick, e.timestamp)
    }

    @inline(__always)
    public func record(_ i: Int) -> PacketRecord {
        let e = entries[i]
        return PacketRecord(timestamp: e.timestamp, originalLength: e.originalLength, linkType: e.linkType, interfaceID: e.interfaceID,
                            bytes: UnsafeRawBufferPointer(start: e.bytes, count: e.length))
    }

    public func reset() {
        count = 0
        used = 0
        endOfInput = false
    }
}
