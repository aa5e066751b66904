import SFTapCodec
import FlowDispatch
import Engine
import Flows
import UnixSockets
import PacketCore
import TestSupport
import XCTest

/// The SF-TAP event stream reader against streams `SFTapHeaderWriter` writes (the headers `flowtap abstract`
/// serves): every split gives the same events, text and binary agree, and mutated input never traps.
final class SFTapEventReaderTests: XCTestCase {
    struct Read: Equatable {
        var event: SFTapEvent
        var body: [UInt8]
    }

    /// What one run of the reader saw.
    struct Outcome: Equatable {
        var reads: [Read] = []
        var errors: [SFTapStreamError] = []
        var offset: UInt64 = 0
    }

    /// Random events of every kind, transport, direction and label; `maxBody` bounds DATA bodies.
    func randomEvents(_ count: Int, _ rng: inout SeededRandom, maxBody: Int = 300) -> [Read] {
        var reads: [Read] = []
        for _ in 0 ..< count {
            let v6 = rng.next() % 3 == 0
            func address() -> IPAddress {
                v6 ? IPAddress(high: rng.next(), low: rng.next(), isIPv6: true) : IPAddress(ipv4: UInt32(truncatingIfNeeded: rng.next()))
            }
            let transport: UInt8 = [6, 6, 17, 1, 58][Int(rng.next() % 5)]
            let kind: SFTapEvent.Kind = transport == 6 ? [.created, .data, .data, .destroyed][Int(rng.next() % 4)] : .data
            let hasPorts = transport == 6 || transport == 17
            let body = kind == .data ? (0 ..< Int(rng.next() % UInt64(maxBody + 1))).map { _ in UInt8(truncatingIfNeeded: rng.next()) } : []
            let event = SFTapEvent(
                kind: kind, address1: address(), address2: address(),
                port1: hasPorts ? UInt16(truncatingIfNeeded: rng.next()) : 0, port2: hasPorts ? UInt16(truncatingIfNeeded: rng.next()) : 0,
                vlan: rng.next() % 2 == 0 ? SFTapEvent.noVLAN : UInt16(rng.next() % 4096), hop: UInt8(truncatingIfNeeded: rng.next()),
                transport: transport, fromFirst: kind == .data ? [true, false, nil][Int(rng.next() % 3)] : nil,
                match: kind == .data ? SFTapEvent.Match(rawValue: UInt8(rng.next() % 3))! : .none,
                reason: kind == .destroyed ? UInt8(rng.next() % 4) : 0,
                time: Timestamp(seconds: 1_600_000_000 + Int64(rng.next() % 200_000_000), microseconds: Int64(rng.next() % 1_000_000)),
                length: body.count)
            reads.append(Read(event: event, body: body))
        }
        return reads
    }

    /// The stream `flowtap abstract` would write for these events.
    func stream(_ reads: [Read], binary: Bool) -> [UInt8] {
        var formatter = SFTapHeaderWriter()
        defer { formatter.deallocate() }
        var out: [UInt8] = []
        for r in reads {
            let e = r.event
            // ICMP keys carry ports in the engine; neither format passes them on.
            let key = FlowKey(address1: e.address1, port1: e.transport == 1 || e.transport == 58 ? 7 : e.port1, address2: e.address2,
                              port2: e.port2, ipProtocol: e.transport, vlan: e.vlan, hop: e.hop)
            let kind = SFTapEvent.Kind(rawValue: e.kind.rawValue)!
            let match = SFTapEvent.Match(rawValue: e.match.rawValue)!
            let reason = DestroyReason(rawValue: e.reason)!
            let header = binary
                ? formatter.binary(key: key, event: kind, fromFirst: e.fromFirst, match: match, length: e.length, reason: reason, time: e.time)
                : formatter.text(key: key, event: kind, fromFirst: e.fromFirst, match: match, length: e.length, reason: reason, time: e.time)
            out.append(contentsOf: header)
            out.append(contentsOf: r.body)
        }
        return out
    }

