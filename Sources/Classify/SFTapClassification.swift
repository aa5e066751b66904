import Classify
import SFTapConfig

/// An SF-TAP config's classification, as `flowtap abstract` applies it and `flowtap analyze -c` reuses it:
/// the TCP and UDP rule sections in the classifier's order, then `tcp_default` and `udp_default` when given,
/// (the policy for holding a TCP flow's first bytes until it is classified is `ClassifierHoldPolicy`).
public struct SFTapClassification: Sendable {
    /// The config's TCP and UDP rules, then `tcp_default` and `udp_default`: index `i` is the classifier's rule `i`.
    public let rules: [SFTapSettings.Rule]
    public let tcpDefault: Int?
    public let udpDefault: Int?

    public init(settings: SFTapSettings) {
        var rules = settings.rules.filter { $0.proto == .tcp || $0.proto == .udp }
        var tcpDefault: Int?
        var udpDefault: Int?
        if let d = settings.tcpDefault { tcpDefault = rules.count; rules.append(d) }
        if let d = settings.udpDefault { udpDefault = rules.count; rules.append(d) }
        self.rules = rules
        self.tcpDefault = tcpDefault
        self.udpDefault = udpDefault
    }

    /// The classifier's form of each rule.
    public var classificationRules: [ClassificationRule] {
        rules.map { r in
            ClassificationRule(name: r.name, interface: r.interface, proto: r.proto == .tcp ? .tcp : .udp, up: r.up, down: r.down,
                               utf8: r.utf8, nice: r.nice, ports: r.ports, balance: r.balance)
        }
    }

    /// Compiles the rules into a classifier for the calling thread.
    public func makeClassifier() throws(ClassifierError) -> Classifier {
        try Classifier(rules: classificationRules, tcpDefault: tcpDefault, udpDefault: udpDefault)
    }
}
