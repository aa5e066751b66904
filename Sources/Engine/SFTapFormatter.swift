#if canImport(Glibc)
import Glibc
#endif
import CShims
import Flows
import PacketCore

/// SF-TAP's event headers, byte for byte (reference §2.1 text, §2.2 binary),
/// written into a buffer the formatter owns and reuses: no allocation and
/// no `String` per event.
///
/// Text: `ip1=A,ip2=B,port1=P,port2=Q,vlan=V,hop=H,l3=ipv4,l4=tcp,event=DATA,from=1,match=up,len=N,time=T\n`
/// (no port fields for ICMP; `vlan=` as on the original's `vlan` branch, -1 when untagged; `time` is
/// `%.17g` of seconds + microseconds × 1e-6). Binary: the packed 64-byte `fabs_appif_header`.
public struct SFTapFormatter {
    public enum Event: UInt8 {
        case created = 0, destroyed = 1, data = 2
    }

    public enum MatchLabel: UInt8 {
        case up = 0, down = 1, none = 2

        var text: StaticString {
            switch self {
            case .up: "up"
            case .down: "down"
            case .none: "none"
            }
        }
    }

    /// The largest DATA body one binary header can carry (its `len` is a u16).
    public static let maxBinaryBody = 65535

    private let buffer: UnsafeMutableRawPointer
    private let capacity = 512
    private var count = 0

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
        var width = 1
        var scale: UInt64 = 10
        while width < 20 && v >= scale {
            width += 1
            scale = scale &* 10
        }
        guard count + width <= capacity else { return }
        var at = count + width
        repeat {
            at -= 1
            buffer.storeBytes(of: UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10), toByteOffset: at, as: UInt8.self)
            v /= 10
        } while v > 0
        count += width
    }

    /// inet_ntop's text, as the original prints addresses; IPv4 is written directly (inet_ntop formats
    /// through printf, a third of the header's cost).
    private mutating func append(address: IPAddress) {
        if !address.isIPv6 {
            let v = address.ipv4Value
            append(decimal: Int(v >> 24))
            append(byte: UInt8(ascii: "."))
            append(decimal: Int((v >> 16) & 0xFF))
            append(byte: UInt8(ascii: "."))
            append(decimal: Int((v >> 8) & 0xFF))
            append(byte: UInt8(ascii: "."))
            append(decimal: Int(v & 0xFF))
            return
        }
        var raw = (address.high.bigEndian, address.low.bigEndian)
        let written: Int = withUnsafeBytes(of: &raw) { source in
            let target = (buffer + count).assumingMemoryBound(to: CChar.self)
            guard inet_ntop(address.isIPv6 ? AF_INET6 : AF_INET, source.baseAddress, target, socklen_t(capacity - count)) != nil else { return 0 }
            return strlen(target)
        }
        count += written
    }

    private mutating func append(time: Timestamp) {
        // The original: double(tv_sec + tv_usec * 1e-6), from a microsecond timeval.
        let value = Double(time.seconds) + Double(time.microseconds) * 1e-6
        let n = flowtap_format_g17((buffer + count).assumingMemoryBound(to: CChar.self), capacity - count, value)
        if n > 0 { count += Int(n) }
    }

    /// A text header line, `\n` included.
    public mutating func text(
        key: FlowKey, event: Event, fromFirst: Bool?, match: MatchLabel, length: Int, reason: DestroyReason, time: Timestamp
    ) -> UnsafeRawBufferPointer {
        count = 0
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
            append(",event=DATA,from=")
            switch fromFirst {
            case true?: append("1")
            case false?: append("2")
            case nil: append("none")
            }
            append(",match=")
            append(match.text)
            append(",len=")
            append(decimal: length)
        }
        append(",time=")
        append(time: time)
        append(byte: UInt8(ascii: "\n"))
        return UnsafeRawBufferPointer(start: buffer, count: count)
    }

    /// A 64-byte binary header (`length` at most `maxBinaryBody`).
    public mutating func binary(
        key: FlowKey, event: Event, fromFirst: Bool?, match: MatchLabel, length: Int, reason: DestroyReason, time: Timestamp
    ) -> UnsafeRawBufferPointer {
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: 64)
        buffer.storeBytes(of: key.address1.high.bigEndian, toByteOffset: 0, as: UInt64.self)
        buffer.storeBytes(of: key.address1.low.bigEndian, toByteOffset: 8, as: UInt64.self)
        buffer.storeBytes(of: key.address2.high.bigEndian, toByteOffset: 16, as: UInt64.self)
        buffer.storeBytes(of: key.address2.low.bigEndian, toByteOffset: 24, as: UInt64.self)
        // struct timeval in host order: tv_sec, tv_usec (8 bytes each on x86-64 Linux).
        buffer.storeBytes(of: Int64(time.seconds), toByteOffset: 32, as: Int64.self)
        buffer.storeBytes(of: Int64(time.microseconds), toByteOffset: 40, as: Int64.self)
        buffer.storeBytes(of: key.port1.bigEndian, toByteOffset: 48, as: UInt16.self)
        buffer.storeBytes(of: key.port2.bigEndian, toByteOffset: 50, as: UInt16.self)
        buffer.storeBytes(of: event.rawValue, toByteOffset: 52, as: UInt8.self)
        buffer.storeBytes(of: fromFirst.map { $0 ? UInt8(0) : 1 } ?? 3, toByteOffset: 53, as: UInt8.self)
        buffer.storeBytes(of: UInt16(clamping: length), toByteOffset: 54, as: UInt16.self)
        buffer.storeBytes(of: key.hop, toByteOffset: 56, as: UInt8.self)
        buffer.storeBytes(of: key.isIPv6 ? UInt8(41) : 0, toByteOffset: 57, as: UInt8.self)
        buffer.storeBytes(of: key.ipProtocol, toByteOffset: 58, as: UInt8.self)
        buffer.storeBytes(of: match.rawValue, toByteOffset: 59, as: UInt8.self)
        buffer.storeBytes(of: reason.rawValue, toByteOffset: 60, as: UInt8.self)
        buffer.storeBytes(of: key.vlan.bigEndian, toByteOffset: 61, as: UInt16.self)
        return UnsafeRawBufferPointer(start: buffer, count: 64)
    }
}
