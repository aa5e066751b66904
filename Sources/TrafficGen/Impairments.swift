extension TrafficGenerator {
    /// Seeded network impairments, all off by default.
    ///
    /// Every impairment keeps all application data recoverable: the expected
    /// streams in `SessionRecord` are always the whole of what each side sent.
    /// Decisions come from a per-session random stream separate from the one
    /// that shapes sessions, so turning impairments on keeps the same sessions,
    /// addresses, payloads and timing base for a seed, and with every rate at 0
    /// the capture is byte-identical to an unimpaired one.
    ///
    /// A TCP session sends each application message as a *burst* of MSS-sized
    /// segments, then the peer ACKs it. Segment impairments stay inside a burst
    /// (or just after its ACK), so nothing crosses the session's FIN or RST.
    public struct Impairments: Sendable, Equatable {
        /// Chance that a TCP data segment with a later segment in its burst is
        /// delayed behind 1–3 of them.
        public var reorder = 0.0
        /// Chance that a TCP data segment is sent again as an exact copy: 3 in 4
        /// within its burst, 0–3 segments later; 1 in 4 after the peer's ACK
        /// (a spurious timeout retransmission).
        public var retransmit = 0.0
        /// Chance, per pair of neighbouring segments in a burst, of a retransmission
        /// re-cut across their boundary (tail of the first, head of the second,
        /// same bytes), sent after both.
        public var overlap = 0.0
        /// Chance that a TCP data segment or UDP datagram of at least
        /// `minimumFragmentableLength` transport bytes is sent as 2–4 IP
        /// fragments (IPv6: fragment extension header). Half of fragmented
        /// datagrams have their fragments shuffled out of order.
        public var fragment = 0.0
        /// Chance that a TCP session's capture starts mid-stream: a third each
        /// lose the SYN, the SYN and SYN-ACK, or the whole handshake. The first
        /// data segment in each direction is then never reordered, so a receiver
        /// that picks the flow up at its first segment still gets every byte.
        public var midstream = 0.0
        /// Lets the first data segment of a mid-stream session be reordered like
        /// any other (as when a capture starts inside a reordered burst): a
        /// receiver then gets every byte only if it holds the stream's start until
        /// the earlier segment arrives. Off by default, which keeps earlier seeds'
        /// captures unchanged.
        public var reorderMidstreamStart = false
        /// Chance that a TCP session just stops after its last ACK (no FIN, no RST).
        public var noFIN = 0.0
        /// Chance that a TCP session ends with an RST (from either side, after all
        /// data is acknowledged) instead of the FIN exchange.
        public var rst = 0.0
        /// Chance that a TCP session's initial sequence numbers sit just below
        /// 2^32, so the sequence space wraps inside each direction's data.
        public var sequenceWrap = 0.0

        public init(reorder: Double = 0, retransmit: Double = 0, overlap: Double = 0, fragment: Double = 0,
                    midstream: Double = 0, noFIN: Double = 0, rst: Double = 0, sequenceWrap: Double = 0) {
            self.reorder = reorder
            self.retransmit = retransmit
            self.overlap = overlap
            self.fragment = fragment
            self.midstream = midstream
            self.noFIN = noFIN
            self.rst = rst
            self.sequenceWrap = sequenceWrap
        }

        /// Nothing impaired.
        public static let none = Impairments()

        /// A mix that exercises every impairment in a few hundred sessions
        /// (`flowtap generate --impaired`).
        public static let mix = Impairments(reorder: 0.1, retransmit: 0.05, overlap: 0.05, fragment: 0.05,
                                            midstream: 0.05, noFIN: 0.05, rst: 0.05, sequenceWrap: 0.2)

        /// Transport bytes (header and payload) below which a packet is never
        /// fragmented: every first fragment then holds the whole TCP or UDP header.
        public static let minimumFragmentableLength = 72

        public var isEnabled: Bool { self != .none }
    }

    /// What happened to a session, as named in the manifest.
    public enum Impairment: String, CaseIterable, Sendable {
        case reorder
        case retransmit
        case overlap
        case fragment
        /// The SYN is missing; SYN-ACK and ACK are there.
        case noSYN = "no_syn"
        /// SYN and SYN-ACK are missing; the handshake's last ACK is there.
        case noSYNACK = "no_syn_synack"
        /// The capture starts at the first data segment.
        case noHandshake = "no_handshake"
        case rst
        case noFIN = "no_fin"
        /// Sequence numbers wrap past 2^32 inside the session.
        case sequenceWrap = "seq_wrap"
    }

    /// How often each impairment happened, and out of how many chances, so a
    /// test can compare observed rates with the requested ones. Counts are
    /// exactly what a decoder sees in the capture:
    /// - `lateSegments`: TCP segments carrying new bytes that arrive after a
    ///   segment with higher sequence numbers of the same direction.
    /// - `duplicateSegments`: segments whose sequence range equals an earlier one.
    /// - `overlappingSegments`: segments that repeat only bytes already sent,
    ///   across the boundary of earlier segments.
    public struct ImpairmentCounts: Sendable, Equatable {
        /// Original TCP data segments (each carries new bytes once).
        public var dataSegments = 0
        /// Data segments that had a later segment in their burst (could be reordered).
        public var reorderCandidates = 0
        /// Neighbouring segment pairs (could get an overlapping re-cut).
        public var overlapCandidates = 0
        /// TCP data segments and UDP datagrams long enough to fragment.
        public var fragmentCandidates = 0
        public var lateSegments = 0
        public var duplicateSegments = 0
        public var overlappingSegments = 0
        public var fragmentedDatagrams = 0
        public var fragments = 0
        /// Fragmented datagrams whose fragments are not in offset order.
        public var shuffledDatagrams = 0
        public var tcpSessions = 0
        public var midstreamSessions = 0
        public var rstSessions = 0
        public var noFINSessions = 0
        public var wrappedSessions = 0

        public init() {}

        mutating func add(_ other: ImpairmentCounts) {
            dataSegments += other.dataSegments
            reorderCandidates += other.reorderCandidates
            overlapCandidates += other.overlapCandidates
            fragmentCandidates += other.fragmentCandidates
            lateSegments += other.lateSegments
            duplicateSegments += other.duplicateSegments
            overlappingSegments += other.overlappingSegments
            fragmentedDatagrams += other.fragmentedDatagrams
            fragments += other.fragments
            shuffledDatagrams += other.shuffledDatagrams
            tcpSessions += other.tcpSessions
            midstreamSessions += other.midstreamSessions
            rstSessions += other.rstSessions
            noFINSessions += other.noFINSessions
            wrappedSessions += other.wrappedSessions
        }
    }
}
