import PacketCore

/// Reads one field value of `length` bytes as an unsigned integer (NetFlow and IPFIX may send any
/// unsigned element in fewer bytes than its type, RFC 7011 §6.2); nil for a length over 8.
@inline(__always)
func unsignedValue(_ bytes: UnsafeRawBufferPointer, at offset: Int, length: Int) -> UInt64? {
    guard length >= 1, length <= 8, offset >= 0, offset + length <= bytes.count else { return nil }
    var v: UInt64 = 0
    for i in 0 ..< length { v = v << 8 | UInt64(bytes[offset + i]) }
    return v
}

/// An address field: 4 bytes IPv4, 16 bytes IPv6.
@inline(__always)
func addressValue(_ bytes: UnsafeRawBufferPointer, at offset: Int, length: Int) -> IPAddress? {
    guard offset >= 0, offset + length <= bytes.count else { return nil }
    switch length {
    case 4: return IPAddress.ipv4(bytes, at: offset)
    case 16: return IPAddress.ipv6(bytes, at: offset)
    default: return nil
    }
}

/// RFC 7011 §6.1.7–6.1.9: NTP-format timestamps (seconds since 1900, then a binary fraction).
func ntpTimestamp(_ value: UInt64, microseconds: Bool) -> Timestamp {
    let seconds = Int64(value >> 32) - 2_208_988_800
    var fraction = value & 0xFFFF_FFFF
    // dateTimeMicroseconds ignores the fraction's lowest 11 bits.
    if microseconds { fraction &= ~UInt64(0x7FF) }
    return Timestamp(seconds: seconds, nanosecondsPart: Int64((fraction * 1_000_000_000) >> 32))
}
