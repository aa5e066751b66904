#if canImport(Glibc)
import Glibc
#endif
import PacketCore

/// SF-TAP's event headers read back into `SFTapEvent`s, whole headers only (framing is
/// `SFTapEventReader`'s): a text header line (reference §2.1) or a packed 64-byte binary header
/// (§2.2). Never traps: a value outside what the format allows is `.invalid` with the field named.
/// Used by every reader of SF-TAP streams: the socket analyzers and the loopback7 injection socket.
public enum SFTapHeaderParser {
    public enum Parsed {
        case event(SFTapEvent)
        case invalid(SFTapStreamError.Code, SFTapStreamError.Field?, Int?)
    }

    /// A packed 64-byte header (`SFTapBinaryLayout`).
    public static func parseBinary(_ b: UnsafeRawBufferPointer) -> Parsed {
        typealias L = SFTapBinaryLayout
        let kind: SFTapEvent.Kind
        switch b[L.event] {
        case 0: kind = .created
        case 1: kind = .destroyed
        case 2: kind = .data
        default: return .invalid(.badValue, .event, Int(b[L.event]))
        }
        let fromFirst: Bool?
        switch b[L.from] {
        case 0: fromFirst = true
        case 1: fromFirst = false
        case 3: fromFirst = nil
        default: return .invalid(.badValue, .from, Int(b[L.from]))
        }
        guard b[L.l3] == 0 || b[L.l3] == 41 else { return .invalid(.badValue, .l3, Int(b[L.l3])) }
        let transport = b[L.l4]
        guard transport == 6 || transport == 17 || transport == 1 || transport == 58 else { return .invalid(.badValue, .l4, Int(transport)) }
        guard let match = SFTapEvent.Match(rawValue: b[L.match]) else { return .invalid(.badValue, .match, Int(b[L.match])) }
        guard b[L.reason] <= 3 else { return .invalid(.badValue, .reason, Int(b[L.reason])) }
        let v6 = b[L.l3] == 41
        let seconds = Int64(littleEndian: b.loadUnaligned(fromByteOffset: L.seconds, as: Int64.self))
        let micros = Int64(littleEndian: b.loadUnaligned(fromByteOffset: L.microseconds, as: Int64.self))
        let hasPorts = transport == 6 || transport == 17
        return .event(SFTapEvent(
            kind: kind,
            address1: v6 ? IPAddress(high: b.beUInt64(at: L.address1), low: b.beUInt64(at: L.address1 + 8), isIPv6: true) : IPAddress(ipv4: b.beUInt32(at: L.address1)),
            address2: v6 ? IPAddress(high: b.beUInt64(at: L.address2), low: b.beUInt64(at: L.address2 + 8), isIPv6: true) : IPAddress(ipv4: b.beUInt32(at: L.address2)),
            port1: hasPorts ? b.beUInt16(at: L.port1) : 0, port2: hasPorts ? b.beUInt16(at: L.port2) : 0,
            vlan: b.beUInt16(at: L.vlan), hop: b[L.hop], transport: transport,
            fromFirst: kind == .data ? fromFirst : nil, match: match, reason: kind == .destroyed ? b[L.reason] : 0,
            time: Timestamp(seconds: seconds, microseconds: micros),
            length: kind == .data ? Int(b.leUInt16(at: L.length)) : 0))
    }

