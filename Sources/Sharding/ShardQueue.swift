#if canImport(Glibc)
import Glibc
#endif
import Capture
import PacketCore
import Synchronization

/// One worker shard's batches and the two rings between the reading thread and the worker:
/// `filled` carries batches to the worker, `free` brings them back. The reading thread owns
/// `current`, the batch it is filling.
public final class ShardQueue: @unchecked Sendable {
    public static var batchCount: Int { 16 }

    public let batches: [PacketBatch]
    public let filled = TokenRing(capacity: ShardQueue.batchCount)
    public let free = TokenRing(capacity: ShardQueue.batchCount)
    private var current: Int
    /// Batches handed to the worker, and times the reading thread found no free batch and waited.
    public private(set) var handedOver: UInt64 = 0
    public private(set) var waits: UInt64 = 0

    public init() {
        batches = (0 ..< Self.batchCount).map { _ in PacketBatch() }
        for k in 1 ..< Self.batchCount {
            let pushed = free.push(k)
            assert(pushed, "the free ring holds every batch")
        }
        current = 0
    }

    /// Reading side: adds a packet (copied: the reader's window is reused).
    @inline(__always)
    public func append(_ record: PacketRecord) {
        if batches[current].append(record) { return }
        handOver(last: false)
        _ = batches[current].append(record)
    }

    /// Reading side: adds a clock tick.
    public func appendTick(_ time: Timestamp, expire: Bool) {
        if batches[current].appendTick(time, expire: expire) { return }
        handOver(last: false)
        _ = batches[current].appendTick(time, expire: expire)
    }

    /// Reading side: sends the current batch (the last one with `last`) and, unless last, takes a free one,
    /// sleeping while the worker catches up.
    public func handOver(last: Bool) {
        batches[current].endOfInput = last
        // The ring holds every batch, so this push always succeeds.
        let pushed = filled.push(current)
        assert(pushed, "the filled ring holds every batch")
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
