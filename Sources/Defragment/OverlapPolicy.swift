/// Which bytes win when fragments of one datagram overlap: the target-based
/// policies of Novak's "Target-Based Fragmentation Reassembly" (2005), under
/// the names Snort's frag3 and Suricata's defrag use.
///
/// An IDS must rebuild the datagram the way the *receiving host* does, or an
/// attacker sends one payload to the sensor and another to the host (Ptacek &
/// Newsham 1998). Hosts disagree, so the policy is configuration.
///
/// ## Semantics
/// Defined per byte: when a fragment `[s, e)` arrives, every byte it shares
/// with held data is compared with the fragment `[s₀, e₀)` that supplied the
/// held byte, and the rule below says whether the new byte replaces it. Only
/// the two fragments' original ranges matter, never arrival times beyond
/// "held" versus "new", so the result does not depend on how held data was
/// split up earlier.
///
/// | policy | new byte wins when | hosts (as frag3's documentation lists them) |
/// |---|---|---|
/// | `first` | never | Mac OS, HP-UX 11 |
/// | `last` | always | Cisco IOS |
/// | `bsd` | `s < s₀` | FreeBSD, AIX, IRIX, HP-UX 10, Tru64, OpenVMS |
/// | `bsd-right` | `e > e₀`, or `e == e₀` and `s <= s₀` | HP JetDirect printers |
/// | `linux` | `s <= s₀` | Linux (kernels since 2018 drop an IPv4 datagram with overlapping fragments, as RFC 5722 asks for IPv6) |
/// | `windows` | `s < s₀` and `e > e₀` | Windows |
/// | `solaris` | `s < s₀` and `e >= e₀` | Solaris |
///
/// Checked against the Sturges/Novak scenario (Suricata's
/// `DefragSturgesNovak*Test`, in the corpus as `defrag-novak`). Suricata has
/// no `bsd-right`; its rule is read from frag3: the new fragment wins unless
/// a held fragment reaches at least as far right, a tie going to the fragment
/// that starts first.
public enum OverlapPolicy: String, CaseIterable, Sendable {
    case first
    case last
    case bsd
    case bsdRight = "bsd-right"
    case linux
    case windows
    case solaris

    /// True when bytes of the arriving fragment `[newStart, newEnd)` replace
    /// bytes held from the fragment `[oldStart, oldEnd)`.
    @inlinable
    public func newWins(newStart: Int, newEnd: Int, oldStart: Int, oldEnd: Int) -> Bool {
        switch self {
        case .first: false
        case .last: true
        case .bsd: newStart < oldStart
        case .bsdRight: newEnd > oldEnd || (newEnd == oldEnd && newStart <= oldStart)
        case .linux: newStart <= oldStart
        case .windows: newStart < oldStart && newEnd > oldEnd
        case .solaris: newStart < oldStart && newEnd >= oldEnd
        }
    }
}
