import PacketCore

/// The tcpdump filter and the packet count (`-f`, `-c`) as every packet reader applies them: a packet
/// the filter rejects is counted and goes no further, and the count stops the input once that many
/// packets passed. One gate per input loop (the pipeline's reading thread, `stats`).
public struct PacketGate {
    public var filter: BPFFilter?
    /// Stop after this many packets have passed the filter (tcpdump's `-c`).
    public var limit: UInt64?
    /// Packets offered, and those the filter rejected.
    public private(set) var read: UInt64 = 0
    public private(set) var rejected: UInt64 = 0

    public init(filter: BPFFilter? = nil, limit: UInt64? = nil) {
        self.filter = filter
        self.limit = limit
    }

    /// Packets that passed.
    @inlinable public var passed: UInt64 { read &- rejected }

    /// Whether `limit` packets have passed: the input should end.
    @inlinable public var limitReached: Bool {
        guard let limit else { return false }
        return passed >= limit
    }

    /// Counts a packet already filtered elsewhere (a live capture's filter runs in the kernel).
    @inline(__always)
    public mutating func pass() { read &+= 1 }

    /// Offers one packet: true when it passes the filter (counted either way). Throws when the filter
    /// cannot be compiled for a link type first met here.
    @inline(__always)
    public mutating func admits(bytes: UnsafeRawBufferPointer, originalLength: Int, linkType: LinkType) throws(BPFFilter.CompileError) -> Bool {
        read &+= 1
        guard let filter else { return true }
        if try filter.matches(bytes: bytes, originalLength: originalLength, linkType: linkType) { return true }
        rejected &+= 1
        return false
    }
}
