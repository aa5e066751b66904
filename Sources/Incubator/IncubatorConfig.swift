import PacketCore
import Yams

/// `flowtap incubate -c FILE`: the cells and choices in YAML, errors naming file:line and the key.
///
/// ```yaml
/// hash: flow                 # flow (the default) or sftap
/// full_tap: false            # every frame to every cell
/// drop_non_ip: false         # ARP, STP, LLDP dropped instead of going to cell 0
/// fragments:                 # the fragment table's bounds (docs/incubator.md)
///   remembered: 65536
///   hold_bytes: 16777216
///   hold_per_datagram: 64
///   hold_seconds: 2
/// cells:                     # cell 0 first: a spec as --cell takes it, or a map
///   - file:c0.pcap
///   - spec: vxlan:10.0.0.12
///     weight: 2
///     vni: 7
///   - {spec: "if:veth-c2", mac: "02:00:00:00:00:11"}
/// ```
public struct IncubatorConfig {
    public var cells: [CellSpec] = []
    public var selection = Incubator.Selection.flow
    public var dropNonIP = false
    public var fragments = FragmentCells()

    public init() {}

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public static func load(path: String) throws(ParseError) -> IncubatorConfig {
        let text: String
        do { text = try readTextFile(path) } catch { throw ParseError(description: "\(path): cannot read: \(error)") }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(ParseError) -> IncubatorConfig {
        func fail(_ node: Node?, _ key: String?, _ message: String) -> ParseError {
            ParseError(description: "\(file)\(node?.mark.map { ":\($0.line)" } ?? "")\(key.map { ": key '\($0)'" } ?? ""): \(message)")
        }
        let root: Node?
        // Values are read as text (the basic resolver: no tag regular expressions to compile).
        do { root = try Yams.compose(yaml: text, .basic) } catch {
            if let e = error as? YamlError, case .parser(_, let problem, let mark, _) = e { throw ParseError(description: "\(file):\(mark.line): not valid YAML: \(problem)") }
            if let e = error as? YamlError, case .scanner(_, let problem, let mark, _) = e { throw ParseError(description: "\(file):\(mark.line): not valid YAML: \(problem)") }
            throw ParseError(description: "\(file): not valid YAML: \(error)")
        }
        guard let root, case .mapping(let top) = root else { throw fail(root, nil, "expected a map with 'cells:' (a list of cell specs)") }
        var config = IncubatorConfig()
        var capacity = 65536, holdBytes = 16 << 20, perDatagram = 64, holdSeconds = 2.0
        func integer(_ node: Node, _ key: String, _ range: ClosedRange<Int>) throws(ParseError) -> Int {
            guard let text = node.string, let n = Int(text), range.contains(n) else { throw fail(node, key, "takes a whole number in \(range.lowerBound)…\(range.upperBound)") }
            return n
        }
        func flag(_ node: Node, _ key: String) throws(ParseError) -> Bool {
            switch node.string ?? "" {
            case "true", "yes", "on": return true
            case "false", "no", "off": return false
            default: throw fail(node, key, "takes true or false")
            }
        }
        var fullTap = false
        for (k, v) in top {
            let key = k.string ?? ""
            switch key {
            case "hash":
                switch v.string ?? "" {
                case "flow": config.selection = .flow
                case "sftap": config.selection = .sftap
                default: throw fail(v, key, "is flow or sftap")
                }
            case "full_tap": fullTap = try flag(v, key)
            case "drop_non_ip": config.dropNonIP = try flag(v, key)
            case "fragments":
                guard case .mapping(let map) = v else { throw fail(v, key, "takes a map: remembered, hold_bytes, hold_per_datagram, hold_seconds") }
                for (fk, fv) in map {
                    let name = fk.string ?? ""
                    switch name {
                    case "remembered": capacity = try integer(fv, name, 1 ... 16_777_216)
                    case "hold_bytes": holdBytes = try integer(fv, name, 0 ... 1 << 34)
                    case "hold_per_datagram": perDatagram = try integer(fv, name, 0 ... 8192)
                    case "hold_seconds":
                        guard let t = fv.string.flatMap(Double.init), t >= 0, t <= 3600 else { throw fail(fv, name, "takes seconds, 0…3600") }
                        holdSeconds = t
                    default: throw fail(fk, name, "unknown; fragments holds remembered, hold_bytes, hold_per_datagram, hold_seconds")
                    }
                }
            case "cells":
                guard case .sequence(let list) = v else { throw fail(v, key, "takes a list of cells, cell 0 first") }
                for item in list {
                    var text = item.string
                    var extras: [String] = []
                    if case .mapping(let map) = item {
                        text = nil
                        for (ck, cv) in map {
                            let name = ck.string ?? ""
                            guard let value = cv.string else { throw fail(cv, name, "takes a single value") }
                            switch name {
                            case "spec": text = value
                            case "weight", "vni": extras.append("\(name)=\(value)")
                            case "mac": extras.append("mac=\(value)")
                            default: throw fail(ck, name, "unknown; a cell holds spec, weight, vni, mac")
                            }
                        }
                    }
                    guard var spec = text else { throw fail(item, "cells", "a cell needs a spec such as file:c0.pcap or vxlan:10.0.0.12") }
                    if let mac = extras.first(where: { $0.hasPrefix("mac=") }) {
                        extras.removeAll { $0.hasPrefix("mac=") }
                        guard spec.hasPrefix("if:"), !spec.contains("@") else { throw fail(item, "mac", "applies to if: cells without @MAC") }
                        spec += "@" + mac.dropFirst(4)
                    }
                    let full = ([spec] + extras).joined(separator: ",")
                    do { config.cells.append(try CellSpec(parsing: full)) } catch { throw fail(item, "cells", String(error.description.dropFirst("--cell ".count))) }
                }
            default:
                throw fail(k, key, "unknown; the top level holds cells, hash, full_tap, drop_non_ip, fragments")
            }
        }
        if fullTap { config.selection = .fullTap }
        config.fragments = FragmentCells(capacity: capacity, maxHeldBytes: holdBytes, maxHeldPerDatagram: perDatagram, holdSeconds: holdSeconds)
        return config
    }
}
