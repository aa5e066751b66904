import PacketCore

/// The bytes of one export datagram being built, written in network byte order.
struct ExportBuffer {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    var count: Int { bytes.count }

    mutating func removeAll() { bytes.removeAll(keepingCapacity: true) }

    mutating func u8(_ v: UInt8) { bytes.append(v) }

    mutating func u16(_ v: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    mutating func u32(_ v: UInt32) {
        u16(UInt16(truncatingIfNeeded: v >> 16))
        u16(UInt16(truncatingIfNeeded: v))
    }

    mutating func u64(_ v: UInt64) {
        u32(UInt32(truncatingIfNeeded: v >> 32))
        u32(UInt32(truncatingIfNeeded: v))
    }

    mutating func address(_ a: IPAddress) {
        if a.isIPv6 {
            u64(a.high)
            u64(a.low)
        } else {
            u32(a.ipv4Value)
        }
    }

    mutating func zeros(_ n: Int) { bytes.append(contentsOf: repeatElement(0, count: n)) }

    /// Overwrites two bytes written earlier (a length known only at the end).
    mutating func set16(_ v: UInt16, at offset: Int) {
        bytes[offset] = UInt8(truncatingIfNeeded: v >> 8)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: v)
    }

    mutating func set32(_ v: UInt32, at offset: Int) {
        set16(UInt16(truncatingIfNeeded: v >> 16), at: offset)
        set16(UInt16(truncatingIfNeeded: v), at: offset + 2)
    }
}
