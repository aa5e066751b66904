// A streaming HTTP/1.x message parser for one direction of a connection.
//
// The parser is a plain state machine: the caller hands it whatever bytes
// arrived and it answers with a `HTTPParseStep` — it needs more bytes, a head
// is complete (the caller then chooses the body framing), a message is
// complete, or the direction is malformed. Bytes may arrive split anywhere;
// nothing but the current line is buffered, and the head is bounded by
// `maxHeaderBytes`. Gaps (bytes lost by reassembly) are reported with
// `gap(_:)`: inside a body they are counted as missing body bytes; inside a
// head, chunk line or trailer they end parsing.
//
// Resynchronisation: a gap that runs past the end of a body (or falls
// between messages) ends that message and puts the direction in resync:
// bytes are skipped until a plausible message start — "HTTP/1." in the
// server direction, "METHOD SP target" with a version in the client
// direction — found right after the gap or after an LF. Candidates are
// checked on their first bytes and then as a whole start line (a line that
// does not parse is skipped too); after `maxResyncBytes` skipped bytes
// without a match the direction stops with `.resyncFailed`. The first
// message after a resync carries `HTTPMessage.resynced`.
//
// Tunnels: after a 2xx to CONNECT the caller calls `startTunnelProbe()` on
// the request parser; its first bytes (at most `tunnelProbeBytes`) decide
// whether the tunnel carries HTTP requests (parsing goes on as usual) or
// anything else (the direction becomes opaque). Up to `tunnelProbeBytes`
// CR and LF bytes before the request line are skipped. `isProbingTunnel` says the
// decision is still open.
//
// Leniency, as deployed servers and other analyzers accept it:
// - A request line without a version is an HTTP/0.9 Simple-Request
//   (RFC 1945 §4.1: method SP URI); header lines may still follow and are
//   read, and the message also ends when the connection closes. The caller
//   reads the answer with `startSimpleResponse` when it has no status line.
// - In "method SP URI SP version" the URI is everything between the method
//   and the version (it may be empty or hold spaces).
// - A header or trailer line without a colon is skipped and counted in
//   `HTTPMessage.ignoredLines`.
//
// After `.error` the parser stays in the error state and ignores input.

/// Why a direction stopped parsing: a closed set, formatted only at output.
public enum HTTPAnomaly: UInt8, Error, Sendable, CaseIterable {
    case badStartLine
    case badHeader
    case headerTooLong
    case badContentLength
    case badTransferEncoding
    case badChunk
    case gapInHeader
    case tooManyPending
    case resyncFailed

    /// The text used in error records.
    public var text: String {
        switch self {
        case .badStartLine: "bad start line"
        case .badHeader: "bad header"
        case .headerTooLong: "header too long"
        case .badContentLength: "bad content-length"
        case .badTransferEncoding: "bad transfer-encoding"
        case .badChunk: "bad chunk"
        case .gapInHeader: "gap in header"
        case .tooManyPending: "too many pipelined requests"
        case .resyncFailed: "no message start after gap"
        }
    }
}

/// How a message body is delimited (RFC 9112 §6.3).
public enum HTTPFraming: Equatable, Sendable {
    case none
    case length(Int)
    case chunked
    /// Response body read until the connection closes.
    case untilClose
}

/// One parsed message: the start line, headers, body (when kept) and trailers.
public struct HTTPMessage: Sendable {
    public enum StartLine: Sendable, Equatable {
        case request(method: [UInt8], uri: [UInt8], version: [UInt8])
        case response(version: [UInt8], code: Int, reason: [UInt8])
    }

    public var start: StartLine = .request(method: [], uri: [], version: [])
    /// Names lower-cased, in arrival order; repeats kept here, merged at output.
    public var headers: [(name: [UInt8], value: [UInt8])] = []
    public var trailers: [(name: [UInt8], value: [UInt8])] = []
    /// The kept body prefix (only when bodies are kept; at most `maxBodyBytes`).
    public var body: [UInt8] = []
    /// Body length on the wire, including bytes lost to gaps.
    public var bodyLength = 0
    /// Body bytes lost to gaps.
    public var bodyMissing = 0
    /// The body did not fit in `maxBodyBytes`.
    public var bodyTruncated = false
    /// The connection closed before the message ended.
    public var incomplete = false
    /// Capture time of the data that carried the first byte.
    public var time: Double = 0
    /// Header or trailer lines without a colon, skipped.
    public var ignoredLines = 0
    /// The message was found by resynchronising after a gap.
    public var resynced = false
    /// A final response: the 1xx interim responses that came before it (100 Continue, 103 Early Hints),
    /// at most `maxInterim`.
    public var interim: [(code: Int, reason: [UInt8], time: Double)] = []
    public static let maxInterim = 8

