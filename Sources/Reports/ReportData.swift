import Foundation

/// What `flowtap report` gathers from one pass over captures: the flow engine's counts, packets per
/// second of capture time, and every flow and analyzer record (the same records `flows` and
/// `analyze` write), reduced to the counts and distributions the page draws. Memory is bounded by
/// the distinct keys kept (hosts, names), each table capped at `keyLimit` entries with the rest
/// counted as "(others)".
public final class ReportData {
    /// The engine's view of the input.
    public struct Capture: Sendable {
        public var files: [String] = []
        public var packets: UInt64 = 0
        public var bytes: UInt64 = 0
        public var notInFlows: [(reason: String, packets: UInt64)] = []
        public var anomalies: [(name: String, count: UInt64)] = []
        public var fragments: UInt64 = 0
        public var flowsEvicted: UInt64 = 0
        public init() {}
    }

    public var capture = Capture()
    /// Packets and bytes of flow traffic over capture time.
    public var timeline = Timeline()

    public static let keyLimit = 100_000

    // Flows
    var flows = 0
    var firstTime = Double.infinity
    var lastTime = -Double.infinity
    var transports = Tally()
    var applications = Tally()
    var hosts = Tally()
    var connectionStates = Tally()
    var largest: [FlowSummary] = []
    var sizes = Histogram(edges: [100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000],
                          labels: ["≤100 B", "≤1 kB", "≤10 kB", "≤100 kB", "≤1 MB", "≤10 MB", "≤100 MB", ">100 MB"])
    var durations = Histogram(edges: [0.001, 0.01, 0.1, 1, 10, 60, 600],
                              labels: ["one packet", "<1 ms", "<10 ms", "<100 ms", "<1 s", "<10 s", "<1 min", "<10 min", "≥10 min"])
    var rtts = Histogram(edges: [0.0001, 0.001, 0.01, 0.1, 1],
                         labels: ["<0.1 ms", "<1 ms", "<10 ms", "<100 ms", "<1 s", "≥1 s"])
    var retransmissions = Histogram(edges: [0, 1, 3, 7, 15], labels: ["0", "1", "2–3", "4–7", "8–15", "≥16"])
    var tcpFlows = 0
    var tcpFlowsWithRetransmissions = 0
    var flowsWithMissedBytes = 0
    var missedBytes: UInt64 = 0

    // Application records
    var records = Tally()
    var dnsNames = Tally()
    var dnsTypes = Tally()
    var dnsRcodes = Tally()
    var httpHosts = Tally()
    var httpStatus = Tally()
    var httpMethods = Tally()
    var tlsNames = Tally()
    var tlsVersions = Tally()
    var quicNames = Tally()
    var malformedRecords = 0

    public init() {}

    /// Flow records read.
    public var flowCount: Int { flows }
    /// Records of every kind read.
    public var recordCount: UInt64 { records.total.count }

