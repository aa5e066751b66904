import PacketCore

/// One analysis cell, as `--cell SPEC` names it:
///
/// - `file:PATH` — the cell's frames in a pcap file (pcapng when PATH ends in `.pcapng`), timestamps kept;
/// - `vxlan:HOST[:PORT]` — each frame inside VXLAN (RFC 7348) over UDP to a remote cell (port 4789);
/// - `sftap:PATH` — pushed as a pcap stream into a local `flowtap abstract`'s pcap injection socket;
/// - `if:IFNAME[@MAC]` — transmitted on an interface, the destination MAC rewritten when given (SF-TAP's `@mac`).
///
/// Options follow after commas: `weight=N` (a share of flows N times a weight-1 cell's) and, for
/// VXLAN, `vni=N` (default 1). A path holding a comma cannot be given.
public struct CellSpec: Sendable, Equatable, CustomStringConvertible {
    public enum Target: Sendable, Equatable {
        case file(path: String)
        case vxlan(host: IPAddress, port: UInt16, vni: UInt32)
        case sftap(path: String)
        case interface(name: String, destinationMAC: [UInt8]?)
    }

    public var target: Target
    public var weight: Int
    public var text: String

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public init(target: Target, weight: Int = 1, text: String) {
        self.target = target
        self.weight = weight
        self.text = text
    }

    public init(parsing text: String) throws(ParseError) {
        self.text = text
        func fail(_ why: String) -> ParseError {
            ParseError(description: "--cell \(text): \(why); write file:PATH, vxlan:HOST[:PORT][,vni=N], sftap:PATH or if:IFNAME[@MAC], optionally ,weight=N")
        }
        guard let colon = text.firstIndex(of: ":") else { throw fail("no kind") }
        let kind = text[..<colon]
        var parts = text[text.index(after: colon)...].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let body = parts.removeFirst()
        var options: [String: String] = [:]
        for part in parts {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { throw fail("'\(part)' is not key=value") }
            options[pair[0]] = pair[1]
        }
        weight = 1
        if let w = options.removeValue(forKey: "weight") {
            guard let n = Int(w), (1 ... 1000).contains(n) else { throw fail("weight must be 1–1000") }
            weight = n
        }
        guard !body.isEmpty else { throw fail("nothing after '\(kind):'") }
        switch kind {
        case "file":
            target = .file(path: body)
        case "sftap":
            target = .sftap(path: body)
        case "vxlan":
            var vni: UInt32 = 1
            if let v = options.removeValue(forKey: "vni") {
                guard let n = UInt32(v), n < 1 << 24 else { throw fail("vni must be 0–16777215") }
                vni = n
            }
            var host = Substring(body), port: UInt16 = 4789
            if body.hasPrefix("["), let close = body.firstIndex(of: "]") {
                host = body[body.index(after: body.startIndex) ..< close]
                let rest = body[body.index(after: close)...]
                if rest.hasPrefix(":") { guard let p = UInt16(rest.dropFirst()), p > 0 else { throw fail("bad port") }; port = p }
            } else if body.filter({ $0 == ":" }).count == 1, let c = body.firstIndex(of: ":") {
                host = body[..<c]
                guard let p = UInt16(body[body.index(after: c)...]), p > 0 else { throw fail("bad port") }
                port = p
            }
            guard let address = IPAddress(host) else { throw fail("'\(host)' is not an IP address") }
            target = .vxlan(host: address, port: port, vni: vni)
        case "if":
            var name = body, mac: [UInt8]?
            if let at = body.firstIndex(of: "@") {
                name = String(body[..<at])
                let bytes = body[body.index(after: at)...].split(separator: ":").compactMap { UInt8($0, radix: 16) }
                guard bytes.count == 6 else { throw fail("'\(body[body.index(after: at)...])' is not a MAC address (aa:bb:cc:dd:ee:ff)") }
                mac = bytes
            }
            guard !name.isEmpty, name.utf8.count < 16 else { throw fail("interface names are 1–15 characters") }
            target = .interface(name: name, destinationMAC: mac)
        default:
            throw fail("unknown kind '\(kind)'")
        }
        if let unknown = options.keys.sorted().first { throw fail("unknown option '\(unknown)'") }
    }

    public var description: String { text }
}
