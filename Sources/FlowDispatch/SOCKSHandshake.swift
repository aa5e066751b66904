/// The SOCKS handshake in front of a proxied connection — SOCKS4 and 4a, and SOCKS5 (RFC 1928) with
/// username/password authentication (RFC 1929) — read and set aside so that what the tunnel carries
/// (TLS, HTTP) is routed by its own first bytes.
///
/// Each direction is a sequence of self-describing messages, so the two are read independently:
/// - client: SOCKS4 request `04 CD PORT IP USERID\0 [HOST\0]`; SOCKS5 greeting `05 N METHODS…`, then any
///   number of `01 ULEN USER PLEN PASS` sub-negotiations, then the request `05 CMD 00 ATYP ADDR PORT`.
/// - server: SOCKS4 reply `00 CD PORT IP` (8 bytes); SOCKS5 method choice `05 M`, then `01 STATUS` for
///   each sub-negotiation, then the reply `05 REP 00 ATYP ADDR PORT`.
/// A refusal (SOCKS4 CD ≠ 90, method FF, a failed login, REP ≠ 0) or bytes that fit no message end the
/// handshake as failed. Tunnel bytes that a direction sends before the other finished its handshake
/// are kept (up to `maxEarlyBytes`) and replayed once both are done.
final class SOCKSHandshake {
    enum Version: UInt8 { case four = 4, five = 5 }

    enum Outcome: Equatable {
        /// More handshake is expected.
        case handshaking
        /// Both directions are done: the tunnel's first bytes (in arrival order) follow in `early`.
        case tunnel
        case failed
    }

    static let maxMessageBytes = 520
    static let maxEarlyBytes = 16 << 10

    let version: Version
    private var clientDone = false, serverDone = false
    private var clientMessages = 0, serverMessages = 0
    private var partial: ([UInt8], [UInt8]) = ([], [])
    /// Tunnel bytes from a direction whose handshake is over, while the other's is not.
    private(set) var early: [(fromClient: Bool, bytes: [UInt8])] = []
    private var earlyBytes = 0

    init(version: Version) { self.version = version }

    /// Whether a client's first bytes start a SOCKS handshake: a whole SOCKS4 request, or a SOCKS5
    /// greeting whose method list is complete and plausible.
    static func starts(_ b: UnsafeRawBufferPointer) -> Version? {
        guard b.count >= 3 else { return nil }
        if b[0] == 5 {
            let n = Int(b[1])
            guard n >= 1, n <= 16, b.count >= 2 + n else { return nil }
            for i in 2 ..< 2 + n where !(b[i] <= 0x09 || (b[i] >= 0x80 && b[i] != 0xFF)) { return nil }
            // Nothing, or a sub-negotiation or a request, may follow at once.
            return b.count == 2 + n || b[2 + n] == 1 || b[2 + n] == 5 ? .five : nil
        }
        if b[0] == 4, b[1] == 1 || b[1] == 2, let length = socks4RequestLength(b), length > 0 { return .four }
        return nil
    }

    /// Reads a chunk of one direction. Tunnel bytes after its handshake go to `early`.
    func consume(fromClient: Bool, _ bytes: UnsafeRawBufferPointer) -> Outcome {
        let done = fromClient ? clientDone : serverDone
        if done { return keepEarly(fromClient: fromClient, bytes) }
        var buffer = fromClient ? partial.0 : partial.1
        buffer.append(contentsOf: bytes)
        var offset = 0
        var failed = false
        buffer.withUnsafeBytes { all in
            while offset < all.count && !(fromClient ? clientDone : serverDone) {
                let rest = UnsafeRawBufferPointer(rebasing: all[offset...])
                guard let length = fromClient ? clientMessage(rest) : serverMessage(rest) else { return }
                guard length > 0 else { failed = true; return }
                if fromClient { clientMessages += 1 } else { serverMessages += 1 }
                offset += length
            }
        }
        if failed { return .failed }
        let stillHandshaking = !(fromClient ? clientDone : serverDone)
        let leftover = Array(buffer[offset...])
        if stillHandshaking {
            guard leftover.count <= Self.maxMessageBytes else { return .failed }
            if fromClient { partial.0 = leftover } else { partial.1 = leftover }
            return .handshaking
        }
        if fromClient { partial.0 = [] } else { partial.1 = [] }
        return leftover.withUnsafeBytes { keepEarly(fromClient: fromClient, $0) }
    }

