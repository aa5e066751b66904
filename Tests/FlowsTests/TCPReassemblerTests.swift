import PacketCore
import Reassembly
import XCTest

/// Collects what the reassembler delivers, per direction.
struct Collector: TCPStreamReceiver {
    var streams: [[UInt8]] = [[], []]
    var gaps: [Int] = [0, 0]
    mutating func tcpData(fromFirst: Bool, bytes: UnsafeRawBufferPointer) { streams[fromFirst ? 0 : 1] += bytes }
    mutating func tcpGap(fromFirst: Bool, length: Int) { gaps[fromFirst ? 0 : 1] += length }
}

struct Segment {
    var fromFirst: Bool
    var flags: UInt8
    var sequence: UInt32
    var acknowledgement: UInt32 = 0
    var payload: [UInt8]
}

let FIN: UInt8 = 0x01, SYN: UInt8 = 0x02, RST: UInt8 = 0x04, ACK: UInt8 = 0x10

final class TCPReassemblerTests: XCTestCase {
    func run(_ segments: [Segment], config: TCPReassemblyConfig = TCPReassemblyConfig(), times: [Int64]? = nil)
        -> (Collector, [TCPSegmentOutcome], TCPReassembler) {
        var r = TCPReassembler(config: config)
        r.open(slot: 3)
        var c = Collector()
        var outcomes: [TCPSegmentOutcome] = []
        for (i, s) in segments.enumerated() {
            let outcome = s.payload.withUnsafeBytes { bytes in
                r.segment(slot: 3, fromFirst: s.fromFirst, flags: s.flags, sequence: s.sequence, acknowledgement: s.acknowledgement,
                          payload: bytes, time: times?[i] ?? Int64(i + 1) * 1000, receiver: &c)
            }
            outcomes.append(outcome)
        }
        return (c, outcomes, r)
    }

    /// A SYN-ACK repeated with a new initial sequence number before any data: the server's data follows
    /// the latest one, and is delivered whole (it used to be counted as retransmission and lost).
    func testSynAckRepeatedWithANewISNRestartsTheServerStream() {
        let request = Array("GET / HTTP/1.1\r\n\r\n".utf8), reply = Array("HTTP/1.1 200 OK\r\n\r\nhello".utf8)
        let (c, _, r) = run([
            Segment(fromFirst: true, flags: SYN, sequence: 1000, payload: []),
            Segment(fromFirst: false, flags: SYN | ACK, sequence: 50_000, acknowledgement: 1001, payload: []),
            Segment(fromFirst: false, flags: SYN | ACK, sequence: 7_000, acknowledgement: 1001, payload: []),
            Segment(fromFirst: true, flags: ACK, sequence: 1001, acknowledgement: 7001, payload: []),
            Segment(fromFirst: true, flags: ACK, sequence: 1001, acknowledgement: 7001, payload: request),
            Segment(fromFirst: false, flags: ACK, sequence: 7001, acknowledgement: 1001 + UInt32(request.count), payload: reply),
        ])
        XCTAssertEqual(c.streams[0], request)
        XCTAssertEqual(c.streams[1], reply)
        XCTAssertEqual(c.gaps, [0, 0])
        XCTAssertEqual(r.counters.synSequenceChanges, 1)
        XCTAssertEqual(r.counters.retransmittedBytes, 0)
        // Once data was delivered, a late SYN-ACK with another ISN changes nothing.
        let (late, _, lateR) = run([
            Segment(fromFirst: true, flags: SYN, sequence: 1000, payload: []),
            Segment(fromFirst: false, flags: SYN | ACK, sequence: 7_000, acknowledgement: 1001, payload: []),
            Segment(fromFirst: false, flags: ACK, sequence: 7001, acknowledgement: 1001, payload: reply),
            Segment(fromFirst: false, flags: SYN | ACK, sequence: 90_000, acknowledgement: 1001, payload: []),
            Segment(fromFirst: false, flags: ACK, sequence: 7001 + UInt32(reply.count), acknowledgement: 1001, payload: reply),
        ])
        XCTAssertEqual(late.streams[1], reply + reply)
        XCTAssertEqual(lateR.counters.synSequenceChanges, 0)
    }

