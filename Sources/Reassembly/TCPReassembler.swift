/// Where reassembled bytes go.
public protocol TCPStreamReceiver {
    /// In-order bytes from endpoint 1 (`fromFirst`) or endpoint 2.
    mutating func tcpData(fromFirst: Bool, bytes: UnsafeRawBufferPointer)
    /// `length` bytes will never be delivered at this point of the stream.
    mutating func tcpGap(fromFirst: Bool, length: Int)
}

public enum TCPSegmentOutcome: Sendable, Equatable {
    /// The connection goes on.
    case open
    /// Both directions delivered their FIN.
    case closed
    /// An RST took effect.
    case reset
    /// The segment could not start a stream (`requireSYN`, or nothing to deliver).
    case ignored
}

public struct TCPReassemblyCounters: Sendable, Equatable {
    public var segments: UInt64 = 0
    public var deliveredBytes: UInt64 = 0
    /// Bytes that arrived again after they were delivered.
    public var retransmittedBytes: UInt64 = 0
    /// New bytes dropped because buffered bytes for the same positions came first.
    public var overlapBytesDiscarded: UInt64 = 0
    public var outOfOrderSegments: UInt64 = 0
    public var gaps: UInt64 = 0
    public var gapBytes: UInt64 = 0
    public var memcapDrops: UInt64 = 0
    public var directionCapSkips: UInt64 = 0
    /// Holes skipped because the pool was under pressure and the direction held more than a light share.
    public var pressureSkips: UInt64 = 0
    public var midstreamPickups: UInt64 = 0
    /// Mid-stream starts moved back to an earlier segment (or the peer's ACK) that arrived while the start was held.
    public var midstreamStartsMovedBack: UInt64 = 0
    public var droppedWithoutSYN: UInt64 = 0
    public var dataAfterClose: UInt64 = 0
    /// SYNs that came again with another initial sequence number before any data, and restarted the stream there.
    public var synSequenceChanges: UInt64 = 0
    public init() {}
}

/// TCP stream reassembly: for each connection and direction, deliver exactly
/// the bytes the receiving application read, in order, once.
///
/// ## Model
/// Connections live in slots chosen by the caller (the flow table's slot
/// index); state is two 40-byte `DirectionState` structs per slot in one
/// array (`reserve(slots:)` sizes it once, as the flow engine does from the
/// table), and out-of-order data sits in a shared `SegmentPool`. Nothing is
/// allocated per packet once the arrays have grown to the number of slots in use.
///
/// The policies — stream start, overlaps, holes, FIN/RST, memory — and their limits are
/// `TCPReassemblyConfig`'s, in TCPReassemblyPolicy.swift.
///
/// Sequence numbers compare modulo 2^32, so streams may wrap.
public struct TCPReassembler {
    static let fin: UInt8 = 0x01, syn: UInt8 = 0x02, rst: UInt8 = 0x04, ack: UInt8 = 0x10

    /// One direction of a connection: 40 bytes.
    struct DirectionState {
        static let hasBase: UInt16 = 1, synSeen: UInt16 = 2, finSeen: UInt16 = 4, closed: UInt16 = 8
        static let resetPending: UInt16 = 16, peerAckValid: UInt16 = 32, midstream: UInt16 = 64, delivered: UInt16 = 128
        /// A mid-stream start not yet settled: nothing is delivered, and an earlier segment may still move the start back.
        static let startHeld: UInt16 = 256

        var nextSequence: UInt32 = 0
        var finSequence: UInt32 = 0
        var resetSequence: UInt32 = 0
        /// The highest ACK the other side sent for this stream.
        var peerAck: UInt32 = 0
        var head: Int32 = -1
        /// The last node of the list, so data beyond everything buffered is appended without a walk.
        var tail: Int32 = -1
        /// Pool pages this direction holds: what it costs, whatever the segment sizes.
        var pages: Int32 = 0
        var flags: UInt16 = 0
        /// Packet time at which the current hole (or the held start) was first seen (0: none).
        var holeSince: Int64 = 0

        func has(_ flag: UInt16) -> Bool { flags & flag != 0 }
    }

