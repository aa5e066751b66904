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
    /// past the keep limit, and why the flow ended. Written into `writer` (reset first), no String per field.
    public func writeRecord(into writer: inout JSONWriter, communityIDSeed: UInt16 = 0) {
        let k = view.key
        let shared = RecordFlow(key: k, originatorIsFirst: firstSentFirst ?? true, created: view.created, communityIDSeed: communityIDSeed)
        writer.reset()
        writer.beginObject()
        writer.timestamp("timestamp", view.created)
        writer.number("flow_id", Int(truncatingIfNeeded: shared.flowID))
        writer.string("event_type", "stream")
        writer.members(shared.members)
        writer.number("id", Int(truncatingIfNeeded: view.id))
        writer.string("l3", k.isIPv6 ? "ipv6" : "ipv4")
        writer.string("l4", Self.l4Name(k.ipProtocol))
        writer.address("ip1", k.address1)
        writer.number("port1", Int(k.port1))
        writer.address("ip2", k.address2)
        writer.number("port2", Int(k.port2))
        writer.number("bytes1", streams[0].count)
        writer.number("bytes2", streams[1].count)
        writer.number("gap1", gapBytes[0])
        writer.number("gap2", gapBytes[1])
        if k.ipProtocol != 6 {
            writer.number("datagrams1", datagramCount[0])
            writer.number("datagrams2", datagramCount[1])
        }
        if truncatedBytes[0] + truncatedBytes[1] > 0 { writer.number("truncated", truncatedBytes[0] + truncatedBytes[1]) }
        writer.string("reason", reason.name)
        writer.endObject()
    }

    /// The record as one line of text (without its newline).
    public var summaryLine: String {
        var writer = JSONWriter(capacity: 512)
        writeRecord(into: &writer)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    /// `<id>-<l4>-<sender>.<port>-<receiver>.<port>` for the bytes endpoint 1 (`fromFirst`) or 2 sent.
    public func fileName(fromFirst: Bool) -> String {
        let k = view.key
        let (a, ap, b, bp) = fromFirst ? (k.address1, k.port1, k.address2, k.port2) : (k.address2, k.port2, k.address1, k.port1)
        return "\(view.id)-\(Self.l4Name(k.ipProtocol))-\(a).\(ap)-\(b).\(bp)"
    }
}
