import PacketCore

/// Where a matched datagram goes.
public struct ForwardDestination: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16
    /// Forward one datagram in this many (1: all). Exact: the 1st, (N+1)th, … matched datagram, counted
    /// over every worker thread together.
    public var sampleEvery: UInt32
    /// Send with the exporter's source address and port (a raw socket and a header FlowTap builds).
    public var keepSource: Bool

    public init(address: IPAddress, port: UInt16, sampleEvery: UInt32 = 1, keepSource: Bool = false) {
        self.address = address
        self.port = port
        self.sampleEvery = sampleEvery
        self.keepSource = keepSource
    }

    public var endpoint: String { address.isIPv6 ? "[\(address)]:\(port)" : "\(address):\(port)" }

    public var description: String {
        endpoint + (sampleEvery > 1 ? " (1 in \(sampleEvery))" : "") + (keepSource ? " keeping the source" : "")
    }
}

/// One rule: which datagrams (exporter address, destination port, payload kind) and where they go.
public struct ForwardRule: Sendable {
    /// The YAML `name`, or `line N` for a gForwarder line.
    public var name: String
    public var line: Int
    /// Exporter prefixes; empty matches any exporter.
    public var sources: [IPPrefix]
    public var ports: ClosedRange<UInt16>
    /// Payload kinds as a bit set of `PayloadKind` raw values; 0 matches any.
    public var kinds: UInt8
    public var destinations: [ForwardDestination]
    /// gForwarder's fourth column: read, kept and not used (it never was).
    public var priority: String?

    public init(name: String, line: Int, sources: [IPPrefix] = [], ports: ClosedRange<UInt16> = 0 ... 65535, kinds: UInt8 = 0,
                destinations: [ForwardDestination], priority: String? = nil) {
        self.name = name
        self.line = line
        self.sources = sources
        self.ports = ports
        self.kinds = kinds
        self.destinations = destinations
        self.priority = priority
    }

    public func matches(source: IPAddress, port: UInt16, kind: PayloadKind) -> Bool {
        guard ports.contains(port) else { return false }
        if kinds != 0 && kinds & (1 << kind.rawValue) == 0 { return false }
        return sources.isEmpty || sources.contains { $0.contains(source) }
    }
}

/// A rule file, read: rules in order (the first that matches wins) and what unmatched datagrams get.
public struct ForwardRuleSet: Sendable {
    public enum Format: String, Sendable { case gforwarder, yaml }

    public var file: String
    public var format: Format
    public var rules: [ForwardRule]
    /// Destinations for datagrams no rule matches; empty drops them (counted).
    public var defaultDestinations: [ForwardDestination]

    public init(file: String, format: Format, rules: [ForwardRule], defaultDestinations: [ForwardDestination] = []) {
        self.file = file
        self.format = format
        self.rules = rules
        self.defaultDestinations = defaultDestinations
    }

    /// The index of the first rule matching, by scanning them all: what `RuleIndex` must agree with.
    public func firstMatch(source: IPAddress, port: UInt16, kind: PayloadKind) -> Int? {
        rules.firstIndex { $0.matches(source: source, port: port, kind: kind) }
    }

    /// Reads `text` (from `file`), telling the two formats apart by content: a YAML map at the top level
    /// is the YAML form; lines of four words starting with an address are gForwarder's.
    public static func parse(_ text: String, file: String, keepSourceByDefault: Bool) throws(RuleFileError) -> ForwardRuleSet {
        if GForwarderRules.looksLikeOne(text) {
            return try GForwarderRules.parse(text, file: file, keepSource: keepSourceByDefault)
        }
        return try YAMLForwardRules.parse(text, file: file, keepSourceByDefault: keepSourceByDefault)
    }
}

/// A rule file problem: `file:line: message`, with what to write instead.
public struct RuleFileError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var line: Int?
    public var message: String

    public init(file: String, line: Int?, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String { "\(file)\(line.map { ":\($0)" } ?? ""): \(message)" }
}

/// Parses destinations: `HOST:PORT`, `[IPv6]:PORT`, or an address alone (then `defaultPort`).
enum DestinationText {
    static func parse(_ text: String, defaultPort: UInt16?) -> (IPAddress, UInt16)? {
        var host = Substring(text), portText: Substring?
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex) ..< close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.first == ":" else { return nil }
                portText = rest.dropFirst()
            }
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard let address = IPAddress(host) else { return nil }
        if let portText {
            guard let port = UInt16(portText), port > 0 else { return nil }
            return (address, port)
        }
        guard let defaultPort else { return nil }
        return (address, defaultPort)
    }
}

extension ForwardRuleSet {
    /// Reads the rule file at `path` and parses it.
    public static func load(path: String, keepSourceByDefault: Bool) throws(RuleFileError) -> ForwardRuleSet {
        let text: String
        do { text = try readTextFile(path) } catch { throw RuleFileError(file: path, line: nil, "cannot read: \(error)") }
        return try parse(text, file: path, keepSourceByDefault: keepSourceByDefault)
    }
}