    public var config: TCPReassemblyConfig
    public private(set) var counters = TCPReassemblyCounters()
    var directions: [DirectionState] = []
    var pool: SegmentPool
    /// List nodes stepped over while placing out-of-order data: the work the bounds keep linear in packets.
    var nodesWalked: UInt64 = 0

    public init(config: TCPReassemblyConfig = TCPReassemblyConfig()) {
        self.config = config
        pool = SegmentPool(maxBytes: config.maxBufferedBytesTotal)
    }

    /// Frees the shared page pool.
    public mutating func deallocate() { pool.deallocate() }

    /// Bytes of out-of-order data buffered now, and at most so far.
    public var bufferedBytes: Int { pool.pagesInUse * SegmentPool.pageSize }
    public var peakBufferedBytes: Int { pool.peakPagesInUse * SegmentPool.pageSize }
    /// Memory reserved for buffering (pages allocated), the figure the memcap bounds.
    public var reservedBytes: Int { pool.bytesReserved }

    /// Bytes of per-connection state (both directions) in each slot.
    public static var bytesPerSlot: Int { 2 * MemoryLayout<DirectionState>.stride }

    /// Bytes reserved for per-slot state (array capacity, not only the slots in use).
    public var slotBytesReserved: Int { directions.capacity * MemoryLayout<DirectionState>.stride }

    /// Reserves per-slot state for `slots` connections at once (address space; pages are touched as slots are used).
    public mutating func reserve(slots: Int) { directions.reserveCapacity(2 * slots) }

    /// Starts a fresh connection in `slot`, releasing anything left there.
    public mutating func open(slot: Int) {
        if directions.count < 2 * (slot + 1) {
            // Grow geometrically: reserving only what is needed would copy the array for every new slot.
            if directions.capacity < 2 * (slot + 1) { directions.reserveCapacity(max(2 * (slot + 1), directions.capacity * 2)) }
            while directions.count < 2 * (slot + 1) { directions.append(DirectionState()) }
        }
        release(2 * slot)
        release(2 * slot + 1)
    }

    /// Releases a slot's buffered data without delivering it.
    public mutating func close(slot: Int) {
        guard 2 * slot + 1 < directions.count else { return }
        release(2 * slot)
        release(2 * slot + 1)
    }

    private mutating func release(_ d: Int) {
        var node = directions[d].head
        while node >= 0 {
            let next = pool.nodes[Int(node)].next
            pool.free(node)
            node = next
        }
        directions[d] = DirectionState()
    }

    /// True when an RST was seen but waits for earlier data.
    public func resetPending(slot: Int) -> Bool {
        directions[2 * slot].has(DirectionState.resetPending) || directions[2 * slot + 1].has(DirectionState.resetPending)
    }

