import Capture
import Flows
import PacketCore
import Wire

/// Which shard a packet goes to (the pipeline's only cross-thread decision per packet).
///
/// Invariants: both directions of a flow, and every fragment of a datagram, land on one shard;
/// `quickShard` answers exactly as `shard(of:)` on the decoded packet wherever it answers
/// (`ShardHashTests`, every corpus packet); every shard count from 1 up works. For that, the hash
/// covers only the two IP addresses (symmetrically) and the VLAN when it is part of the flow key. Tunnelled packets hash by their inner addresses, as the
/// engine keys their flows.
public enum ShardHash {
    /// How the 32-bit hash range is cut among the shards, worked out once per pipeline so that picking a
    /// shard is a compare, a multiply and a shift. Before, every packet paid two 64-bit divisions and
    /// overflow checks: `quickShard` went from 120 to 100 instructions a packet (callgrind, 315,002
    /// generated packets), and the divisions were the slow ones.
    ///
    /// Shard 0 runs on the thread that also reads and picks shards for every packet, about 15% of a
    /// shard's work (measured with `flowtap-bench pipeline`), so its share of the hash range is
    /// 85/100 of an even share; the rest is split evenly. Any shard count works, not only powers of two.
    /// Other shares against it (`abstract --threads 2` on 647,286 generated packets, 9–11 interleaved
    /// rounds, wall time): 70/100 0.997×, 55/100 1.07×, 100/100 1.10×, 115/100 1.21×; measured again with the
    /// captures in memory (15–21 paired rounds): 95/100 1.07× slower, 75/100 1.02–1.04× faster on that capture
    /// and 1.04× slower on the 315k-packet one.
    public struct Split: Sendable {
        public let shards: Int
        /// Hashes below this go to shard 0.
        let first: UInt64
        /// ceil((shards - 1) · 2⁶⁴ / r), r = 2³² - first. The high word of `(h - first) · scale` is then
        /// exactly floor((h - first)(shards - 1) / r): the rounding adds less than (h - first) / 2⁶⁴ < r / 2⁶⁴,
        /// and a fraction below the next integer is at least 1 / r, which is larger while r < 2³².
        let scale: UInt64

        public init(shards: Int) {
            self.shards = max(1, shards)
            let n = UInt64(self.shards)
            // At least 1, so that r stays below 2³² however many shards there are.
            first = n > 1 ? max(1, (UInt64(1) << 32) * 85 / (100 * n)) : UInt64(1) << 32
            if n > 1 {
                let (q, remainder) = ((UInt64(1) << 32) - first).dividingFullWidth((high: n - 1, low: 0))
                scale = remainder == 0 ? q : q + 1
            } else {
                scale = 0
            }
        }

        /// The shard of a 32-bit hash.
        @inline(__always)
        public func pick(_ h32: UInt64) -> Int {
            guard h32 >= first else { return 0 }
            return 1 + Int(truncatingIfNeeded: (h32 &- first).multipliedFullWidth(by: scale).high)
        }
    }

    /// The shard of a decoded packet among `shards` (non-IP packets: shard 0).
    @inline(__always)
    public static func shard(of packet: DecodedPacket, vlanInKey: Bool, shards: Int) -> Int {
        shard(of: packet, vlanInKey: vlanInKey, split: Split(shards: shards))
    }

    @inline(__always)
    public static func shard(of packet: DecodedPacket, vlanInKey: Bool, split: Split) -> Int {
        guard packet.isIP else { return 0 }
        let vlan = vlanInKey ? (packet.outerVLAN ?? FlowKey.noVLAN) : FlowKey.noVLAN
        return shard(packet.source, packet.destination, vlan: vlan, split: split)
    }

    @inline(__always)
    public static func shard(_ a: IPAddress, _ b: IPAddress, vlan: UInt16, shards: Int) -> Int {
        shard(a, b, vlan: vlan, split: Split(shards: shards))
    }

