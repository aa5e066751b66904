#if canImport(Glibc)
import Glibc
#endif
import PacketCore

/// One SF-TAP event header, as an analyzer reads it from an interface stream
/// (reference §2.1 text, §2.2 binary). A DATA event's body is handed beside it.
public struct SFTapEvent: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        case created = 0, destroyed = 1, data = 2
    }

    public enum Match: UInt8, Sendable {
        case up = 0, down = 1, none = 2
    }

    public var kind: Kind
    /// Endpoint 1 is the lower (address, port) in SF-TAP's order; it is not the client.
    public var address1: IPAddress
    public var address2: IPAddress
    /// 0 for ICMP, which has no port fields.
    public var port1: UInt16
    public var port2: UInt16
    /// The outer 802.1Q ID; `SFTapEvent.noVLAN` when untagged or not given (SF-TAP's `master` prints none).
    public var vlan: UInt16
    public var hop: UInt8
    /// IP protocol number: 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6.
    public var transport: UInt8
    /// DATA: `true` from endpoint 1, `false` from endpoint 2; `nil` for `from=none` and other events.
    public var fromFirst: Bool?
    public var match: Match
    /// DESTROYED: 0 NORMAL, 1 RESET, 2 TIMEOUT, 3 COMPROMISED.
    public var reason: UInt8
    /// Zero when a text header has no `time` (SF-TAP before December 2015).
    public var time: Timestamp
    /// DATA: the body length; 0 otherwise.
    public var length: Int

    public static let noVLAN: UInt16 = 0xFFFF

    public var isIPv6: Bool { address1.isIPv6 }

    public init(kind: Kind, address1: IPAddress, address2: IPAddress, port1: UInt16, port2: UInt16, vlan: UInt16 = noVLAN, hop: UInt8 = 0,
                transport: UInt8, fromFirst: Bool? = nil, match: Match = .none, reason: UInt8 = 0, time: Timestamp = .zero, length: Int = 0) {
        self.kind = kind
        self.address1 = address1
        self.address2 = address2
        self.port1 = port1
        self.port2 = port2
        self.vlan = vlan
        self.hop = hop
        self.transport = transport
        self.fromFirst = fromFirst
        self.match = match
        self.reason = reason
        self.time = time
        self.length = length
    }
}

/// A defect in an SF-TAP event stream: what is wrong, where (the byte offset
/// of the event's first header byte) and which field. Built only when input
/// is bad; `description` formats it on demand.
public struct SFTapStreamError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: UInt8, Sendable, CaseIterable {
        /// Text: no newline within `SFTapEventReader.maxHeaderBytes`; skipped to the next newline.
        case headerTooLong
        /// Text: a field that is not `key=value`; the line is skipped.
        case malformedField
        /// A known field whose value is not one the format allows; text: the line is skipped.
        case badValue
        /// Text: a required field is absent; the line is skipped.
        case missingField
        /// DATA longer than the reader's `maxBody`: the body is skipped unread.
        case bodyTooLong
        /// The stream ended inside an event.
        case truncated
    }

    /// A header field, named as the text format names it.
    public enum Field: UInt8, Sendable, CaseIterable {
        case ip1, ip2, port1, port2, vlan, hop, l3, l4, event, from, match, len, reason, time

        public var name: String { "\(self)" }
    }

    public var code: Code
    /// Byte offset in the stream of the header the error is about.
    public var offset: UInt64
    public var field: Field?
    /// The offending number, where there is one (a binary field's byte, a length).
    public var value: Int?
    public var format: SFTapEventReader.Format

    public init(code: Code, offset: UInt64, field: Field? = nil, value: Int? = nil, format: SFTapEventReader.Format) {
        self.code = code
        self.offset = offset
        self.field = field
        self.value = value
        self.format = format
    }

    public var description: String {
        let at = "\(format) event stream, byte \(offset): "
        let name = field.map { $0.name } ?? "?"
        switch (code, format) {
        case (.headerTooLong, _):
            return at + "no newline within \(SFTapEventReader.maxHeaderBytes) bytes: not a text event stream? (try --format binary); skipped to the next newline"
        case (.malformedField, _):
            return at + "a header field is not key=value; the line is skipped"
        case (.badValue, .binary):
            return at + "\(name) byte \(value ?? -1) is not a valid value: the stream is not SF-TAP binary, or lost its framing (try --format text); reading stops"
        case (.badValue, .text):
            return at + "\(name)= has a value the format does not allow; the line is skipped"
        case (.missingField, _):
            return at + "the header has no \(name)= field; the line is skipped"
        case (.bodyTooLong, _):
            return at + "DATA len=\(value ?? -1) is above the reader's limit on a body; the body is skipped unread"
        case (.truncated, _):
            return at + "the stream ended inside an event"
        }
    }
}