    /// Processes one segment sent by endpoint 1 (`fromFirst`) or 2.
    /// - Parameters:
    ///   - flags: the TCP flags byte (RFC 9293 §3.1).
    ///   - time: packet time in nanoseconds, for hole timeouts.
    public mutating func segment<R: TCPStreamReceiver>(
        slot: Int, fromFirst: Bool, flags: UInt8, sequence: UInt32, acknowledgement: UInt32,
        payload: UnsafeRawBufferPointer, time: Int64, receiver: inout R
    ) -> TCPSegmentOutcome {
        counters.segments &+= 1
        let d = 2 * slot + (fromFirst ? 0 : 1)
        let other = d ^ 1
        // This ACK tells how far the other side's stream was received.
        if flags & Self.ack != 0 {
            if !directions[other].has(DirectionState.peerAckValid)
                || SequenceNumber.lessThan(directions[other].peerAck, acknowledgement) {
                directions[other].peerAck = acknowledgement
                directions[other].flags |= DirectionState.peerAckValid
            }
        }
        var start = sequence
        if flags & Self.syn != 0 {
            start = sequence &+ 1
            if !directions[d].has(DirectionState.hasBase) {
                directions[d].nextSequence = start
                directions[d].flags |= DirectionState.hasBase | DirectionState.synSeen
            } else if directions[d].has(DirectionState.synSeen) && !directions[d].has(DirectionState.delivered)
                        && directions[d].head < 0 && start != directions[d].nextSequence {
                // A SYN (or SYN-ACK) again with another initial sequence number before any byte of this
                // direction was delivered: the connection restarted its handshake, and the data follows the
                // latest SYN. Keeping the first would take every later byte for old data.
                directions[d].nextSequence = start
                directions[d].flags &= ~DirectionState.peerAckValid
                counters.synSequenceChanges &+= 1
            }
        }
        if !directions[d].has(DirectionState.hasBase) {
            if payload.isEmpty && flags & (Self.fin | Self.rst) == 0 {
                checkHoles(other, fromFirst: !fromFirst, time: time, receiver: &receiver)
                return finishOutcome(slot)
            }
            if config.requireSYN {
                counters.droppedWithoutSYN &+= 1
                return .ignored
            }
            var base = start
            let peer = directions[d]
            directions[d].flags |= DirectionState.hasBase | DirectionState.midstream
            if peer.has(DirectionState.peerAckValid) {
                if SequenceNumber.lessOrEqual(peer.peerAck, start)
                    && SequenceNumber.distance(from: peer.peerAck, to: start) <= config.maxBufferedBytesPerDirection {
                    base = peer.peerAck
                }
            } else if config.midstreamHoldNanoseconds > 0 {
                // Nothing tells where the stream starts yet: an earlier segment may still arrive
                // (reordered), so hold what comes until the peer's ACK, time or size settles it.
                directions[d].flags |= DirectionState.startHeld
                directions[d].holeSince = max(time, 1)
            }
            directions[d].nextSequence = base
            counters.midstreamPickups &+= 1
        }
        if directions[d].has(DirectionState.closed) {
            if !payload.isEmpty { counters.dataAfterClose &+= 1 }
            return finishOutcome(slot)
        }
        let end = start &+ UInt32(truncatingIfNeeded: payload.count)
        if flags & Self.fin != 0 && !directions[d].has(DirectionState.finSeen) {
            directions[d].flags |= DirectionState.finSeen
            directions[d].finSequence = end
        }
        if !payload.isEmpty { accept(d, fromFirst: fromFirst, start: start, payload: payload, time: time, receiver: &receiver) }
        if flags & Self.rst != 0 {
            directions[d].flags |= DirectionState.resetPending
            directions[d].resetSequence = start
        }
        checkHoles(d, fromFirst: fromFirst, time: time, receiver: &receiver)
        checkHoles(other, fromFirst: !fromFirst, time: time, receiver: &receiver)
        return finishOutcome(slot)
    }

    /// Delivers what can be delivered of a new segment, buffering the rest.
    private mutating func accept<R: TCPStreamReceiver>(
        _ d: Int, fromFirst: Bool, start: UInt32, payload: UnsafeRawBufferPointer, time: Int64, receiver: inout R
    ) {
        var start = start
        var bytes = payload
        let held = directions[d].has(DirectionState.startHeld)
        if held && SequenceNumber.lessThan(start, directions[d].nextSequence)
            && SequenceNumber.distance(from: start, to: directions[d].nextSequence) <= config.maxBufferedBytesPerDirection {
            // Nothing was delivered yet: the stream starts at this earlier segment.
            directions[d].nextSequence = start
            counters.midstreamStartsMovedBack &+= 1
        }
        let next = directions[d].nextSequence
        if SequenceNumber.lessThan(start, next) {
            let old = SequenceNumber.distance(from: start, to: next)
            guard old < bytes.count else {
                counters.retransmittedBytes &+= UInt64(bytes.count)
                return
            }
            counters.retransmittedBytes &+= UInt64(old)
            bytes = UnsafeRawBufferPointer(rebasing: bytes[old...])
            start = next
        }
        // If a FIN was seen, nothing after it is stream data.
        if directions[d].has(DirectionState.finSeen) {
            let limit = SequenceNumber.distance(from: start, to: directions[d].finSequence)
            if limit <= 0 {
                counters.dataAfterClose &+= 1
                return
            }
            if limit < bytes.count { bytes = UnsafeRawBufferPointer(rebasing: bytes[..<limit]) }
        }
        if start == directions[d].nextSequence && directions[d].head < 0 && !held {
            deliver(d, fromFirst: fromFirst, bytes, receiver: &receiver)
            return
        }
        if !held { counters.outOfOrderSegments &+= 1 }
        // Room: the direction's own cap, tighter for a heavy direction while the shared pool is under pressure.
        let needed = (bytes.count + SegmentPool.pageSize - 1) / SegmentPool.pageSize
        let pressured = pool.pagesInUse + needed > pool.pressurePages
        let capPages = (pressured ? config.lightDirectionBytes : config.maxBufferedBytesPerDirection) / SegmentPool.pageSize
        if Int(directions[d].pages) + needed > capPages && directions[d].head >= 0 {
            if pressured { counters.pressureSkips &+= 1 } else { counters.directionCapSkips &+= 1 }
            settle(d)
            while directions[d].head >= 0 && Int(directions[d].pages) + needed > capPages {
                skipHole(d, fromFirst: fromFirst, upTo: nil, time: time, receiver: &receiver)
            }
            // The delivery point may have moved past part of the new bytes.
            if !SequenceNumber.lessThan(directions[d].nextSequence, start) {
                accept(d, fromFirst: fromFirst, start: start, payload: bytes, time: time, receiver: &receiver)
                return
            }
        }
        if !insert(d, start: start, bytes) {
            // Memcap: free this direction's buffer by skipping its holes, then try once more.
            settle(d)
            while directions[d].head >= 0 { skipHole(d, fromFirst: fromFirst, upTo: nil, time: time, receiver: &receiver) }
            if SequenceNumber.lessOrEqual(start, directions[d].nextSequence) {
                accept(d, fromFirst: fromFirst, start: start, payload: bytes, time: time, receiver: &receiver)
                return
            }
            if !insert(d, start: start, bytes) { counters.memcapDrops &+= 1 }
        }
        if directions[d].has(DirectionState.startHeld) { return }
        drain(d, fromFirst: fromFirst, receiver: &receiver)
        if directions[d].head >= 0 && directions[d].holeSince == 0 { directions[d].holeSince = max(time, 1) }
    }

