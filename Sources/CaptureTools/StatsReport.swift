#if canImport(Glibc)
import Outputs
import FlowCore
import Glibc
#endif
import PacketCore

/// Renders `TrafficStats` as aligned text or as one JSON object.
public enum StatsReport {
    /// UTC time with microseconds, e.g. `2015-12-05T14:25:25.835696Z`.
    public static func utc(_ t: Timestamp) -> String {
        var seconds = time_t(t.seconds)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S", &parts)
        let micro = String(t.microseconds)
        return String(cString: buffer) + "." + String(repeating: "0", count: 6 - micro.count) + micro + "Z"
    }

    static func seconds(_ nanoseconds: Int64) -> String {
        let whole = nanoseconds / 1_000_000_000
        let fraction = String((nanoseconds % 1_000_000_000) / 1000)
        return "\(whole)." + String(repeating: "0", count: 6 - fraction.count) + fraction
    }

    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
    }

    static func protocolRows(_ p: TrafficStats.ProtocolCounts) -> [(String, UInt64)] {
        [("ethernet", p.ethernet), ("vlan", p.vlanTagged), ("mpls", p.mpls), ("pppoe", p.pppoe),
         ("ipv4", p.ipv4), ("ipv6", p.ipv6), ("arp", p.arp), ("other_l3", p.otherNetwork),
         ("fragments", p.fragments), ("tcp", p.tcp), ("udp", p.udp), ("icmp", p.icmp),
         ("icmpv6", p.icmpv6), ("other_l4", p.otherTransport)]
    }

    public static func text(_ result: StatsRunner.Result, top: Int = 10) -> String {
        let s = result.stats
        var out = ""
        func line(_ key: String, _ value: String) { out += pad(key, 16) + value + "\n" }
        line("files", String(result.files.count))
        line("packets", String(s.packets))
        line("bytes", String(s.capturedBytes))
        line("wire_bytes", String(s.wireBytes))
        line("duration", seconds(s.durationNanoseconds) + " s")
        if let first = s.firstTimestamp, let last = s.lastTimestamp {
            line("first", utc(first))
            line("last", utc(last))
        }
        line("link_types", s.linkTypes.map { "\($0.0) \($0.1)" }.joined(separator: ", "))
        out += "protocols\n"
        for (name, count) in protocolRows(s.protocols) { out += "  " + pad(name, 14) + String(count) + "\n" }
        let talkers = s.topTalkers(top)
        if !talkers.isEmpty {
            out += "top_talkers (address, packets, bytes)\n"
            let width = max(16, (talkers.map { $0.0.description.count }.max() ?? 0) + 2)
            for (address, t) in talkers {
                out += "  " + pad(address.description, width) + pad(String(t.packets), 10) + String(t.bytes) + "\n"
            }
            if s.untrackedTalkerPackets > 0 {
                out += "  (\(s.untrackedTalkerPackets) endpoint packets not tracked: more than \(s.maxTalkers) addresses)\n"
            }
        }
        out += "anomalies       \(s.anomalies.total) in \(s.anomalousPackets) packets\n"
        for (anomaly, count) in s.anomalies.nonZero { out += "  " + pad(anomaly.name, 28) + String(count) + "\n" }
        if result.filteredOut > 0 { out += "filtered out    \(result.filteredOut) packets the filter rejected\n" }
        for (file, bytes) in result.truncatedFiles {
            out += "warning: \(file) ends inside a record (\(bytes) bytes left over)\n"
        }
        return out
    }

    static func jsonString(_ s: String) -> String { JSONWriter.quoted(s) }

    public static func json(_ result: StatsRunner.Result, top: Int = 10) -> String {
        let s = result.stats
        var fields: [String] = []
        fields.append("\"files\":[" + result.files.map(jsonString).joined(separator: ",") + "]")
        fields.append("\"packets\":\(s.packets)")
        fields.append("\"bytes\":\(s.capturedBytes)")
        fields.append("\"wire_bytes\":\(s.wireBytes)")
        fields.append("\"duration\":\(seconds(s.durationNanoseconds))")
        if let first = s.firstTimestamp, let last = s.lastTimestamp {
            fields.append("\"first\":\(jsonString(utc(first)))")
            fields.append("\"last\":\(jsonString(utc(last)))")
        }
        fields.append("\"link_types\":{" + s.linkTypes.map { "\(jsonString($0.0.description)):\($0.1)" }.joined(separator: ",") + "}")
        fields.append("\"protocols\":{" + protocolRows(s.protocols).map { "\(jsonString($0.0)):\($0.1)" }.joined(separator: ",") + "}")
        fields.append("\"top_talkers\":[" + s.topTalkers(top).map {
            "{\"address\":\(jsonString($0.0.description)),\"packets\":\($0.1.packets),\"bytes\":\($0.1.bytes)}"
        }.joined(separator: ",") + "]")
        fields.append("\"anomalies\":{" + s.anomalies.nonZero.map { "\(jsonString($0.0.name)):\($0.1)" }.joined(separator: ",") + "}")
        fields.append("\"truncated_files\":[" + result.truncatedFiles.map {
            "{\"file\":\(jsonString($0.0)),\"bytes_left\":\($0.1)}"
        }.joined(separator: ",") + "]")
        return "{" + fields.joined(separator: ",") + "}\n"
    }
}
