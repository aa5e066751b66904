/// The growing bytes of one record, owned by one `JSONWriter`: a buffer that is never shared, so an
/// append is a capacity test and a copy.
///
/// Why not `[UInt8]`: a record is some sixty short appends (keys, quotes, digits), and each of the
/// array's appends calls the runtime to test uniqueness and goes through the generic sequence path;
/// on `flows` (30,000 records of ~60 fields) those two were 13% of all instructions
/// (`Array.append(contentsOf:)` 194 M, `swift_isUniquelyReferenced_nonNull_native` 64 M of 1,916 M).
/// Why not copyable: a copy-on-write buffer still tested its uniqueness with a runtime call on every
/// append (128 calls a `flows` record, 44 M instructions on 480,464 packets of merged nDPI captures,
/// and the register spills around each call); a buffer only one value owns needs no test.
public struct RecordBytes: ~Copyable, @unchecked Sendable {
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var capacity: Int
    @usableFromInline var used = 0
    public var count: Int { used }

    public init(capacity: Int = 256) {
        self.capacity = max(capacity, 16)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// Room for `n` more bytes; returns where they go.
    @inlinable @inline(__always)
    mutating func reserve(_ n: Int) -> UnsafeMutablePointer<UInt8> {
        if capacity &- used < n { grow(to: used + n) }
        return base + used
    }

    @usableFromInline
    mutating func grow(to needed: Int) {
        let larger = Swift.max(capacity * 2, needed)
        let moved = UnsafeMutablePointer<UInt8>.allocate(capacity: larger)
        moved.update(from: base, count: used)
        base.deallocate()
        base = moved
        capacity = larger
    }

    /// Counts `n` bytes written at `reserve`'s pointer.
    @inlinable @inline(__always)
    mutating func didWrite(_ n: Int) { used &+= n }

    @inlinable @inline(__always)
    public mutating func append(_ byte: UInt8) {
        reserve(1).pointee = byte
        used &+= 1
    }

    @inlinable @inline(__always)
    public mutating func append(_ source: UnsafeRawPointer, count n: Int) {
        guard n > 0 else { return }
        UnsafeMutableRawPointer(reserve(n)).copyMemory(from: source, byteCount: n)
        used &+= n
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
        used &+= bytes.count
    }

    public mutating func removeLast(_ n: Int = 1) {
        precondition(n <= count, "RecordBytes.removeLast past the start")
        used -= n
    }

    public mutating func removeAll() { used = 0 }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: used))
    }

    /// The bytes as an array (a copy).
    public var array: [UInt8] { withUnsafeBytes { Array($0) } }
}