    public init() {}

    public var code: Int? {
        if case .response(_, let code, _) = start { return code }
        return nil
    }

    public var method: [UInt8]? {
        if case .request(let method, _, _) = start { return method }
        return nil
    }

    /// An HTTP/0.9 Simple-Request (a request line without version) or Simple-Response (no status line, code 0).
    public var isSimple: Bool {
        switch start {
        case .request(let method, _, let version): !method.isEmpty && version.isEmpty
        case .response(_, let code, _): code == 0
        }
    }

    /// The value of the last header with this lower-case name.
    public func header(_ name: String) -> [UInt8]? {
        let key = Array(name.utf8)
        return headers.last(where: { $0.name == key })?.value
    }

    /// All values of a header, comma-joined (RFC 9110 §5.3).
    public func joinedHeader(_ name: String) -> [UInt8]? {
        let key = Array(name.utf8)
        var out: [UInt8]?
        for h in headers where h.name == key {
            if out == nil { out = h.value } else { out! += [UInt8(ascii: ","), UInt8(ascii: " ")] + h.value }
        }
        return out
    }
}

public enum HTTPParseStep: Equatable, Sendable {
    /// Every byte was consumed; the message (if any) continues in later data.
    case needMore
    /// The head ended after `consumed` bytes; call `startBody(_:)` next.
    case head(consumed: Int)
    /// A message ended after `consumed` bytes; take it with `takeMessage()`.
    case end(consumed: Int)
    /// The direction is malformed; later input is ignored.
    case error(HTTPAnomaly)
}

public struct HTTPParser: Sendable {
    public enum Role: Sendable { case request, response }

    private enum State: Equatable {
        /// Between messages (empty lines allowed before a request line).
        case idle
        case headers
        /// Head complete; waiting for `startBody`.
        case headDone
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        /// The CRLF after chunk data.
        case chunkEnd
        case trailers
        case untilClose
        /// Message complete; the next `parse` reports `.end`.
        case done
        /// Bytes after a protocol switch (101, CONNECT): ignored.
        case opaque
        /// After a gap: skipping to the next LF (the byte after it is a candidate start).
        case resync
        /// After a 2xx to CONNECT: gathering the tunnel's first bytes in `line`.
        case tunnelProbe
        case failed(HTTPAnomaly)
    }

    public let role: Role
    public var keepBodies: Bool
    public var maxHeaderBytes: Int
    public var maxBodyBytes: Int

    private var state: State = .idle
    private var line: [UInt8] = []
    /// Head (or trailer) bytes so far, against `maxHeaderBytes`.
    private var headBytes = 0
    private var message = HTTPMessage()
    private var sawStartLine = false
    /// Looking for a message start after a gap (`.resync`, or `.idle` on a candidate line).
    private var resyncing = false
    /// Bytes skipped since the gap that started the resync (or CR/LF before a tunnel's first line).
    private var resyncSkipped = 0

    /// Bytes skipped after a gap before the direction gives up.
    public static let maxResyncBytes = 64 << 10
    /// Tunnel bytes looked at before deciding whether they are HTTP.
    public static let tunnelProbeBytes = 24

    public init(role: Role, keepBodies: Bool = false, maxHeaderBytes: Int = 64 << 10, maxBodyBytes: Int = 1 << 20) {
        self.role = role
        self.keepBodies = keepBodies
        self.maxHeaderBytes = max(maxHeaderBytes, 16)
        self.maxBodyBytes = max(maxBodyBytes, 0)
        line.reserveCapacity(256)
    }

    /// The direction stopped parsing because of this anomaly.
    public var anomaly: HTTPAnomaly? {
        if case .failed(let a) = state { return a }
        return nil
    }