    /// One direction's stream cut into segments with seeded impairments:
    /// reordering, exact retransmissions and overlapping re-segmentation.
    func impaired(stream: [UInt8], isn: UInt32, fromFirst: Bool, rng: inout SystemRandomNumberGenerator, seedRNG: inout LCG) -> [Segment] {
        var segments: [Segment] = []
        var offset = 0
        while offset < stream.count {
            let length = min(Int(seedRNG.next() % 1460) + 1, stream.count - offset)
            segments.append(Segment(fromFirst: fromFirst, flags: ACK, sequence: isn &+ 1 &+ UInt32(offset), payload: Array(stream[offset ..< offset + length])))
            offset += length
        }
        // Overlapping re-segmentation: random ranges re-sent with the same bytes.
        for _ in 0 ..< segments.count / 3 {
            let a = Int(seedRNG.next() % UInt64(stream.count))
            let b = min(stream.count, a + Int(seedRNG.next() % 3000) + 1)
            segments.append(Segment(fromFirst: fromFirst, flags: ACK, sequence: isn &+ 1 &+ UInt32(a), payload: Array(stream[a ..< b])))
        }
        // Exact retransmissions.
        for _ in 0 ..< segments.count / 5 { segments.append(segments[Int(seedRNG.next() % UInt64(segments.count))]) }
        // Reorder within a window of 8.
        for i in segments.indices {
            let j = min(segments.count - 1, i + Int(seedRNG.next() % 8))
            segments.swapAt(i, j)
        }
        return segments
    }

    func testImpairedStreamsAreDeliveredByteIdentical() {
        var seedRNG = LCG(state: 42)
        var rng = SystemRandomNumberGenerator()
        for round in 0 ..< 200 {
            let clientStream = (0 ..< Int(seedRNG.next() % 40_000 + 1)).map { _ in UInt8(truncatingIfNeeded: seedRNG.next()) }
            let serverStream = (0 ..< Int(seedRNG.next() % 40_000)).map { _ in UInt8(truncatingIfNeeded: seedRNG.next()) }
            // Start some streams just below 2^32 so sequence numbers wrap inside them.
            let clientISN: UInt32 = round % 3 == 0 ? UInt32.max - UInt32(seedRNG.next() % 20_000) : UInt32(truncatingIfNeeded: seedRNG.next())
            let serverISN = UInt32(truncatingIfNeeded: seedRNG.next())
            var segments = [Segment(fromFirst: true, flags: SYN, sequence: clientISN, payload: []),
                            Segment(fromFirst: false, flags: SYN | ACK, sequence: serverISN, acknowledgement: clientISN &+ 1, payload: [])]
            var data = impaired(stream: clientStream, isn: clientISN, fromFirst: true, rng: &rng, seedRNG: &seedRNG)
            data += impaired(stream: serverStream, isn: serverISN, fromFirst: false, rng: &rng, seedRNG: &seedRNG)
            data.shuffle(using: &seedRNG)
            segments += data
            // FINs, the client's possibly before some of its data (FIN overtaking data).
            let clientFIN = Segment(fromFirst: true, flags: FIN | ACK, sequence: clientISN &+ 1 &+ UInt32(clientStream.count), payload: [])
            let serverFIN = Segment(fromFirst: false, flags: FIN | ACK, sequence: serverISN &+ 1 &+ UInt32(serverStream.count), payload: [])
            if round % 2 == 0 { segments.insert(clientFIN, at: 2 + Int(seedRNG.next() % UInt64(segments.count - 2))) } else { segments.append(clientFIN) }
            segments.append(serverFIN)
            let (c, outcomes, r) = run(segments)
            XCTAssertEqual(c.streams[0], clientStream, "round \(round) client")
            XCTAssertEqual(c.streams[1], serverStream, "round \(round) server")
            XCTAssertEqual(c.gaps, [0, 0], "round \(round)")
            XCTAssertEqual(outcomes.last, .closed, "round \(round)")
            XCTAssertEqual(outcomes.filter { $0 == .closed }.count, 1, "round \(round)")
            XCTAssertGreaterThan(r.counters.retransmittedBytes + r.counters.overlapBytesDiscarded, 0)
        }
    }

    func testFirstSeenBytesWinOnConflictingOverlap() {
        let isn: UInt32 = 1000
        let segments = [
            Segment(fromFirst: true, flags: SYN, sequence: isn, payload: []),
            Segment(fromFirst: true, flags: ACK, sequence: isn + 5, payload: Array("XXXXX".utf8)),  // out of order, seen first
            Segment(fromFirst: true, flags: ACK, sequence: isn + 1, payload: Array("abcdefgh".utf8)), // overlaps 5..8
        ]
        let (c, _, r) = run(segments)
        XCTAssertEqual(String(decoding: c.streams[0], as: UTF8.self), "abcdXXXXX")
        XCTAssertEqual(r.counters.overlapBytesDiscarded, 4)
    }