    @inline(__always)
    public static func shard(_ a: IPAddress, _ b: IPAddress, vlan: UInt16, split: Split) -> Int {
        // XOR is symmetric in the two endpoints. An IPv4 address sits in the top half of `high`, so
        // every input bit must reach the bits the shard is taken from: murmur3's 64-bit finaliser.
        var h = (a.high ^ b.high) ^ ((a.low ^ b.low) >> 32 | (a.low ^ b.low) << 32) ^ UInt64(vlan)
        h ^= h >> 33
        h = h &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        h = h &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        return split.pick(h >> 32)
    }

    /// The shard read straight off an Ethernet frame (up to two VLAN tags, then IPv4 or IPv6
    /// carrying TCP, UDP or ICMP), without decoding it; nil for anything else (other link types,
    /// MPLS, PPPoE, IPv6 extension headers, tunnel carriers, short frames), which the caller
    /// decodes. Equal to `shard(of:)` of the decoded packet wherever it answers (tested on the corpus).
    @inline(__always)
    public static func quickShard(_ bytes: UnsafeRawBufferPointer, linkType: LinkType, vlanInKey: Bool, shards: Int) -> Int? {
        quickShard(bytes, linkType: linkType, vlanInKey: vlanInKey, split: Split(shards: shards))
    }

    @inline(__always)
    public static func quickShard(_ bytes: UnsafeRawBufferPointer, linkType: LinkType, vlanInKey: Bool, split: Split) -> Int? {
        guard linkType == .ethernet, bytes.count >= 14 else { return nil }
        var at = 12
        var etherType = bytes.beUInt16(at: at)
        var vlan = FlowKey.noVLAN
        var tags = 0
        while etherType == 0x8100 || etherType == 0x88A8 || etherType == 0x9100 {
            guard tags < 2, bytes.count >= at + 6 else { return nil }
            if tags == 0 && vlanInKey { vlan = bytes.beUInt16(at: at + 2) & 0x0FFF }
            at += 4
            tags += 1
            etherType = bytes.beUInt16(at: at)
        }
        at += 2
        let a: IPAddress, b: IPAddress, proto: UInt8, transport: Int
        var firstFragment = true
        if etherType == 0x0800 {
            guard bytes.count >= at + IPv4Header.minimumLength else { return nil }
            let versionLength = bytes[at + IPv4Header.versionAndLength]
            let headerLength = Int(versionLength & 0x0F) * 4
            guard versionLength >> 4 == 4, headerLength >= IPv4Header.minimumLength, bytes.count >= at + headerLength,
                  Int(bytes.beUInt16(at: at + IPv4Header.totalLength)) >= headerLength else { return nil }
            proto = bytes[at + IPv4Header.protocol]
            firstFragment = bytes.beUInt16(at: at + IPv4Header.flagsAndFragmentOffset) & IPv4Header.fragmentOffsetMask == 0
            a = IPAddress.ipv4(bytes, at: at + IPv4Header.source)
            b = IPAddress.ipv4(bytes, at: at + IPv4Header.destination)
            transport = at + headerLength
        } else if etherType == 0x86DD {
            guard bytes.count >= at + IPv6Header.length, bytes[at + IPv6Header.version] >> 4 == 6 else { return nil }
            proto = bytes[at + IPv6Header.nextHeader]
            a = IPAddress.ipv6(bytes, at: at + IPv6Header.source)
            b = IPAddress.ipv6(bytes, at: at + IPv6Header.destination)
            transport = at + IPv6Header.length
        } else {
            return nil
        }
        switch proto {
        case 6, 1, 58:
            break
        case 17:
            // UDP tunnels (VXLAN, Geneve, GTP-U, GRE-in-UDP) are keyed by their inner packets.
            guard firstFragment else { break }
            guard bytes.count >= transport + 4 else { return nil }
            let sp = bytes.beUInt16(at: transport + UDPHeader.sourcePort), dp = bytes.beUInt16(at: transport + UDPHeader.destinationPort)
            if isTunnelPort(sp) || isTunnelPort(dp) { return nil }
        default:
            return nil
        }
        return shard(a, b, vlan: vlan, split: split)
    }

    @inline(__always)
    static func isTunnelPort(_ port: UInt16) -> Bool { port == 4789 || port == 6081 || port == 2152 || port == 4754 }
}
