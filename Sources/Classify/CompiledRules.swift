import CVectorscan

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A rule set turned into evaluation plans and Vectorscan databases:
/// immutable, so one instance is shared by every thread's `Classifier`
/// (Vectorscan databases are read-only; only scratch is per thread).
public final class CompiledRules: Sendable {
    /// The rules as given; `ruleIndex` in results indexes this array.
    public let rules: [ClassificationRule]
    public let tcpDefault: Int?
    public let udpDefault: Int?
    /// The Vectorscan scan routine in use, for logs: "hs_scan", or a
    /// variant when `hs_scan` failed the start-up self-test (see
    /// VectorscanRuntime.swift).
    public let vectorscanRuntime: String
    let tcp: ProtocolPlan
    let udp: ProtocolPlan
    /// Nil when there is no pattern to scan.
    let scan: ScanFunction?

    /// Compiles every pattern with Vectorscan and orders the rules.
    ///
    /// `tcpDefault`/`udpDefault` index the `tcp_default`/`udp_default`
    /// sections in `rules`; those rules are tried only after every nice
    /// level, and never by their own patterns or ports. An index outside
    /// `rules` is a programming error and traps.
    public init(rules: [ClassificationRule], tcpDefault: Int? = nil, udpDefault: Int? = nil) throws(ClassifierError) {
        if let tcpDefault { precondition(rules.indices.contains(tcpDefault), "tcpDefault \(tcpDefault) is not an index of rules") }
        if let udpDefault { precondition(rules.indices.contains(udpDefault), "udpDefault \(udpDefault) is not an index of rules") }
        self.rules = rules
        self.tcpDefault = tcpDefault
        self.udpDefault = udpDefault

        // Every pattern present is checked, in rule order, even those
        // never scanned (a default rule's, a UDP `down`, the single side of
        // a port-only TCP rule), so a typo never hides.
        var checked: [[PatternSide: CheckedPattern]] = []
        checked.reserveCapacity(rules.count)
        for rule in rules {
            var sides: [PatternSide: CheckedPattern] = [:]
            for side in [PatternSide.up, .down] {
                guard let source = side == .up ? rule.up : rule.down else { continue }
                if source.utf8.contains(0) {
                    throw ClassifierError(kind: .nulInPattern, ruleName: rule.name, side: side, pattern: source, message: "NUL in pattern", offset: nil)
                }
                let rewritten = RE2Dialect.vectorscanPattern(source)
                let origin = PatternOrigin(rule: rule.name, side: side, source: source, insertions: rewritten.insertions)
                try VectorscanDatabase.validate(rewritten.text, flags: Self.flags(utf8: rule.utf8), origin: origin)
                sides[side] = CheckedPattern(text: rewritten.text, utf8: rule.utf8, origin: origin)
            }
            checked.append(sides)
        }

        let defaults: Set<Int> = Set([tcpDefault, udpDefault].compactMap { $0 })
        // Tried order: nice ascending, then name in byte order (SF-TAP's
        // std::map<std::string>), then input order for equal names.
        let order = rules.indices.sorted { a, b in
            if rules[a].nice != rules[b].nice { return rules[a].nice < rules[b].nice }
            let na = rules[a].name.utf8, nb = rules[b].name.utf8
            if !na.elementsEqual(nb) { return na.lexicographicallyPrecedes(nb) }
            return a < b
        }

        var tcpBuilder = PlanBuilder()
        var udpBuilder = PlanBuilder()
        var index = 0
        while index < order.count {
            // One nice level: its regex rules first, then its port-only rules.
            let nice = rules[order[index]].nice
            var end = index
            while end < order.count, rules[order[end]].nice == nice { end += 1 }
            let level = order[index ..< end]
            for regexPass in [true, false] {
                for r in level where !defaults.contains(r) {
                    let rule = rules[r]
                    switch rule.proto {
                    case .tcp:
                        let isRegex = rule.up != nil && rule.down != nil
                        guard isRegex == regexPass else { continue }
                        if isRegex, let up = checked[r][.up], let down = checked[r][.down] {
                            tcpBuilder.addStep(rule: r, up: tcpBuilder.patternID(up), down: tcpBuilder.patternID(down), ports: rule.ports)
                        } else {
                            tcpBuilder.addStep(rule: r, up: -1, down: -1, ports: rule.ports)
                        }
                    case .udp:
                        let isRegex = rule.up != nil
                        guard isRegex == regexPass else { continue }
                        if isRegex, let up = checked[r][.up] {
                            udpBuilder.addStep(rule: r, up: udpBuilder.patternID(up), down: -1, ports: rule.ports)
                        } else {
                            udpBuilder.addStep(rule: r, up: -1, down: -1, ports: rule.ports)
                        }
                    }
                }
            }
            index = end
        }
        // The scan routine is chosen (and self-tested) only when something
        // will be scanned; it fixes the platform the databases target.
        var runtime: VectorscanRuntime?
        if !tcpBuilder.patterns.isEmpty || !udpBuilder.patterns.isEmpty {
            switch VectorscanRuntime.selected {
            case .success(let selected): runtime = selected
            case .failure(let error): throw error
            }
        }
        tcp = try tcpBuilder.build(defaultRule: tcpDefault, platform: runtime?.platform)
        udp = try udpBuilder.build(defaultRule: udpDefault, platform: runtime?.platform)
        scan = runtime?.scan
        vectorscanRuntime = runtime?.summary ?? "none (no patterns to scan)"
    }

