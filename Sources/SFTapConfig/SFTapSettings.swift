import PacketCore
/// The typed meaning of an SF-TAP configuration (reference §1), with the
/// original's defaults, plus FlowTap's own keys (documented in docs/abstract.md).
///
/// Values are checked here, once, so every later stage can trust them; an
/// error names the file, line, section and key, and what is expected.
public struct SFTapSettings: Sendable {
    public enum TransportProtocol: String, Sendable { case tcp = "TCP", udp = "UDP", icmp = "ICMP", icmpv6 = "ICMPV6" }
    public enum Format: String, Sendable { case text, binary }

    /// A rule section (or a special one: tcp_default, udp_default, icmp, icmpv6).
    public struct Rule: Sendable {
        public var name: String
        public var interface: String
        public var proto: TransportProtocol
        public var up: String?
        public var down: String?
        public var utf8: Bool
        public var nice: Int
        public var format: Format
        public var body: Bool
        public var balance: Int
        public var ports: [ClosedRange<UInt16>]
        public var line: Int
    }

    public struct Global: Sendable {
        public var home: String
        /// Idle timeout in seconds for TCP connections (`timeout`).
        public var timeout: Int?
        public var lru: Bool = true
        public var cache: Bool = true
        /// Flow shards (`tcp_threads`); nil when the config does not say, and the command picks.
        public var tcpThreads: Int?
        public var regexThreads: Int = 1
        // FlowTap keys.
        /// Injected flows deeper than this many loopback7 hops are dropped (counted).
        public var hopLimit: Int = 4
        /// Pick up TCP connections whose handshake was not captured.
        public var midstream: Bool = true
        public var overlapPolicy: String = "bsd"
        public var maxFlows: Int = 1_000_000
        public var reassemblyMemcapMiB: Int = 512
    }

    public var global: Global
    /// Classification rules, sorted by section name (the original's `std::map` order).
    public var rules: [Rule]
    public var tcpDefault: Rule?
    public var udpDefault: Rule?
    public var icmp: Rule?
    public var icmpv6: Rule?
    public var loopback7Interface: String?
    public var loopback7Format: Format = .text
    public var pcapInterface: String?
    /// Sections that were ignored, with why (e.g. a rule without `proto`), for a warning.
    public var ignored: [(section: String, line: Int, why: String)] = []

    /// The keys each kind of section takes; any other key is a typo until shown otherwise.
    public static let globalKeys = ["home", "timeout", "lru", "cache", "tcp_threads", "regex_threads",
                                    "hop_limit", "midstream", "overlap_policy", "max_flows", "reassembly_memcap_mb"]
    public static let ruleKeys = ["proto", "if", "up", "down", "utf8", "nice", "format", "body", "balance", "port"]
    public static let loopback7Keys = ["if", "format"]
    public static let pcapKeys = ["if"]

