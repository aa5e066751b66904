#if canImport(Glibc)
import Glibc
#endif
import CShims
import Flows
import PacketCore

/// Writes SF-TAP's event headers, byte for byte (reference §2.1 text, §2.2 binary),
/// written into a buffer the formatter owns and reuses: no allocation and
/// no `String` per event.
///
/// Text: `ip1=A,ip2=B,port1=P,port2=Q,vlan=V,hop=H,l3=ipv4,l4=tcp,event=DATA,from=1,match=up,len=N,time=T\n`
/// (no port fields for ICMP; `vlan=` as on the original's `vlan` branch, -1 when untagged; `time` is
/// `%.17g` of seconds + microseconds × 1e-6). Binary: the packed 64-byte `fabs_appif_header`.
public struct SFTapHeaderWriter {
    public typealias Event = SFTapEvent.Kind
    public typealias Match = SFTapEvent.Match

    /// The largest DATA body one binary header can carry (its `len` is a u16).
    public static let maxBinaryBody = 65535

    private let buffer: UnsafeMutableRawPointer
    private let capacity = 512
    private var count = 0
    /// The last second written as `time=` and its ten digits (`flowtap_format_g17_time`).
    private var timeText = SFTapHeaderWriter.emptyTimeText

    private static var emptyTimeText: flowtap_time_text {
        var text = flowtap_time_text()
        text.seconds = .max
        return text
    }

    public init() { buffer = .allocate(byteCount: 512, alignment: 8) }

    /// Frees the buffer (the formatter is a plain struct held by one owner).
    public func deallocate() { buffer.deallocate() }

    private mutating func append(_ text: StaticString) {
        let n = min(text.utf8CodeUnitCount, capacity - count)
        (buffer + count).copyMemory(from: text.utf8Start, byteCount: n)
        count += n
    }

    private mutating func append(byte: UInt8) {
        guard count < capacity else { return }
        buffer.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    private mutating func append(decimal value: Int) {
        var v = UInt64(value.magnitude)
        if value < 0 { append(byte: UInt8(ascii: "-")) }
        let width = decimalDigitCount(v)
        guard count + width <= capacity else { return }
        // Two digits per division (octets, ports and lengths are one to five digits).
        var at = count + width
        while v >= 10 {
            let pair = Int(truncatingIfNeeded: v % 100)
            v /= 100
            at -= 2
            (buffer + at).copyMemory(from: flowtap_digit_pairs + 2 * pair, byteCount: 2)
            if v == 0 { break }
        }
        if at > count { buffer.storeBytes(of: UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v), toByteOffset: at - 1, as: UInt8.self) }
        count += width
    }

    /// inet_ntop's text, as the original prints addresses, written directly (inet_ntop formats
    /// through printf, a third of the header's cost).
    private mutating func append(address: IPAddress) {
        if address.isIPv6 { appendIPv6(address) } else { append(dottedQuad: address.ipv4Value) }
    }

    /// IPv4's dotted quad, by the address writer records use (`IPAddress.writeText`).
    private mutating func append(dottedQuad v: UInt32) {
        guard count + 15 <= capacity else { return }
        count += IPAddress(ipv4: v).writeText(to: (buffer + count).assumingMemoryBound(to: UInt8.self))
    }

    /// IPv6 as glibc's inet_ntop writes it: lower-case hex words without leading zeros, the first
    /// longest run of two or more zero words as "::", and "::a.b.c.d" / "::ffff:a.b.c.d" for
    /// IPv4-compatible and IPv4-mapped addresses.
    private mutating func appendIPv6(_ address: IPAddress) {
        @inline(__always) func word(_ i: Int) -> Int {
            Int(truncatingIfNeeded: ((i < 4 ? address.high : address.low) >> UInt64(48 - 16 * (i & 3))) & 0xFFFF)
        }
        var bestBase = -1, bestLength = 0, runBase = -1, runLength = 0
        for i in 0 ..< 8 {
            if word(i) == 0 {
                if runBase < 0 { runBase = i; runLength = 0 }
                runLength += 1
                if runLength > bestLength { bestBase = runBase; bestLength = runLength }
            } else {
                runBase = -1
            }
        }
        if bestLength < 2 { bestBase = -1 }
        var i = 0
        while i < 8 {
            if bestBase >= 0 && i >= bestBase && i < bestBase + bestLength {
                if i == bestBase { append(byte: UInt8(ascii: ":")) }
                i += 1
                continue
            }
            if i != 0 { append(byte: UInt8(ascii: ":")) }
            if i == 6 && bestBase == 0 && (bestLength == 6 || (bestLength == 5 && word(5) == 0xFFFF)) {
                append(dottedQuad: UInt32(truncatingIfNeeded: address.low))
                return
            }
            append(hex: word(i))
            i += 1
        }
        if bestBase >= 0 && bestBase + bestLength == 8 { append(byte: UInt8(ascii: ":")) }
    }

