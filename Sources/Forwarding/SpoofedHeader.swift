import PacketCore

/// The IP and UDP headers of a datagram forwarded with its exporter's source address and port, for a
/// raw socket (IPv4 `IPPROTO_RAW`, which implies `IP_HDRINCL`; IPv6 `IPPROTO_RAW`, which implies
/// `IPV6_HDRINCL`). The payload follows unchanged; the caller sends header and payload as two iovecs.
///
/// IPv4: version 4, IHL 5, TTL 64, no options, DF clear, identification from a counter (the kernel
/// fills a zero one anyway), header checksum computed (RFC 791). The UDP checksum is computed as well,
/// though optional for IPv4 (RFC 768), so collectors that verify it accept the datagram. IPv6: hop
/// limit 64 and the UDP checksum, mandatory over IPv6 (RFC 8200 §8.1).
public struct SpoofedHeader {
    /// 28 bytes for IPv4, 48 for IPv6.
    public private(set) var length = 0
    var bytes: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
    var identification: UInt16 = 0

    public init() {}

    /// Builds the headers for `payload` from `source`:`sourcePort` to `destination`:`destinationPort`
    /// (both of one family). Returns false when the datagram is too long for one IP packet.
    public mutating func build(source: IPAddress, sourcePort: UInt16, destination: IPAddress, destinationPort: UInt16,
                               payload: UnsafeRawBufferPointer) -> Bool {
        let udpLength = 8 + payload.count
        var sum = InternetChecksum.add(payload)
        sum = InternetChecksum.add(address: source, to: sum)
        sum = InternetChecksum.add(address: destination, to: sum)
        sum &+= 17 &+ UInt64(udpLength)
        sum &+= UInt64(sourcePort) &+ UInt64(destinationPort) &+ UInt64(udpLength)
        var udpChecksum = InternetChecksum.finish(sum)
        if udpChecksum == 0 { udpChecksum = 0xFFFF }
        identification &+= 1
        let id = identification
        return withUnsafeMutableBytes(of: &bytes) { out in
            let udpAt: Int
            if source.isIPv6 {
                guard udpLength <= 65535 else { return false }
                out.storeBytes(of: UInt32(0x6000_0000).bigEndian, toByteOffset: 0, as: UInt32.self)
                out.storeBytes(of: UInt16(udpLength).bigEndian, toByteOffset: 4, as: UInt16.self)
                out[6] = 17
                out[7] = 64
                Self.store(source, into: out, at: 8)
                Self.store(destination, into: out, at: 24)
                udpAt = 40
            } else {
                guard 20 + udpLength <= 65535 else { return false }
                out[0] = 0x45
                out[1] = 0
                out.storeBytes(of: UInt16(20 + udpLength).bigEndian, toByteOffset: 2, as: UInt16.self)
                out.storeBytes(of: id.bigEndian, toByteOffset: 4, as: UInt16.self)
                out.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
                out[8] = 64
                out[9] = 17
                out.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
                out.storeBytes(of: source.ipv4Value.bigEndian, toByteOffset: 12, as: UInt32.self)
                out.storeBytes(of: destination.ipv4Value.bigEndian, toByteOffset: 16, as: UInt32.self)
                let headerSum = InternetChecksum.add(UnsafeRawBufferPointer(rebasing: out[0 ..< 20]))
                out.storeBytes(of: InternetChecksum.finish(headerSum).bigEndian, toByteOffset: 10, as: UInt16.self)
                udpAt = 20
            }
            out.storeBytes(of: sourcePort.bigEndian, toByteOffset: udpAt, as: UInt16.self)
            out.storeBytes(of: destinationPort.bigEndian, toByteOffset: udpAt + 2, as: UInt16.self)
            out.storeBytes(of: UInt16(udpLength).bigEndian, toByteOffset: udpAt + 4, as: UInt16.self)
            out.storeBytes(of: udpChecksum.bigEndian, toByteOffset: udpAt + 6, as: UInt16.self)
            length = udpAt + 8
            return true
        }
    }

    /// The headers built last.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeBytes(of: bytes) { body(UnsafeRawBufferPointer(rebasing: $0[0 ..< length])) }
    }

    static func store(_ a: IPAddress, into out: UnsafeMutableRawBufferPointer, at offset: Int) {
        out.storeBytes(of: a.high.bigEndian, toByteOffset: offset, as: UInt64.self)
        out.storeBytes(of: a.low.bigEndian, toByteOffset: offset + 8, as: UInt64.self)
    }
}
