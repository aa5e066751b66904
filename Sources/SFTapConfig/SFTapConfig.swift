import Yams

/// An SF-TAP configuration file, read the way the original reads it
/// (`fabs_conf.cpp`): a map of sections, each a map of keys to raw strings.
///
/// - Values stay raw strings: YAML `yes` is the string "yes", `30` is "30".
/// - Sections are kept in alphabetical order, as the original's `std::map`
///   iterates them; that order breaks ties between rules of equal `nice`.
/// - Every section and value remembers its line, so errors can name it.
///
/// Typed meaning (defaults, allowed values) is given by `SFTapSettings`.
public struct SFTapConfig: Sendable {
    public struct Value: Sendable, Equatable {
        public var text: String
        public var line: Int
    }

    public struct Section: Sendable {
        public var name: String
        public var line: Int
        /// Keys in file order with their values.
        public var entries: [(key: String, value: Value)]

        public subscript(_ key: String) -> Value? {
            entries.last { $0.key == key }?.value
        }
    }

    /// The file name used in error messages.
    public var file: String
    /// Sections sorted by name.
    public var sections: [Section]

    public subscript(_ name: String) -> Section? { sections.first { $0.name == name } }

    /// Parses YAML text; `file` names it in errors.
    public static func parse(_ yaml: String, file: String) throws(SFTapConfigError) -> SFTapConfig {
        let root: Node?
        do {
            // Every value is read as text, so tags are never resolved: the basic resolver spares compiling
            // Yams' default resolver's regular expressions (8.8 M of the 60 M instructions a run takes to start).
            root = try Yams.compose(yaml: yaml, .basic)
        } catch let error as YamlError {
            throw SFTapConfigError(file: file, line: Self.line(of: error), message: "not valid YAML: \(Self.summary(of: error))")
        } catch {
            throw SFTapConfigError(file: file, line: nil, message: "not valid YAML: \(error)")
        }
        guard let root else { throw SFTapConfigError(file: file, line: nil, message: "the file is empty; expected sections such as 'global:' and rules like 'http:'") }
        guard case .mapping(let top) = root else {
            throw SFTapConfigError(file: file, line: root.mark?.line, message: "the top level must be a map of sections (e.g. 'global:', 'http:')")
        }
        var sections: [Section] = []
        for (keyNode, valueNode) in top {
            guard case .scalar(let nameScalar) = keyNode else {
                throw SFTapConfigError(file: file, line: keyNode.mark?.line, message: "a section name must be plain text")
            }
            let name = nameScalar.string
            var section = Section(name: name, line: keyNode.mark?.line ?? 0, entries: [])
            switch valueNode {
            case .mapping(let pairs):
                for (k, v) in pairs {
                    guard case .scalar(let keyScalar) = k else {
                        throw SFTapConfigError(file: file, line: k.mark?.line, section: name, message: "a key must be plain text")
                    }
                    guard case .scalar(let valueScalar) = v else {
                        throw SFTapConfigError(file: file, line: v.mark?.line, section: name, key: keyScalar.string,
                                               message: "expected a single value (text or number), found a \(Self.kind(v))")
                    }
                    section.entries.append((keyScalar.string, Value(text: valueScalar.string, line: v.mark?.line ?? 0)))
                }
            case .scalar(let s) where s.string.isEmpty || s.string == "~" || s.string == "null":
                break // an empty section, e.g. "pcap:" with nothing under it
            default:
                throw SFTapConfigError(file: file, line: valueNode.mark?.line, section: name,
                                       message: "a section must hold 'key: value' lines, found a \(Self.kind(valueNode))")
            }
            if let existing = sections.firstIndex(where: { $0.name == name }) {
                sections[existing] = section // a repeated section replaces the earlier one
            } else {
                sections.append(section)
            }
        }
        sections.sort { $0.name < $1.name }
        return SFTapConfig(file: file, sections: sections)
    }

    static func kind(_ node: Node) -> String {
        switch node {
        case .scalar: "value"
        case .mapping: "map"
        case .sequence: "list"
        case .alias: "alias"
        }
    }

    static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): mark.line
        default: nil
        }
    }

    static func summary(of error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _): problem
        default: "\(error)"
        }
    }
}

/// A configuration problem, located as precisely as possible.
public struct SFTapConfigError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var line: Int?
    public var section: String?
    public var key: String?
    public var message: String

    public init(file: String, line: Int?, section: String? = nil, key: String? = nil, message: String) {
        self.file = file
        self.line = line
        self.section = section
        self.key = key
        self.message = message
    }

    /// One line: `file:line: section 'http', key 'nice': message`.
    public var description: String {
        var text = file
        if let line { text += ":\(line)" }
        text += ": "
        if let section { text += "section '\(section)'" + (key.map { ", key '\($0)'" } ?? "") + ": " }
        return text + message
    }
}
