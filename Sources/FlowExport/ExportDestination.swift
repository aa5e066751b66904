/// Where and how flows are exported: `ipfix://HOST:PORT`, `netflow9://HOST:PORT` or `netflow5://HOST:PORT`,
/// with optional settings after `?`: `domain=N` (IPFIX observation domain / NetFlow v9 source ID / v5
/// engine ID), `mtu=BYTES` (largest datagram payload, default 1400), `template-refresh=SECONDS` (default 60),
/// `template-packets=N` (templates resent every N datagrams, default 20). HOST may be `[IPv6]`.
public struct ExportDestination: Sendable, Equatable, CustomStringConvertible {
    public enum Format: String, Sendable, CaseIterable {
        case ipfix
        case netflow9
        case netflow5
    }

    public var format: Format
    public var host: String
    public var port: UInt16
    public var domain: UInt32 = 0
    public var mtu: Int = 1400
    public var templateRefreshSeconds: Int = 60
    public var templateRefreshPackets: Int = 20

    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(format: Format, host: String, port: UInt16) {
        self.format = format
        self.host = host
        self.port = port
    }

    public init(parsing text: String) throws(ParseError) {
        let schemes = Format.allCases.map { "\($0.rawValue)://" }.joined(separator: ", ")
        let halves = text.split(separator: "://", maxSplits: 1, omittingEmptySubsequences: false)
        guard halves.count == 2 else {
            throw ParseError(description: "export destination '\(text)' has no scheme; write one of \(schemes) followed by HOST:PORT")
        }
        guard let format = Format(rawValue: halves[0].lowercased()) else {
            throw ParseError(description: "export destination '\(text)': unknown scheme '\(halves[0])'; use one of \(schemes)")
        }
        var rest = halves[1]
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        let host: Substring, portText: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]"), rest[rest.index(after: close)...].hasPrefix(":") else {
                throw ParseError(description: "export destination '\(text)': write an IPv6 host as [ADDRESS]:PORT")
            }
            host = rest[rest.index(after: rest.startIndex) ..< close]
            portText = rest[rest.index(close, offsetBy: 2)...]
        } else {
            guard let colon = rest.lastIndex(of: ":") else {
                throw ParseError(description: "export destination '\(text)' has no port; write \(format.rawValue)://HOST:PORT (collectors commonly listen on 4739 for IPFIX, 2055 or 9995 for NetFlow)")
            }
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        }
        guard !host.isEmpty else { throw ParseError(description: "export destination '\(text)' has no host") }
        guard let port = UInt16(portText), port > 0 else {
            throw ParseError(description: "export destination '\(text)': '\(portText)' is not a port (1–65535)")
        }
        self.init(format: format, host: String(host), port: port)
        for setting in query.split(separator: "&") where !setting.isEmpty {
            let parts = setting.split(separator: "=", maxSplits: 1)
            let name = parts[0], value = parts.count > 1 ? parts[1] : ""
            switch name {
            case "domain":
                guard let v = UInt32(value) else { throw ParseError(description: "export destination '\(text)': domain=\(value) is not a 32-bit number") }
                if format == .netflow5 && v > 255 { throw ParseError(description: "export destination '\(text)': NetFlow v5's engine ID is one byte (domain 0–255)") }
                domain = v
            case "mtu":
                guard let v = Int(value), (576 ... 65507).contains(v) else { throw ParseError(description: "export destination '\(text)': mtu=\(value) must be 576–65507 bytes") }
                mtu = v
            case "template-refresh":
                guard let v = Int(value), v >= 1 else { throw ParseError(description: "export destination '\(text)': template-refresh=\(value) must be at least 1 second") }
                templateRefreshSeconds = v
            case "template-packets":
                guard let v = Int(value), v >= 1 else { throw ParseError(description: "export destination '\(text)': template-packets=\(value) must be at least 1") }
                templateRefreshPackets = v
            default:
                throw ParseError(description: "export destination '\(text)': unknown setting '\(name)'; known: domain, mtu, template-refresh, template-packets")
            }
        }
    }

    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(format.rawValue)://\(h):\(port)"
    }
}