    /// Vectorscan flags for an SF-TAP pattern: RE2 `dot_nl=true`;
    /// `utf8` per rule; empty matches allowed (RE2 matches '.*' against an
    /// empty buffer); one report per pattern is all the bitset needs.
    static func flags(utf8: Bool) -> UInt32 {
        var flags = UInt32(HS_FLAG_DOTALL | HS_FLAG_ALLOWEMPTY | HS_FLAG_SINGLEMATCH)
        if utf8 { flags |= UInt32(HS_FLAG_UTF8) }
        return flags
    }
}

/// Where a compiled pattern came from, to name it in errors.
struct PatternOrigin: Sendable {
    var rule: String
    var side: PatternSide
    var source: String
    /// Offsets of `$` → `\z` rewrites, to map error offsets back.
    var insertions: [Int]
}

/// A pattern Vectorscan has parsed, as it will be compiled.
struct CheckedPattern {
    var text: String
    var utf8: Bool
    var origin: PatternOrigin
}

/// One rule in tried order. Pattern ids index the protocol's bitset;
/// -1 means none (a port-only step has both at -1; UDP has no `down`).
struct RuleStep: Sendable {
    var rule: Int32
    var up: Int32
    var down: Int32
    var portStart: Int32
    var portEnd: Int32
}

/// Inclusive port range, flattened for the hot loop.
struct PortRange: Sendable {
    var lower: UInt16
    var upper: UInt16
}

/// Everything one protocol's classification reads per call.
struct ProtocolPlan: Sendable {
    var steps: [RuleStep]
    var ports: [PortRange]
    /// Patterns without `utf8`, scanned over every examined byte.
    var bytewise: VectorscanDatabase?
    /// `utf8` patterns, scanned over the valid UTF-8 prefix only.
    var utf8: VectorscanDatabase?
    /// Distinct patterns across both databases (bitset size).
    var patternCount: Int
    var defaultRule: Int32
}

private struct PatternKey: Hashable {
    var text: String
    var utf8: Bool
}

/// Collects one protocol's steps and distinct patterns.
private struct PlanBuilder {
    var steps: [RuleStep] = []
    var ports: [PortRange] = []
    var ids: [PatternKey: Int32] = [:]
    var patterns: [CheckedPattern] = []

    /// Identical patterns (e.g. http's and http_client's `up`, ssh's two
    /// sides) share one id, so each is scanned once.
    mutating func patternID(_ pattern: CheckedPattern) -> Int32 {
        let key = PatternKey(text: pattern.text, utf8: pattern.utf8)
        if let id = ids[key] { return id }
        let id = Int32(patterns.count)
        ids[key] = id
        patterns.append(pattern)
        return id
    }

    mutating func addStep(rule: Int, up: Int32, down: Int32, ports rulePorts: [ClosedRange<UInt16>]) {
        let start = Int32(ports.count)
        for range in rulePorts { ports.append(PortRange(lower: range.lowerBound, upper: range.upperBound)) }
        steps.append(RuleStep(rule: Int32(rule), up: up, down: down, portStart: start, portEnd: Int32(ports.count)))
    }

