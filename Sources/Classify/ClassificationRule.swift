// The rule and result types of SF-TAP classification (reference §1 rule
// sections, §3). Plain values: they come from the config at start-up and
// are copied into the compiled plan; nothing here is touched per packet.

/// The transport a rule classifies (`proto: TCP` / `proto: UDP`). ICMP rules
/// carry no classification and never reach the classifier.
public enum RuleProtocol: Sendable, Hashable {
    case tcp, udp
}

/// Which of a rule's two patterns: SF-TAP's `up` (usually the client's
/// first bytes) or `down` (the server's).
public enum PatternSide: String, Sendable, Hashable {
    case up, down
}

/// The label a direction of a classified flow carries, SF-TAP's
/// `match=up|down|none` in the event header.
///
/// `.unmatched` (SF-TAP's `none`) is not spelled `.none`: comparing a
/// `MatchSide?` against `.none` would silently mean `Optional.none`.
public enum MatchSide: Sendable, Hashable {
    case up, down, unmatched
}

/// One SF-TAP rule section, with its keys already parsed.
///
/// Only the fields classification needs; output options (`format`, `body`)
/// stay with the config. `balance` is carried so the caller can pick the
/// socket from the matched rule alone.
public struct ClassificationRule: Sendable, Hashable {
    /// The section name; within one `nice` level rules are tried in the
    /// byte order of this name (SF-TAP iterates a `std::map`).
    public var name: String
    /// `if`: the socket file name.
    public var interface: String
    public var proto: RuleProtocol
    /// `up` regex source (RE2 syntax).
    public var up: String?
    /// `down` regex source (RE2 syntax); never used for UDP.
    public var down: String?
    /// `utf8: yes`: patterns are UTF-8; otherwise byte-wise (Latin-1).
    public var utf8: Bool
    /// Smaller is tried first.
    public var nice: Int
    /// Inclusive ranges; empty matches any port. Either endpoint may match.
    public var ports: [ClosedRange<UInt16>]
    /// Passed through untouched.
    public var balance: Int

    /// Defaults are SF-TAP's (`ifrule` constructor): `if` = the name,
    /// `nice` 100, `utf8` no, any port, `balance` 1.
    public init(
        name: String,
        interface: String? = nil,
        proto: RuleProtocol,
        up: String? = nil,
        down: String? = nil,
        utf8: Bool = false,
        nice: Int = 100,
        ports: [ClosedRange<UInt16>] = [],
        balance: Int = 1
    ) {
        self.name = name
        self.interface = interface ?? name
        self.proto = proto
        self.up = up
        self.down = down
        self.utf8 = utf8
        self.nice = nice
        self.ports = ports
        self.balance = balance
    }
}

/// A classified TCP connection: the rule (an index into
/// `Classifier.rules`) and the label of each endpoint's data.
///
/// `first` labels the bytes endpoint 1 sends (`buffer1`), `second` those of
/// endpoint 2. A regex rule gives (.up, .down) or (.down, .up); a
/// port-only rule and `tcp_default` give (.unmatched, .unmatched).
public struct Classification: Sendable, Hashable {
    public var ruleIndex: Int
    public var first: MatchSide
    public var second: MatchSide

    public init(ruleIndex: Int, first: MatchSide, second: MatchSide) {
        self.ruleIndex = ruleIndex
        self.first = first
        self.second = second
    }
}

/// A classified UDP datagram: the rule and the label of this datagram
/// (it applies to the datagram's sender). `.up` when the rule's `up`
/// pattern matched, `.unmatched` for a port-only rule or `udp_default`;
/// never `.down`.
public struct DatagramClassification: Sendable, Hashable {
    public var ruleIndex: Int
    public var matched: MatchSide

    public init(ruleIndex: Int, matched: MatchSide) {
        self.ruleIndex = ruleIndex
        self.matched = matched
    }
}
