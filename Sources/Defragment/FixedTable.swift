import PacketCore

/// A hash table from `Key` to an `Int32` whose capacity is fixed at init:
/// open addressing, linear probing, backward-shift deletion (no tombstones,
/// so probe lengths do not decay under churn). Never grows, never allocates
/// after init.
///
/// The owner keeps at most half the buckets full (it sizes the table at
/// twice its own entry limit), so probes stay short and always end.
/// Buckets come from the key's `tableHash` under a seed drawn per table, so
/// an attacker cannot precompute datagram keys that share a bucket. Not
/// `Hasher`: its SipHash took about 200 instructions a lookup, a third of
/// what a fragment cost (callgrind, `flows` on 480,464 packets of merged
/// nDPI captures: 60 M instructions in `Hasher` under 150,000 lookups).
struct FixedTable<Key: FixedTableKey> {
    struct Entry {
        var key: Key
        var value: Int32
        var used: Bool
    }

    private let entries: UnsafeMutablePointer<Entry>
    private let mask: Int
    private let seed = UInt64.random(in: 1 ... UInt64.max)
    private(set) var count = 0

    /// Room for `maximumCount` entries at load factor ≤ 0.5. `placeholder` fills unused buckets.
    init(maximumCount: Int, placeholder: Key) {
        var capacity = 8
        while capacity < maximumCount * 2 { capacity <<= 1 }
        mask = capacity - 1
        entries = .allocate(capacity: capacity)
        entries.initialize(repeating: Entry(key: placeholder, value: 0, used: false), count: capacity)
    }

    /// Frees the buckets; the owner calls this once, from its `deinit`.
    func deallocate() {
        entries.deinitialize(count: mask + 1)
        entries.deallocate()
    }

    @inline(__always)
    private func home(_ key: Key) -> Int { Int(truncatingIfNeeded: key.tableHash(seed: seed)) & mask }

    /// The bucket holding `key`, or nil.
    func find(_ key: Key) -> Int? {
        var i = home(key)
        while entries[i].used {
            if entries[i].key == key { return i }
            i = (i &+ 1) & mask
        }
        return nil
    }

    func value(at bucket: Int) -> Int32 { entries[bucket].value }

    mutating func setValue(_ value: Int32, at bucket: Int) { entries[bucket].value = value }

    /// Adds a key that is not present; nil when the table is half full (the owner's sizing rules that out).
    mutating func insert(_ key: Key, value: Int32) -> Int? {
        guard count < (mask + 1) / 2 else { return nil }
        var i = home(key)
        while entries[i].used { i = (i &+ 1) & mask }
        entries[i] = Entry(key: key, value: value, used: true)
        count += 1
        return i
    }

    /// Empties `bucket`, moving later entries of the probe run back so every
    /// key stays reachable from its home bucket (Knuth 6.4, Algorithm R).
    mutating func remove(at bucket: Int) {
        var hole = bucket
        var i = bucket
        while true {
            i = (i &+ 1) & mask
            guard entries[i].used else { break }
            let h = home(entries[i].key)
            // Move the entry unless its home lies cyclically in (hole, i].
            let stays = hole <= i ? (hole < h && h <= i) : (hole < h || h <= i)
            if !stays {
                entries[hole] = entries[i]
                hole = i
            }
        }
        entries[hole].used = false
        count -= 1
    }
}

/// A key of a `FixedTable`: equality, and a seeded 64-bit hash whose every bit depends on every
/// bit of the key (the table takes its bucket from the low bits).
protocol FixedTableKey: Equatable {
    func tableHash(seed: UInt64) -> UInt64
}

extension IPAddress: FixedTableKey {}
