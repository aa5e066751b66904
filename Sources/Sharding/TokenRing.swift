import Synchronization

/// A bounded single-producer, single-consumer ring of small integers (batch numbers).
///
/// The producer owns `tail`, the consumer owns `head`; each publishes its index with release
/// ordering and reads the other's with acquire, so a batch's contents written before `push`
/// are visible after the matching `pop`. Capacity is a power of two.
public final class TokenRing: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<Int>
    private let mask: Int
    private let head = Atomic<Int>(0)
    private let tail = Atomic<Int>(0)

    public init(capacity: Int) {
        precondition(capacity > 0, "a ring holds at least one token")
        var size = 1
        while size < capacity { size <<= 1 }
        slots = .allocate(capacity: size)
        slots.initialize(repeating: 0, count: size)
        mask = size - 1
    }

    deinit { slots.deallocate() }

    /// Adds `token`; false when the ring is full.
    public func push(_ token: Int) -> Bool {
        let t = tail.load(ordering: .relaxed)
        guard t &- head.load(ordering: .acquiring) <= mask else { return false }
        slots[t & mask] = token
        tail.store(t &+ 1, ordering: .releasing)
        return true
    }

    /// Whether the ring holds no token; exact for the consumer (for the producer, a hint).
    public var isEmpty: Bool { head.load(ordering: .relaxed) == tail.load(ordering: .acquiring) }

    /// Takes the oldest token, or nil when the ring is empty.
    public func pop() -> Int? {
        let h = head.load(ordering: .relaxed)
        guard h != tail.load(ordering: .acquiring) else { return nil }
        let token = slots[h & mask]
        head.store(h &+ 1, ordering: .releasing)
        return token
    }
}
