/// Why a fragment was not kept: a closed set of codes, counted, never a string per packet.
public enum DefragmentDrop: UInt8, CaseIterable, Sendable, Error {
    /// Not an IP fragment (no MF flag, offset 0, or not IP at all).
    case notFragment
    /// Header fields that contradict each other, or an IPv6 header chain
    /// that does not lead to the Fragment header.
    case malformed
    /// The capture holds fewer bytes than the IP length claims.
    case truncated
    /// No fragment data (Snort's "zero size frag").
    case zeroLength
    /// IPv6 non-last fragment whose length is not a multiple of 8 (RFC 8200
    /// §4.5 says discard). IPv4 ones are cut down to a multiple of 8 instead,
    /// as Linux and frag3 do.
    case unaligned
    /// Reassembly would exceed 65535 bytes (RFC 791 total length, RFC 8200
    /// §4.5 payload length).
    case tooLarge
    /// The first fragment's header is longer than `maxUnfragmentableBytes`.
    case headerTooLong
    /// An overlapping fragment that contradicts the datagram's end: a last
    /// fragment that ends inside held data, or one overlapping past a known
    /// end (the teardrop family: the lengths would go negative).
    case teardrop
    /// A non-overlapping fragment that contradicts the datagram's end: data
    /// past a known end, or two last fragments with different ends.
    case lengthConflict
    /// `maxFragmentsPerDatagram` exceeded.
    case fragmentLimit
    /// `maxDatagrams` reached with nothing expired to reclaim.
    case datagramLimit
    /// `maxBytesPerSource` reached.
    case sourceLimit
    /// `maxTotalBytes` reached with nothing expired to reclaim.
    case memoryLimit

    /// Stable snake_case name for stats output and logs.
    public var name: String {
        switch self {
        case .notFragment: "not_fragment"
        case .malformed: "malformed"
        case .truncated: "truncated"
        case .zeroLength: "zero_length"
        case .unaligned: "unaligned"
        case .tooLarge: "too_large"
        case .headerTooLong: "header_too_long"
        case .teardrop: "teardrop"
        case .lengthConflict: "length_conflict"
        case .fragmentLimit: "fragment_limit"
        case .datagramLimit: "datagram_limit"
        case .sourceLimit: "source_limit"
        case .memoryLimit: "memory_limit"
        }
    }
}

/// What `Defragmenter.process` did with a fragment.
public enum DefragmentResult {
    /// Held; the datagram is not complete yet.
    case incomplete
    /// The datagram is complete: a whole IP packet, starting at the IP
    /// header, in a buffer the `Defragmenter` owns. Valid until its next call.
    case complete(UnsafeRawBufferPointer)
    /// Not kept. For the limit and consistency codes the datagram the
    /// fragment belonged to was abandoned as well.
    case dropped(DefragmentDrop)
}

/// One counter per `DefragmentDrop`, inline: counting never allocates.
/// Room for 16 codes; a test keeps `DefragmentDrop` within it.
public struct DefragmentDropCounts: Sendable, Equatable {
    @usableFromInline var storage: InlineArray<16, UInt64> = .init(repeating: 0)

    public init() {}

    public subscript(_ reason: DefragmentDrop) -> UInt64 {
        get { storage[Int(reason.rawValue)] }
        set { storage[Int(reason.rawValue)] = newValue }
    }

    public var total: UInt64 { DefragmentDrop.allCases.reduce(0) { $0 &+ self[$1] } }

    /// Non-zero counters, in declaration order.
    public var nonZero: [(DefragmentDrop, UInt64)] {
        DefragmentDrop.allCases.compactMap { self[$0] > 0 ? ($0, self[$0]) : nil }
    }

    public static func == (a: DefragmentDropCounts, b: DefragmentDropCounts) -> Bool {
        DefragmentDrop.allCases.allSatisfy { a[$0] == b[$0] }
    }
}

/// Totals since the `Defragmenter` was made, plus what it holds now.
public struct DefragmentCounters: Sendable, Equatable {
    /// Packets given to `process`.
    public var fragments: UInt64 = 0
    /// Fragments not kept, by reason.
    public var drops = DefragmentDropCounts()
    public var datagramsCompleted: UInt64 = 0
    /// Fragments that went into completed datagrams.
    public var fragmentsReassembled: UInt64 = 0
    /// IPv6 fragments with offset 0 and M = 0, returned at once (RFC 6946).
    public var atomicFragments: UInt64 = 0
    /// Datagrams dropped because their timeout passed.
    public var datagramsExpired: UInt64 = 0
    /// Datagrams dropped by a limit or a consistency check (see `drops`).
    public var datagramsAbandoned: UInt64 = 0
    /// Fragments that were held by expired or abandoned datagrams.
    public var fragmentsDiscarded: UInt64 = 0
    /// Fragments that overlapped held data (duplicates included).
    public var overlaps: UInt64 = 0
    /// Overlaps whose bytes differ from the held ones: the evasion signal,
    /// where the policy decides what the host sees.
    public var overlapsWithDifferentData: UInt64 = 0
    /// See `DefragmentConfig.tinyFragmentBytes`.
    public var tinyFragments: UInt64 = 0
    /// Non-last fragments whose length is not a multiple of 8.
    public var unalignedFragments: UInt64 = 0

    /// Held now.
    public var datagramsHeld = 0
    public var fragmentsHeld = 0
    /// Fragment data held now, in whole 1 KiB pages (what the caps measure).
    public var bytesHeld = 0
    public var peakDatagramsHeld = 0
    public var peakBytesHeld = 0

    public init() {}

    /// Where every fragment went: each one given to `process` is counted in
    /// exactly one of these, so the sum equals `fragments`.
    public var fragmentsAccountedFor: UInt64 {
        drops.total &+ atomicFragments &+ fragmentsReassembled &+ fragmentsDiscarded &+ UInt64(fragmentsHeld)
    }
}

extension DefragmentCounters: CustomStringConvertible {
    /// One line for logs and `flowtap` summaries: totals, then each non-zero drop reason by name.
    public var description: String {
        var text = "fragments \(fragments), datagrams completed \(datagramsCompleted), expired \(datagramsExpired), abandoned \(datagramsAbandoned)"
        text += ", overlaps \(overlaps) (\(overlapsWithDifferentData) with different data), tiny \(tinyFragments)"
        text += ", held now \(datagramsHeld) datagrams / \(bytesHeld) B (peak \(peakDatagramsHeld) / \(peakBytesHeld) B)"
        let drops = self.drops.nonZero
        if !drops.isEmpty { text += ", dropped: " + drops.map { "\($0.0.name) \($0.1)" }.joined(separator: ", ") }
        return text
    }
}