    /// Ends a held start: from here on the direction delivers as any other.
    private mutating func settle(_ d: Int) {
        guard directions[d].has(DirectionState.startHeld) else { return }
        directions[d].flags &= ~DirectionState.startHeld
        directions[d].holeSince = 0
    }

    /// Copies the parts of [start, start+count) not yet buffered into the list (first-seen wins),
    /// filling the free end of the page before them when they continue it.
    /// Returns false when the pool ran out; what was inserted stays.
    private mutating func insert(_ d: Int, start: UInt32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var position = start
        var offset = 0
        var previous: Int32 = -1
        var current = directions[d].head
        let tail = directions[d].tail
        if tail >= 0 && !SequenceNumber.lessThan(position, pool.nodes[Int(tail)].sequence &+ UInt32(pool.nodes[Int(tail)].length)) {
            // Beyond everything buffered (the usual case): append without walking the list.
            previous = tail
            current = -1
        }
        while offset < bytes.count {
            while current >= 0 {
                let node = pool.nodes[Int(current)]
                if SequenceNumber.lessThan(position, node.sequence &+ UInt32(node.length)) { break }
                previous = current
                current = node.next
                nodesWalked &+= 1
            }
            if current >= 0 && SequenceNumber.lessOrEqual(pool.nodes[Int(current)].sequence, position) {
                // Already buffered: the earlier copy wins.
                let node = pool.nodes[Int(current)]
                let covered = max(1, min(SequenceNumber.distance(from: position, to: node.sequence &+ UInt32(node.length)), bytes.count - offset))
                counters.overlapBytesDiscarded &+= UInt64(covered)
                position &+= UInt32(truncatingIfNeeded: covered)
                offset += covered
                continue
            }
            var holeLength = bytes.count - offset
            if current >= 0 {
                holeLength = min(holeLength, SequenceNumber.distance(from: position, to: pool.nodes[Int(current)].sequence))
            }
            guard holeLength > 0 else {
                // Only a segment 2^31 away from buffered data gets here: it cannot be placed; drop the rest.
                counters.overlapBytesDiscarded &+= UInt64(bytes.count - offset)
                return true
            }
            if previous >= 0 {
                // Continue the previous node's page when these bytes follow it: small segments share pages.
                let p = pool.nodes[Int(previous)]
                let room = SegmentPool.pageSize - Int(p.length)
                if room > 0 && p.sequence &+ UInt32(p.length) == position {
                    let length = min(room, holeLength)
                    (pool.page(previous) + Int(p.length)).copyMemory(from: bytes.baseAddress! + offset, byteCount: length)
                    pool.nodes[Int(previous)].length = p.length + UInt16(length)
                    position &+= UInt32(length)
                    offset += length
                    holeLength -= length
                }
            }
            while holeLength > 0 {
                let length = min(holeLength, SegmentPool.pageSize)
                let node = pool.allocate()
                if node < 0 { return false }
                pool.page(node).copyMemory(from: bytes.baseAddress! + offset, byteCount: length)
                pool.nodes[Int(node)].sequence = position
                pool.nodes[Int(node)].length = UInt16(length)
                pool.nodes[Int(node)].next = current
                if previous < 0 { directions[d].head = node } else { pool.nodes[Int(previous)].next = node }
                if current < 0 { directions[d].tail = node }
                previous = node
                position &+= UInt32(length)
                offset += length
                holeLength -= length
                directions[d].pages += 1
            }
        }
        return true
    }

