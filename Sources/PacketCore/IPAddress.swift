/// An IPv4 or IPv6 address in 16 bytes of network order.
///
/// IPv4 addresses sit in the first four bytes with the rest zero, the layout
/// SF-TAP's `fabs_peer` uses, so ordering by (`high`, `low`) equals the
/// original's `memcmp` order of the address bytes.
public struct IPAddress: Hashable, Comparable, Sendable {
    /// Bytes 0–7, big-endian.
    public var high: UInt64
    /// Bytes 8–15, big-endian.
    public var low: UInt64
    public var isIPv6: Bool

    @inlinable
    public init(high: UInt64, low: UInt64, isIPv6: Bool) {
        self.high = high
        self.low = low
        self.isIPv6 = isIPv6
    }

    /// An IPv4 address from its 32-bit value in host order (`0x0A000001` is 10.0.0.1).
    @inlinable
    public init(ipv4 value: UInt32) {
        high = UInt64(value) << 32
        low = 0
        isIPv6 = false
    }

    public static let zero = IPAddress(high: 0, low: 0, isIPv6: false)

    /// The IPv4 value in host order; meaningful only when `!isIPv6`.
    @inlinable
    public var ipv4Value: UInt32 { UInt32(truncatingIfNeeded: high >> 32) }

    @inlinable
    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        a.high != b.high ? a.high < b.high : a.low < b.low
    }

    /// Reads four address bytes at `offset`.
    @inlinable
    public static func ipv4(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> IPAddress {
        IPAddress(ipv4: bytes.beUInt32(at: offset))
    }

    /// Reads sixteen address bytes at `offset`.
    @inlinable
    public static func ipv6(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> IPAddress {
        IPAddress(high: bytes.beUInt64(at: offset), low: bytes.beUInt64(at: offset + 8), isIPv6: true)
    }

    /// The 16 address bytes in network order.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        for i in 0 ..< 8 {
            out[i] = UInt8(truncatingIfNeeded: high >> UInt64(56 - 8 * i))
            out[8 + i] = UInt8(truncatingIfNeeded: low >> UInt64(56 - 8 * i))
        }
        return out
    }

    /// Writes the address bytes in network order (4 for IPv4, 16 for IPv6) at `out`; returns how many.
    @inlinable
    public func writeBytes(to out: UnsafeMutablePointer<UInt8>) -> Int {
        let count = isIPv6 ? 16 : 4
        for i in 0 ..< count {
            let word = i < 8 ? high : low
            out[i] = UInt8(truncatingIfNeeded: word >> UInt64(56 - 8 * (i & 7)))
        }
        return count
    }
}

extension IPAddress {
    /// A seeded 64-bit hash for tables keyed by one address (the talker table, the dashboard's host
    /// sums): both halves and the family, through murmur3's finaliser, so every bit reaches the low bits
    /// a table takes its slot from (an IPv4 address sits in the top half of `high`). The seed enters
    /// before a multiply, so which addresses collide depends on it: with the seed and both halves only
    /// XORed together, addresses chosen so that `high ^ low·C` is equal collided under every seed.
    @inlinable @inline(__always)
    public func tableHash(seed: UInt64) -> UInt64 {
        murmur3Finalize((((seed ^ high) &* 0x9E37_79B9_7F4A_7C15) ^ low) &* 0xC2B2_AE3D_27D4_EB4F ^ (isIPv6 ? 2 : 1))
    }
}

extension IPAddress: CustomStringConvertible {
    /// Dotted quad for IPv4; RFC 5952 text (lower case, longest zero run as `::`) for IPv6.
    public var description: String {
        String(unsafeUninitializedCapacity: Self.maxTextLength) { writeText(to: $0.baseAddress!) }
    }

    /// The longest text `writeText` writes (an IPv6 address of eight four-digit groups).
    public static let maxTextLength = 39

