import PacketCore

/// Finds the first rule (in file order) that matches a datagram without scanning every rule.
///
/// Rules are filed by each of their source prefixes: one hash table per prefix length in use (exact
/// exporter addresses are the /32 and /128 tables), plus a list for rules that match any exporter.
/// Inside each table entry, rules with a single destination port are hashed by port; those with a
/// range or any port are kept in order. A lookup probes one table per prefix length in use (at most 33
/// for IPv4, 129 for IPv6; a handful in practice) and keeps the lowest rule number that also matches
/// port and payload kind, so the answer is the linear scan's (`ForwardRuleSet.firstMatch`), which the
/// tests check on random rule sets. No allocation per lookup.
public struct RuleIndex: Sendable {
    struct Bucket: Sendable {
        var byPort: [UInt16: [Int32]] = [:]
        var otherPorts: [Int32] = []
    }

    var ipv4: [(length: Int, table: [IPAddress: Bucket])] = []
    var ipv6: [(length: Int, table: [IPAddress: Bucket])] = []
    var anySource = Bucket()
    let rules: [ForwardRule]

    public init(_ rules: [ForwardRule]) {
        self.rules = rules
        var v4: [Int: [IPAddress: Bucket]] = [:], v6: [Int: [IPAddress: Bucket]] = [:]
        for (number, rule) in rules.enumerated() {
            let n = Int32(number)
            func file(_ bucket: inout Bucket) {
                if rule.ports.lowerBound == rule.ports.upperBound {
                    bucket.byPort[rule.ports.lowerBound, default: []].append(n)
                } else {
                    bucket.otherPorts.append(n)
                }
            }
            if rule.sources.isEmpty { file(&anySource); continue }
            // A rule listing overlapping prefixes is filed once per prefix; a lookup may see it twice, harmlessly.
            for prefix in rule.sources {
                if prefix.isIPv6 { file(&v6[prefix.length, default: [:]][prefix.network, default: Bucket()]) }
                else { file(&v4[prefix.length, default: [:]][prefix.network, default: Bucket()]) }
            }
        }
        ipv4 = v4.sorted { $0.key > $1.key }.map { ($0.key, $0.value) }
        ipv6 = v6.sorted { $0.key > $1.key }.map { ($0.key, $0.value) }
    }

    /// The number of the first rule matching, or nil.
    public func firstMatch(source: IPAddress, port: UInt16, kind: PayloadKind) -> Int? {
        var best = Int32.max
        let tables = source.isIPv6 ? ipv6 : ipv4
        for entry in tables {
            if let bucket = entry.table[IPPrefix.mask(source, length: entry.length)] {
                best = bucket.first(port: port, kind: kind, below: best, in: rules)
            }
        }
        best = anySource.first(port: port, kind: kind, below: best, in: rules)
        return best == Int32.max ? nil : Int(best)
    }
}

extension RuleIndex.Bucket {
    /// The lowest rule number here under `best` matching port and kind (sources matched already), else `best`.
    func first(port: UInt16, kind: PayloadKind, below best: Int32, in rules: [ForwardRule]) -> Int32 {
        var best = best
        if let list = byPort[port] {
            for n in list {
                if n >= best { break }
                let kinds = rules[Int(n)].kinds
                if kinds == 0 || kinds & (1 << kind.rawValue) != 0 { best = n; break }
            }
        }
        for n in otherPorts {
            if n >= best { break }
            let rule = rules[Int(n)]
            if rule.ports.contains(port) && (rule.kinds == 0 || rule.kinds & (1 << kind.rawValue) != 0) { best = n; break }
        }
        return best
    }
}