    private func keepEarly(fromClient: Bool, _ bytes: UnsafeRawBufferPointer) -> Outcome {
        if !bytes.isEmpty {
            earlyBytes += bytes.count
            guard earlyBytes <= Self.maxEarlyBytes else { return .failed }
            early.append((fromClient, Array(bytes)))
        }
        return clientDone && serverDone ? .tunnel : .handshaking
    }

    /// The length of the client message at the start of `b`: nil when incomplete, 0 when it is no SOCKS message.
    private func clientMessage(_ b: UnsafeRawBufferPointer) -> Int? {
        if version == .four {
            guard clientMessages == 0, b[0] == 4 else { return 0 }
            let length = Self.socks4RequestLength(b)
            if length != nil && length! > 0 { clientDone = true }
            return length
        }
        if clientMessages == 0 {
            guard b.count >= 2 else { return nil }
            return b[0] == 5 && b[1] >= 1 ? (b.count >= 2 + Int(b[1]) ? 2 + Int(b[1]) : nil) : 0
        }
        switch b[0] {
        case 1: // RFC 1929: 01 ULEN UNAME PLEN PASSWD
            guard b.count >= 2 else { return nil }
            let u = Int(b[1])
            guard b.count >= 3 + u else { return nil }
            let p = Int(b[2 + u])
            return b.count >= 3 + u + p ? 3 + u + p : nil
        case 5:
            guard let length = Self.socks5AddressMessageLength(b) else { return nil }
            if length > 0 { clientDone = true }
            return length
        default:
            return 0
        }
    }

    private func serverMessage(_ b: UnsafeRawBufferPointer) -> Int? {
        if version == .four {
            guard b.count >= 8 else { return nil }
            guard b[0] == 0 || b[0] == 4, b[1] == 90 else { return 0 } // 90: request granted
            serverDone = true
            return 8
        }
        guard b.count >= 2 else { return nil }
        if serverMessages == 0 {
            return b[0] == 5 && b[1] != 0xFF ? 2 : 0
        }
        switch b[0] {
        case 1: return b[1] == 0 ? 2 : 0 // sub-negotiation status: 0 is success
        case 5:
            guard b[1] == 0 else { return 0 } // REP: 0 is success
            guard let length = Self.socks5AddressMessageLength(b) else { return nil }
            if length > 0 { serverDone = true }
            return length
        default: return 0
        }
    }

    /// `05 X 00 ATYP ADDR PORT`: its length, nil when incomplete, 0 when malformed.
    static func socks5AddressMessageLength(_ b: UnsafeRawBufferPointer) -> Int? {
        guard b.count >= 5 else { return nil }
        guard b[2] == 0 else { return 0 }
        let address: Int
        switch b[3] {
        case 1: address = 4
        case 3: address = 1 + Int(b[4])
        case 4: address = 16
        default: return 0
        }
        let length = 4 + address + 2
        return b.count >= length ? length : nil
    }

    /// `04 CD PORT IP USERID\0` and, for 4a (IP 0.0.0.x, x ≠ 0), `HOST\0`: nil when incomplete, 0 when malformed.
    static func socks4RequestLength(_ b: UnsafeRawBufferPointer) -> Int? {
        guard b.count >= 9 else { return nil }
        var i = 8
        while i < b.count && b[i] != 0 {
            guard b[i] >= 0x20 && b[i] < 0x7F, i - 8 < 255 else { return 0 }
            i += 1
        }
        guard i < b.count else { return nil }
        i += 1
        let socks4a = b[4] == 0 && b[5] == 0 && b[6] == 0 && b[7] != 0
        guard socks4a else { return i }
        let host = i
        while i < b.count && b[i] != 0 {
            guard b[i] > 0x20 && b[i] < 0x7F, i - host < 255 else { return 0 }
            i += 1
        }
        return i < b.count ? i + 1 : nil
    }
}
