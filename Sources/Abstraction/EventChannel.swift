import Sharding
import FlowCore
import PacketCore
import Synchronization

/// Interface outputs of one worker shard in sockets mode: whole events are copied into chunks,
/// and full chunks go over a bounded single-producer, single-consumer ring to the thread that
/// owns the sockets, which publishes them (`drain`). That thread never touches flow state and
/// the workers never touch sockets.
///
/// When every chunk is in flight (the socket thread is behind), a worker reading files waits;
/// a worker on a live interface drops the whole event and counts it, so capture never waits
/// for output. Eight chunks of 1 MiB per shard are in flight at most.
public final class EventChannel: InterfaceOutputs, @unchecked Sendable {
    private let target: SocketOutputs
    private let chunks: [UnsafeMutableRawPointer]
    /// Bytes used per chunk: written by whichever side owns the chunk (the ring hands ownership over).
    private let used: UnsafeMutablePointer<Int>
    private let filled: TokenRing
    private let free: TokenRing
    private var current: Int?
    private let waitWhenFull: Bool
    private let dropped = Atomic<UInt64>(0)

    static var chunkBytes: Int { 1 << 20 }
    static var chunkCount: Int { 8 }
    /// Per event in a chunk: output index, header length, body length (UInt32 each).
    static var prefixBytes: Int { 12 }

    /// Outputs that end in `target`'s sockets; `waitWhenFull` for file input (nothing is dropped).
    public init(target: SocketOutputs, waitWhenFull: Bool) {
        self.target = target
        self.waitWhenFull = waitWhenFull
        chunks = (0 ..< Self.chunkCount).map { _ in .allocate(byteCount: Self.chunkBytes, alignment: 64) }
        used = .allocate(capacity: Self.chunkCount)
        used.initialize(repeating: 0, count: Self.chunkCount)
        filled = TokenRing(capacity: Self.chunkCount)
        free = TokenRing(capacity: Self.chunkCount)
        for i in 0 ..< Self.chunkCount { _ = free.push(i) }
    }

    deinit {
        for c in chunks { c.deallocate() }
        used.deallocate()
    }

    /// Events dropped because the socket thread was behind (live input only).
    public var eventsDropped: UInt64 { dropped.load(ordering: .relaxed) }

    /// Made on the thread that owns the sockets, before the workers start.
    public func output(_ relativePath: String) throws -> Int { try target.output(relativePath) }

    /// Worker side: one event.
    public func publish(_ output: Int, header: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) throws {
        let need = Self.prefixBytes + header.count + body.count
        guard need <= Self.chunkBytes else {
            dropped.add(1, ordering: .relaxed)
            return
        }
        if let c = current, used[c] + need > Self.chunkBytes { send(c) }
        if current == nil {
            guard takeFreeChunk() else {
                dropped.add(1, ordering: .relaxed)
                return
            }
        }
        let c = current!
        let base = chunks[c] + used[c]
        base.storeBytes(of: UInt32(output), as: UInt32.self)
        base.storeBytes(of: UInt32(header.count), toByteOffset: 4, as: UInt32.self)
        base.storeBytes(of: UInt32(body.count), toByteOffset: 8, as: UInt32.self)
        if let h = header.baseAddress, header.count > 0 { (base + 12).copyMemory(from: h, byteCount: header.count) }
        if let b = body.baseAddress, body.count > 0 { (base + 12 + header.count).copyMemory(from: b, byteCount: body.count) }
        used[c] += need
    }

    private func takeFreeChunk() -> Bool {
        var backoff = Backoff()
        while true {
            if let token = free.pop() {
                current = token
                used[token] = 0
                return true
            }
            guard waitWhenFull else { return false }
            backoff.wait()
        }
    }

    /// Worker side: sends the partly filled chunk (after each batch, so events wait at most one batch).
    /// Live, when no free chunk is left, the chunk stays to take more events instead: handing it over
    /// then would leave the next event nowhere to go, and with a packet per batch (a quiet live link)
    /// eight nearly empty chunks in flight dropped events the socket thread would have taken a moment
    /// later. It goes over when full, or after a later batch once a chunk has come back.
    public func handOver() {
        guard let c = current, used[c] > 0 else { return }
        if !waitWhenFull && free.isEmpty { return }
        send(c)
    }

    private func send(_ c: Int) {
        // The ring holds every chunk, so this push always succeeds.
        _ = filled.push(c)
        current = nil
    }

    /// Socket side: publishes every event handed over so far; returns how many.
    @discardableResult
    public func drain() -> Int {
        var events = 0
        while let c = filled.pop() {
            var at = 0
            let end = used[c]
            let base = chunks[c]
            while at + Self.prefixBytes <= end {
                let output = Int(base.loadUnaligned(fromByteOffset: at, as: UInt32.self))
                let h = Int(base.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self))
                let b = Int(base.loadUnaligned(fromByteOffset: at + 8, as: UInt32.self))
                let header = UnsafeRawBufferPointer(start: base + at + 12, count: h)
                let body = UnsafeRawBufferPointer(start: base + at + 12 + h, count: b)
                try? target.publish(output, header: header, body: body)
                at += Self.prefixBytes + h + b
                events += 1
            }
            _ = free.push(c)
        }
        return events
    }
}