    /// No message is in progress.
    public var isIdle: Bool { state == .idle && line.isEmpty && !resyncing }

    /// Looking for the next message start after a gap.
    public var isResyncing: Bool { resyncing }

    /// The tunnel's first bytes have not yet shown whether it carries HTTP.
    public var isProbingTunnel: Bool { state == .tunnelProbe }
    /// The tunnel's first bytes the probe gathered from earlier chunks (its line so far).
    public var probedBytes: [UInt8] { state == .tunnelProbe ? line : [] }

    /// After a successful CONNECT: the next bytes decide whether the tunnel
    /// carries HTTP requests or is opaque. Only between messages.
    public mutating func startTunnelProbe() {
        guard state == .idle, line.isEmpty else { return }
        resyncing = false
        resyncSkipped = 0
        state = .tunnelProbe
    }

    /// The head of the current message was parsed (it may still lack body bytes).
    public var hasHead: Bool {
        switch state {
        case .idle, .headers, .opaque, .failed, .resync, .tunnelProbe: false
        default: true
        }
    }

    /// The current message so far (its head is valid once `.head` was returned).
    public var current: HTTPMessage { message }

    /// Ignore everything from now on (after a protocol switch).
    public mutating func becomeOpaque() {
        if case .failed = state { return }
        state = .opaque
        resyncing = false
        line.removeAll(keepingCapacity: false)
    }

    public var isOpaque: Bool { state == .opaque }

    /// Hands over the finished message and gets ready for the next one.
    public mutating func takeMessage() -> HTTPMessage {
        let out = message
        message = HTTPMessage()
        return out
    }

