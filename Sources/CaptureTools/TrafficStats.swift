import FlowCore
import Capture
import PacketCore
import Wire

/// Counters for `flowtap stats`: totals, link types, protocol mix, talkers, anomalies.
///
/// Per packet it updates fixed counters and one `TalkerTable` entry for each
/// endpoint address. The talker table is bounded (`maxTalkers`); addresses
/// first seen after it is full are counted in `untrackedTalkerPackets`.
public struct TrafficStats: Sendable {
    public struct ProtocolCounts: Sendable, Equatable {
        public var ethernet: UInt64 = 0
        public var vlanTagged: UInt64 = 0
        public var mpls: UInt64 = 0
        public var pppoe: UInt64 = 0
        public var ipv4: UInt64 = 0
        public var ipv6: UInt64 = 0
        public var arp: UInt64 = 0
        public var otherNetwork: UInt64 = 0
        public var fragments: UInt64 = 0
        public var tcp: UInt64 = 0
        public var udp: UInt64 = 0
        public var icmp: UInt64 = 0
        public var icmpv6: UInt64 = 0
        public var otherTransport: UInt64 = 0
    }

    public typealias Talker = TalkerTable.Talker

    public var packets: UInt64 = 0
    /// Captured bytes.
    public var capturedBytes: UInt64 = 0
    /// Bytes on the wire (original lengths).
    public var wireBytes: UInt64 = 0
    public var firstTimestamp: Timestamp?
    public var lastTimestamp: Timestamp?
    /// Packets per link type, in first-seen order.
    public var linkTypes: [(LinkType, UInt64)] = []
    public var protocols = ProtocolCounts()
    public var talkers: TalkerTable
    public var maxTalkers: Int { talkers.maxEntries }
    public var untrackedTalkerPackets: UInt64 { talkers.untrackedPackets }
    public var anomalies = AnomalyCounters()
    /// Packets with at least one anomaly.
    public var anomalousPackets: UInt64 = 0

    public init(maxTalkers: Int = 100_000) {
        talkers = TalkerTable(maxEntries: maxTalkers)
    }

    /// Counts one decoded packet.
    @inlinable
    public mutating func add(_ record: PacketRecord, _ packet: DecodedPacket) {
        packets &+= 1
        capturedBytes &+= UInt64(record.capturedLength)
        wireBytes &+= UInt64(record.originalLength)
        if firstTimestamp == nil || record.timestamp < firstTimestamp! { firstTimestamp = record.timestamp }
        if lastTimestamp == nil || lastTimestamp! < record.timestamp { lastTimestamp = record.timestamp }
        countLinkType(record.linkType)
        if record.linkType == .ethernet { protocols.ethernet &+= 1 }
        if packet.vlanDepth > 0 { protocols.vlanTagged &+= 1 }
        if packet.mplsDepth > 0 { protocols.mpls &+= 1 }
        if packet.isPPPoE { protocols.pppoe &+= 1 }
        if packet.anomaly != .none { anomalousPackets &+= 1 }
        switch packet.network {
        case .ipv4: protocols.ipv4 &+= 1
        case .ipv6: protocols.ipv6 &+= 1
        case .arp: protocols.arp &+= 1
        case .other: protocols.otherNetwork &+= 1
        case .none: break
        }
        guard packet.isIP else { return }
        if packet.isFragment { protocols.fragments &+= 1 }
        switch packet.transport {
        case .tcp: protocols.tcp &+= 1
        case .udp: protocols.udp &+= 1
        case .icmp: protocols.icmp &+= 1
        case .icmpv6: protocols.icmpv6 &+= 1
        case .other: protocols.otherTransport &+= 1
        case .none:
            // Non-first fragments still belong to their protocol.
            switch packet.ipProtocol {
            case IPProtocol.tcp where packet.isFragment: protocols.tcp &+= 1
            case IPProtocol.udp where packet.isFragment: protocols.udp &+= 1
            case IPProtocol.icmp where packet.isFragment: protocols.icmp &+= 1
            case IPProtocol.icmpv6 where packet.isFragment: protocols.icmpv6 &+= 1
            default: break
            }
        }
        countTalker(packet.source, bytes: record.originalLength)
        countTalker(packet.destination, bytes: record.originalLength)
    }

    @usableFromInline
    mutating func countLinkType(_ type: LinkType) {
        if let last = linkTypes.indices.last, linkTypes[last].0 == type {
            linkTypes[last].1 &+= 1
            return
        }
        if let index = linkTypes.firstIndex(where: { $0.0 == type }) {
            linkTypes[index].1 &+= 1
        } else {
            linkTypes.append((type, 1))
        }
    }

    @usableFromInline
    mutating func countTalker(_ address: IPAddress, bytes: Int) {
        talkers.count(address, bytes: bytes)
    }

    /// Capture duration from the first to the last timestamp.
    public var durationNanoseconds: Int64 {
        guard let first = firstTimestamp, let last = lastTimestamp else { return 0 }
        return last.nanoseconds - first.nanoseconds
    }

    /// The `count` busiest addresses by bytes (ties by address).
    public func topTalkers(_ count: Int) -> [(IPAddress, Talker)] {
        talkers.entries.sorted { a, b in a.1.bytes != b.1.bytes ? a.1.bytes > b.1.bytes : a.0 < b.0 }
            .prefix(count).map { $0 }
    }
}