    /// Delivers buffered nodes that start at the delivery point.
    private mutating func drain<R: TCPStreamReceiver>(_ d: Int, fromFirst: Bool, receiver: inout R) {
        while directions[d].head >= 0 {
            let index = directions[d].head
            let node = pool.nodes[Int(index)]
            let next = directions[d].nextSequence
            let nodeEnd = node.sequence &+ UInt32(node.length)
            if SequenceNumber.lessThan(next, node.sequence) { break }
            var bytes = pool.bytes(index)
            if SequenceNumber.lessThan(node.sequence, next) {
                let skip = max(0, min(SequenceNumber.distance(from: node.sequence, to: next), bytes.count))
                bytes = UnsafeRawBufferPointer(rebasing: bytes[skip...])
            }
            directions[d].head = node.next
            if node.next < 0 { directions[d].tail = -1 }
            directions[d].pages -= 1
            if SequenceNumber.lessThan(next, nodeEnd) { deliver(d, fromFirst: fromFirst, bytes, receiver: &receiver) }
            pool.free(index)
        }
        if directions[d].head < 0 { directions[d].holeSince = 0 }
    }

    @inline(__always)
    private mutating func deliver<R: TCPStreamReceiver>(_ d: Int, fromFirst: Bool, _ bytes: UnsafeRawBufferPointer, receiver: inout R) {
        guard !bytes.isEmpty else { return }
        directions[d].nextSequence &+= UInt32(truncatingIfNeeded: bytes.count)
        directions[d].flags |= DirectionState.delivered
        counters.deliveredBytes &+= UInt64(bytes.count)
        receiver.tcpData(fromFirst: fromFirst, bytes: bytes)
    }

    /// Gives up on the hole at the delivery point: jumps to the next buffered byte (or `upTo`, if earlier).
    private mutating func skipHole<R: TCPStreamReceiver>(_ d: Int, fromFirst: Bool, upTo limit: UInt32?, time: Int64, receiver: inout R) {
        let head = directions[d].head
        guard head >= 0 else { return }
        var target = pool.nodes[Int(head)].sequence
        if let limit, SequenceNumber.lessThan(limit, target) { target = limit }
        let length = SequenceNumber.distance(from: directions[d].nextSequence, to: target)
        if length > 0 {
            counters.gaps &+= 1
            counters.gapBytes &+= UInt64(length)
            receiver.tcpGap(fromFirst: fromFirst, length: length)
            directions[d].nextSequence = target
        }
        drain(d, fromFirst: fromFirst, receiver: &receiver)
        if directions[d].head >= 0 { directions[d].holeSince = max(time, 1) }
    }

    /// A held start settles when the peer ACKs (moving the start back to that ACK when it lies
    /// just before), when it was held long enough, or when it holds too much.
    private mutating func settleHeldStart<R: TCPStreamReceiver>(_ d: Int, fromFirst: Bool, time: Int64, receiver: inout R) {
        let state = directions[d]
        if state.has(DirectionState.peerAckValid) {
            if SequenceNumber.lessThan(state.peerAck, state.nextSequence)
                && SequenceNumber.distance(from: state.peerAck, to: state.nextSequence) <= config.maxBufferedBytesPerDirection {
                // The peer has not received the bytes from its ACK on: they are the stream's start, still to come.
                directions[d].nextSequence = state.peerAck
                counters.midstreamStartsMovedBack &+= 1
            }
        } else if time - state.holeSince <= config.midstreamHoldNanoseconds
                    && Int(state.pages) * SegmentPool.pageSize < config.midstreamHoldBytes {
            return
        }
        settle(d)
        drain(d, fromFirst: fromFirst, receiver: &receiver)
        if directions[d].head >= 0 { directions[d].holeSince = max(time, 1) }
    }