    /// One JSON record (a line of `flows` or `analyze` output, newline optional).
    public func add(record bytes: UnsafeRawBufferPointer) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
              let type = object["event_type"] as? String else {
            malformedRecords += 1
            return
        }
        records.add(type, count: 1)
        switch type {
        case "flow": addFlow(object)
        case "dns": addDNS(object)
        case "http": addHTTP(object)
        case "tls": addTLS(object)
        case "quic": addQUIC(object)
        default: break
        }
    }

    func addFlow(_ r: [String: Any]) {
        guard let flow = r["flow"] as? [String: Any] else { return }
        flows += 1
        let bytes = UInt64(int(flow["bytes_toserver"]) + int(flow["bytes_toclient"]))
        let packets = UInt64(int(flow["pkts_toserver"]) + int(flow["pkts_toclient"]))
        let proto = r["proto"] as? String ?? "?"
        let app = r["app_proto"] as? String ?? "unknown"
        transports.add(proto, count: 1, bytes: bytes, packets: packets)
        applications.add(proto == "TCP" || proto == "UDP" ? "\(app) (\(proto.lowercased()))" : proto.lowercased(), count: 1, bytes: bytes, packets: packets)
        let src = r["src_ip"] as? String ?? "?", dest = r["dest_ip"] as? String ?? "?"
        hosts.add(src, count: 1, bytes: bytes, packets: packets)
        hosts.add(dest, count: 1, bytes: bytes, packets: packets)
        if let state = flow["conn_state"] as? String { connectionStates.add(state, count: 1) }
        let duration = (flow["duration"] as? Double).map { $0.isFinite ? max(0, $0) : 0 } ?? 0
        sizes.add(Double(bytes))
        durations.add(packets <= 1 ? -1 : duration)
        if let start = flow["start"] as? String, let t = Self.seconds(start) { firstTime = min(firstTime, t) }
        if let end = flow["end"] as? String, let t = Self.seconds(end) { lastTime = max(lastTime, t) }
        let missed = int(flow["missed_bytes"])
        if missed > 0 {
            flowsWithMissedBytes += 1
            missedBytes &+= UInt64(missed)
        }
        let summary = FlowSummary(source: Self.endpoint(src, r["src_port"]), destination: Self.endpoint(dest, r["dest_port"]), proto: proto,
                                  application: r["app_proto"] as? String ?? "", packets: packets, bytes: bytes, duration: duration,
                                  state: flow["conn_state"] as? String ?? "")
        offerLargest(summary)
        if proto == "TCP", let analysis = (r["tcp"] as? [String: Any])?["analysis"] as? [String: Any] {
            tcpFlows += 1
            if let rtt = analysis["rtt_initial"] as? Double, rtt.isFinite { rtts.add(rtt) }
            var retransmitted = 0
            for side in ["toserver", "toclient"] {
                if let s = analysis[side] as? [String: Any] { retransmitted += int(s["retransmissions"]) }
            }
            retransmissions.add(Double(retransmitted))
            if retransmitted > 0 { tcpFlowsWithRetransmissions += 1 }
        }
    }

    func offerLargest(_ flow: FlowSummary) {
        let limit = 15
        if largest.count < limit {
            largest.append(flow)
            largest.sort { $0.bytes > $1.bytes }
        } else if flow.bytes > largest[limit - 1].bytes {
            largest[limit - 1] = flow
            largest.sort { $0.bytes > $1.bytes }
        }
    }

    func addDNS(_ r: [String: Any]) {
        let isResponse = int(r["qr"]) == 1
        if !isResponse, let query = (r["query"] as? [[String: Any]])?.first {
            if let name = query["name"] as? String { dnsNames.add(name.isEmpty ? "." : name, count: 1) }
            dnsTypes.add(query["type_name"] as? String ?? "TYPE\(int(query["type"]))", count: 1)
        }
        if isResponse, let rcode = r["rcode_name"] as? String { dnsRcodes.add(rcode, count: 1) }
    }

    func addHTTP(_ r: [String: Any]) {
        let client = r["client"] as? [String: Any]
        if let method = (client?["method"] as? [String: Any])?["method"] as? String { httpMethods.add(method, count: 1) }
        if let host = (client?["header"] as? [String: Any])?["host"] {
            httpHosts.add((host as? String) ?? (host as? [String])?.first ?? "?", count: 1)
        }
        if let status = ((r["server"] as? [String: Any])?["response"] as? [String: Any])?["status"] as? Int { httpStatus.add(String(status), count: 1) }
    }

    func addTLS(_ r: [String: Any]) {
        if let sni = (r["client"] as? [String: Any])?["sni"] as? String { tlsNames.add(sni, count: 1) }
        if let version = (r["server"] as? [String: Any])?["version_name"] as? String { tlsVersions.add(version, count: 1) }
    }

    func addQUIC(_ r: [String: Any]) {
        if let sni = (r["client"] as? [String: Any])?["sni"] as? String { quicNames.add(sni, count: 1) }
    }

    /// A count from a record: whatever the JSON says (negative, fractional, 1e300, a string), a number
    /// from 0 to 2^62, so sums cannot overflow.
    func int(_ value: Any?) -> Int {
        let limit = 1 << 62
        if let n = value as? Int { return min(max(n, 0), limit) }
        if let d = value as? Double, d.isFinite { return d <= 0 ? 0 : d >= Double(limit) ? limit : Int(d) }
        return 0
    }

    static func endpoint(_ ip: String, _ port: Any?) -> String {
        guard let port = port as? Int else { return ip }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    /// RFC 3339 with microseconds, as records write it, to seconds since the epoch.
    static func seconds(_ text: String) -> Double? { timeParser.date(from: text)?.timeIntervalSince1970 }

    /// One parser for every record (making one per call cost more than the rest of the report).
    nonisolated(unsafe) static let timeParser: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
}

struct FlowSummary {
    var source: String
    var destination: String
    var proto: String
    var application: String
    var packets: UInt64
    var bytes: UInt64
    var duration: Double
    var state: String
}

