#if canImport(Glibc)
import Glibc
#endif
import PacketCore

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
    public static let binaryHeaderBytes = SFTapBinaryLayout.size
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
        let result = format == .binary ? SFTapHeaderParser.parseBinary(header) : SFTapHeaderParser.parseText(header)
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
}