    /// Writes the address's text (`description`) at `target`, which has room for `maxTextLength` bytes;
    /// returns its length. Records write an address or two each, straight into their buffer.
    public func writeText(to target: UnsafeMutablePointer<UInt8>) -> Int {
        var at = target
        @inline(__always) func put(_ byte: UInt8) {
            at.pointee = byte
            at += 1
        }
        func dottedQuad(_ v: UInt32) {
            for shift in stride(from: 24, through: 0, by: -8) {
                let octet = UInt8(truncatingIfNeeded: v >> UInt32(shift))
                if octet >= 100 { put(UInt8(ascii: "0") &+ octet / 100) }
                if octet >= 10 { put(UInt8(ascii: "0") &+ octet / 10 % 10) }
                put(UInt8(ascii: "0") &+ octet % 10)
                if shift > 0 { put(UInt8(ascii: ".")) }
            }
        }
        if !isIPv6 {
            dottedQuad(ipv4Value)
            return at - target
        }
        // RFC 5952 §5: IPv4-mapped addresses keep the dotted quad.
        if high == 0 && (low >> 32) == 0xFFFF {
            for byte in "::ffff:".utf8 { put(byte) }
            dottedQuad(UInt32(truncatingIfNeeded: low))
            return at - target
        }
        // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first on ties.
        var bestStart = -1, bestLength = 0, runStart = -1
        for i in 0 ... 8 {
            if i < 8 && group(i) == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength { bestStart = runStart; bestLength = i - runStart }
                runStart = -1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        var i = 0
        var afterColon = true
        while i < 8 {
            if i == bestStart {
                put(UInt8(ascii: ":"))
                put(UInt8(ascii: ":"))
                afterColon = true
                i += bestLength
                continue
            }
            if !afterColon { put(UInt8(ascii: ":")) }
            let g = group(i)
            // Lower-case hex without leading zeros (RFC 5952 §4.1, §4.3).
            var shift = 12
            while shift > 0 && (g >> UInt16(shift)) == 0 { shift -= 4 }
            while shift >= 0 {
                put(hexDigit(UInt8(truncatingIfNeeded: g >> UInt16(shift)) & 0xF))
                shift -= 4
            }
            afterColon = false
            i += 1
        }
        return at - target
    }

    /// The 16-bit group `i` (0…7) of an IPv6 address.
    @inline(__always)
    private func group(_ i: Int) -> UInt16 {
        UInt16(truncatingIfNeeded: (i < 4 ? high : low) >> UInt64(48 - 16 * (i & 3)))
    }
}

/// The lower-case hex digit of a nibble (0…15).
@inlinable @inline(__always)
public func hexDigit(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? UInt8(ascii: "0") &+ nibble : UInt8(ascii: "a") &+ (nibble &- 10)
}

extension IPAddress {
    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text; `nil` when malformed.
    public init?(_ text: Substring) {
        if !text.contains(":") {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var value: UInt32 = 0
            for part in parts {
                guard !part.isEmpty, part.count <= 3, let octet = UInt32(part), octet <= 255 else { return nil }
                value = value << 8 | octet
            }
            self.init(ipv4: value)
            return
        }
        var head: [UInt16] = [], tail: [UInt16] = []
        let doubleColons = text.ranges(of: "::")
        guard doubleColons.count <= 1 else { return nil }
        let halves: [String] = doubleColons.first.map {
            [String(text[text.startIndex ..< $0.lowerBound]), String(text[$0.upperBound...])]
        } ?? [String(text)]
        func groups(_ s: String, allowIPv4Tail: Bool) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            let pieces = s.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if allowIPv4Tail && index == pieces.count - 1 && piece.contains(".") {
                    guard let v4 = IPAddress(piece), !v4.isIPv6 else { return nil }
                    out.append(UInt16(v4.ipv4Value >> 16))
                    out.append(UInt16(v4.ipv4Value & 0xFFFF))
                    continue
                }
                guard !piece.isEmpty, piece.count <= 4, let g = UInt16(piece, radix: 16) else { return nil }
                out.append(g)
            }
            return out
        }
        guard let h = groups(halves[0], allowIPv4Tail: halves.count == 1) else { return nil }
        head = h
        if halves.count == 2 {
            guard let t = groups(halves[1], allowIPv4Tail: true) else { return nil }
            tail = t
            guard head.count + tail.count <= 7 else { return nil }
        } else {
            guard head.count == 8 else { return nil }
        }
        let all = head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        var hi: UInt64 = 0, lo: UInt64 = 0
        for i in 0 ..< 4 { hi = hi << 16 | UInt64(all[i]) }
        for i in 4 ..< 8 { lo = lo << 16 | UInt64(all[i]) }
        self.init(high: hi, low: lo, isIPv6: true)
    }

    public init?(_ text: String) { self.init(Substring(text)) }
}
