// Where RE2 (what SF-TAP patterns are written for) and Vectorscan (what
// runs them) read the same text differently, and the rewrite that closes
// the gap. Start-up only.
//
// `$`: RE2 without multi-line mode matches only at the very end of the
// text (its docs: "like \z not \Z"). Vectorscan follows PCRE, where `$`
// also matches before a final "\n". A bencoded-dictionary pattern such as
// `'^d.*e$'` would then accept a datagram ending in "e\n".
// So every `$` that is an anchor (not escaped, not inside a bracket
// class, not inside \Q…\E) becomes `\z`. A pattern that turns on
// multi-line mode (`(?m)`, `(?sm:…)`, …) anywhere is left as it is:
// there `$` means end of line in both dialects, and scoping the flag
// exactly would need a full parser.
//
// Other differences are left alone, being rare in classification rules:
// RE2 folds case over Latin-1 letters in byte mode (Vectorscan over ASCII
// only), and RE2's `\s` excludes `\v`. Some RE2 syntax Vectorscan rejects
// (the `(?U)` flag, anchors that cannot match such as `a$b`): those are
// start-up errors naming the rule.

enum RE2Dialect {
    /// The pattern Vectorscan should compile, and the byte offsets (in the
    /// result) where `\z` replaced `$`, to map error offsets back.
    static func vectorscanPattern(_ re2: String) -> (text: String, insertions: [Int]) {
        let bytes = Array(re2.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 4)
        var insertions: [Int] = []
        var multiline = false
        var inClass = false
        var i = 0
        let backslash = UInt8(ascii: "\\")
        while i < bytes.count {
            let c = bytes[i]
            if c == backslash {
                guard i + 1 < bytes.count else { out.append(c); i += 1; continue }
                if bytes[i + 1] == UInt8(ascii: "Q") {
                    // \Q…\E: literal text up to \E (or the end).
                    var j = i + 2
                    while j < bytes.count, !(bytes[j] == backslash && j + 1 < bytes.count && bytes[j + 1] == UInt8(ascii: "E")) {
                        j += 1
                    }
                    let end = min(j + 2, bytes.count)
                    out.append(contentsOf: bytes[i ..< end])
                    i = end
                    continue
                }
                out.append(c)
                out.append(bytes[i + 1])
                i += 2
                continue
            }
            if inClass {
                if c == UInt8(ascii: "["), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: ":") {
                    // [:alpha:] inside a class: its ']' does not close the class.
                    var j = i + 2
                    while j + 1 < bytes.count, !(bytes[j] == UInt8(ascii: ":") && bytes[j + 1] == UInt8(ascii: "]")) { j += 1 }
                    let end = min(j + 2, bytes.count)
                    out.append(contentsOf: bytes[i ..< end])
                    i = end
                    continue
                }
                if c == UInt8(ascii: "]") { inClass = false }
                out.append(c)
                i += 1
                continue
            }
            switch c {
            case UInt8(ascii: "["):
                inClass = true
                out.append(c)
                i += 1
                // A ']' right after '[' or '[^' is a literal member.
                if i < bytes.count, bytes[i] == UInt8(ascii: "^") { out.append(bytes[i]); i += 1 }
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { out.append(bytes[i]); i += 1 }
            case UInt8(ascii: "("):
                if i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "?") {
                    // Inline flags: (?flags) or (?flags:…); a '-' negates the rest.
                    var j = i + 2
                    var negated = false
                    while j < bytes.count {
                        let f = bytes[j]
                        let isLetter = (f >= 0x61 && f <= 0x7A) || (f >= 0x41 && f <= 0x5A)
                        if f == UInt8(ascii: "-") {
                            negated = true
                        } else if f == UInt8(ascii: "m") {
                            if !negated { multiline = true }
                        } else if !isLetter {
                            break
                        }
                        j += 1
                    }
                }
                out.append(c)
                i += 1
            case UInt8(ascii: "$"):
                insertions.append(out.count)
                out.append(backslash)
                out.append(UInt8(ascii: "z"))
                i += 1
            default:
                out.append(c)
                i += 1
            }
        }
        if multiline || insertions.isEmpty { return (re2, []) }
        return (String(decoding: out, as: UTF8.self), insertions)
    }

    /// Maps a byte offset in the rewritten text back to the config text.
    static func originalOffset(_ offset: Int, insertions: [Int]) -> Int {
        // Each `\z` is one byte longer than the `$` it replaced.
        var shift = 0
        for position in insertions where position < offset { shift += 1 }
        return max(0, offset - shift)
    }
}

/// Length of the longest prefix of `bytes` that is well-formed UTF-8
/// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
/// A sequence cut off at the end is not part of the prefix.
@inline(__always)
func validUTF8PrefixLength(_ base: UnsafePointer<UInt8>, _ count: Int) -> Int {
    var i = 0
    while i < count {
        let b0 = base[i]
        if b0 < 0x80 { i &+= 1; continue }
        var need = 0
        var lower: UInt8 = 0x80, upper: UInt8 = 0xBF
        switch b0 {
        case 0xC2 ... 0xDF: need = 1
        case 0xE0: need = 2; lower = 0xA0
        case 0xE1 ... 0xEC, 0xEE ... 0xEF: need = 2
        case 0xED: need = 2; upper = 0x9F
        case 0xF0: need = 3; lower = 0x90
        case 0xF1 ... 0xF3: need = 3
        case 0xF4: need = 3; upper = 0x8F
        default: return i
        }
        guard count &- i > need else { return i }
        let b1 = base[i &+ 1]
        guard b1 >= lower, b1 <= upper else { return i }
        var k = 2
        while k <= need {
            let b = base[i &+ k]
            guard b >= 0x80, b <= 0xBF else { return i }
            k &+= 1
        }
        i &+= need &+ 1
    }
    return count
}