    func testDataOnSYNKeepAliveAndZeroWindowProbe() {
        let isn: UInt32 = 77
        let segments = [
            Segment(fromFirst: true, flags: SYN, sequence: isn, payload: Array("hi".utf8)),           // data on SYN (TFO)
            Segment(fromFirst: true, flags: ACK, sequence: isn + 3, payload: Array("!".utf8)),         // zero-window probe byte
            Segment(fromFirst: true, flags: ACK, sequence: isn + 3, payload: Array("!more".utf8)),     // the probe's byte resent with more
            Segment(fromFirst: true, flags: ACK, sequence: isn + 7, payload: [0]),                     // keep-alive: one old byte
        ]
        let (c, _, _) = run(segments)
        XCTAssertEqual(String(decoding: c.streams[0], as: UTF8.self), "hi!more")
    }

    func testMidstreamPickupUsesThePeersAckForALateFirstSegment() {
        // No handshake; the server's ACK shows where the client's stream stands; the first client segment arrives second.
        let segments = [
            Segment(fromFirst: false, flags: ACK, sequence: 5000, acknowledgement: 100, payload: []),
            Segment(fromFirst: true, flags: ACK, sequence: 110, payload: Array("ld".utf8)),
            Segment(fromFirst: true, flags: ACK, sequence: 100, payload: Array("hello, wor".utf8)),
        ]
        let (c, _, r) = run(segments)
        XCTAssertEqual(String(decoding: c.streams[0], as: UTF8.self), "hello, world")
        XCTAssertEqual(r.counters.midstreamPickups, 1)
        var strict = TCPReassemblyConfig()
        strict.requireSYN = true
        let (c2, outcomes, r2) = run(segments, config: strict)
        XCTAssertEqual(c2.streams[0], [])
        XCTAssertEqual(outcomes.last, .ignored)
        XCTAssertEqual(r2.counters.droppedWithoutSYN, 2)
    }

    /// No handshake and no ACK yet: the start is held, so a first segment that arrives second still
    /// lands; the peer's ACK, the hold time or the hold size settles the start.
    func testHeldMidstreamStartTakesAnEarlierSegmentThatArrivesLate() {
        let late = [
            Segment(fromFirst: true, flags: ACK, sequence: 110, payload: Array("ld".utf8)),
            Segment(fromFirst: true, flags: ACK, sequence: 100, payload: Array("hello, wor".utf8)),
            Segment(fromFirst: false, flags: ACK, sequence: 5000, acknowledgement: 112, payload: []),
        ]
        var (c, _, r) = run(late)
        XCTAssertEqual(String(decoding: c.streams[0], as: UTF8.self), "hello, world")
        XCTAssertEqual(c.gaps, [0, 0])
        XCTAssertEqual(r.counters.midstreamStartsMovedBack, 1)
        // Without the hold (the behaviour before it), the first segment seen is the start and the earlier one is lost.
        var noHold = TCPReassemblyConfig()
        noHold.midstreamHoldNanoseconds = 0
        (c, _, _) = run(late, config: noHold)
        XCTAssertEqual(String(decoding: c.streams[0], as: UTF8.self), "ld")
        // The peer's ACK just before the held start moves it back; the missing bytes are a hole until they come.
        (c, _, r) = run([
            Segment(fromFirst: true, flags: ACK, sequence: 110, payload: Array("ld".utf8)),
            Segment(fromFirst: false, flags: ACK, sequence: 5000, acknowledgement: 100, payload: []),
            Segment(fromFirst: true, flags: ACK, sequence: 100, payload: Array("hello, wor".utf8)),
        ])
        XCTAssertEqual(String(decoding: c.streams[0], as: UTF8.self), "hello, world")
        // An ACK past the held bytes settles the start at once: they are delivered with that packet.
        (c, _, _) = run([
            Segment(fromFirst: true, flags: ACK, sequence: 100, payload: Array("abc".utf8)),
            Segment(fromFirst: false, flags: ACK, sequence: 5000, acknowledgement: 103, payload: []),
        ])
        XCTAssertEqual(c.streams[0], Array("abc".utf8))
        // With no ACK at all (a one-way capture), the hold ends after its time...
        (c, _, _) = run([
            Segment(fromFirst: true, flags: ACK, sequence: 100, payload: Array("abc".utf8)),
            Segment(fromFirst: true, flags: ACK, sequence: 103, payload: Array("def".utf8)),
        ], times: [1, 600_000_000])
        XCTAssertEqual(c.streams[0], Array("abcdef".utf8))
        // ...or once it holds 64 KiB.
        let chunk = [UInt8](repeating: 1, count: 1400)
        var many: [Segment] = []
        for k in 0 ..< 50 { many.append(Segment(fromFirst: true, flags: ACK, sequence: 100 + UInt32(k * 1400), payload: chunk)) }
        (c, _, _) = run(many)
        XCTAssertGreaterThanOrEqual(c.streams[0].count, 64 << 10)
        XCTAssertEqual(c.gaps, [0, 0])
    }