    /// Reads settings from a parsed config. `currentDirectory` is the default `home`.
    ///
    /// Unknown keys are errors that name file:line and the nearest known key (`tcp_thread` would
    /// otherwise do nothing, and `ports:` turn a rule into a match-all). With `lenient` they are
    /// ignored, as the original SF-TAP ignores them, and listed in `ignored` for a warning.
    public init(_ config: SFTapConfig, currentDirectory: String, lenient: Bool = false) throws(SFTapConfigError) {
        func fail(_ section: SFTapConfig.Section, _ key: String, _ message: String) -> SFTapConfigError {
            SFTapConfigError(file: config.file, line: section[key]?.line ?? section.line, section: section.name, key: key, message: message)
        }
        var unknown: [(section: String, line: Int, why: String)] = []
        func checkKeys(_ section: SFTapConfig.Section, _ known: [String]) throws(SFTapConfigError) {
            for (key, value) in section.entries where !known.contains(key) {
                let nearest = Self.nearest(key, in: known)
                let hint = nearest.map { "; did you mean '\($0)'?" } ?? "; known keys: \(known.joined(separator: ", "))"
                if lenient {
                    unknown.append((section.name, value.line, "unknown key '\(key)' ignored\(hint)"))
                } else {
                    throw SFTapConfigError(file: config.file, line: value.line, section: section.name, key: key,
                                           message: "unknown key\(hint) (--lenient ignores unknown keys, as SF-TAP does)")
                }
            }
        }
        func yesNo(_ section: SFTapConfig.Section, _ key: String, default value: Bool) throws(SFTapConfigError) -> Bool {
            guard let v = section[key] else { return value }
            switch v.text.lowercased() {
            case "yes", "true", "on": return true
            case "no", "false", "off": return false
            default: throw fail(section, key, "expected yes or no, found '\(v.text)'")
            }
        }
        func integer(_ section: SFTapConfig.Section, _ key: String, in range: ClosedRange<Int>) throws(SFTapConfigError) -> Int? {
            guard let v = section[key] else { return nil }
            guard let n = Int(v.text.trimmedSpaces) else {
                throw fail(section, key, "expected a whole number from \(range.lowerBound) to \(range.upperBound), found '\(v.text)'")
            }
            guard range.contains(n) else {
                throw fail(section, key, "\(n) is out of range; expected \(range.lowerBound) to \(range.upperBound)")
            }
            return n
        }

        var global = Global(home: currentDirectory)
        if let g = config["global"] {
            try checkKeys(g, Self.globalKeys)
            if let home = g["home"]?.text {
                guard !home.isEmpty else { throw fail(g, "home", "expected a directory path, found nothing") }
                global.home = home
            }
            global.timeout = try integer(g, "timeout", in: 1 ... 86_400 * 7)
            global.lru = try yesNo(g, "lru", default: true)
            global.cache = try yesNo(g, "cache", default: true)
            global.tcpThreads = try integer(g, "tcp_threads", in: 1 ... 1024)
            global.regexThreads = try integer(g, "regex_threads", in: 1 ... 1024) ?? 1
            global.hopLimit = try integer(g, "hop_limit", in: 0 ... 255) ?? 4
            global.midstream = try yesNo(g, "midstream", default: true)
            if let policy = g["overlap_policy"]?.text {
                let allowed = ["first", "last", "bsd", "bsd-right", "linux", "windows", "solaris"]
                guard allowed.contains(policy) else { throw fail(g, "overlap_policy", "expected one of \(allowed.joined(separator: ", ")), found '\(policy)'") }
                global.overlapPolicy = policy
            }
            global.maxFlows = try integer(g, "max_flows", in: 1 ... 100_000_000) ?? 1_000_000
            global.reassemblyMemcapMiB = try integer(g, "reassembly_memcap_mb", in: 1 ... 1 << 20) ?? 512
        }
        self.global = global
        rules = []
        for section in config.sections where section.name != "global" {
            switch section.name {
            case "loopback7":
                try checkKeys(section, Self.loopback7Keys)
                loopback7Interface = section["if"]?.text ?? section.name
                if let f = section["format"] {
                    guard let format = Format(rawValue: f.text) else { throw fail(section, "format", "expected text or binary, found '\(f.text)'") }
                    loopback7Format = format
                }
                continue
            case "pcap":
                try checkKeys(section, Self.pcapKeys)
                pcapInterface = section["if"]?.text ?? section.name
                continue
            default: break
            }
            try checkKeys(section, Self.ruleKeys)
            let special = ["tcp_default", "udp_default", "icmp", "icmpv6"].contains(section.name)
            var proto: TransportProtocol
            if let p = section["proto"] {
                guard let parsed = TransportProtocol(rawValue: p.text.uppercased()) else {
                    throw fail(section, "proto", "expected TCP, UDP, ICMP or ICMPV6, found '\(p.text)'")
                }
                proto = parsed
            } else if special {
                proto = switch section.name {
                case "tcp_default": .tcp
                case "udp_default": .udp
                case "icmp": .icmp
                default: .icmpv6
                }
            } else {
                // The original ignores a rule without proto; FlowTap does too, and says so.
                ignored.append((section.name, section.line, "ignored: no 'proto' key, so the rule applies to nothing"))
                continue
            }
            var format = Format.text
            if let f = section["format"] {
                guard let parsed = Format(rawValue: f.text) else { throw fail(section, "format", "expected text or binary, found '\(f.text)'") }
                format = parsed
            }
            var ports: [ClosedRange<UInt16>] = []
            if let p = section["port"] {
                for item in p.text.split(separator: ",") {
                    let bounds = item.split(separator: "-", maxSplits: 1).map { $0.trimmedSpaces }
                    guard let low = UInt16(bounds[0]), let high = bounds.count == 2 ? UInt16(bounds[1]) : low, low <= high else {
                        throw fail(section, "port", "expected ports and ranges such as 53,5353 or 300-310, found '\(item)'")
                    }
                    ports.append(low ... high)
                }
            }
            let rule = Rule(
                name: section.name, interface: section["if"]?.text ?? section.name, proto: proto,
                up: section["up"]?.text, down: section["down"]?.text, utf8: try yesNo(section, "utf8", default: false),
                nice: try integer(section, "nice", in: Int(Int32.min) ... Int(Int32.max)) ?? 100, format: format,
                body: try yesNo(section, "body", default: true), balance: try integer(section, "balance", in: 1 ... 1024) ?? 1,
                ports: ports, line: section.line)
            guard !rule.interface.isEmpty, !rule.interface.contains("/") else {
                throw fail(section, "if", "expected a socket name without '/', found '\(rule.interface)'")
            }
            switch section.name {
            case "tcp_default": tcpDefault = rule
            case "udp_default": udpDefault = rule
            case "icmp": icmp = rule
            case "icmpv6": icmpv6 = rule
            default: rules.append(rule)
            }
        }
        ignored.append(contentsOf: unknown)
    }

    /// The known key closest to `key` (edit distance at most 2, or one is a prefix of the other).
    static func nearest(_ key: String, in known: [String]) -> String? {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var previous = Array(0 ... b.count)
            for (i, x) in a.enumerated() {
                var current = [i + 1] + [Int](repeating: 0, count: b.count)
                for (j, y) in b.enumerated() {
                    current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
                }
                previous = current
            }
            return previous[b.count]
        }
        let k = Array(key.lowercased())
        let scored = known.map { ($0, distance(k, Array($0))) }.sorted { $0.1 < $1.1 }
        if let best = scored.first, best.1 <= 2 { return best.0 }
        return known.first { $0.hasPrefix(key.lowercased()) || key.lowercased().hasPrefix($0) }
    }

    /// Loads and checks a configuration file.
    public static func load(path: String, currentDirectory: String, lenient: Bool = false) throws(SFTapConfigError) -> SFTapSettings {
        let text: String
        do {
            text = try readTextFile(path)
        } catch {
            throw SFTapConfigError(file: path, line: nil, message: "cannot read: \(error)")
        }
        return try SFTapSettings(SFTapConfig.parse(text, file: path), currentDirectory: currentDirectory, lenient: lenient)
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    var trimmedSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