    /// Reads `bytes` fed in the pieces `cuts` makes (ascending offsets).
    func read(_ bytes: [UInt8], cuts: [Int] = [], format: SFTapEventReader.Format? = nil, maxBody: Int = SFTapEventReader.defaultMaxBody) -> Outcome {
        var reader = SFTapEventReader(format: format, maxBody: maxBody)
        var outcome = Outcome()
        bytes.withUnsafeBytes { raw in
            var start = 0
            for end in cuts + [raw.count] where end >= start {
                reader.feed(UnsafeRawBufferPointer(rebasing: raw[start ..< end]), event: { event, body in
                    outcome.reads.append(Read(event: event, body: Array(body)))
                }, error: { outcome.errors.append($0) })
                start = end
            }
        }
        reader.finish(error: { outcome.errors.append($0) })
        outcome.offset = reader.offset
        XCTAssertEqual(reader.counters.events, UInt64(outcome.reads.count))
        XCTAssertEqual(reader.counters.errors, UInt64(outcome.errors.count))
        return outcome
    }

    func testTextAndBinaryStreamsGiveTheEventsWritten() {
        var rng = SeededRandom(seed: 11)
        let events = randomEvents(400, &rng)
        for binary in [false, true] {
            let bytes = stream(events, binary: binary)
            let outcome = read(bytes)
            XCTAssertEqual(outcome.errors, [], "binary \(binary)")
            XCTAssertEqual(outcome.reads.count, events.count)
            for (got, want) in zip(outcome.reads, events) where got != want {
                XCTFail("binary \(binary): read \(got.event), wrote \(want.event)")
                break
            }
            XCTAssertEqual(outcome.offset, UInt64(bytes.count))
        }
    }

    func testEverySplitGivesTheSameEvents() {
        var rng = SeededRandom(seed: 12)
        let events = randomEvents(24, &rng, maxBody: 80)
        for binary in [false, true] {
            let bytes = stream(events, binary: binary)
            let whole = read(bytes)
            XCTAssertEqual(whole.reads, events)
            XCTAssertEqual(read(bytes, cuts: Array(1 ..< bytes.count)), whole, "byte by byte, binary \(binary)")
            for cut in 1 ..< bytes.count where read(bytes, cuts: [cut]) != whole {
                XCTFail("split at \(cut) of \(bytes.count), binary \(binary)")
                break
            }
            // Two cuts, a format given up front.
            for _ in 0 ..< 300 {
                let a = Int(rng.next() % UInt64(bytes.count)), b = Int(rng.next() % UInt64(bytes.count))
                XCTAssertEqual(read(bytes, cuts: [min(a, b), max(a, b)], format: binary ? .binary : .text), whole)
            }
        }
    }

    func testLargeBodiesAcrossReads() {
        var rng = SeededRandom(seed: 13)
        let events = randomEvents(30, &rng, maxBody: 65_535)
        for binary in [false, true] {
            let bytes = stream(events, binary: binary)
            var cuts: [Int] = [], at = 0
            while true {
                at += 1 + Int(rng.next() % 9000)
                if at >= bytes.count { break }
                cuts.append(at)
            }
            XCTAssertEqual(read(bytes, cuts: cuts).reads, events)
        }
    }

    /// A bad text line is reported at its offset and skipped; the events around it are read.
    func testBadTextLineIsReportedAndSkipped() {
        var rng = SeededRandom(seed: 14)
        let events = randomEvents(6, &rng)
        let first = stream(Array(events[..<3]), binary: false), rest = stream(Array(events[3...]), binary: false)
        let cases: [(String, SFTapStreamError.Code, SFTapStreamError.Field?)] = [
            ("ip1=10.0.0.1,ip2=10.0.0.2,port1=1,port2=2,hop=0,l3=ipv4,l4=tcp,event=BOGUS,time=1\n", .badValue, .event),
            ("ip1=10.0.0.1,ip2=10.0.0.2,port1=1,port2=2,hop=0,l3=ipv4,l4=sctp,event=CREATED\n", .badValue, .l4),
            ("ip1=10.0.0.1,ip2=::1,port1=1,port2=2,hop=0,l3=ipv4,l4=tcp,event=CREATED\n", .badValue, .ip2),
            ("ip1=10.0.0.1,ip2=10.0.0.2,port1=1,port2=70000,hop=0,l3=ipv4,l4=tcp,event=CREATED\n", .badValue, .port2),
            ("ip1=10.0.0.1,ip2=10.0.0.2,port2=2,hop=0,l3=ipv4,l4=tcp,event=CREATED\n", .missingField, .port1),
            ("ip1=10.0.0.1,ip2=10.0.0.2,port1=1,port2=2,hop=0,l3=ipv4,l4=tcp,event=DATA,from=1\n", .missingField, .len),
            ("ip1=10.0.0.1,ip2=10.0.0.2,port1=1,port2=2,hop=0,l3=ipv4,l4=tcp,event=DATA,len=-3\n", .badValue, .len),
            ("ip1=10.0.0.1,ip2=10.0.0.2,hop=0,l3=ipv4,l4=tcp,,event=CREATED\n", .malformedField, nil),
            ("ip1=10.0.0.1,ip2=10.0.0.2,port1=1,port2=2,hop=0,l3=ipv4,l4=tcp,event=CREATED,time=nan\n", .badValue, .time),
            ("garbage\n", .malformedField, nil),
        ]
        for (line, code, field) in cases {
            let bytes = first + Array(line.utf8) + rest
            for cuts in [[], Array(1 ..< bytes.count)] {
                let outcome = read(bytes, cuts: cuts)
                XCTAssertEqual(outcome.reads, events, line)
                XCTAssertEqual(outcome.errors, [SFTapStreamError(code: code, offset: UInt64(first.count), field: field, format: .text)], line)
            }
        }
        // An overlong line is skipped to its newline, however it is split.
        let long = first + Array("ip1=".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 10_000) + [10] + rest
        for cuts in [[], [first.count + 100], Array(stride(from: 1, to: long.count, by: 7))] {
            let outcome = read(long, cuts: cuts)
            XCTAssertEqual(outcome.reads, events)
            XCTAssertEqual(outcome.errors.map(\.code), [.headerTooLong])
            XCTAssertEqual(outcome.errors.first?.offset, UInt64(first.count))
        }
    }

