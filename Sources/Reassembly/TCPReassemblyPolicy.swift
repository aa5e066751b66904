/// How TCP reassembly treats what the wire gets wrong: where a stream starts, which bytes win
/// an overlap, when a hole is given up, and what bounds its memory.
///
/// Defaults, and what happens at each limit:
/// - **Stream start.** A SYN sets the start at ISN+1; data on the SYN is
///   delivered. Without a SYN (handshake not captured) the stream is picked
///   up mid-stream at the first data byte, or at the peer's ACK number when
///   that lies just before it, so an earlier segment that arrives late still
///   fills in. With no ACK from the peer yet, the start is *held*: nothing is
///   delivered until the peer's ACK arrives (an ACK just before the first
///   byte moves the start back to it), `midstreamHoldNanoseconds` of packet
///   time pass, or `midstreamHoldBytes` are buffered; a segment with an
///   earlier sequence number that arrives meanwhile becomes the start
///   (`midstreamStartsMovedBack`). This is what lets a reordered first
///   segment (the request line, the ClientHello) land. `requireSYN` restores the original SF-TAP behaviour. A SYN or SYN-ACK
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
/// - **Memory per direction.** A direction is charged the pool pages it holds
///   (512 bytes each, whatever the segment sizes), so a flood of 1-byte
///   out-of-order segments reaches `maxBufferedBytesPerDirection` of real
///   memory, not of payload, and then skips its own holes (`directionCapSkips`).
///   Data beyond everything buffered is appended at the list's tail without a
///   walk, and a list never exceeds the direction's page cap, so work stays
///   linear in packets.
/// - **Memcap.** `maxBufferedBytesTotal` bounds the shared pool. Once three
///   quarters of it are in use, a direction holding more than
///   `lightDirectionBytes` must make room by skipping its own oldest holes
///   (`pressureSkips`): floods into many flows cannot take the last quarter
///   from flows that buffer little. When the pool is full, the direction that
///   needs room skips its holes to drain; if it still cannot buffer, the new
///   bytes are dropped and counted in `memcapDrops`.
///
/// Every limit that is hit is counted in `TCPReassemblyCounters` (`gaps`/`gapBytes`,
/// `overlapBytesDiscarded`, `memcapDrops`, `directionCapSkips`, `pressureSkips`, `droppedWithoutSYN`) and shown in
/// the commands' summaries.
public struct TCPReassemblyConfig: Sendable {
    public var requireSYN = false
    public var maxBufferedBytesPerDirection = 1 << 20
    public var maxBufferedBytesTotal = 512 << 20
    public var gapTimeoutNanoseconds: Int64 = 10_000_000_000
    public var ackedGapWaitNanoseconds: Int64 = 1_000_000_000
    /// How long (packet time) a mid-stream start waits for earlier segments when the peer has not ACKed; 0 never holds.
    public var midstreamHoldNanoseconds: Int64 = 500_000_000
    /// How much a held mid-stream start may buffer before it settles.
    public var midstreamHoldBytes = 64 << 10
    /// Under pool pressure, the most a direction may keep buffered.
    public var lightDirectionBytes = 32 << 10
    public init() {}
}