/// Reads SF-TAP's event stream incrementally from bytes in any split: text
/// header lines or packed 64-byte binary headers, each DATA followed by its
/// body (reference §2.1–2.2, docs/abstract.md).
///
/// - Format: given, or detected from the first four bytes (`ip1=` is text,
///   anything else binary).
/// - Events whose header and body lie whole in the bytes fed are handed out
///   without copying; an event split across feeds is gathered in one buffer
///   the reader owns and reuses. No allocation per event in steady state.
/// - Bad input never traps. A text header that does not parse is reported
///   (with its byte offset) and skipped: reading resumes after its newline.
///   A binary header with an impossible event, l3, l4, from, match or reason
///   byte stops the reader (binary has nothing to resynchronise on), and
///   everything after is ignored.
/// - Bounds: text header lines at most `maxHeaderBytes` (longer ones are an
///   error, skipped to the next newline); DATA bodies at most `maxBody`
///   (longer ones are an error and their bytes are skipped, never buffered).
/// - Text fields may come in any order; unknown keys are ignored. Required:
///   ip1, ip2, hop, l3, l4, event; port1 and port2 for TCP and UDP; len for
///   DATA. Optional: vlan (-1 untagged), from (1, 2 or none), match, reason,
///   time.
public struct SFTapEventReader {
    public enum Format: Sendable, Equatable, CustomStringConvertible {
        case text, binary
        public var description: String { self == .text ? "text" : "binary" }
    }

    public struct Counters: Sendable, Equatable {
        public var events: UInt64 = 0
        public var bodyBytes: UInt64 = 0
        public var errors: UInt64 = 0
        /// Bytes passed over: bad lines, skipped bodies, input after a fatal binary error.
        public var bytesSkipped: UInt64 = 0
    }

    public static let maxHeaderBytes = 4096
    public static let binaryHeaderBytes = 64
    public static let defaultMaxBody = 16 << 20

    public private(set) var format: Format?
    public let maxBody: Int
    public private(set) var counters = Counters()
    /// Set when a binary header stopped the reader.
    public private(set) var stopped: SFTapStreamError?
    /// Stream offset of the next byte to be fed.
    public private(set) var offset: UInt64 = 0

    private enum State {
        /// Between events; `buffer` may hold the start of the next header.
        case header
        /// `pending`'s header is read; `buffer` gathers its body.
        case body
        /// Passing over the rest of a body too long to keep.
        case skipBody(Int)
        /// Passing over a bad text line up to its newline.
        case skipLine
    }

    private var state = State.header
    private var buffer: [UInt8] = []
    private var pending: SFTapEvent?
    /// Offset of the header the buffer or skip belongs to.
    private var eventOffset: UInt64 = 0
    private var probe: [UInt8] = []

    public init(format: Format? = nil, maxBody: Int = SFTapEventReader.defaultMaxBody) {
        self.format = format
        self.maxBody = max(0, maxBody)
    }

    /// Bytes the reader holds of an unfinished event.
    public var buffered: Int { buffer.count + probe.count }