    /// DATA above the reader's limit: an error, and its body is passed over without being kept.
    func testBodyAboveTheLimitIsSkippedUnbuffered() {
        var rng = SeededRandom(seed: 15)
        let events = randomEvents(4, &rng, maxBody: 50)
        let header = "ip1=10.0.0.1,ip2=10.0.0.2,port1=1,port2=2,vlan=-1,hop=0,l3=ipv4,l4=tcp,event=DATA,from=1,match=up,len=5000000,time=1\n"
        let bytes = stream(events, binary: false) + Array(header.utf8) + [UInt8](repeating: 0x41, count: 5_000_000) + stream(events, binary: false)
        var reader = SFTapEventReader(maxBody: 1 << 20)
        var reads: [Read] = [], errors: [SFTapStreamError] = [], mostBuffered = 0
        bytes.withUnsafeBytes { raw in
            var at = 0
            while at < raw.count {
                let end = min(raw.count, at + 4096)
                reader.feed(UnsafeRawBufferPointer(rebasing: raw[at ..< end]), event: { reads.append(Read(event: $0, body: Array($1))) },
                            error: { errors.append($0) })
                mostBuffered = max(mostBuffered, reader.buffered)
                at = end
            }
        }
        XCTAssertEqual(reads, events + events)
        XCTAssertEqual(errors.map(\.code), [.bodyTooLong])
        XCTAssertEqual(errors.first?.value, 5_000_000)
        XCTAssertLessThan(mostBuffered, 8192)
        XCTAssertEqual(reader.counters.bytesSkipped, 5_000_000)
    }

    /// A binary header with an impossible byte stops the reader there; what follows is not read.
    func testBadBinaryHeaderStopsTheReader() {
        var rng = SeededRandom(seed: 16)
        let events = randomEvents(8, &rng)
        var bytes = stream(events, binary: true)
        let firstLength = SFTapEventReader.binaryHeaderBytes + events[0].body.count
        let secondLength = SFTapEventReader.binaryHeaderBytes + events[1].body.count
        for (offset, value, field) in [(52, UInt8(9), SFTapStreamError.Field.event), (57, 4, .l3), (58, 50, .l4), (53, 2, .from), (59, 3, .match), (60, 4, .reason)] {
            var bad = bytes
            bad[firstLength + secondLength + offset] = value
            let outcome = read(bad, cuts: [firstLength + 1])
            XCTAssertEqual(outcome.reads, Array(events[..<2]))
            XCTAssertEqual(outcome.errors, [SFTapStreamError(code: .badValue, offset: UInt64(firstLength + secondLength), field: field,
                                                             value: Int(value), format: .binary)])
            XCTAssertEqual(outcome.offset, UInt64(bad.count))
        }
        // The description names the field, the byte and what to do.
        var bad = bytes
        bad[52] = 7
        let text = read(bad).errors.first?.description ?? ""
        XCTAssertTrue(text.contains("byte 0") && text.contains("event byte 7") && text.contains("--format text"), text)
        bytes.removeLast(5)
        XCTAssertEqual(read(bytes).errors.map(\.code), [.truncated])
    }