    /// One text header line, its newline included (reference §2.1).
    public static func parseText(_ line: UnsafeRawBufferPointer) -> Parsed {
        var end = line.count
        if end > 0 && line[end - 1] == 0x0A { end -= 1 }
        if end > 0 && line[end - 1] == 0x0D { end -= 1 }
        var kind: SFTapEvent.Kind?
        var a1: IPAddress?, a2: IPAddress?
        var p1: UInt16?, p2: UInt16?
        var vlan = SFTapEvent.noVLAN
        var hop: UInt8?
        var v6: Bool?
        var transport: UInt8?
        var fromFirst: Bool?
        var match = SFTapEvent.Match.none
        var reason: UInt8 = 0
        var time = Timestamp.zero
        var length: Int?

        var start = 0
        while start < end {
            var comma = start
            while comma < end && line[comma] != UInt8(ascii: ",") { comma += 1 }
            var equals = start
            while equals < comma && line[equals] != UInt8(ascii: "=") { equals += 1 }
            guard equals < comma, equals > start else { return .invalid(.malformedField, nil, nil) }
            let key = UnsafeRawBufferPointer(rebasing: line[start ..< equals])
            let value = UnsafeRawBufferPointer(rebasing: line[equals + 1 ..< comma])
            start = comma + 1
            guard let field = field(key) else { continue }
            let bad = Parsed.invalid(.badValue, field, nil)
            switch field {
            case .ip1, .ip2:
                guard let address = address(value) else { return bad }
                if field == .ip1 { a1 = address } else { a2 = address }
            case .port1, .port2:
                guard let n = decimal(value), n <= 65535 else { return bad }
                if field == .port1 { p1 = UInt16(n) } else { p2 = UInt16(n) }
            case .vlan:
                if equal(value, "-1") {
                    vlan = SFTapEvent.noVLAN
                } else {
                    guard let n = decimal(value), n <= 4095 else { return bad }
                    vlan = UInt16(n)
                }
            case .hop:
                guard let n = decimal(value), n <= 255 else { return bad }
                hop = UInt8(n)
            case .l3:
                guard let i = keyword(value, Self.l3Words) else { return bad }
                v6 = i == 1
            case .l4:
                guard let i = keyword(value, Self.l4Words) else { return bad }
                transport = Self.l4Numbers[i]
            case .event:
                guard let i = keyword(value, Self.eventWords) else { return bad }
                kind = SFTapEvent.Kind(rawValue: UInt8(i))
            case .from:
                guard let i = keyword(value, Self.fromWords) else { return bad }
                fromFirst = i == 2 ? nil : i == 0
            case .match:
                guard let i = keyword(value, Self.matchWords) else { return bad }
                match = SFTapEvent.Match(rawValue: UInt8(i)) ?? .none
            case .len:
                guard let n = decimal(value) else { return bad }
                length = n
            case .reason:
                guard let i = keyword(value, Self.reasonWords) else { return bad }
                reason = UInt8(i)
            case .time:
                guard let t = seconds(value) else { return bad }
                time = t
            }
        }
        guard let kind else { return .invalid(.missingField, .event, nil) }
        guard let v6 else { return .invalid(.missingField, .l3, nil) }
        guard let transport else { return .invalid(.missingField, .l4, nil) }
        guard let a1 else { return .invalid(.missingField, .ip1, nil) }
        guard a1.isIPv6 == v6 else { return .invalid(.badValue, .ip1, nil) }
        guard let a2 else { return .invalid(.missingField, .ip2, nil) }
        guard a2.isIPv6 == v6 else { return .invalid(.badValue, .ip2, nil) }
        guard let hop else { return .invalid(.missingField, .hop, nil) }
        let hasPorts = transport == 6 || transport == 17
        guard !hasPorts || p1 != nil else { return .invalid(.missingField, .port1, nil) }
        guard !hasPorts || p2 != nil else { return .invalid(.missingField, .port2, nil) }
        if kind == .data && length == nil { return .invalid(.missingField, .len, nil) }
        return .event(SFTapEvent(
            kind: kind, address1: a1, address2: a2, port1: hasPorts ? p1 ?? 0 : 0, port2: hasPorts ? p2 ?? 0 : 0, vlan: vlan, hop: hop,
            transport: transport, fromFirst: kind == .data ? fromFirst : nil, match: match, reason: kind == .destroyed ? reason : 0,
            time: time, length: kind == .data ? length ?? 0 : 0))
    }

    // Text values, in the order of their codes (event and match as the binary header numbers them).
    static let l3Words: [StaticString] = ["ipv4", "ipv6"]
    static let l4Words: [StaticString] = ["tcp", "udp", "icmp", "icmpv6"]
    static let l4Numbers: [UInt8] = [6, 17, 1, 58]
    static let eventWords: [StaticString] = ["CREATED", "DESTROYED", "DATA"]
    static let fromWords: [StaticString] = ["1", "2", "none"]
    static let matchWords: [StaticString] = ["up", "down", "none"]
    static let reasonWords: [StaticString] = ["NORMAL", "RESET", "TIMEOUT", "COMPROMISED"]