/// Counts (and bytes, packets) by name, at most `ReportData.keyLimit` names.
struct Tally {
    struct Entry {
        var count: UInt64 = 0
        var bytes: UInt64 = 0
        var packets: UInt64 = 0

        mutating func add(count: UInt64, bytes: UInt64, packets: UInt64) {
            self.count &+= count
            self.bytes &+= bytes
            self.packets &+= packets
        }
    }

    var entries: [String: Entry] = [:]
    var others = Entry()
    var total = Entry()

    mutating func add(_ name: String, count: UInt64, bytes: UInt64 = 0, packets: UInt64 = 0) {
        total.add(count: count, bytes: bytes, packets: packets)
        if entries[name] == nil && entries.count >= ReportData.keyLimit {
            others.add(count: count, bytes: bytes, packets: packets)
            return
        }
        entries[name, default: Entry()].add(count: count, bytes: bytes, packets: packets)
    }

    /// The `n` largest by `key`.
    func top(_ n: Int, by key: (Entry) -> UInt64) -> [(String, Entry)] {
        Array(entries.sorted { (key($0.value), $1.key) > (key($1.value), $0.key) }.prefix(n))
    }

    /// How many names `top(n)` leaves out, and what they add up to.
    func rest(after n: Int) -> (names: Int, total: Entry) {
        var rest = others
        let names = max(0, entries.count - n)
        for (_, e) in entries.sorted(by: { $0.value.bytes > $1.value.bytes }).dropFirst(n) { rest.add(count: e.count, bytes: e.bytes, packets: e.packets) }
        return (names + (others.count > 0 ? 1 : 0), rest)
    }

    var isEmpty: Bool { total.count == 0 }
}

/// Counts in bins by upper edges: bin i holds values up to `edges[i]`, the last bin the rest. With
/// one label more than that, the first bin holds negative values (one-packet flows' durations).
struct Histogram {
    let edges: [Double]
    let labels: [String]
    var counts: [UInt64]

    init(edges: [Double], labels: [String]) {
        self.edges = edges
        self.labels = labels
        counts = [UInt64](repeating: 0, count: labels.count)
    }

    mutating func add(_ value: Double) {
        let offset = labels.count - edges.count - 1
        if offset == 1 && value < 0 {
            counts[0] += 1
            return
        }
        var i = 0
        while i < edges.count && value > edges[i] { i += 1 }
        counts[min(i + offset, counts.count - 1)] += 1
    }

    var total: UInt64 { counts.reduce(0, +) }
}

/// Packets and bytes over capture time in at most `limit` buckets: the bucket width starts at a
/// millisecond and grows fourfold whenever the buckets would pass the limit, so a sub-second capture
/// and a week-long one both plot, in bounded memory.
public struct Timeline {
    public private(set) var width: Int64 = 1_000_000
    var buckets: [Int64: (packets: UInt64, bytes: UInt64)] = [:]
    let limit = 8192

    public init() {}

    public mutating func add(nanoseconds: Int64, bytes: Int) {
        let key = nanoseconds / width
        if let old = buckets[key] {
            buckets[key] = (old.packets &+ 1, old.bytes &+ UInt64(truncatingIfNeeded: bytes))
            return
        }
        buckets[key] = (1, UInt64(truncatingIfNeeded: bytes))
        while buckets.count > limit {
            width *= 4
            var merged: [Int64: (packets: UInt64, bytes: UInt64)] = [:]
            for (k, v) in buckets {
                let old = merged[k / 4] ?? (0, 0)
                merged[k / 4] = (old.packets &+ v.packets, old.bytes &+ v.bytes)
            }
            buckets = merged
        }
    }

    /// Packets/s and bits/s in at most `points` equal bins from the first bucket to the last.
    func series(points: Int) -> (start: Double, step: Double, packets: [Double], bits: [Double]) {
        guard let first = buckets.keys.min(), let last = buckets.keys.max() else { return (0, 1, [], []) }
        let span = Int(last - first) + 1
        let per = max(1, (span + points - 1) / points)
        let bins = (span + per - 1) / per
        var packets = [Double](repeating: 0, count: bins), bits = [Double](repeating: 0, count: bins)
        for (key, value) in buckets {
            let bin = Int(key - first) / per
            packets[bin] += Double(value.packets)
            bits[bin] += Double(value.bytes) * 8
        }
        let seconds = Double(width) * Double(per) / 1e9
        return (Double(first) * Double(width) / 1e9, seconds, packets.map { $0 / seconds }, bits.map { $0 / seconds })
    }
}