    /// Hole timeouts, FIN and RST completion for one direction.
    private mutating func checkHoles<R: TCPStreamReceiver>(_ d: Int, fromFirst: Bool, time: Int64, receiver: inout R) {
        if directions[d].has(DirectionState.startHeld) {
            settleHeldStart(d, fromFirst: fromFirst, time: time, receiver: &receiver)
            if directions[d].has(DirectionState.startHeld) { return }
        }
        var state = directions[d]
        if state.head >= 0 && state.holeSince > 0 {
            let waited = time - state.holeSince
            if waited > config.gapTimeoutNanoseconds {
                skipHole(d, fromFirst: fromFirst, upTo: nil, time: time, receiver: &receiver)
            } else if waited > config.ackedGapWaitNanoseconds && state.has(DirectionState.peerAckValid)
                        && SequenceNumber.lessThan(state.nextSequence, state.peerAck) {
                skipHole(d, fromFirst: fromFirst, upTo: state.peerAck, time: time, receiver: &receiver)
            }
            state = directions[d]
        }
        if state.has(DirectionState.finSeen) && !state.has(DirectionState.closed) && state.head < 0
            && state.nextSequence == state.finSequence {
            directions[d].flags |= DirectionState.closed
            directions[d].nextSequence &+= 1
        }
    }

    private func finishOutcome(_ slot: Int) -> TCPSegmentOutcome {
        let a = directions[2 * slot], b = directions[2 * slot + 1]
        if Self.resetReady(a) || Self.resetReady(b) { return .reset }
        if a.has(DirectionState.closed) && b.has(DirectionState.closed) { return .closed }
        return .open
    }

    /// An RST takes effect once the sender's bytes before it were delivered.
    private static func resetReady(_ s: DirectionState) -> Bool {
        s.has(DirectionState.resetPending) && s.head < 0 && SequenceNumber.lessOrEqual(s.resetSequence, s.nextSequence)
    }

    /// Delivers everything buffered in a slot, skipping holes, before the connection ends.
    public mutating func flush<R: TCPStreamReceiver>(slot: Int, time: Int64, receiver: inout R) {
        guard 2 * slot + 1 < directions.count else { return }
        settle(2 * slot)
        settle(2 * slot + 1)
        while directions[2 * slot].head >= 0 { skipHole(2 * slot, fromFirst: true, upTo: nil, time: time, receiver: &receiver) }
        while directions[2 * slot + 1].head >= 0 { skipHole(2 * slot + 1, fromFirst: false, upTo: nil, time: time, receiver: &receiver) }
        missingEnd(2 * slot, fromFirst: true, receiver: &receiver)
        missingEnd(2 * slot + 1, fromFirst: false, receiver: &receiver)
    }

    /// Bytes that were sent but never captured at the end of a direction — before its FIN, or up to what the
    /// peer acknowledged — are a gap too (Zeek's content gap at the end of a connection).
    private mutating func missingEnd<R: TCPStreamReceiver>(_ d: Int, fromFirst: Bool, receiver: inout R) {
        let state = directions[d]
        guard state.has(DirectionState.hasBase), !state.has(DirectionState.closed) else { return }
        var end = state.nextSequence
        if state.has(DirectionState.finSeen) {
            end = state.finSequence
        } else if state.has(DirectionState.peerAckValid) {
            end = state.peerAck
        }
        let length = SequenceNumber.distance(from: state.nextSequence, to: end)
        guard length > 0, length <= config.maxBufferedBytesPerDirection else { return }
        counters.gaps &+= 1
        counters.gapBytes &+= UInt64(length)
        receiver.tcpGap(fromFirst: fromFirst, length: length)
        directions[d].nextSequence = end
    }
}
