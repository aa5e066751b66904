/// Where a record-writing command sends its records: `-o` takes a path, `-` (standard output) or a
/// `redis://` URL, and may be given several times.
public enum RecordDestination: Equatable, Sendable, CustomStringConvertible {
    case standardOutput
    case file(String)
    case redis(RedisTarget)

    /// Parses one `-o` value. Throws a message that says what to write instead.
    public static func parse(_ text: String) throws(RecordOutputError) -> RecordDestination {
        if text == "-" { return .standardOutput }
        if text.hasPrefix("redis://") { return .redis(try RedisTarget.parse(text)) }
        if text.contains("://") {
            throw RecordOutputError(description: "\(text): unknown output scheme; write a file path, '-' for standard output, or redis://HOST:PORT[/DB]?key=K&mode=stream|list|publish")
        }
        return .file(text)
    }

    public var description: String {
        switch self {
        case .standardOutput: "standard output"
        case .file(let path): path
        case .redis(let target): target.description
        }
    }
}

/// A Redis output: `redis://[USER:PASSWORD@]HOST:PORT[/DB]?key=K&mode=stream|list|publish&maxlen=N`.
///
/// - `mode=stream` (the default): `XADD K MAXLEN ~ N * record LINE` (N defaults to 1,000,000; `maxlen=0`
///   never trims); `list`: `RPUSH K LINE` (what Suricata's redis output does); `publish`: `PUBLISH K LINE`.
/// - A key containing `{type}` names one key per record type (`flowtap:{type}` → `flowtap:http`).
/// - The password is never printed (`description` hides it).
public struct RedisTarget: Equatable, Sendable, CustomStringConvertible {
    public enum Mode: String, Sendable, CaseIterable { case stream, list, publish }

    public var host: String
    public var port: UInt16
    public var database: Int = 0
    public var user: String?
    public var password: String?
    public var key = "flowtap"
    public var mode = Mode.stream
    public var maxLength = 1_000_000

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    static let usage = "write redis://[USER:PASSWORD@]HOST:PORT[/DB]?key=K&mode=stream|list|publish&maxlen=N"

    public static func parse(_ url: String) throws(RecordOutputError) -> RedisTarget {
        func fail(_ why: String) -> RecordOutputError { RecordOutputError(description: "\(url.redactingPassword): \(why); \(usage)") }
        var rest = Substring(url.dropFirst("redis://".count))
        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        var user: String?, password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let name = credentials[..<colon]
                user = name.isEmpty ? nil : String(name)
                password = String(credentials[credentials.index(after: colon)...])
            } else {
                password = String(credentials)
            }
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let text = rest[rest.index(after: slash)...]
            guard text.isEmpty || Int(text) != nil, let n = Int(text.isEmpty ? "0" : text), n >= 0 else { throw fail("the database '\(text)' is not a number") }
            database = n
            rest = rest[..<slash]
        }
        // HOST:PORT, with [IPv6]:PORT.
        let host: Substring, portText: Substring
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            host = rest[rest.index(after: rest.startIndex) ..< close]
            let after = rest[rest.index(after: close)...]
            guard after.hasPrefix(":") else { throw fail("no port after the address") }
            portText = after.dropFirst()
        } else {
            guard let colon = rest.lastIndex(of: ":") else { throw fail("no port (Redis listens on 6379 by default)") }
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        }
        guard !host.isEmpty else { throw fail("no host") }
        guard let port = UInt16(portText), port > 0 else { throw fail("the port '\(portText)' is not 1-65535") }
        var target = RedisTarget(host: String(host), port: port)
        target.database = database
        target.user = user
        target.password = password
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = parts[0], value = parts.count > 1 ? String(parts[1]) : ""
            switch name {
            case "key":
                guard !value.isEmpty else { throw fail("key= is empty") }
                target.key = value.removingPercentEncoding
            case "mode":
                guard let mode = Mode(rawValue: value) else { throw fail("mode '\(value)' is not stream, list or publish") }
                target.mode = mode
            case "maxlen":
                guard let n = Int(value), n >= 0 else { throw fail("maxlen '\(value)' is not a count") }
                target.maxLength = n
            default:
                throw fail("unknown parameter '\(name)' (key, mode and maxlen are known)")
            }
        }
        return target
    }

    /// Whether each record type has its own key.
    public var keyPerType: Bool { key.contains("{type}") }

    public var description: String {
        let credentials = password == nil ? (user.map { "\($0)@" } ?? "") : "\(user ?? ""):***@"
        let address = host.contains(":") ? "[\(host)]" : host
        return "redis://\(credentials)\(address):\(port)/\(database)?key=\(key)&mode=\(mode.rawValue)"
    }
}

public struct RecordOutputError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(description: String) { self.description = description }
}

extension String {
    /// `%XX` escapes decoded (a key may hold characters a URL cannot).
    var removingPercentEncoding: String {
        var out: [UInt8] = []
        var bytes = Array(utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "%"), bytes.count >= 2, let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16) {
                out.append(v)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The URL with a password replaced by `***` (for messages).
    var redactingPassword: String {
        guard hasPrefix("redis://"), let at = firstIndex(of: "@") else { return self }
        let start = index(startIndex, offsetBy: "redis://".count)
        let credentials = self[start ..< at]
        guard let colon = credentials.firstIndex(of: ":") else { return "redis://***" + self[at...] }
        return "redis://" + credentials[..<colon] + ":***" + self[at...]
    }
}