    func testFormatDetectionAndShortStreams() {
        var rng = SeededRandom(seed: 17)
        let events = randomEvents(3, &rng)
        let text = stream(events, binary: false)
        XCTAssertEqual(read(Array(text.prefix(3))).errors.map(\.code), [.truncated])
        XCTAssertEqual(read([]).errors, [])
        // A text stream read as binary fails loudly rather than yielding events.
        let forced = read(text, format: .binary)
        XCTAssertTrue(forced.reads.isEmpty || forced.errors.first?.format == .binary)
        XCTAssertFalse(forced.errors.isEmpty)
        // The original's header lines (no vlan, no time; from=none) read with defaults.
        let original = Array("ip1=192.168.24.54,ip2=216.58.221.196,port1=59547,port2=80,hop=0,l3=ipv4,l4=tcp,event=DATA,from=2,match=down,len=3\nabc".utf8)
        let outcome = read(original)
        XCTAssertEqual(outcome.errors, [])
        XCTAssertEqual(outcome.reads.first?.event.address2.description, "216.58.221.196")
        XCTAssertEqual(outcome.reads.first?.event.vlan, SFTapEvent.noVLAN)
        XCTAssertEqual(outcome.reads.first?.event.fromFirst, false)
        XCTAssertEqual(outcome.reads.first?.event.match, .down)
        XCTAssertEqual(outcome.reads.first?.body, Array("abc".utf8))
    }

    /// Tens of thousands of mutated and truncated streams: no trap, the invariants hold, and feeding in
    /// random pieces gives exactly what feeding whole gives (events, errors and their offsets).
    func testMutatedStreamsNeverTrap() {
        var rng = SeededRandom(seed: 18)
        var cases = 0, withErrors = 0
        for round in 0 ..< 30_000 {
            let binary = round % 3 == 2
            var bytes = stream(randomEvents(1 + Int(rng.next() % 5), &rng, maxBody: 40), binary: binary)
            for _ in 0 ... Int(rng.next() % 4) {
                let at = Int(rng.next() % UInt64(bytes.count + 1))
                switch rng.next() % 7 {
                case 0: if at < bytes.count { bytes[at] = UInt8(truncatingIfNeeded: rng.next()) }
                case 1: if at < bytes.count { bytes[at] ^= 1 << UInt8(rng.next() % 8) }
                case 2: bytes.insert([10, 44, 61, 0, 0xFF, 0x30][Int(rng.next() % 6)], at: at)
                case 3: bytes.removeSubrange(at ..< min(bytes.count, at + 1 + Int(rng.next() % 20)))
                case 4: bytes.removeSubrange(at...)
                case 5: bytes.insert(contentsOf: bytes[at ..< min(bytes.count, at + Int(rng.next() % 80))], at: Int(rng.next() % UInt64(bytes.count + 1)))
                default:
                    // A digit of a length or port changed: framing shifts.
                    if let i = bytes.indices.filter({ bytes[$0] >= 0x30 && bytes[$0] <= 0x39 }).randomElement(using: &rng) {
                        bytes[i] = 0x30 + UInt8(rng.next() % 10)
                    }
                }
            }
            let whole = read(bytes, maxBody: 1000)
            for r in whole.reads where r.body.count != r.event.length {
                XCTFail("case \(round): a body of \(r.body.count) bytes for len=\(r.event.length)")
            }
            XCTAssertEqual(whole.offset, UInt64(bytes.count))
            for e in whole.errors where e.offset > UInt64(bytes.count) { XCTFail("case \(round): error offset \(e.offset) past the end") }
            if round % 4 == 0 {
                var cuts: [Int] = [], at = 0
                while bytes.count > 1 {
                    at += 1 + Int(rng.next() % 50)
                    if at >= bytes.count { break }
                    cuts.append(at)
                }
                XCTAssertEqual(read(bytes, cuts: cuts, maxBody: 1000), whole, "case \(round)")
            }
            cases += 1
            if !whole.errors.isEmpty { withErrors += 1 }
        }
        XCTAssertEqual(cases, 30_000)
        XCTAssertGreaterThan(withErrors, 10_000, "the mutations must reach the error paths")
    }
}
