import Flows
import Outputs
import PacketCore
import RecordModel

/// What `flowtap streams` writes of a finished flow: one JSON line, and the file name of each
/// direction's bytes.
extension StreamCollector.Flow {
    /// The transport's name in records and file names.
    public static func l4Name(_ proto: UInt8) -> String {
        switch proto {
        case 6: "tcp"
        case 17: "udp"
        case 1: "icmp"
        case 58: "icmpv6"
        default: "proto\(proto)"
        }
    }

    /// The shared record fields (timestamp of the flow's start, flow_id, event_type "stream", src/dest with
    /// the originator as src, proto, community_id, vlan when tagged), then the endpoints in SF-TAP order (ip1
    /// is the lower address, then port), bytes and gap bytes per direction, datagrams for UDP and ICMP, bytes
    /// past the keep limit, and why the flow ended.
    public var summaryLine: String {
        let k = view.key
        let shared = RecordFlow(key: k, originatorIsFirst: firstSentFirst ?? true, created: view.created)
        var writer = JSONWriter(capacity: 256)
        writer.beginObject()
        writer.timestamp("timestamp", view.created)
        writer.number("flow_id", Int(truncatingIfNeeded: shared.flowID))
        writer.string("event_type", "stream")
        writer.members(shared.members)
        var line = String(decoding: writer.bytes, as: UTF8.self)
        line += ",\"id\":\(view.id),\"l3\":\"\(k.isIPv6 ? "ipv6" : "ipv4")\",\"l4\":\"\(Self.l4Name(k.ipProtocol))\""
        line += ",\"ip1\":\"\(k.address1)\",\"port1\":\(k.port1),\"ip2\":\"\(k.address2)\",\"port2\":\(k.port2)"
        line += ",\"bytes1\":\(streams[0].count),\"bytes2\":\(streams[1].count)"
        line += ",\"gap1\":\(gapBytes[0]),\"gap2\":\(gapBytes[1])"
        if k.ipProtocol != 6 { line += ",\"datagrams1\":\(datagramCount[0]),\"datagrams2\":\(datagramCount[1])" }
        if truncatedBytes[0] + truncatedBytes[1] > 0 { line += ",\"truncated\":\(truncatedBytes[0] + truncatedBytes[1])" }
        line += ",\"reason\":\"\(reason.name)\"}"
        return line
    }

    /// `<id>-<l4>-<sender>.<port>-<receiver>.<port>` for the bytes endpoint 1 (`fromFirst`) or 2 sent.
    public func fileName(fromFirst: Bool) -> String {
        let k = view.key
        let (a, ap, b, bp) = fromFirst ? (k.address1, k.port1, k.address2, k.port2) : (k.address2, k.port2, k.address1, k.port1)
        return "\(view.id)-\(Self.l4Name(k.ipProtocol))-\(a).\(ap)-\(b).\(bp)"
    }
}
