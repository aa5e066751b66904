/// What one worker (or all of them, summed) has done. Kept by the worker without locks and published
/// to the session a few times a second.
public struct ForwardCounters: Sendable {
    public struct Rule: Sendable {
        public var datagrams: UInt64 = 0
        public var bytes: UInt64 = 0
    }

    public struct Destination: Sendable {
        public var forwarded: UInt64 = 0
        public var bytes: UInt64 = 0
        /// Matched, and left out by 1-in-N sampling.
        public var sampledOut: UInt64 = 0
        /// The kernel refused the send: the collector's ICMP port unreachable (ECONNREFUSED).
        public var refused: UInt64 = 0
        /// No route or neighbour (EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ENETDOWN).
        public var unreachable: UInt64 = 0
        /// Too long for one packet with its kept source (EMSGSIZE), or of the other address family.
        public var tooLong: UInt64 = 0
        public var familyMismatch: UInt64 = 0
        public var otherErrors: UInt64 = 0

        public var sendErrors: UInt64 { refused &+ unreachable &+ tooLong &+ otherErrors }
        public var lost: UInt64 { sendErrors &+ familyMismatch }
    }

    public var received: UInt64 = 0
    public var receivedBytes: UInt64 = 0
    /// Longer than the receive slot (65,535 bytes; cannot happen for UDP over IPv4, counted anyway).
    public var truncated: UInt64 = 0
    /// Matched no rule and the default action is to drop.
    public var unmatched: UInt64 = 0
    public var unmatchedBytes: UInt64 = 0
    /// Datagrams by payload kind (`PayloadKind` raw values).
    public var kinds = [UInt64](repeating: 0, count: PayloadKind.allCases.count)
    /// Totals over every destination and every rule set since start (the arrays below reset on reload).
    public var forwarded: UInt64 = 0
    public var forwardedBytes: UInt64 = 0
    public var sampledOut: UInt64 = 0
    public var lost: UInt64 = 0
    /// Per rule of the current plan, the default action last.
    public var rules: [Rule]
    /// Per destination of the current plan (`ForwardPlan.destinations`).
    public var destinations: [Destination]

    public init(rules: Int, destinations: Int) {
        self.rules = Array(repeating: Rule(), count: rules)
        self.destinations = Array(repeating: Destination(), count: destinations)
    }

    /// Adds `other` (another worker's) into this; its per-rule and per-destination counts only when
    /// `perPlan` (it counted for the same plan).
    public mutating func add(_ other: ForwardCounters, perPlan: Bool = true) {
        received &+= other.received
        receivedBytes &+= other.receivedBytes
        truncated &+= other.truncated
        unmatched &+= other.unmatched
        unmatchedBytes &+= other.unmatchedBytes
        for i in kinds.indices { kinds[i] &+= other.kinds[i] }
        forwarded &+= other.forwarded
        forwardedBytes &+= other.forwardedBytes
        sampledOut &+= other.sampledOut
        lost &+= other.lost
        if perPlan && rules.count == other.rules.count {
            for i in rules.indices {
                rules[i].datagrams &+= other.rules[i].datagrams
                rules[i].bytes &+= other.rules[i].bytes
            }
        }
        if perPlan && destinations.count == other.destinations.count {
            for i in destinations.indices {
                let o = other.destinations[i]
                destinations[i].forwarded &+= o.forwarded
                destinations[i].bytes &+= o.bytes
                destinations[i].sampledOut &+= o.sampledOut
                destinations[i].refused &+= o.refused
                destinations[i].unreachable &+= o.unreachable
                destinations[i].tooLong &+= o.tooLong
                destinations[i].familyMismatch &+= o.familyMismatch
                destinations[i].otherErrors &+= o.otherErrors
            }
        }
    }
}
