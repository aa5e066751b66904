import Capture
import PacketCore
import Wire

/// A deterministic mixed capture for benchmarks: TCP and UDP over IPv4 and
/// IPv6, some VLAN-tagged, payloads of varied sizes.
enum SyntheticCapture {
    static func write(path: String, packets: Int) throws {
        let writer = try PcapWriter(path: path, linkType: .ethernet)
        var frames: [[UInt8]] = []
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func nextRandom() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        // A pool of 4096 distinct frames, replayed with rising timestamps.
        for i in 0 ..< 4096 {
            let r = nextRandom()
            let payload = [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: Int(r % 1400))
            let v6 = r & 0x30 == 0
            let src = v6 ? IPAddress(high: 0x2001_0db8_0000_0000, low: UInt64(i), isIPv6: true) : IPAddress(ipv4: 0x0A00_0000 | UInt32(i))
            let dst = v6 ? IPAddress(high: 0x2001_0db8_0000_0001, low: 1, isIPv6: true) : IPAddress(ipv4: 0xC0A8_0001)
            let network: PacketBuilder.Network = v6 ? .ipv6(.init(source: src, destination: dst)) : .ipv4(.init(source: src, destination: dst))
            let transport: PacketBuilder.Transport = r & 0x4 == 0
                ? .udp(sourcePort: UInt16(1024 + i), destinationPort: 53)
                : .tcp(.init(sourcePort: UInt16(1024 + i), destinationPort: 80, sequence: UInt32(truncatingIfNeeded: r)))
            let vlans = r & 0x8 == 0 ? [PacketBuilder.VLANTag(id: UInt16(i % 4000 + 1))] : []
            frames.append(PacketBuilder.frame(link: .ethernet(vlans: vlans), network: network, transport: transport, payload: payload))
        }
        for n in 0 ..< packets {
            try writer.write(timestamp: Timestamp(nanoseconds: 1_700_000_000_000_000_000 + Int64(n) * 1000), bytes: frames[n & 4095])
        }
        try writer.flush()
    }
}
