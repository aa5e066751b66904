import PacketCore
import Wire

/// How a frame's cell is chosen.
public enum CellHash {
    /// A symmetric hash of both addresses, both ports, the IP protocol and the VLAN IDs: both
    /// directions of a flow give one value. Ports are 0 where the packet has none (ICMP, other
    /// protocols), as for every packet of such a flow.
    @inline(__always)
    public static func flow(_ p: DecodedPacket) -> UInt64 {
        flow(p, sourcePort: p.sourcePort, destinationPort: p.destinationPort)
    }

    @inline(__always)
    static func flow(_ p: DecodedPacket, sourcePort: UInt16, destinationPort: UInt16) -> UInt64 {
        let a = endpoint(p.source, sourcePort), b = endpoint(p.destination, destinationPort)
        var h = (a ^ b) ^ UInt64(p.ipProtocol) << 56
        var vlans: UInt64 = 0
        for i in 0 ..< Int(min(p.vlanDepth, 4)) { vlans = vlans << 12 | UInt64(p.vlanIDs[i]) }
        h ^= mix(vlans &+ 0x9E37_79B9_7F4A_7C15)
        return mix(h)
    }

    @inline(__always)
    static func endpoint(_ address: IPAddress, _ port: UInt16) -> UInt64 {
        mix(address.high ^ (address.low >> 29 | address.low << 35) ^ UInt64(port) &* 0x9E37_79B9)
    }

    /// murmur3's 64-bit finaliser: every input bit reaches the top bits the cell is taken from.
    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 { murmur3Finalize(x) }

    /// The original incubator's choice: `((sport ^ dport) >> 8) % cells`, addresses ignored; packets
    /// without ports (non-first fragments, ICMP) count as ports 0, so they go to cell 0 as they did there.
    @inline(__always)
    public static func sftap(sourcePort: UInt16, destinationPort: UInt16, cells: Int) -> Int {
        Int((sourcePort ^ destinationPort) >> 8) % cells
    }
}

/// Cells by weight: a hash's top 32 bits scaled to the total weight, then the cell whose share holds it.
public struct WeightedCells: Sendable {
    /// Running totals of the weights: cell i takes [bounds[i-1], bounds[i]).
    let bounds: [UInt64]
    let total: UInt64

    public init(weights: [Int]) {
        var running: UInt64 = 0
        bounds = weights.map { running += UInt64(max($0, 1)); return running }
        total = running
    }

    @inline(__always)
    public func cell(_ hash: UInt64) -> Int {
        let position = ((hash >> 32) &* total) >> 32
        var i = 0
        while i < bounds.count - 1 && position >= bounds[i] { i += 1 }
        return i
    }
}

extension CellHash {
    /// The flow hash with both ports 0: where a fragment goes when its first fragment never told its ports.
    @inline(__always)
    public static func addressPair(_ p: DecodedPacket) -> UInt64 {
        flow(p, sourcePort: 0, destinationPort: 0)
    }
}
