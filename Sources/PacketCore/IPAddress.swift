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

    /// Writes the address bytes (4 for IPv4, 16 for IPv6) into `out`.
    public func append(to out: inout [UInt8]) {
        let b = bytes
        out.append(contentsOf: isIPv6 ? b[0 ..< 16] : b[0 ..< 4])
    }
}

extension IPAddress: CustomStringConvertible {
    /// Dotted quad for IPv4; RFC 5952 text (lower case, longest zero run as `::`) for IPv6.
    public var description: String {
        if !isIPv6 {
            let v = ipv4Value
            return "\(v >> 24).\((v >> 16) & 0xFF).\((v >> 8) & 0xFF).\(v & 0xFF)"
        }
        var groups = [UInt16](repeating: 0, count: 8)
        for i in 0 ..< 4 {
            groups[i] = UInt16(truncatingIfNeeded: high >> UInt64(48 - 16 * i))
            groups[4 + i] = UInt16(truncatingIfNeeded: low >> UInt64(48 - 16 * i))
        }
        // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first on ties.
        var bestStart = -1, bestLength = 0, runStart = -1
        for i in 0 ... 8 {
            if i < 8 && groups[i] == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength { bestStart = runStart; bestLength = i - runStart }
                runStart = -1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        // RFC 5952 §5: IPv4-mapped addresses keep the dotted quad.
        if high == 0 && (low >> 32) == 0xFFFF {
            let v = UInt32(truncatingIfNeeded: low)
            return "::ffff:\(v >> 24).\((v >> 16) & 0xFF).\((v >> 8) & 0xFF).\(v & 0xFF)"
        }
        var text = ""
        var i = 0
        while i < 8 {
            if i == bestStart {
                text += "::"
                i += bestLength
                continue
            }
            if !text.isEmpty && !text.hasSuffix(":") { text += ":" }
            text += String(groups[i], radix: 16)
            i += 1
        }
        return text
    }
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