    func build(defaultRule: Int?, platform: hs_platform_info_t?) throws(ClassifierError) -> ProtocolPlan {
        // Separate databases: Vectorscan leaves results undefined for a whole
        // database with any UTF-8 pattern when the data is not UTF-8, which
        // must not spill onto byte-wise patterns.
        let bytewise = patterns.indices.filter { !patterns[$0].utf8 }
        let utf8 = patterns.indices.filter { patterns[$0].utf8 }
        func compile(_ members: [Int], utf8: Bool) throws(ClassifierError) -> VectorscanDatabase? {
            guard !members.isEmpty else { return nil }
            return try VectorscanDatabase(
                patterns: members.map { patterns[$0].text },
                ids: members.map { UInt32($0) },
                flags: CompiledRules.flags(utf8: utf8),
                platform: platform,
                origins: members.map { patterns[$0].origin })
        }
        return ProtocolPlan(
            steps: steps,
            ports: ports,
            bytewise: try compile(bytewise, utf8: false),
            utf8: try compile(utf8, utf8: true),
            patternCount: patterns.count,
            defaultRule: Int32(defaultRule ?? -1))
    }
}

/// Owns one block-mode `hs_database_t`.
final class VectorscanDatabase: @unchecked Sendable {
    // Immutable after compilation; Vectorscan allows concurrent scans of
    // one database, each with its own scratch.
    let handle: OpaquePointer

    /// `cache`: where compiled databases are kept between runs (`DatabaseCache`); nil compiles every time.
    init(patterns: [String], ids: [UInt32], flags: UInt32, platform: hs_platform_info_t?, origins: [PatternOrigin],
         cache: DatabaseCache? = DatabaseCache.shared) throws(ClassifierError) {
        let key = cache.map { _ in DatabaseCache.key(patterns: patterns, ids: ids, flags: flags, platform: platform) }
        if let cache, let key, let stored = cache.load(key: key) {
            handle = stored
            return
        }
        let strings = patterns.map { strdup($0) }
        defer { for s in strings { free(s) } }
        let expressions: [UnsafePointer<CChar>?] = strings.map { UnsafePointer($0) }
        let allFlags = [UInt32](repeating: flags, count: patterns.count)
        var database: OpaquePointer?
        var error: UnsafeMutablePointer<hs_compile_error_t>?
        let rc: hs_error_t
        if var platform {
            rc = hs_compile_multi(expressions, allFlags, ids, UInt32(patterns.count), UInt32(HS_MODE_BLOCK), &platform, &database, &error)
        } else {
            rc = hs_compile_multi(expressions, allFlags, ids, UInt32(patterns.count), UInt32(HS_MODE_BLOCK), nil, &database, &error)
        }
        guard rc == HS_SUCCESS, let database else {
            let message = error.flatMap { $0.pointee.message.map { String(cString: $0) } } ?? "hs_compile_multi returned \(rc)"
            let expression = error.map { Int($0.pointee.expression) } ?? -1
            if error != nil { hs_free_compile_error(error) }
            if origins.indices.contains(expression) {
                let origin = origins[expression]
                throw ClassifierError(
                    kind: .badPattern, ruleName: origin.rule, side: origin.side, pattern: origin.source, message: message,
                    offset: ClassifierError.reportedOffset(in: message, insertions: origin.insertions))
            }
            throw ClassifierError(kind: .vectorscan, ruleName: nil, side: nil, pattern: nil, message: message, offset: nil)
        }
        handle = database
        if let cache, let key { cache.store(database, key: key) }
    }

    deinit { hs_free_database(handle) }

    /// Parses one pattern without building a database (cheap), to report
    /// errors per rule in config order.
    static func validate(_ text: String, flags: UInt32, origin: PatternOrigin) throws(ClassifierError) {
        var info: UnsafeMutablePointer<hs_expr_info_t>?
        var error: UnsafeMutablePointer<hs_compile_error_t>?
        let rc = hs_expression_info(text, flags, &info, &error)
        if let info { free(info) }
        guard rc == HS_SUCCESS else {
            let message = error.flatMap { $0.pointee.message.map { String(cString: $0) } } ?? "hs_expression_info returned \(rc)"
            if error != nil { hs_free_compile_error(error) }
            throw ClassifierError(
                kind: .badPattern, ruleName: origin.rule, side: origin.side, pattern: origin.source, message: message,
                offset: ClassifierError.reportedOffset(in: message, insertions: origin.insertions))
        }
    }
}
