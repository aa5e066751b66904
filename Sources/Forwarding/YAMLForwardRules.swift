import PacketCore
import Yams

/// The YAML rule set (docs/forward.md):
///
/// ```yaml
/// keep_source: true              # the default for every rule (the command line's --keep-source sets it too)
/// default: drop                  # or destinations for datagrams no rule matches: [10.9.0.1:514]
/// rules:
///   - name: routers
///     from: [10.1.0.0/24, 2001:db8::/48]   # exporter prefixes or addresses; 'any' (the default)
///     port: 2055                 # a port, a range '2055-2060', or 'any' (the default)
///     kind: [netflow9, ipfix]    # syslog, netflow5, netflow9, ipfix, sflow, other; any when absent
///     to: [10.2.0.2:2055, {address: 10.3.0.2:2055, sample: 10}]
///     sample: 1                  # 1 in N for every destination of the rule that does not say
///     keep_source: false
/// ```
///
/// With keep-source, a destination must be in the exporter's family: a rule whose `from` holds only
/// IPv4 prefixes and sends to an IPv6 collector is an error; `from: any` with keep-source matches only
/// exporters of its destinations' family (the other family goes on to the next rules).
public enum YAMLForwardRules {
    static let ruleKeys: Set<String> = ["name", "from", "port", "kind", "to", "sample", "keep_source"]

    public static func parse(_ text: String, file: String, keepSourceByDefault: Bool) throws(RuleFileError) -> ForwardRuleSet {
        let root: Node?
        do {
            // Values are read as text (the basic resolver: no tag regular expressions to compile).
            root = try Yams.compose(yaml: text, .basic)
        } catch let error as YamlError {
            var line: Int?
            var problem = "\(error)"
            switch error {
            case .scanner(_, let p, let mark, _), .parser(_, let p, let mark, _), .composer(_, let p, let mark, _):
                line = mark.line
                problem = p
            default: break
            }
            throw RuleFileError(file: file, line: line, "neither gForwarder rule lines nor valid YAML: \(problem)")
        } catch {
            throw RuleFileError(file: file, line: nil, "not valid YAML: \(error)")
        }
        guard let root, case .mapping(let top) = root else {
            throw RuleFileError(file: file, line: root?.mark?.line,
                                "expected gForwarder lines ('SRC_IP DST_PORT NEW_DST_IP PRIORITY') or a YAML map with 'rules:'")
        }
        var keepSource = keepSourceByDefault
        var defaultNode: Node?
        var rulesNode: Node?
        for (k, v) in top {
            switch k.string ?? "" {
            case "keep_source":
                keepSource = try bool(v, file: file, key: "keep_source") || keepSourceByDefault
            case "default": defaultNode = v
            case "rules": rulesNode = v
            default:
                throw RuleFileError(file: file, line: k.mark?.line, "unknown key '\(k.string ?? "?")'; the top level holds 'rules', 'default' and 'keep_source'")
            }
        }
        guard let rulesNode, case .sequence(let list) = rulesNode else {
            throw RuleFileError(file: file, line: rulesNode?.mark?.line ?? root.mark?.line, "'rules:' must be a list of rules, each a map with 'to:'")
        }
        var rules: [ForwardRule] = []
        for node in list {
            rules.append(try rule(node, number: rules.count + 1, file: file, keepSource: keepSource))
        }
        var defaults: [ForwardDestination] = []
        if let defaultNode, defaultNode.string != "drop" {
            defaults = try destinations(defaultNode, file: file, port: nil, sample: 1, keepSource: keepSource, what: "default")
        }
        return ForwardRuleSet(file: file, format: .yaml, rules: rules, defaultDestinations: defaults)
    }