    func testResetInOrderAndResetThatOvertakesData() {
        let isn: UInt32 = 10
        var segments = [
            Segment(fromFirst: true, flags: SYN, sequence: isn, payload: []),
            Segment(fromFirst: true, flags: ACK, sequence: isn + 1, payload: Array("abc".utf8)),
            Segment(fromFirst: true, flags: RST, sequence: isn + 4, payload: []),
        ]
        var (c, outcomes, _) = run(segments)
        XCTAssertEqual(outcomes.last, .reset)
        XCTAssertEqual(c.streams[0], Array("abc".utf8))
        // The RST arrives before "def"; it waits for it.
        segments = [
            Segment(fromFirst: true, flags: SYN, sequence: isn, payload: []),
            Segment(fromFirst: true, flags: ACK, sequence: isn + 1, payload: Array("abc".utf8)),
            Segment(fromFirst: true, flags: RST, sequence: isn + 7, payload: []),
            Segment(fromFirst: true, flags: ACK, sequence: isn + 4, payload: Array("def".utf8)),
        ]
        (c, outcomes, _) = run(segments)
        XCTAssertEqual(outcomes, [.open, .open, .open, .reset])
        XCTAssertEqual(c.streams[0], Array("abcdef".utf8))
    }

    func testHolesThatNeverFillAreSkippedAndCounted() {
        let isn: UInt32 = 0
        // By buffer cap: 4 KiB per direction; the missing segment is bytes 1..100.
        var config = TCPReassemblyConfig()
        config.maxBufferedBytesPerDirection = 4096
        var segments = [Segment(fromFirst: true, flags: SYN, sequence: isn, payload: [])]
        for i in 0 ..< 10 { segments.append(Segment(fromFirst: true, flags: ACK, sequence: isn + 101 + UInt32(i * 1000), payload: [UInt8](repeating: UInt8(i), count: 1000))) }
        var (c, _, r) = run(segments, config: config)
        XCTAssertEqual(c.gaps[0], 100)
        XCTAssertEqual(r.counters.gaps, 1)
        XCTAssertGreaterThan(c.streams[0].count, 4000)
        XCTAssertEqual(Array(c.streams[0].prefix(1000)), [UInt8](repeating: 0, count: 1000))
        // By time: a hole older than the gap timeout is skipped at the next packet.
        segments = [
            Segment(fromFirst: true, flags: SYN, sequence: isn, payload: []),
            Segment(fromFirst: true, flags: ACK, sequence: isn + 11, payload: Array("later".utf8)),
            Segment(fromFirst: false, flags: ACK, sequence: 500, payload: []),
        ]
        (c, _, _) = run(segments, times: [0, 1_000_000, 20_000_000_000])
        XCTAssertEqual(c.gaps[0], 10)
        XCTAssertEqual(c.streams[0], Array("later".utf8))
        // By ACK: the peer acknowledged past the hole a second ago; the bytes crossed the wire uncaptured.
        segments = [
            Segment(fromFirst: true, flags: SYN, sequence: isn, payload: []),
            Segment(fromFirst: true, flags: ACK, sequence: isn + 11, payload: Array("later".utf8)),
            Segment(fromFirst: false, flags: ACK, sequence: 500, acknowledgement: isn + 16, payload: []),
            Segment(fromFirst: false, flags: ACK, sequence: 500, acknowledgement: isn + 16, payload: []),
        ]
        (c, _, _) = run(segments, times: [0, 1_000, 2_000, 3_000_000_000])
        XCTAssertEqual(c.gaps[0], 10)
        XCTAssertEqual(c.streams[0], Array("later".utf8))
        // By flush at the end.
        var r2 = TCPReassembler()
        r2.open(slot: 0)
        var c2 = Collector()
        let later = Array("tail".utf8)
        _ = [UInt8]().withUnsafeBytes { r2.segment(slot: 0, fromFirst: false, flags: SYN, sequence: 9, acknowledgement: 0, payload: $0, time: 1, receiver: &c2) }
        _ = later.withUnsafeBytes { r2.segment(slot: 0, fromFirst: false, flags: ACK, sequence: 20, acknowledgement: 0, payload: $0, time: 2, receiver: &c2) }
        XCTAssertEqual(c2.streams[1], [])
        r2.flush(slot: 0, time: 3, receiver: &c2)
        XCTAssertEqual(c2.streams[1], later)
        XCTAssertEqual(c2.gaps[1], 10)
        _ = r
    }

