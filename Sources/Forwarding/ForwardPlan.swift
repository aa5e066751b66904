import CShims
import PacketCore

/// A rule set made ready to run: the lookup index, every destination numbered (rule by rule, then the
/// default's), and the sampling counters the worker threads share. Immutable once built, except those
/// counters; a reload (SIGHUP) builds a new plan and the workers switch between two receive batches.
public final class ForwardPlan: @unchecked Sendable {
    public let rules: ForwardRuleSet
    let index: RuleIndex
    /// Every destination: those of rule 0, of rule 1, …, then the default action's.
    public let destinations: [ForwardDestination]
    /// `destinations[ranges[r]]` are rule r's; `ranges[rules.count]` the default's.
    let ranges: [Range<Int>]
    /// Matched datagrams per destination, for exact 1-in-N sampling across threads.
    let sampleCounters: UnsafeMutablePointer<UInt64>

    public init(_ rules: ForwardRuleSet) {
        self.rules = rules
        index = RuleIndex(rules.rules)
        var destinations: [ForwardDestination] = [], ranges: [Range<Int>] = []
        for targets in rules.rules.map(\.destinations) + [rules.defaultDestinations] {
            ranges.append(destinations.count ..< destinations.count + targets.count)
            destinations += targets
        }
        self.destinations = destinations
        self.ranges = ranges
        sampleCounters = .allocate(capacity: max(destinations.count, 1))
        sampleCounters.initialize(repeating: 0, count: max(destinations.count, 1))
    }

    deinit { sampleCounters.deallocate() }

    /// The destinations of the first rule matching (or the default's; empty: drop) and that rule's number
    /// (`rules.rules.count` for the default action).
    @inline(__always)
    func route(source: IPAddress, port: UInt16, kind: PayloadKind) -> (rule: Int, destinations: Range<Int>) {
        let rule = index.firstMatch(source: source, port: port, kind: kind) ?? rules.rules.count
        return (rule, ranges[rule])
    }

    /// Whether this matched datagram is the one in N that destination `d` forwards.
    @inline(__always)
    func sampledIn(_ d: Int) -> Bool {
        let every = UInt64(destinations[d].sampleEvery)
        if every <= 1 { return true }
        return UInt64(flowtap_atomic_fetch_add(UnsafeMutableRawPointer(sampleCounters + d).assumingMemoryBound(to: CUnsignedLongLong.self), 1)) % every == 0
    }

    /// The destinations (indices into `destinations`) of rule `rule`; `rules.rules.count` is the default action.
    public func destinations(ofRule rule: Int) -> Range<Int> { ranges[rule] }

    /// Names of the rules, with the default action last.
    public var ruleNames: [String] { rules.rules.map(\.name) + ["default"] }
}