    /// The index of `bytes` among `words`.
    static func keyword(_ bytes: UnsafeRawBufferPointer, _ words: [StaticString]) -> Int? {
        for (i, word) in words.enumerated() where equal(bytes, word) { return i }
        return nil
    }

    static func equal(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        let n = text.utf8CodeUnitCount
        guard bytes.count == n else { return false }
        for i in 0 ..< n where bytes[i] != text.utf8Start[i] { return false }
        return true
    }

    static func field(_ key: UnsafeRawBufferPointer) -> SFTapStreamError.Field? {
        switch key.count {
        case 2: return equal(key, "l3") ? .l3 : equal(key, "l4") ? .l4 : nil
        case 3:
            return equal(key, "ip1") ? .ip1 : equal(key, "ip2") ? .ip2 : equal(key, "hop") ? .hop : equal(key, "len") ? .len : nil
        case 4: return equal(key, "vlan") ? .vlan : equal(key, "from") ? .from : equal(key, "time") ? .time : nil
        case 5: return equal(key, "port1") ? .port1 : equal(key, "port2") ? .port2 : equal(key, "event") ? .event : equal(key, "match") ? .match : nil
        case 6: return equal(key, "reason") ? .reason : nil
        default: return nil
        }
    }

    /// Unsigned decimal of at most 12 digits.
    static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 12 else { return nil }
        var n = 0
        for b in bytes {
            guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else { return nil }
            n = n * 10 + Int(b - UInt8(ascii: "0"))
        }
        return n
    }

    /// Runs `body` on a NUL-terminated copy of `bytes` (at most 63 bytes) on the stack.
    static func withCString<R>(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafePointer<CChar>) -> R?) -> R? {
        guard bytes.count < 64 else { return nil }
        var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &storage) { raw in
            for i in 0 ..< bytes.count {
                guard bytes[i] != 0 else { return nil }
                raw[i] = bytes[i]
            }
            return body(raw.baseAddress!.assumingMemoryBound(to: CChar.self))
        }
    }

    /// An address as inet_ntop prints it: dotted quad, or IPv6 text when it holds a colon.
    static func address(_ bytes: UnsafeRawBufferPointer) -> IPAddress? {
        let v6 = bytes.contains(UInt8(ascii: ":"))
        return withCString(bytes) { text -> IPAddress? in
            var raw: (UInt64, UInt64) = (0, 0)
            let ok = withUnsafeMutableBytes(of: &raw) { inet_pton(v6 ? AF_INET6 : AF_INET, text, $0.baseAddress) }
            guard ok == 1 else { return nil }
            return v6 ? IPAddress(high: UInt64(bigEndian: raw.0), low: UInt64(bigEndian: raw.1), isIPv6: true)
                : IPAddress(ipv4: UInt32(bigEndian: UInt32(truncatingIfNeeded: raw.0)))
        }
    }

    /// `time=`: epoch seconds as SF-TAP prints them (`%.17g` of seconds + microseconds × 1e-6), back to a
    /// microsecond timestamp. Between 0 and 1e11 seconds.
    static func seconds(_ bytes: UnsafeRawBufferPointer) -> Timestamp? {
        guard let value = withCString(bytes, { text -> Double? in
            var end: UnsafeMutablePointer<CChar>?
            let v = strtod(text, &end)
            guard let end, end != UnsafeMutablePointer(mutating: text), end.pointee == 0 else { return nil }
            return v
        }) else { return nil }
        guard value.isFinite, value >= 0, value < 1e11 else { return nil }
        let whole = value.rounded(.down)
        var micros = Int64(((value - whole) * 1e6).rounded())
        var seconds = Int64(whole)
        if micros >= 1_000_000 {
            seconds += 1
            micros -= 1_000_000
        }
        return Timestamp(seconds: seconds, microseconds: micros)
    }
}
