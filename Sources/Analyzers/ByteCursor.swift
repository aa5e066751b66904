import PacketCore

/// A bounds-checked cursor over wire bytes, shared by the TLS hello and QUIC
/// parsers; every read answers nil instead of running past the end.
struct ByteCursor {
    let bytes: UnsafeRawBufferPointer
    var at: Int

    init(_ bytes: UnsafeRawBufferPointer, at: Int = 0) {
        self.bytes = bytes
        self.at = at
    }

    var remaining: Int { bytes.count &- at }
    var atEnd: Bool { at >= bytes.count }

    mutating func u8() -> UInt8? {
        guard at < bytes.count else { return nil }
        defer { at &+= 1 }
        return bytes[at]
    }

    mutating func u16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { at &+= 2 }
        return bytes.beUInt16(at: at)
    }

    mutating func skip(_ n: Int) -> Bool {
        guard remaining >= n else { return false }
        at &+= n
        return true
    }

    /// A vector with a 1- or 2-byte length prefix (RFC 8446 §3.4).
    mutating func vector(lengthBytes: Int) -> UnsafeRawBufferPointer? {
        let length: Int
        if lengthBytes == 1 {
            guard let n = u8() else { return nil }
            length = Int(n)
        } else {
            guard let n = u16() else { return nil }
            length = Int(n)
        }
        guard remaining >= length else { return nil }
        defer { at &+= length }
        return bytes.slice(at, length)
    }

    /// A variable-length integer (RFC 9000 §16): the top two bits of the first byte give its length.
    mutating func varint() -> UInt64? {
        guard at < bytes.count else { return nil }
        let length = 1 << Int(bytes[at] >> 6)
        guard remaining >= length else { return nil }
        var value = UInt64(bytes[at] & 0x3F)
        for i in 1 ..< length { value = value << 8 | UInt64(bytes[at &+ i]) }
        at &+= length
        return value
    }

    /// `count` bytes (as an offset range start) if they are there.
    mutating func take(_ count: UInt64) -> Int? {
        guard count <= UInt64(remaining) else { return nil }
        defer { at &+= Int(count) }
        return at
    }
}