    static func rule(_ node: Node, number: Int, file: String, keepSource inherited: Bool) throws(RuleFileError) -> ForwardRule {
        guard case .mapping(let map) = node else {
            throw RuleFileError(file: file, line: node.mark?.line, "rule \(number) must be a map with 'to:' (and 'from', 'port', 'kind')")
        }
        let line = node.mark?.line ?? 0
        var name = "rule \(number)"
        var sources: [IPPrefix] = []
        var ports: ClosedRange<UInt16> = 0 ... 65535
        var kinds: UInt8 = 0
        var sample: UInt32 = 1
        var keepSource = inherited
        var toNode: Node?
        for (k, v) in map {
            let key = k.string ?? ""
            switch key {
            case "name": name = v.string ?? name
            case "from":
                for item in items(v) {
                    guard let text = item.string else { throw RuleFileError(file: file, line: item.mark?.line, "'from' takes addresses or prefixes") }
                    if text == "any" { continue }
                    guard let prefix = IPPrefix(Substring(text)) else {
                        throw RuleFileError(file: file, line: item.mark?.line, "'\(text)' is not an address or prefix (e.g. 10.1.0.0/24, 2001:db8::/32, any)")
                    }
                    sources.append(prefix)
                }
            case "port":
                ports = try portRange(v, file: file)
            case "kind":
                for item in items(v) {
                    guard let text = item.string, let kind = PayloadKind(name: text) else {
                        throw RuleFileError(file: file, line: item.mark?.line,
                                            "'\(item.string ?? "?")' is not a payload kind; use \(PayloadKind.allCases.map(\.description).joined(separator: ", "))")
                    }
                    kinds |= 1 << kind.rawValue
                }
            case "to": toNode = v
            case "sample": sample = try sampling(v, file: file)
            case "keep_source": keepSource = try bool(v, file: file, key: "keep_source")
            default:
                throw RuleFileError(file: file, line: k.mark?.line,
                                    "unknown key '\(key)' in rule \(number); a rule holds \(ruleKeys.sorted().joined(separator: ", "))")
            }
        }
        guard let toNode else { throw RuleFileError(file: file, line: line, "rule \(number) ('\(name)') has no 'to:'; give one or more HOST:PORT") }
        let singlePort: UInt16? = ports.lowerBound == ports.upperBound ? ports.lowerBound : nil
        let targets = try destinations(toNode, file: file, port: singlePort, sample: sample, keepSource: keepSource, what: "rule \(number)")
        if targets.contains(where: \.keepSource) {
            let families = Set(targets.filter(\.keepSource).map(\.address.isIPv6))
            if sources.isEmpty {
                if families.count == 1 {
                    // `any` with keep-source: only the exporters that can keep their address.
                    sources = [IPPrefix(families.first! ? IPAddress("::")! : IPAddress("0.0.0.0")!, length: 0)]
                }
            } else {
                for source in sources where !families.contains(source.isIPv6) {
                    throw RuleFileError(file: file, line: line,
                                        "rule \(number) keeps the source address, but \(source) is \(source.isIPv6 ? "IPv6" : "IPv4") and no destination is: "
                                            + "a datagram cannot keep an address of the other family; add a destination of its family or set keep_source: false")
                }
            }
        }
        return ForwardRule(name: name, line: line, sources: sources, ports: ports, kinds: kinds, destinations: targets)
    }

    static func destinations(_ node: Node, file: String, port: UInt16?, sample: UInt32, keepSource: Bool, what: String) throws(RuleFileError) -> [ForwardDestination] {
        var out: [ForwardDestination] = []
        for item in items(node) {
            var text = item.string
            var every = sample
            var keep = keepSource
            if case .mapping(let map) = item {
                text = nil
                for (k, v) in map {
                    switch k.string ?? "" {
                    case "address": text = v.string
                    case "sample": every = try sampling(v, file: file)
                    case "keep_source": keep = try bool(v, file: file, key: "keep_source")
                    default:
                        throw RuleFileError(file: file, line: k.mark?.line, "unknown key '\(k.string ?? "?")' in a destination; use address, sample, keep_source")
                    }
                }
            }
            guard let text else { throw RuleFileError(file: file, line: item.mark?.line, "a destination needs an address: HOST:PORT") }
            guard let (address, p) = DestinationText.parse(text, defaultPort: port) else {
                let hint = port == nil ? " (the rule matches several ports, so the destination must name one)" : ""
                throw RuleFileError(file: file, line: item.mark?.line, "'\(text)' is not a destination; write HOST:PORT or [IPv6]:PORT\(hint)")
            }
            out.append(ForwardDestination(address: address, port: p, sampleEvery: every, keepSource: keep))
        }
        if out.isEmpty { throw RuleFileError(file: file, line: node.mark?.line, "\(what) has no destinations") }
        return out
    }

    static func items(_ node: Node) -> [Node] {
        if case .sequence(let list) = node { return Array(list) }
        return [node]
    }

    static func portRange(_ node: Node, file: String) throws(RuleFileError) -> ClosedRange<UInt16> {
        guard let text = node.string else { throw RuleFileError(file: file, line: node.mark?.line, "'port' takes a port, a range such as 2055-2060, or any") }
        if text == "any" { return 0 ... 65535 }
        let parts = text.split(separator: "-", maxSplits: 1).map { String($0.filter { $0 != " " }) }
        guard let low = UInt16(parts[0]), let high = UInt16(parts.count == 2 ? parts[1] : parts[0]), low <= high else {
            throw RuleFileError(file: file, line: node.mark?.line, "'\(text)' is not a port or a range (e.g. 514, 2055-2060, any)")
        }
        return low ... high
    }

    static func sampling(_ node: Node, file: String) throws(RuleFileError) -> UInt32 {
        guard let text = node.string, let n = UInt32(text), n >= 1 else {
            throw RuleFileError(file: file, line: node.mark?.line, "'sample' takes N ≥ 1: forward one datagram in N")
        }
        return n
    }

    static func bool(_ node: Node, file: String, key: String) throws(RuleFileError) -> Bool {
        switch node.string ?? "" {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw RuleFileError(file: file, line: node.mark?.line, "'\(key)' takes true or false")
        }
    }
}
