/// Why a rule set could not be turned into a classifier. Start-up only.
///
/// The config layer knows the file and line of each section; this error
/// names the rule section, the key (`up`/`down`) and the pattern, so the
/// two together point at the exact line to fix.
public struct ClassifierError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Hashable {
        /// Vectorscan rejected the pattern: a syntax error, or syntax it
        /// lacks (back-references, lookaround, possessive quantifiers; of
        /// RE2's own syntax, the `(?U)` flag and anchors that can never
        /// match, such as `a$b`).
        case badPattern
        /// The pattern contains a NUL character, which cannot reach the C
        /// API; write `\x00` instead.
        case nulInPattern
        /// Vectorscan failed for a reason not tied to one pattern (out of
        /// memory, unsupported CPU, a database too large).
        case vectorscan
    }

    public var kind: Kind
    /// The rule section; nil for `.vectorscan` failures of a whole database.
    public var ruleName: String?
    public var side: PatternSide?
    /// The pattern as written in the config.
    public var pattern: String?
    /// Vectorscan's own message (or ours for `.nulInPattern`).
    public var message: String
    /// Byte offset into `pattern` when Vectorscan reported one ("at index N").
    public var offset: Int?

    public init(kind: Kind, ruleName: String?, side: PatternSide?, pattern: String?, message: String, offset: Int?) {
        self.kind = kind
        self.ruleName = ruleName
        self.side = side
        self.pattern = pattern
        self.message = message
        self.offset = offset
    }

    public var description: String {
        var text = ""
        if let ruleName, let side, let pattern {
            text = "rule \"\(ruleName)\" key \(side.rawValue): pattern '\(pattern)' "
        }
        switch kind {
        case .badPattern:
            text += "is not accepted by Vectorscan: \(message)"
            if let offset { text += " (byte \(offset) of the pattern)" }
            text += "; rewrite it in the syntax Vectorscan accepts (no back-references, lookaround,"
                + " possessive quantifiers, (?U), or anchors inside the pattern) or remove the key"
        case .nulInPattern:
            text += "contains a NUL character; write it as \\x00"
        case .vectorscan:
            text += "Vectorscan failed: \(message); check memory limits and that the CPU supports the installed libhs"
        }
        return text
    }
}

extension ClassifierError {
    /// Vectorscan phrases positions as "… at index N." Offsets are bytes of
    /// the compiled text; `insertions` maps them back to the config text.
    static func reportedOffset(in message: String, insertions: [Int]) -> Int? {
        let marker = Array("at index ".utf8)
        let bytes = Array(message.utf8)
        guard bytes.count > marker.count else { return nil }
        var start = -1
        for i in 0 ... bytes.count - marker.count where bytes[i ..< i + marker.count].elementsEqual(marker) {
            start = i + marker.count
        }
        guard start >= 0 else { return nil }
        var value = 0
        var digits = 0
        var i = start
        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39, digits < 9 {
            value = value * 10 + Int(bytes[i] - 0x30)
            digits += 1
            i += 1
        }
        guard digits > 0 else { return nil }
        return RE2Dialect.originalOffset(value, insertions: insertions)
    }
}