    /// Feeds the next bytes of the stream. `event` is called for each whole
    /// event (its body valid only during the call), `error` for each defect.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer,
                              event: (SFTapEvent, UnsafeRawBufferPointer) -> Void,
                              error: (SFTapStreamError) -> Void) {
        guard !bytes.isEmpty else { return }
        if stopped != nil {
            counters.bytesSkipped &+= UInt64(bytes.count)
            offset &+= UInt64(bytes.count)
            return
        }
        var input = bytes
        if format == nil {
            let take = min(4 - probe.count, input.count)
            probe.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[0 ..< take]))
            input = UnsafeRawBufferPointer(rebasing: input[take...])
            guard probe.count == 4 else { return }
            format = probe == Array("ip1=".utf8) ? .text : .binary
            let head = probe
            probe = []
            head.withUnsafeBytes { run($0, event: event, error: error) }
        }
        run(input, event: event, error: error)
    }

    /// The stream ended: reports an event left unfinished.
    public mutating func finish(error: (SFTapStreamError) -> Void) {
        guard stopped == nil else { return }
        let unfinished: Bool
        switch state {
        case .header: unfinished = !buffer.isEmpty || !probe.isEmpty
        case .body, .skipBody: unfinished = true
        case .skipLine: unfinished = false
        }
        if unfinished {
            report(.truncated, at: eventOffset, error: error)
        }
        // Bytes too few to tell the format were never framed.
        offset &+= UInt64(probe.count)
        counters.bytesSkipped &+= UInt64(buffer.count + probe.count)
        buffer.removeAll(keepingCapacity: true)
        probe.removeAll()
        pending = nil
        state = .header
    }

    // MARK: - Framing

    private mutating func run(_ bytes: UnsafeRawBufferPointer, event: (SFTapEvent, UnsafeRawBufferPointer) -> Void,
                              error: (SFTapStreamError) -> Void) {
        var input = bytes
        while !input.isEmpty {
            if stopped != nil {
                skip(&input, input.count)
                return
            }
            switch state {
            case .skipBody(let left):
                let n = min(left, input.count)
                skip(&input, n)
                state = n == left ? .header : .skipBody(left - n)
            case .skipLine:
                if let newline = input.firstIndex(of: 0x0A) {
                    skip(&input, newline + 1)
                    state = .header
                } else {
                    skip(&input, input.count)
                }
            case .body:
                let need = (pending?.length ?? 0) - buffer.count
                let n = min(need, input.count)
                buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[0 ..< n]))
                advance(&input, n)
                if n == need { deliverBuffered(event) }
            case .header:
                if buffer.isEmpty {
                    direct(&input, event: event, error: error)
                } else {
                    gatherHeader(&input, event: event, error: error)
                }
            }
        }
    }

    private mutating func advance(_ input: inout UnsafeRawBufferPointer, _ n: Int) {
        input = UnsafeRawBufferPointer(rebasing: input[n...])
        offset &+= UInt64(n)
    }

    private mutating func skip(_ input: inout UnsafeRawBufferPointer, _ n: Int) {
        counters.bytesSkipped &+= UInt64(n)
        advance(&input, n)
    }

    private mutating func report(_ code: SFTapStreamError.Code, at position: UInt64, field: SFTapStreamError.Field? = nil, value: Int? = nil,
                                 error: (SFTapStreamError) -> Void) {
        counters.errors &+= 1
        error(SFTapStreamError(code: code, offset: position, field: field, value: value, format: format ?? .text))
    }

    /// Whole events straight from the input; a partial one goes to the buffer.
    private mutating func direct(_ input: inout UnsafeRawBufferPointer, event: (SFTapEvent, UnsafeRawBufferPointer) -> Void,
                                 error: (SFTapStreamError) -> Void) {
        eventOffset = offset
        let headerLength: Int
        if format == .binary {
            guard input.count >= Self.binaryHeaderBytes else {
                buffer.append(contentsOf: input)
                advance(&input, input.count)
                return
            }
            headerLength = Self.binaryHeaderBytes
        } else {
            guard let newline = input.firstIndex(of: 0x0A) else {
                if input.count > Self.maxHeaderBytes {
                    report(.headerTooLong, at: eventOffset, error: error)
                    skip(&input, input.count)
                    state = .skipLine
                } else {
                    buffer.append(contentsOf: input)
                    advance(&input, input.count)
                }
                return
            }
            headerLength = newline + 1
            if newline > Self.maxHeaderBytes {
                report(.headerTooLong, at: eventOffset, error: error)
                skip(&input, headerLength)
                return
            }
        }
        guard let header = parse(UnsafeRawBufferPointer(rebasing: input[0 ..< headerLength]), error: error) else {
            skip(&input, headerLength)
            return
        }
        advance(&input, headerLength)
        if header.length > maxBody {
            report(.bodyTooLong, at: eventOffset, field: .len, value: header.length, error: error)
            state = .skipBody(header.length)
            return
        }
        if header.length <= input.count {
            deliver(header, UnsafeRawBufferPointer(rebasing: input[0 ..< header.length]), event)
            advance(&input, header.length)
        } else {
            pending = header
            buffer.reserveCapacity(header.length)
            buffer.append(contentsOf: input)
            advance(&input, input.count)
            state = .body
        }
    }

    /// Completes a header begun in an earlier feed.
    private mutating func gatherHeader(_ input: inout UnsafeRawBufferPointer, event: (SFTapEvent, UnsafeRawBufferPointer) -> Void,
                                       error: (SFTapStreamError) -> Void) {
        if format == .binary {
            let n = min(Self.binaryHeaderBytes - buffer.count, input.count)
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[0 ..< n]))
            advance(&input, n)
            guard buffer.count == Self.binaryHeaderBytes else { return }
        } else {
            let newline = input.firstIndex(of: 0x0A)
            let n = newline.map { $0 + 1 } ?? input.count
            if buffer.count + n > Self.maxHeaderBytes + 1 || (newline == nil && buffer.count + n > Self.maxHeaderBytes) {
                report(.headerTooLong, at: eventOffset, error: error)
                counters.bytesSkipped &+= UInt64(buffer.count)
                buffer.removeAll(keepingCapacity: true)
                skip(&input, n)
                state = newline == nil ? .skipLine : .header
                return
            }
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[0 ..< n]))
            advance(&input, n)
            guard newline != nil else { return }
        }
        let parsed = buffer.withUnsafeBytes { parse($0, error: error) }
        if parsed == nil { counters.bytesSkipped &+= UInt64(buffer.count) }
        buffer.removeAll(keepingCapacity: true)
        guard let header = parsed else { return }
        if header.length > maxBody {
            report(.bodyTooLong, at: eventOffset, field: .len, value: header.length, error: error)
            state = .skipBody(header.length)
        } else if header.length == 0 {
            deliver(header, UnsafeRawBufferPointer(start: nil, count: 0), event)
        } else {
            pending = header
            buffer.reserveCapacity(header.length)
            state = .body
        }
    }

    private mutating func deliverBuffered(_ event: (SFTapEvent, UnsafeRawBufferPointer) -> Void) {
        if let header = pending {
            buffer.withUnsafeBytes { deliver(header, $0, event) }
        }
        pending = nil
        buffer.removeAll(keepingCapacity: true)
        // A large body's buffer is not kept past the event.
        if buffer.capacity > 1 << 20 { buffer = [] }
        state = .header
    }

    private mutating func deliver(_ header: SFTapEvent, _ body: UnsafeRawBufferPointer, _ event: (SFTapEvent, UnsafeRawBufferPointer) -> Void) {
        counters.events &+= 1
        counters.bodyBytes &+= UInt64(body.count)
        event(header, body)
    }

    private mutating func parse(_ header: UnsafeRawBufferPointer, error: (SFTapStreamError) -> Void) -> SFTapEvent? {
        let result = format == .binary ? Self.parseBinary(header) : Self.parseText(header)
        switch result {
        case .event(let e):
            return e
        case .invalid(let code, let field, let value):
            report(code, at: eventOffset, field: field, value: value, error: error)
            if format == .binary {
                stopped = SFTapStreamError(code: code, offset: eventOffset, field: field, value: value, format: .binary)
                state = .header
            }
            return nil
        }
    }

    // MARK: - Headers

    enum Parsed {
        case event(SFTapEvent)
        case invalid(SFTapStreamError.Code, SFTapStreamError.Field?, Int?)
    }

    /// A packed 64-byte header (reference §2.2; VLAN at 61 as on the `vlan` branch).
    static func parseBinary(_ b: UnsafeRawBufferPointer) -> Parsed {
        let kind: SFTapEvent.Kind
        switch b[52] {
        case 0: kind = .created
        case 1: kind = .destroyed
        case 2: kind = .data
        default: return .invalid(.badValue, .event, Int(b[52]))
        }
        let fromFirst: Bool?
        switch b[53] {
        case 0: fromFirst = true
        case 1: fromFirst = false
        case 3: fromFirst = nil
        default: return .invalid(.badValue, .from, Int(b[53]))
        }
        guard b[57] == 0 || b[57] == 41 else { return .invalid(.badValue, .l3, Int(b[57])) }
        let transport = b[58]
        guard transport == 6 || transport == 17 || transport == 1 || transport == 58 else { return .invalid(.badValue, .l4, Int(transport)) }
        guard let match = SFTapEvent.Match(rawValue: b[59]) else { return .invalid(.badValue, .match, Int(b[59])) }
        guard b[60] <= 3 else { return .invalid(.badValue, .reason, Int(b[60])) }
        let v6 = b[57] == 41
        let seconds = Int64(littleEndian: b.loadUnaligned(fromByteOffset: 32, as: Int64.self))
        let micros = Int64(littleEndian: b.loadUnaligned(fromByteOffset: 40, as: Int64.self))
        let hasPorts = transport == 6 || transport == 17
        return .event(SFTapEvent(
            kind: kind,
            address1: v6 ? IPAddress(high: b.beUInt64(at: 0), low: b.beUInt64(at: 8), isIPv6: true) : IPAddress(ipv4: b.beUInt32(at: 0)),
            address2: v6 ? IPAddress(high: b.beUInt64(at: 16), low: b.beUInt64(at: 24), isIPv6: true) : IPAddress(ipv4: b.beUInt32(at: 16)),
            port1: hasPorts ? b.beUInt16(at: 48) : 0, port2: hasPorts ? b.beUInt16(at: 50) : 0,
            vlan: b.beUInt16(at: 61), hop: b[56], transport: transport,
            fromFirst: kind == .data ? fromFirst : nil, match: match, reason: kind == .destroyed ? b[60] : 0,
            time: Timestamp(seconds: seconds, microseconds: micros),
            length: kind == .data ? Int(b.leUInt16(at: 54)) : 0))
    }

    /// One text header line, its newline included (reference §2.1).
    static func parseText(_ line: UnsafeRawBufferPointer) -> Parsed {
        var end = line.count
        if end > 0 && line[end - 1] == 0x0A { end -= 1 }
        if end > 0 && line[end - 1] == 0x0D { end -= 1 }
        var kind: SFTapEvent.Kind?
        var a1: IPAddress?, a2: IPAddress?
        var p1: UInt16?, p2: UInt16?
        var vlan = SFTapEvent.noVLAN
        var hop: UInt8?
        var v6: Bool?
        var transport: UInt8?
        var fromFirst: Bool?
        var match = SFTapEvent.Match.none
        var reason: UInt8 = 0
        var time = Timestamp.zero
        var length: Int?

        var start = 0
        while start < end {
            var comma = start
            while comma < end && line[comma] != UInt8(ascii: ",") { comma += 1 }
            var equals = start
            while equals < comma && line[equals] != UInt8(ascii: "=") { equals += 1 }
            guard equals < comma, equals > start else { return .invalid(.malformedField, nil, nil) }
            let key = UnsafeRawBufferPointer(rebasing: line[start ..< equals])
            let value = UnsafeRawBufferPointer(rebasing: line[equals + 1 ..< comma])
            start = comma + 1
            guard let field = field(key) else { continue }
            let bad = Parsed.invalid(.badValue, field, nil)
            switch field {
            case .ip1, .ip2:
                guard let address = address(value) else { return bad }
                if field == .ip1 { a1 = address } else { a2 = address }
            case .port1, .port2:
                guard let n = decimal(value), n <= 65535 else { return bad }
                if field == .port1 { p1 = UInt16(n) } else { p2 = UInt16(n) }
            case .vlan:
                if equal(value, "-1") {
                    vlan = SFTapEvent.noVLAN
                } else {
                    guard let n = decimal(value), n <= 4095 else { return bad }
                    vlan = UInt16(n)
                }
            case .hop:
                guard let n = decimal(value), n <= 255 else { return bad }
                hop = UInt8(n)
            case .l3:
                guard let i = keyword(value, Self.l3Words) else { return bad }
                v6 = i == 1
            case .l4:
                guard let i = keyword(value, Self.l4Words) else { return bad }
                transport = Self.l4Numbers[i]
            case .event:
                guard let i = keyword(value, Self.eventWords) else { return bad }
                kind = SFTapEvent.Kind(rawValue: UInt8(i))
            case .from:
                guard let i = keyword(value, Self.fromWords) else { return bad }
                fromFirst = i == 2 ? nil : i == 0
            case .match:
                guard let i = keyword(value, Self.matchWords) else { return bad }
                match = SFTapEvent.Match(rawValue: UInt8(i)) ?? .none
            case .len:
                guard let n = decimal(value) else { return bad }
                length = n
            case .reason:
                guard let i = keyword(value, Self.reasonWords) else { return bad }
                reason = UInt8(i)
            case .time:
                guard let t = seconds(value) else { return bad }
                time = t
            }
        }
        guard let kind else { return .invalid(.missingField, .event, nil) }
        guard let v6 else { return .invalid(.missingField, .l3, nil) }
        guard let transport else { return .invalid(.missingField, .l4, nil) }
        guard let a1 else { return .invalid(.missingField, .ip1, nil) }
        guard a1.isIPv6 == v6 else { return .invalid(.badValue, .ip1, nil) }
        guard let a2 else { return .invalid(.missingField, .ip2, nil) }
        guard a2.isIPv6 == v6 else { return .invalid(.badValue, .ip2, nil) }
        guard let hop else { return .invalid(.missingField, .hop, nil) }
        let hasPorts = transport == 6 || transport == 17
        guard !hasPorts || p1 != nil else { return .invalid(.missingField, .port1, nil) }
        guard !hasPorts || p2 != nil else { return .invalid(.missingField, .port2, nil) }
        if kind == .data && length == nil { return .invalid(.missingField, .len, nil) }
        return .event(SFTapEvent(
            kind: kind, address1: a1, address2: a2, port1: hasPorts ? p1 ?? 0 : 0, port2: hasPorts ? p2 ?? 0 : 0, vlan: vlan, hop: hop,
            transport: transport, fromFirst: kind == .data ? fromFirst : nil, match: match, reason: kind == .destroyed ? reason : 0,
            time: time, length: kind == .data ? length ?? 0 : 0))
    }

    // Text values, in the order of their codes (event and match as the binary header numbers them).
    static let l3Words: [StaticString] = ["ipv4", "ipv6"]
    static let l4Words: [StaticString] = ["tcp", "udp", "icmp", "icmpv6"]
    static let l4Numbers: [UInt8] = [6, 17, 1, 58]
    static let eventWords: [StaticString] = ["CREATED", "DESTROYED", "DATA"]
    static let fromWords: [StaticString] = ["1", "2", "none"]
    static let matchWords: [StaticString] = ["up", "down", "none"]
    static let reasonWords: [StaticString] = ["NORMAL", "RESET", "TIMEOUT", "COMPROMISED"]

    /// The index of `bytes` among `words`.
    static func keyword(_ bytes: UnsafeRawBufferPointer, _ words: [StaticString]) -> Int? {
        for (i, word) in words.enumerated() where equal(bytes, word) { return i }
        return nil
    }

    static func equal(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        let n = text.utf8CodeUnitCount
        guard bytes.count == n else { return false }
        for i in 0 ..< n where bytes[i] != text.utf8Start[i] { return false }
        return true
    }

    static func field(_ key: UnsafeRawBufferPointer) -> SFTapStreamError.Field? {
        switch key.count {
        case 2: return equal(key, "l3") ? .l3 : equal(key, "l4") ? .l4 : nil
        case 3:
            return equal(key, "ip1") ? .ip1 : equal(key, "ip2") ? .ip2 : equal(key, "hop") ? .hop : equal(key, "len") ? .len : nil
        case 4: return equal(key, "vlan") ? .vlan : equal(key, "from") ? .from : equal(key, "time") ? .time : nil
        case 5: return equal(key, "port1") ? .port1 : equal(key, "port2") ? .port2 : equal(key, "event") ? .event : equal(key, "match") ? .match : nil
        case 6: return equal(key, "reason") ? .reason : nil
        default: return nil
        }
    }

    /// Unsigned decimal of at most 12 digits.
    static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 12 else { return nil }
        var n = 0
        for b in bytes {
            guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else { return nil }
            n = n * 10 + Int(b - UInt8(ascii: "0"))
        }
        return n
    }

    /// Runs `body` on a NUL-terminated copy of `bytes` (at most 63 bytes) on the stack.
    static func withCString<R>(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafePointer<CChar>) -> R?) -> R? {
        guard bytes.count < 64 else { return nil }
        var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &storage) { raw in
            for i in 0 ..< bytes.count {
                guard bytes[i] != 0 else { return nil }
                raw[i] = bytes[i]
            }
            return body(raw.baseAddress!.assumingMemoryBound(to: CChar.self))
        }
    }

    /// An address as inet_ntop prints it: dotted quad, or IPv6 text when it holds a colon.
    static func address(_ bytes: UnsafeRawBufferPointer) -> IPAddress? {
        let v6 = bytes.contains(UInt8(ascii: ":"))
        return withCString(bytes) { text -> IPAddress? in
            var raw: (UInt64, UInt64) = (0, 0)
            let ok = withUnsafeMutableBytes(of: &raw) { inet_pton(v6 ? AF_INET6 : AF_INET, text, $0.baseAddress) }
            guard ok == 1 else { return nil }
            return v6 ? IPAddress(high: UInt64(bigEndian: raw.0), low: UInt64(bigEndian: raw.1), isIPv6: true)
                : IPAddress(ipv4: UInt32(bigEndian: UInt32(truncatingIfNeeded: raw.0)))
        }
    }

    /// `time=`: epoch seconds as SF-TAP prints them (`%.17g` of seconds + microseconds × 1e-6), back to a
    /// microsecond timestamp. Between 0 and 1e11 seconds.
    static func seconds(_ bytes: UnsafeRawBufferPointer) -> Timestamp? {
        guard let value = withCString(bytes, { text -> Double? in
            var end: UnsafeMutablePointer<CChar>?
            let v = strtod(text, &end)
            guard let end, end != UnsafeMutablePointer(mutating: text), end.pointee == 0 else { return nil }
            return v
        }) else { return nil }
        guard value.isFinite, value >= 0, value < 1e11 else { return nil }
        let whole = value.rounded(.down)
        var micros = Int64(((value - whole) * 1e6).rounded())
        var seconds = Int64(whole)
        if micros >= 1_000_000 {
            seconds += 1
            micros -= 1_000_000
        }
        return Timestamp(seconds: seconds, microseconds: micros)
    }
}
