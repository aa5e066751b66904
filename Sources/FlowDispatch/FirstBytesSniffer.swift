import Outputs
import FlowCore
import Analyzers
import Classify
import Flows
import PacketCore
import SFTapConfig

/// Built-in routing's reading of a flow's first bytes: an HTTP request or status line, a TLS
/// handshake record, DNS by port; split first bytes are held (`HeldStream`) until they decide, within
/// `firstBytesLimit` bytes and `HeldStream.maxEvents` chunks. Shared by `analyze` and the socket
/// analyzers (`SFTapStreamAnalyzer`), so both route a flow alike.
extension AnalyzeSink {
    /// Whether `b` starts an HTTP request line (RFC 9112 §3): a method token and a space, and then either the
    /// method is a registered one (`knownMethods`: decided at once, so a long target need not arrive whole),
    /// or the rest of the complete first line holds a request-target and "HTTP/" (no control bytes), or it
    /// is an HTTP/0.9 "GET /target" line. Other protocols' command lines ("USER x", "EHLO host", "MAIL
    /// FROM:<a>") carry no "HTTP/" and are not taken.
    /// `.needMore` while the bytes are a prefix of such a line (or of a status line, "HTTP/1.") that does not
    /// decide yet.
    static func httpStart(_ b: UnsafeRawBufferPointer) -> FirstBytes {
        let n = min(b.count, firstBytesLimit)
        let status: StaticString = "HTTP/1."
        var i = 0
        while i < n && i < status.utf8CodeUnitCount && b[i] == status.utf8Start[i] { i += 1 }
        if i == status.utf8CodeUnitCount { return .decided(.http, senderIsClient: false) }
        let maybeStatus = i == n
        // The method token (RFC 9110 §9.1: any token; 64 bytes is far beyond any registered method).
        var t = 0
        var upper = true
        while t < n && t < 64 && HTTPParser.isToken(b[t]) {
            upper = upper && b[t] >= UInt8(ascii: "A") && b[t] <= UInt8(ascii: "Z")
            t += 1
        }
        if t == n { return t < 64 || maybeStatus ? .needMore : .no }
        guard t > 0, b[t] == UInt8(ascii: " ") else { return maybeStatus ? .needMore : .no }
        if upper && Self.isKnownMethod(UnsafeRawBufferPointer(rebasing: b[0 ..< t])) { return .decided(.http, senderIsClient: true) }
        // The rest of the first line, which must be complete and without control bytes.
        var end = t + 1
        while end < n && b[end] != UInt8(ascii: "\n") {
            if (b[end] < 0x20 && b[end] != 0x09 && b[end] != UInt8(ascii: "\r")) || b[end] == 0x7F { return .no }
            end += 1
        }
        guard end < n else { return .needMore } // the caller bounds how long a first line may take
        // "HTTP/" somewhere after a non-empty target: "GET / HTTP/1.1", and also "GET /HTTP/1.1", a request
        // line whose version lost its space, which servers still answer.
        var k = t + 1
        while k < end && b[k] == UInt8(ascii: " ") { k += 1 }
        guard k < end else { return .no }
        k += 1 // the target's first byte
        let version: StaticString = "HTTP/"
        var found = false
        while !found && k + version.utf8CodeUnitCount <= end {
            found = startsWith(UnsafeRawBufferPointer(rebasing: b[k ..< end]), version)
            k += 1
        }
        if found { return .decided(.http, senderIsClient: true) }
        // HTTP/0.9: "GET /path" and nothing else on the line (RFC 1945 §4.1).
        if startsWith(b, "GET /") { return .decided(.http, senderIsClient: true) }
        return .no
    }