    func testMemcapBoundsBufferingAcrossFlows() {
        var config = TCPReassemblyConfig()
        config.maxBufferedBytesTotal = 4 << 20 // 2048 pages
        var r = TCPReassembler(config: config)
        var c = Collector()
        let chunk = [UInt8](repeating: 7, count: 1400)
        // 4000 flows each buffer out-of-order data behind a hole: far more than the memcap.
        for slot in 0 ..< 4000 {
            r.open(slot: slot)
            _ = [UInt8]().withUnsafeBytes { r.segment(slot: slot, fromFirst: true, flags: SYN, sequence: 0, acknowledgement: 0, payload: $0, time: 1, receiver: &c) }
            chunk.withUnsafeBytes { bytes in
                for k in 0 ..< 3 {
                    _ = r.segment(slot: slot, fromFirst: true, flags: ACK, sequence: 1001 + UInt32(k * 1400), acknowledgement: 0, payload: bytes, time: 2, receiver: &c)
                }
            }
            XCTAssertLessThanOrEqual(r.reservedBytes, 4 << 20)
        }
        XCTAssertLessThanOrEqual(r.peakBufferedBytes, 4 << 20)
        // When the pool is full, a flow skips its own hole and delivers instead of dropping.
        XCTAssertGreaterThan(r.counters.gaps, 0)
        for slot in 0 ..< 4000 { r.close(slot: slot) }
        XCTAssertEqual(r.bufferedBytes, 0)
    }
}

/// A tiny deterministic generator for test data.
struct LCG: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state ^ (state >> 29)
    }
}

final class TCPReassemblerFuzzTests: XCTestCase {
    /// Arbitrary flags, sequence numbers (including 2^31 apart), acks, sizes and times: no trap, no hang,
    /// memory within the cap, and every slot releases cleanly.
    func testArbitrarySegmentsNeverTrap() {
        var config = TCPReassemblyConfig()
        config.maxBufferedBytesTotal = 2 << 20
        config.maxBufferedBytesPerDirection = 64 << 10
        var r = TCPReassembler(config: config)
        var c = Collector()
        var rng = LCG(state: 99)
        let payload = [UInt8](repeating: 0x42, count: 9000)
        for slot in 0 ..< 8 { r.open(slot: slot) }
        var bases: [UInt32] = (0 ..< 8).map { _ in UInt32(truncatingIfNeeded: rng.next()) }
        for i in 0 ..< 200_000 {
            let slot = Int(rng.next() % 8)
            let choice = rng.next() % 10
            let sequence: UInt32 = switch choice {
            case 0: UInt32(truncatingIfNeeded: rng.next())
            case 1: bases[slot] &+ 0x8000_0000
            default: bases[slot] &+ UInt32(rng.next() % 200_000)
            }
            let flags = UInt8(truncatingIfNeeded: rng.next()) & 0x1F
            let length = Int(rng.next() % 3000)
            let outcome = payload.withUnsafeBytes { raw in
                r.segment(slot: slot, fromFirst: rng.next() & 1 == 0, flags: flags, sequence: sequence,
                          acknowledgement: bases[slot] &+ UInt32(rng.next() % 300_000), payload: UnsafeRawBufferPointer(rebasing: raw[0 ..< length]),
                          time: Int64(i) * 1_000_000, receiver: &c)
            }
            XCTAssertLessThanOrEqual(r.reservedBytes, 2 << 20)
            if outcome != .open || rng.next() % 1000 == 0 {
                r.flush(slot: slot, time: Int64(i) * 1_000_000, receiver: &c)
                r.open(slot: slot)
                bases[slot] = UInt32(truncatingIfNeeded: rng.next())
            }
        }
        for slot in 0 ..< 8 { r.close(slot: slot) }
        XCTAssertEqual(r.bufferedBytes, 0)
    }
}
