import PacketCore

/// gForwarder's rule file (`config.txt`), as its README shows it: one rule per line,
/// `SRC_IP DST_PORT NEW_DST_IP PRIORITY` — datagrams from SRC_IP to UDP port DST_PORT go to NEW_DST_IP
/// on the same port; the first matching line wins. The priority word is read and, as in gForwarder,
/// not used. Beyond the original: `#` comments and blank lines, IPv6 addresses, and errors that name
/// the line (gForwarder counted blank lines as rules and read at most 128 bytes a line).
public enum GForwarderRules {
    static func looksLikeOne(_ text: String) -> Bool {
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if words.isEmpty { continue }
            return IPAddress(words[0]) != nil
        }
        return false
    }

    public static func parse(_ text: String, file: String, keepSource: Bool) throws(RuleFileError) -> ForwardRuleSet {
        var rules: [ForwardRule] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if words.isEmpty { continue }
            guard words.count == 4 || words.count == 3 else {
                throw RuleFileError(file: file, line: number,
                                    "expected 'SRC_IP DST_PORT NEW_DST_IP PRIORITY' (4 words, e.g. '10.2.2.5 9996 10.2.2.3 A'), found \(words.count)")
            }
            guard let source = IPAddress(words[0]) else {
                throw RuleFileError(file: file, line: number, "'\(words[0])' is not an IP address (the exporter's source address)")
            }
            guard let port = UInt16(words[1]), port > 0 else {
                throw RuleFileError(file: file, line: number, "'\(words[1])' is not a UDP port (1–65535; the datagrams' destination port)")
            }
            guard let target = IPAddress(words[2]) else {
                throw RuleFileError(file: file, line: number, "'\(words[2])' is not an IP address (the collector to forward to)")
            }
            if keepSource && target.isIPv6 != source.isIPv6 {
                throw RuleFileError(file: file, line: number,
                                    "keeping the source address needs the collector in the exporter's family: \(source) is \(source.isIPv6 ? "IPv6" : "IPv4"), \(target) is not")
            }
            rules.append(ForwardRule(
                name: "line \(number)", line: number, sources: [IPPrefix(source, length: source.isIPv6 ? 128 : 32)],
                ports: port ... port, destinations: [ForwardDestination(address: target, port: port, keepSource: keepSource)],
                priority: words.count == 4 ? String(words[3]) : nil
            ))
        }
        if rules.isEmpty { throw RuleFileError(file: file, line: nil, "no rules; write lines 'SRC_IP DST_PORT NEW_DST_IP PRIORITY' or a YAML rule set (see docs/forward.md)") }
        return ForwardRuleSet(file: file, format: .gforwarder, rules: rules)
    }
}
