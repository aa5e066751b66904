/// Limits and policy of a `Defragmenter`. Every limit says what happens when
/// it is hit; see the essay at the top of `Defragmenter.swift`.
public struct DefragmentConfig: Sendable {
    /// Overlap resolution. Default `bsd`, Suricata's default: BSD-derived
    /// stacks are the most common family in frag3's host table, and `bsd`
    /// keeps the held bytes except where a fragment starts earlier, so a
    /// late overlapping fragment cannot rewrite data already seen. Set
    /// `linux` when the monitored hosts are Linux.
    public var policy: OverlapPolicy = .bsd

    /// Packet time a datagram may wait for its missing fragments, counted
    /// from its first fragment (RFC 8200 §4.5 and Linux's `ipfrag_time`), so
    /// a trickle of fragments cannot keep one alive. Default 30 s, Linux's
    /// value; RFC 8200 allows 60 s.
    public var timeoutNanoseconds: Int64 = 30_000_000_000

    /// Datagrams under reassembly at once. Default 4096. When full, expired
    /// datagrams are reclaimed; if none, the fragment that would start a new
    /// datagram is dropped (`DefragmentDrop.datagramLimit`).
    public var maxDatagrams = 4096

    /// Fragments accepted into one datagram, duplicates included. Default 64
    /// (a 64 KiB datagram at the 1280-byte IPv6 minimum MTU needs 52). The
    /// fragment past the limit abandons the datagram (`fragmentLimit`).
    public var maxFragmentsPerDatagram = 64

    /// Fragment data held for one source address, in 1 KiB pages. Default
    /// 4 MiB, an eighth of the total, so one host cannot take all of it. A
    /// fragment that needs more abandons its datagram (`sourceLimit`).
    public var maxBytesPerSource = 4 << 20

    /// Fragment data held in total, in 1 KiB pages; the page slab is this
    /// size. Default 32 MiB, Suricata's `defrag.memcap`. A fragment that
    /// needs more, after expired datagrams are reclaimed, abandons its
    /// datagram (`memoryLimit`).
    public var maxTotalBytes = 32 << 20

    /// Longest header kept from a datagram's first fragment: the IPv4 header
    /// with options, or the IPv6 Unfragmentable Part (RFC 8200 §4.5). At
    /// least 60. Default 256. Longer abandons the datagram (`headerTooLong`).
    public var maxUnfragmentableBytes = 256

    /// A fragment with More Fragments set and less data than this is counted
    /// as tiny (`tinyFragments`) but kept: legitimate stacks fragment at the
    /// path MTU, so small non-last fragments are an evasion signature. The
    /// first fragment is also tiny when it cannot hold the transport header
    /// (RFC 1858 §3; RFC 7112 for the IPv6 header chain). Default 64; 0 turns
    /// the size check off.
    public var tinyFragmentBytes = 64

    public init() {}

    public init(policy: OverlapPolicy) {
        self.policy = policy
    }
}
