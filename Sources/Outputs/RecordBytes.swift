/// The growing bytes of one record: a value with copy-on-write, like `[UInt8]`, appended to with a
/// uniqueness test and a capacity test inlined at the call.
///
/// Why not `[UInt8]`: a record is some sixty short appends (keys, quotes, digits), and each of the
/// array's appends calls the runtime to test uniqueness and goes through the generic sequence path;
/// on `flows` (30,000 records of ~60 fields) those two were 13% of all instructions
/// (`Array.append(contentsOf:)` 194 M, `swift_isUniquelyReferenced_nonNull_native` 64 M of 1,916 M).
public struct RecordBytes: Sendable {
    @usableFromInline
    final class Storage: @unchecked Sendable {
        @usableFromInline var base: UnsafeMutablePointer<UInt8>
        @usableFromInline var count = 0
        @usableFromInline var capacity: Int

        @usableFromInline
        init(capacity: Int) {
            self.capacity = max(capacity, 16)
            base = .allocate(capacity: self.capacity)
        }

        deinit { base.deallocate() }

        @usableFromInline
        func copy(capacity: Int) -> Storage {
            let other = Storage(capacity: capacity)
            other.base.update(from: base, count: count)
            other.count = count
            return other
        }
    }

    @usableFromInline var storage: Storage

    public init(capacity: Int = 256) { storage = Storage(capacity: capacity) }

    public var count: Int { storage.count }

    /// Room for `n` more bytes, owned by this value alone; returns where they go.
    @inlinable @inline(__always)
    mutating func reserve(_ n: Int) -> UnsafeMutablePointer<UInt8> {
        let short = storage.capacity - storage.count < n
        if short || !isKnownUniquelyReferenced(&storage) {
            storage = storage.copy(capacity: short ? Swift.max(storage.capacity * 2, storage.count + n) : storage.capacity)
        }
        return storage.base + storage.count
    }

    /// Counts `n` bytes written at `reserve`'s pointer.
    @inlinable @inline(__always)
    mutating func didWrite(_ n: Int) { storage.count += n }

    @inlinable @inline(__always)
    public mutating func append(_ byte: UInt8) {
        reserve(1).pointee = byte
        storage.count += 1
    }

    @inlinable @inline(__always)
    public mutating func append(_ source: UnsafeRawPointer, count n: Int) {
        guard n > 0 else { return }
        UnsafeMutableRawPointer(reserve(n)).copyMemory(from: source, byteCount: n)
        storage.count += n
    }

    @inlinable
    public mutating func append(contentsOf raw: UnsafeRawBufferPointer) {
        if let base = raw.baseAddress { append(base, count: raw.count) }
    }

    @inlinable
    public mutating func append<C: Collection>(contentsOf bytes: C) where C.Element == UInt8 {
        let done: Void? = bytes.withContiguousStorageIfAvailable { append(contentsOf: UnsafeRawBufferPointer($0)) }
        guard done == nil else { return }
        var at = reserve(bytes.count)
        for byte in bytes {
            at.pointee = byte
            at += 1
        }
        storage.count += bytes.count
    }

    public mutating func removeLast(_ n: Int = 1) {
        precondition(n <= count, "RecordBytes.removeLast past the start")
        _ = reserve(0)
        storage.count -= n
    }

    public mutating func removeAll() {
        _ = reserve(0)
        storage.count = 0
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage.base, count: storage.count))
    }

    /// The bytes as an array (a copy).
    public var array: [UInt8] { withUnsafeBytes { Array($0) } }
}