    private mutating func append(hex value: Int) {
        var shift = 12
        while shift > 0 && (value >> shift) & 0xF == 0 { shift -= 4 }
        while shift >= 0 {
            append(byte: hexDigit(UInt8((value >> shift) & 0xF)))
            shift -= 4
        }
    }

    /// inet_ntop itself: the reference `appendIPv6` is tested against.
    public static func inetNtop(_ address: IPAddress) -> String {
        var raw = (address.high.bigEndian, address.low.bigEndian)
        var text = [CChar](repeating: 0, count: 64)
        return withUnsafeBytes(of: &raw) { source in
            text.withUnsafeMutableBufferPointer { target in
                guard inet_ntop(address.isIPv6 ? AF_INET6 : AF_INET, source.baseAddress, target.baseAddress, 64) != nil else { return "" }
                return String(cString: target.baseAddress!)
            }
        }
    }

    /// A number as a text header writes it (`len=`, ports, octets).
    public static func decimalText(_ value: Int) -> String {
        var formatter = SFTapHeaderWriter()
        defer { formatter.deallocate() }
        formatter.append(decimal: value)
        return String(decoding: UnsafeRawBufferPointer(start: formatter.buffer, count: formatter.count), as: UTF8.self)
    }

    /// The address as a text header writes it.
    public static func addressText(_ address: IPAddress) -> String {
        var formatter = SFTapHeaderWriter()
        defer { formatter.deallocate() }
        formatter.count = 0
        formatter.append(address: address)
        return String(decoding: UnsafeRawBufferPointer(start: formatter.buffer, count: formatter.count), as: UTF8.self)
    }

    private mutating func append(time: Timestamp) {
        // The original: double(tv_sec + tv_usec * 1e-6), from a microsecond timeval.
        let value = Double(time.seconds) + Double(time.microseconds) * 1e-6
        let n = flowtap_format_g17_time((buffer + count).assumingMemoryBound(to: CChar.self), capacity - count, value, &timeText)
        if n > 0 { count += Int(n) }
    }

    /// The longest text prefix (`ip1=…,l4=…`): two IPv6 addresses of 39 characters and every field at its widest.
    public static let maxTextPrefix = 160

    /// A text header line, `\n` included.
    public mutating func text(
        key: FlowKey, event: Event, fromFirst: Bool?, match: Match, length: Int, reason: DestroyReason, time: Timestamp
    ) -> UnsafeRawBufferPointer {
        count = 0
        appendPrefix(key)
        appendSuffix(event: event, fromFirst: fromFirst, match: match, length: length, reason: reason, time: time)
        return UnsafeRawBufferPointer(start: buffer, count: count)
    }

    /// The part of a text header that never changes within a flow, `ip1=` to `l4=…` (no comma after it).
    /// A flow with many events formats it once and passes it to `text(prefix:…)`: the addresses, ports
    /// and labels were most of a header's cost.
    public mutating func textPrefix(key: FlowKey) -> UnsafeRawBufferPointer {
        count = 0
        appendPrefix(key)
        return UnsafeRawBufferPointer(start: buffer, count: count)
    }

    /// A text header line from a prefix `textPrefix` wrote for the same flow, byte for byte what
    /// `text(key:…)` writes.
    public mutating func text(
        prefix: UnsafeRawBufferPointer, event: Event, fromFirst: Bool?, match: Match, length: Int, reason: DestroyReason, time: Timestamp
    ) -> UnsafeRawBufferPointer {
        count = min(prefix.count, capacity)
        if let base = prefix.baseAddress { buffer.copyMemory(from: base, byteCount: count) }
        appendSuffix(event: event, fromFirst: fromFirst, match: match, length: length, reason: reason, time: time)
        return UnsafeRawBufferPointer(start: buffer, count: count)
    }

