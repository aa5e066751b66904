/// How TCP reassembly treats what the wire gets wrong: where a stream starts, which bytes win
/// an overlap, when a hole is given up, and what bounds its memory.
///
/// Defaults, and what happens at each limit:
/// - **Stream start.** A SYN sets the start at ISN+1; data on the SYN is
///   delivered. Without a SYN (handshake not captured) the stream is picked
///   up mid-stream at the first data byte, or at the peer's ACK number when
///   that lies just before it, so an earlier segment that arrives late still
///   fills in. `requireSYN` restores the original SF-TAP behaviour. A SYN or SYN-ACK
///   repeated with another initial sequence number before any byte of its
///   direction was delivered restarts the stream at the new one
///   (`synSequenceChanges`).
/// - **Overlaps and retransmissions.** Bytes before the delivery point are
///   old and dropped. Out-of-order data is kept in order; where a new segment
///   overlaps buffered data, the first-seen bytes win (conflicting new bytes
///   are counted in `overlapBytesDiscarded`). Any re-segmentation is handled
///   because coverage is tracked per byte, not per segment.
/// - **Holes.** A hole is skipped (a gap is counted and reported to the
///   receiver, and delivery continues) when the direction buffers more than
///   `maxBufferedBytesPerDirection`, when the hole is older than
///   `gapTimeoutNanoseconds` of packet time, when the peer has ACKed past it
///   for `ackedGapWaitNanoseconds` (the bytes crossed the wire uncaptured), or
///   when the connection is flushed (FIN/RST/timeout/end of input).
/// - **FIN / RST.** A FIN closes its direction once every byte before it was
///   delivered; both closed means `.closed`. An RST resets once the sender's
///   data before it was delivered (an RST that overtakes data waits for it).
/// - **Memcap.** `maxBufferedBytesTotal` bounds the shared pool. When it is
///   full, the direction that needs room skips its oldest hole to drain; if it
///   still cannot buffer, the new bytes are dropped and counted in `memcapDrops`.
///
/// Every limit that is hit is counted in `TCPReassemblyCounters` (`gaps`/`gapBytes`,
/// `overlapBytesDiscarded`, `memcapDrops`, `directionCapSkips`, `droppedWithoutSYN`) and shown in
/// the commands' summaries.
public struct TCPReassemblyConfig: Sendable {
    public var requireSYN = false
    public var maxBufferedBytesPerDirection = 1 << 20
    public var maxBufferedBytesTotal = 512 << 20
    public var gapTimeoutNanoseconds: Int64 = 10_000_000_000
    public var ackedGapWaitNanoseconds: Int64 = 1_000_000_000
    public init() {}
}
