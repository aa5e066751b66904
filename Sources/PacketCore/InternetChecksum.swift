/// The Internet checksum (RFC 1071): one's-complement sum of 16-bit words.
public enum InternetChecksum {
    /// Adds `bytes` to a running 32-bit-wide partial sum. Odd lengths pad with a zero byte.
    @inlinable
    public static func add(_ bytes: UnsafeRawBufferPointer, to partial: UInt64 = 0) -> UInt64 {
        var sum = partial
        var i = 0
        let n = bytes.count
        // Eight bytes at a time; carries are folded at the end (RFC 1071 §2(B)).
        while i + 8 <= n {
            let w = bytes.beUInt64(at: i)
            sum &+= (w >> 48) &+ ((w >> 32) & 0xFFFF) &+ ((w >> 16) & 0xFFFF) &+ (w & 0xFFFF)
            i += 8
        }
        while i + 2 <= n {
            sum &+= UInt64(bytes.beUInt16(at: i))
            i += 2
        }
        if i < n { sum &+= UInt64(bytes[i]) << 8 }
        return sum
    }

    /// Adds one 16-bit word.
    @inlinable
    public static func add(word: UInt16, to partial: UInt64) -> UInt64 { partial &+ UInt64(word) }

    /// Adds the 16 (IPv6) or 4 (IPv4) address bytes.
    @inlinable
    public static func add(address a: IPAddress, to partial: UInt64) -> UInt64 {
        var s = partial
        s &+= (a.high >> 48) &+ ((a.high >> 32) & 0xFFFF)
        if a.isIPv6 {
            s &+= ((a.high >> 16) & 0xFFFF) &+ (a.high & 0xFFFF)
            s &+= (a.low >> 48) &+ ((a.low >> 32) & 0xFFFF) &+ ((a.low >> 16) & 0xFFFF) &+ (a.low & 0xFFFF)
        }
        return s
    }

    /// Folds a partial sum to 16 bits and complements it: the value to store in a header.
    @inlinable
    public static func finish(_ partial: UInt64) -> UInt16 {
        var s = partial
        while s >> 16 != 0 { s = (s & 0xFFFF) &+ (s >> 16) }
        return ~UInt16(truncatingIfNeeded: s)
    }

    /// Pseudo-header sum for TCP/UDP/ICMPv6 (RFC 793 §3.1, RFC 8200 §8.1).
    @inlinable
    public static func pseudoHeader(source: IPAddress, destination: IPAddress, protocol proto: UInt8, length: Int) -> UInt64 {
        var s = add(address: source, to: 0)
        s = add(address: destination, to: s)
        s &+= UInt64(proto)
        s &+= UInt64(UInt32(truncatingIfNeeded: length) >> 16) &+ UInt64(UInt32(truncatingIfNeeded: length) & 0xFFFF)
        return s
    }

    /// Checksum of a byte array (convenience for builders and tests).
    public static func checksum(_ bytes: [UInt8], partial: UInt64 = 0) -> UInt16 {
        bytes.withUnsafeBytes { finish(add($0, to: partial)) }
    }
}
