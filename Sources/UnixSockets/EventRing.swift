#if canImport(Glibc)
import Glibc
#endif

/// One reader's backlog: a byte ring of fixed capacity, allocated once when
/// the reader is accepted and never grown.
///
/// Event boundaries need no table: bytes enter only as whole events (the
/// caller checks `free` first and drops the event otherwise) and leave
/// strictly in order, so `head` is exactly "how much of the oldest event was
/// already written" and a partial write resumes there. The ring rewinds to
/// offset 0 whenever it empties, so a reader that keeps up touches only the
/// first pages and the kernel commits little of the allocation.
struct EventRing {
    let base: UnsafeMutableRawPointer
    let capacity: Int
    /// Offset of the oldest unwritten byte.
    private(set) var head = 0
    /// Bytes queued.
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        base = .allocate(byteCount: self.capacity, alignment: 64)
    }

    /// Frees the bytes; the owner calls this once, when it drops the reader.
    func deallocate() { base.deallocate() }

    @inline(__always) var free: Int { capacity &- count }
    @inline(__always) var isEmpty: Bool { count == 0 }

    /// Copies `bytes` in at the tail; the caller has checked `bytes.count <= free`.
    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        var tail = head &+ count
        if tail >= capacity { tail &-= capacity }
        let first = min(bytes.count, capacity &- tail)
        (base + tail).copyMemory(from: source, byteCount: first)
        if first < bytes.count {
            base.copyMemory(from: source + first, byteCount: bytes.count &- first)
        }
        count &+= bytes.count
    }

    /// Points up to two iovecs at the queued bytes, oldest first; returns how many.
    @inline(__always)
    func regions(into iov: UnsafeMutablePointer<iovec>) -> Int {
        if count == 0 { return 0 }
        let first = min(count, capacity &- head)
        iov[0] = iovec(iov_base: base + head, iov_len: first)
        if first == count { return 1 }
        iov[1] = iovec(iov_base: base, iov_len: count &- first)
        return 2
    }

    /// Forgets the `n` oldest bytes (written to the socket); `n <= count`.
    @inline(__always)
    mutating func consume(_ n: Int) {
        count &-= n
        if count == 0 {
            head = 0
        } else {
            head &+= n
            if head >= capacity { head &-= capacity }
        }
    }
}