    /// A DATA header's words up to its length, one copy instead of six.
    @inline(__always)
    static func dataWords(fromFirst: Bool?, match: Match) -> StaticString {
        switch (fromFirst, match) {
        case (true?, .up): ",event=DATA,from=1,match=up,len="
        case (true?, .down): ",event=DATA,from=1,match=down,len="
        case (true?, .none): ",event=DATA,from=1,match=none,len="
        case (false?, .up): ",event=DATA,from=2,match=up,len="
        case (false?, .down): ",event=DATA,from=2,match=down,len="
        case (false?, .none): ",event=DATA,from=2,match=none,len="
        case (nil, .up): ",event=DATA,from=none,match=up,len="
        case (nil, .down): ",event=DATA,from=none,match=down,len="
        case (nil, .none): ",event=DATA,from=none,match=none,len="
        }
    }

    private mutating func appendPrefix(_ key: FlowKey) {
        append("ip1=")
        append(address: key.address1)
        append(",ip2=")
        append(address: key.address2)
        let hasPorts = key.ipProtocol == 6 || key.ipProtocol == 17
        if hasPorts {
            append(",port1=")
            append(decimal: Int(key.port1))
            append(",port2=")
            append(decimal: Int(key.port2))
        }
        append(",vlan=")
        append(decimal: key.vlan == FlowKey.noVLAN ? -1 : Int(key.vlan))
        append(",hop=")
        append(decimal: Int(key.hop))
        append(key.isIPv6 ? ",l3=ipv6" : ",l3=ipv4")
        switch key.ipProtocol {
        case 6: append(",l4=tcp")
        case 17: append(",l4=udp")
        case 1: append(",l4=icmp")
        default: append(",l4=icmpv6")
        }
    }

    private mutating func appendSuffix(event: Event, fromFirst: Bool?, match: Match, length: Int, reason: DestroyReason, time: Timestamp) {
        switch event {
        case .created:
            append(",event=CREATED")
        case .destroyed:
            append(",event=DESTROYED,reason=")
            switch reason {
            case .normal: append("NORMAL")
            case .reset: append("RESET")
            case .timeout: append("TIMEOUT")
            case .compromised: append("COMPROMISED")
            }
        case .data:
            append(Self.dataWords(fromFirst: fromFirst, match: match))
            append(decimal: length)
        }
        append(",time=")
        append(time: time)
        append(byte: UInt8(ascii: "\n"))
    }

    /// A 64-byte binary header (`length` at most `maxBinaryBody`).
    public mutating func binary(
        key: FlowKey, event: Event, fromFirst: Bool?, match: Match, length: Int, reason: DestroyReason, time: Timestamp
    ) -> UnsafeRawBufferPointer {
        typealias L = SFTapBinaryLayout
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: L.size)
        buffer.storeBytes(of: key.address1.high.bigEndian, toByteOffset: L.address1, as: UInt64.self)
        buffer.storeBytes(of: key.address1.low.bigEndian, toByteOffset: L.address1 + 8, as: UInt64.self)
        buffer.storeBytes(of: key.address2.high.bigEndian, toByteOffset: L.address2, as: UInt64.self)
        buffer.storeBytes(of: key.address2.low.bigEndian, toByteOffset: L.address2 + 8, as: UInt64.self)
        buffer.storeBytes(of: Int64(time.seconds), toByteOffset: L.seconds, as: Int64.self)
        buffer.storeBytes(of: Int64(time.microseconds), toByteOffset: L.microseconds, as: Int64.self)
        buffer.storeBytes(of: key.port1.bigEndian, toByteOffset: L.port1, as: UInt16.self)
        buffer.storeBytes(of: key.port2.bigEndian, toByteOffset: L.port2, as: UInt16.self)
        buffer.storeBytes(of: event.rawValue, toByteOffset: L.event, as: UInt8.self)
        buffer.storeBytes(of: fromFirst.map { $0 ? UInt8(0) : 1 } ?? 3, toByteOffset: L.from, as: UInt8.self)
        buffer.storeBytes(of: UInt16(clamping: length), toByteOffset: L.length, as: UInt16.self)
        buffer.storeBytes(of: key.hop, toByteOffset: L.hop, as: UInt8.self)
        buffer.storeBytes(of: key.isIPv6 ? UInt8(41) : 0, toByteOffset: L.l3, as: UInt8.self)
        buffer.storeBytes(of: key.ipProtocol, toByteOffset: L.l4, as: UInt8.self)
        buffer.storeBytes(of: match.rawValue, toByteOffset: L.match, as: UInt8.self)
        buffer.storeBytes(of: reason.rawValue, toByteOffset: L.reason, as: UInt8.self)
        buffer.storeBytes(of: key.vlan.bigEndian, toByteOffset: L.vlan, as: UInt16.self)
        return UnsafeRawBufferPointer(start: buffer, count: L.size)
    }
}