    /// Consumes bytes until a head ends, a message ends, an error, or the buffer runs out.
    public mutating func parse(_ buf: UnsafeRawBufferPointer, time: Double) -> HTTPParseStep {
        var i = 0
        let n = buf.count
        while true {
            switch state {
            case .failed(let a):
                return .error(a)
            case .opaque:
                return .needMore
            case .done:
                state = .idle
                return .end(consumed: i)
            case .headDone:
                // The caller did not choose a framing; nothing to do until it does.
                return .head(consumed: i)
            default:
                break
            }
            if i >= n { return .needMore }

            switch state {
            case .resync:
                // Skip to the next LF; the byte after it may start a message.
                let rest = UnsafeRawBufferPointer(rebasing: buf[i...])
                if let lf = rest.firstIndex(of: 0x0A) {
                    resyncSkipped &+= lf + 1
                    i += lf + 1
                    state = .idle
                } else {
                    resyncSkipped &+= rest.count
                    i = n
                }
                if resyncSkipped > Self.maxResyncBytes { return fail(.resyncFailed) }
            case .tunnelProbe where line.isEmpty && (buf[i] == 0x0D || buf[i] == 0x0A):
                // Empty lines before the first request line (RFC 9112 §2.2), a few at most.
                i += 1
                resyncSkipped &+= 1
                if resyncSkipped > Self.tunnelProbeBytes {
                    becomeOpaque()
                    return .needMore
                }
            case .idle, .tunnelProbe, .headers, .chunkSize, .chunkEnd, .trailers:
                // Line-oriented states: gather up to LF, bounded.
                let rest = UnsafeRawBufferPointer(rebasing: buf[i...])
                let lf = rest.firstIndex(of: 0x0A)
                let take = lf.map { $0 + 1 } ?? rest.count
                if (state == .idle || state == .tunnelProbe) && line.isEmpty && !sawStartLine { message.time = time }
                if resyncing && state == .idle && line.count + take > maxHeaderBytes {
                    // A candidate line too long to be a start line: skip it.
                    i += take
                    if let step = skipCandidate(line.count + take, atLineEnd: lf != nil) { return step }
                    continue
                }
                if line.count + take > maxHeaderBytes || headBytes + take > maxHeaderBytes {
                    return fail(state == .chunkSize || state == .chunkEnd ? .badChunk : .headerTooLong)
                }
                line.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[..<take]))
                headBytes += take
                i += take
                if state == .tunnelProbe {
                    switch Self.requestStartVerdict(line) {
                    case .mismatch:
                        becomeOpaque()
                        return .needMore
                    case .match:
                        state = .idle
                    case .undecided:
                        break
                    }
                } else if resyncing && state == .idle {
                    let verdict = role == .request ? Self.requestStartVerdict(line) : Self.statusStartVerdict(line)
                    if verdict == .mismatch {
                        if let step = skipCandidate(line.count, atLineEnd: lf != nil) { return step }
                        continue
                    }
                }
                guard lf != nil else { return .needMore }
                // Strip LF and an optional CR (bare LF is tolerated, RFC 9112 §2.2).
                line.removeLast()
                if line.last == 0x0D { line.removeLast() }
                if let step = handleLine() {
                    line.removeAll(keepingCapacity: true)
                    if case .head = step { return .head(consumed: i) }
                    return step
                }
                line.removeAll(keepingCapacity: true)
            case .body(let remaining):
                let k = min(remaining, n - i)
                appendBody(UnsafeRawBufferPointer(rebasing: buf[i ..< i + k]))
                i += k
                state = remaining == k ? .done : .body(remaining: remaining - k)
            case .chunkData(let remaining):
                let k = min(remaining, n - i)
                appendBody(UnsafeRawBufferPointer(rebasing: buf[i ..< i + k]))
                i += k
                state = remaining == k ? .chunkEnd : .chunkData(remaining: remaining - k)
            case .untilClose:
                appendBody(UnsafeRawBufferPointer(rebasing: buf[i...]))
                i = n
            default:
                return .needMore
            }
        }
    }

    /// Reads the rest of the direction as an HTTP/0.9 Simple-Response (RFC 1945 §6):
    /// a body without status line or headers, ended by close. Only between messages.
    public mutating func startSimpleResponse(time: Double) {
        guard state == .idle, line.isEmpty else { return }
        message = HTTPMessage()
        message.start = .response(version: [], code: 0, reason: [])
        message.time = time
        state = .untilClose
    }

    /// Sets the body framing after `.head`; `.none` ends the message at once.
    public mutating func startBody(_ framing: HTTPFraming) {
        guard state == .headDone else { return }
        headBytes = 0
        switch framing {
        case .none: state = .done
        case .length(let n): state = n > 0 ? .body(remaining: n) : .done
        case .chunked: state = .chunkSize
        case .untilClose: state = .untilClose
        }
    }

    /// Bytes lost to a gap. Inside a body they count as missing body bytes;
    /// a gap that reaches into a head, chunk line or trailer is an error.
    /// Returns `.end` when the gap finishes a length-delimited body; when it
    /// runs past a body (or chunk), the message ends and the direction
    /// resynchronises (`isResyncing`); a gap between messages resynchronises too.
    public mutating func gap(_ length: Int) -> HTTPParseStep {
        guard length > 0 else { return .needMore }
        switch state {
        case .failed(let a): return .error(a)
        case .opaque: return .needMore
        case .body(let remaining) where length <= remaining:
            noteMissing(length)
            state = remaining == length ? .done : .body(remaining: remaining - length)
            if state == .done { state = .idle; return .end(consumed: 0) }
            return .needMore
        case .body(let remaining):
            // The gap runs past the body into what follows: the message ends with
            // its missing bytes, and the direction resynchronises.
            noteMissing(remaining)
            startResync()
            return .end(consumed: 0)
        case .chunkData(let remaining) where length <= remaining:
            noteMissing(length)
            state = remaining == length ? .chunkEnd : .chunkData(remaining: remaining - length)
            return .needMore
        case .chunkData(let remaining):
            // Past the chunk: the rest of the body is unknown, so the message
            // ends incomplete and the direction resynchronises.
            noteMissing(remaining)
            message.incomplete = true
            startResync()
            return .end(consumed: 0)
        case .resync, .idle where resyncing:
            // Still looking: the byte after this gap is a candidate start.
            state = .idle
            line.removeAll(keepingCapacity: true)
            headBytes = 0
            return .needMore
        case .idle where line.isEmpty:
            // Between messages: what follows may start mid-message.
            startResync()
            return .needMore
        case .tunnelProbe:
            // The tunnel's first bytes are lost: it cannot be told apart.
            becomeOpaque()
            return .needMore
        case .untilClose:
            noteMissing(length)
            return .needMore
        default:
            return fail(.gapInHeader)
        }
    }

    /// The connection closed. Returns true when a message was in progress
    /// past its start line; it is then complete (`untilClose`, or a
    /// Simple-Request) or marked `incomplete`, and `takeMessage()` hands it over.
    public mutating func finish() -> Bool {
        switch state {
        case .untilClose, .done:
            state = .idle
            return true
        case .headers where sawStartLine:
            sawStartLine = false
            if !message.isSimple { message.incomplete = true }
            state = .idle
            line.removeAll(keepingCapacity: true)
            return true
        case .headDone, .body, .chunkSize, .chunkData, .chunkEnd, .trailers:
            message.incomplete = true
            state = .idle
            return true
        default:
            return false
        }
    }

    /// Stops this direction for a reason found by the caller (e.g. too many pending requests).
    public mutating func stop(_ anomaly: HTTPAnomaly) {
        _ = fail(anomaly)
    }

    // MARK: - Private

    private mutating func startResync() {
        resyncing = true
        resyncSkipped = 0
        state = .idle
        line.removeAll(keepingCapacity: true)
        headBytes = 0
        sawStartLine = false
    }

    /// Drops a resync candidate of `count` bytes; the next candidate starts
    /// after the next LF (at once when the candidate ended with one).
    private mutating func skipCandidate(_ count: Int, atLineEnd: Bool) -> HTTPParseStep? {
        resyncSkipped &+= count
        line.removeAll(keepingCapacity: true)
        headBytes = 0
        state = atLineEnd ? .idle : .resync
        return resyncSkipped > Self.maxResyncBytes ? fail(.resyncFailed) : nil
    }

    private mutating func fail(_ anomaly: HTTPAnomaly) -> HTTPParseStep {
        resyncing = false
        state = .failed(anomaly)
        line.removeAll(keepingCapacity: false)
        message = HTTPMessage()
        return .error(anomaly)
    }

    private mutating func noteMissing(_ length: Int) {
        message.bodyLength &+= length
        message.bodyMissing &+= length
    }

    private mutating func appendBody(_ bytes: UnsafeRawBufferPointer) {
        message.bodyLength &+= bytes.count
        guard keepBodies else { return }
        let room = maxBodyBytes - message.body.count
        if bytes.count > room { message.bodyTruncated = true }
        if room > 0 { message.body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[..<min(room, bytes.count)])) }
    }

    /// Handles one complete line (without its line ending). Returns a step to
    /// report, or nil to keep going.
    private mutating func handleLine() -> HTTPParseStep? {
        switch state {
        case .idle:
            // RFC 9112 §2.2: ignore empty lines before a request line.
            if line.isEmpty {
                headBytes = 0
                return nil
            }
            guard let start = Self.parseStartLine(line, role: role) else {
                guard resyncing else { return fail(.badStartLine) }
                return skipCandidate(line.count &+ 1, atLineEnd: true)
            }
            if resyncing {
                // A resync candidate must be a full HTTP/1.x start line (no HTTP/0.9).
                if case .request(_, _, let version) = start, version.isEmpty {
                    return skipCandidate(line.count &+ 1, atLineEnd: true)
                }
                resyncing = false
                message.resynced = true
            }
            message.start = start
            sawStartLine = true
            state = .headers
            return nil
        case .headers:
            if line.isEmpty {
                sawStartLine = false
                state = .headDone
                return .head(consumed: 0)
            }
            return addField(to: \.headers)
        case .trailers:
            if line.isEmpty {
                headBytes = 0
                state = .done
                return nil
            }
            return addField(to: \.trailers)
        case .chunkSize:
            guard let size = Self.parseChunkSize(line) else { return fail(.badChunk) }
            headBytes = 0
            state = size == 0 ? .trailers : .chunkData(remaining: size)
            return nil
        case .chunkEnd:
            guard line.isEmpty else { return fail(.badChunk) }
            headBytes = 0
            state = .chunkSize
            return nil
        default:
            return nil
        }
    }

    private mutating func addField(to list: WritableKeyPath<HTTPMessage, [(name: [UInt8], value: [UInt8])]>) -> HTTPParseStep? {
        // obs-fold (RFC 9112 §5.2): a continuation line joins the previous value with a space.
        if line[0] == 0x20 || line[0] == 0x09 {
            guard !message[keyPath: list].isEmpty else { return fail(.badHeader) }
            let extra = Self.trimmed(line[...])
            let last = message[keyPath: list].count - 1
            if !extra.isEmpty { message[keyPath: list][last].value += [0x20] + extra }
            return nil
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            message.ignoredLines += 1
            return nil
        }
        guard colon > 0 else { return fail(.badHeader) }
        var name = Array(line[..<colon])
        // RFC 9112 §5.1: no whitespace between name and colon; names are tokens.
        for k in name.indices {
            guard Self.isToken(name[k]) else { return fail(.badHeader) }
            if name[k] >= 0x41 && name[k] <= 0x5A { name[k] |= 0x20 }
        }
        message[keyPath: list].append((name, Self.trimmed(line[(colon + 1)...])))
        return nil
    }

    // MARK: - Pure helpers

    static func trimmed(_ s: ArraySlice<UInt8>) -> [UInt8] {
        var s = s
        while let f = s.first, f == 0x20 || f == 0x09 { s.removeFirst() }
        while let l = s.last, l == 0x20 || l == 0x09 { s.removeLast() }
        return Array(s)
    }

    /// tchar (RFC 9110 §5.6.2).
    @inlinable
    public static func isToken(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "0") ... UInt8(ascii: "9"), UInt8(ascii: "a") ... UInt8(ascii: "z"), UInt8(ascii: "A") ... UInt8(ascii: "Z"),
             UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3).
    static func isVersion(_ v: ArraySlice<UInt8>) -> Bool {
        let b = Array(v)
        return b.count == 8 && b[0 ..< 5].elementsEqual("HTTP/".utf8)
            && (0x30 ... 0x39).contains(b[5]) && b[6] == UInt8(ascii: ".") && (0x30 ... 0x39).contains(b[7])
    }

    /// A request version cut short or without its minor digit ("HTTP/1.", "HTTP/1"), which clients send and
    /// servers (and Zeek) still answer as HTTP/1.x; kept as sent in the record.
    static func isTruncatedVersion(_ v: ArraySlice<UInt8>) -> Bool {
        let b = Array(v)
        return (b.count == 6 || b.count == 7) && b[0 ..< 5].elementsEqual("HTTP/".utf8) && (0x30 ... 0x39).contains(b[5])
            && (b.count == 6 || b[6] == UInt8(ascii: "."))
    }

    /// RFC 9112 §3 (request-line) and §4 (status-line). Runs of spaces are
    /// tolerated; control bytes are not. A request line is "method URI
    /// version" (the URI is what lies between, possibly empty or with spaces)
    /// or an HTTP/0.9 "method URI" (empty version).
    static func parseStartLine(_ line: [UInt8], role: Role) -> HTTPMessage.StartLine? {
        for c in line where (c < 0x20 && c != 0x09) || c == 0x7F { return nil }
        switch role {
        case .request:
            let parts = line.split(separator: 0x20, omittingEmptySubsequences: true)
            guard parts.count >= 2, parts[0].allSatisfy(isToken) else { return nil }
            let method = Array(parts[0])
            if let last = parts.last, isVersion(last) || isTruncatedVersion(last) {
                return .request(method: method, uri: trimmed(line[parts[0].endIndex ..< last.startIndex]), version: Array(last))
            }
            // Any method, as Zeek reads HTTP/0.9 ("POST /x" too); other protocols' command lines are kept
            // out before this, by first-bytes routing (AnalyzeSink.httpStart).
            guard parts.count == 2 else { return nil }
            return .request(method: method, uri: Array(parts[1]), version: [])
        case .response:
            guard let sp = line.firstIndex(of: 0x20), isVersion(line[..<sp]) else { return nil }
            var rest = line[(sp + 1)...]
            while rest.first == 0x20 { rest.removeFirst() }
            guard rest.count >= 3 else { return nil }
            let digits = rest.prefix(3)
            guard digits.allSatisfy({ (0x30 ... 0x39).contains($0) }) else { return nil }
            let after = rest.dropFirst(3)
            guard after.isEmpty || after.first == 0x20 else { return nil }
            let code = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            guard code >= 100 else { return nil }
            return .response(version: Array(line[..<sp]), code: code, reason: Array(after.drop(while: { $0 == 0x20 })))
        }
    }

    enum StartVerdict: Equatable { case match, mismatch, undecided }

    /// Whether bytes can begin a request line: an upper-case method (A–Z, then
    /// A–Z, "-" or "_"; 3 to 20 bytes), one space and a visible target byte.
    /// Decided within 22 bytes.
    static func requestStartVerdict(_ b: [UInt8]) -> StartVerdict {
        var i = 0
        while i < b.count {
            let c = b[i]
            let upper = c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z")
            guard upper || (i > 0 && (c == UInt8(ascii: "-") || c == UInt8(ascii: "_"))) else { break }
            i += 1
            if i > 20 { return .mismatch }
        }
        if i == b.count { return .undecided }
        guard i >= 3, b[i] == 0x20 else { return .mismatch }
        i += 1
        if i == b.count { return .undecided }
        return b[i] > 0x20 && b[i] < 0x7F ? .match : .mismatch
    }

    /// Whether bytes can begin a status line: "HTTP/1.".
    static func statusStartVerdict(_ b: [UInt8]) -> StartVerdict {
        let prefix: StaticString = "HTTP/1."
        let k = min(b.count, prefix.utf8CodeUnitCount)
        for j in 0 ..< k where b[j] != prefix.utf8Start[j] { return .mismatch }
        return k == prefix.utf8CodeUnitCount ? .match : .undecided
    }

    /// chunk-size [ chunk-ext ] (RFC 9112 §7.1); extensions are ignored.
    static func parseChunkSize(_ line: [UInt8]) -> Int? {
        var size = 0
        var digits = 0
        var i = 0
        while i < line.count {
            let c = line[i]
            let v: Int
            switch c {
            case 0x30 ... 0x39: v = Int(c - 0x30)
            case 0x61 ... 0x66: v = Int(c - 0x61 + 10)
            case 0x41 ... 0x46: v = Int(c - 0x41 + 10)
            default: v = -1
            }
            if v < 0 { break }
            digits += 1
            guard digits <= 15 else { return nil }  // keeps size below 2^60
            size = size << 4 | v
            i += 1
        }
        guard digits > 0 else { return nil }
        while i < line.count, line[i] == 0x20 || line[i] == 0x09 { i += 1 }
        guard i == line.count || line[i] == UInt8(ascii: ";") else { return nil }
        return size
    }

    /// Content-Length: digits; a list of equal values is accepted (RFC 9110 §8.6).
    static func parseContentLength(_ value: [UInt8]) -> Int? {
        var result: Int?
        for part in value.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
            let digits = trimmed(part)
            guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ (0x30 ... 0x39).contains($0) }) else { return nil }
            let n = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            if let r = result, r != n { return nil }
            result = n
        }
        return result
    }

    /// Body framing for a head (RFC 9112 §6.3). `requestMethod` is the method
    /// of the request a response answers (nil when unknown). Fails when the
    /// framing headers are malformed. Transfer-Encoding wins over Content-Length.
    public static func framing(for message: HTTPMessage, requestMethod: [UInt8]?) -> Result<HTTPFraming, HTTPAnomaly> {
        if let code = message.code {
            if (100 ..< 200).contains(code) || code == 204 || code == 304 { return .success(.none) }
            if requestMethod == Array("HEAD".utf8) { return .success(.none) }
            if requestMethod == Array("CONNECT".utf8) && (200 ..< 300).contains(code) { return .success(.none) }
        }
        if let te = message.joinedHeader("transfer-encoding") {
            let codings = te.split(separator: UInt8(ascii: ",")).map { trimmed($0).map { $0 | 0x20 } }.filter { !$0.isEmpty }
            if codings.last == Array("chunked".utf8) { return .success(.chunked) }
            // A response with another final coding runs until close; a request cannot be framed.
            return message.code != nil ? .success(.untilClose) : .failure(.badTransferEncoding)
        }
        if let cl = message.joinedHeader("content-length") {
            guard let n = parseContentLength(cl) else { return .failure(.badContentLength) }
            return .success(.length(n))
        }
        return .success(message.code != nil ? .untilClose : .none)
    }
}