    /// RFC 9110 §9 methods, PATCH (RFC 5789) and WebDAV's (RFC 4918, 3253, 5323): a line that starts with one
    /// and a space is HTTP without waiting for its version.
    static let knownMethods: [StaticString] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
        "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT", "SEARCH", "MKACTIVITY", "CHECKOUT", "MERGE",
    ]

    static func isKnownMethod(_ token: UnsafeRawBufferPointer) -> Bool {
        knownMethods.contains { method in
            method.utf8CodeUnitCount == token.count && startsWith(token, method)
        }
    }

    static func startsWith(_ b: UnsafeRawBufferPointer, _ prefix: StaticString) -> Bool {
        let n = prefix.utf8CodeUnitCount
        guard b.count >= n else { return false }
        for i in 0 ..< n where b[i] != prefix.utf8Start[i] { return false }
        return true
    }

    /// What a TCP direction's first bytes say: the analyzer and whether their sender is the client.
    static func firstBytes(_ bytes: UnsafeRawBufferPointer, key: FlowKey, fromFirst: Bool) -> FirstBytes {
        let http = httpStart(bytes)
        if case .decided = http { return http }
        if bytes.count >= 6 && bytes[0] == 0x16 && bytes[1] == 0x03 {
            return .decided(.tls, senderIsClient: bytes[5] != 2) // a ServerHello came first
        }
        if key.port1 == 53 || key.port2 == 53 { return .decided(.dns, senderIsClient: (fromFirst ? key.port1 : key.port2) != 53) }
        if SOCKSHandshake.starts(bytes) != nil { return .decided(.socks, senderIsClient: true) }
        let maybeTLS = bytes.count < 6 && (bytes.isEmpty || bytes[0] == 0x16) && (bytes.count < 2 || bytes[1] == 0x03)
        return http == .needMore || maybeTLS ? .needMore : .no
    }

    /// What built-in routing makes of a TCP chunk of a flow not yet routed (`examineFirstBytes`).
    enum FirstBytesStep: Equatable {
        /// The sending direction's first bytes decided; the caller replays `held` (which then ends with this
        /// chunk), or delivers the chunk when nothing is held.
        case decided(Route, senderIsClient: Bool)
        /// The chunk is held until a later one decides.
        case holding
        /// Still undecided at `firstBytesLimit` bytes of the direction or `HeldStream.maxEvents` chunks:
        /// `held` is emptied, the flow is to be given up and counted as undecided.
        case overLimit
        /// The direction's first bytes start nothing known; the chunk is in `held` when that is not nil
        /// (`dropFirstBytes` forgets the direction).
        case no
    }

    /// Built-in routing's holding of split first bytes, shared by `analyze` and the socket analyzers
    /// (`SFTapStreamAnalyzer`): examines a chunk together with what its direction holds, and holds it while
    /// the answer is `.needMore`, or while anything else is held (so a replay keeps the arrival order). After
    /// the call the chunk is in `held` exactly when `held` is not nil.
    static func examineFirstBytes(_ held: inout HeldStream?, key: FlowKey, fromFirst: Bool, bytes: UnsafeRawBufferPointer,
                                  time: Timestamp) -> FirstBytesStep {
        let verdict: FirstBytes
        if let h = held, h.count(fromFirst: fromFirst) > 0 {
            h.append(fromFirst: fromFirst, bytes: bytes, time: time)
            verdict = (fromFirst ? h.bytes1 : h.bytes2).withUnsafeBytes { firstBytes($0, key: key, fromFirst: fromFirst) }
        } else {
            verdict = firstBytes(bytes, key: key, fromFirst: fromFirst)
            if verdict == .needMore || held != nil {
                let h = held ?? HeldStream()
                h.append(fromFirst: fromFirst, bytes: bytes, time: time)
                held = h
            }
        }
        switch verdict {
        case .decided(let route, let senderIsClient):
            return .decided(route, senderIsClient: senderIsClient)
        case .needMore:
            guard let h = held, h.count(fromFirst: fromFirst) < firstBytesLimit && h.events.count < HeldStream.maxEvents else {
                held = nil
                return .overLimit
            }
            return .holding
        case .no:
            return .no
        }
    }

    /// Forgets what one direction of a not yet routed flow holds (its first bytes started nothing known).
    static func dropFirstBytes(_ held: inout HeldStream?, fromFirst: Bool) {
        guard let h = held else { return }
        h.drop(fromFirst: fromFirst)
        if h.events.isEmpty { held = nil }
    }
}

/// The application protocol built-in routing would give a flow, named as EVE's `app_proto` names it:
/// what flow records report, from the same first-bytes reading `analyze` routes by.
public enum ServiceGuess {
    /// A TCP direction's first bytes: the protocol they start, or nil (none known, or not yet decided).
    public static func tcp(_ bytes: UnsafeRawBufferPointer, key: FlowKey, fromFirst: Bool) -> String? {
        if case .decided(let route, _) = AnalyzeSink.firstBytes(bytes, key: key, fromFirst: fromFirst) { return name(route) }
        return nil
    }

    /// A UDP datagram: DNS on its ports, QUIC on 443 or with a long header of a known version.
    public static func udp(_ bytes: UnsafeRawBufferPointer, key: FlowKey) -> String? {
        if AnalyzeSink.isDNSPort(key.port1) || AnalyzeSink.isDNSPort(key.port2) { return "dns" }
        if key.port1 == 443 || key.port2 == 443 || QUICAnalyzer.startsWithKnownLongHeader(bytes) { return "quic" }
        return nil
    }

    static func name(_ route: AnalyzeSink.Route) -> String? {
        switch route {
        case .http: "http"
        case .tls: "tls"
        case .dns: "dns"
        case .quic: "quic"
        case .socks: "socks"
        case .undecided, .none: nil
        }
    }
}
