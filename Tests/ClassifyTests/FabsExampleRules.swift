import Classify
import Foundation
import SFTapConfig
import TestSupport
import XCTest

/// Rules read from a configuration file through SFTapConfig, in file order
/// (the classifier must order them itself), as the abstractor reads them.
enum ExampleRules {
    static func load(_ path: String) throws -> [ClassificationRule] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let config = try SFTapConfig.parse(text, file: path)
        let settings = try SFTapSettings(config, currentDirectory: "/tmp")
        var rules: [ClassificationRule] = []
        for r in [settings.tcpDefault, settings.udpDefault].compactMap({ $0 }) + settings.rules where r.proto == .tcp || r.proto == .udp {
            rules.append(ClassificationRule(name: r.name, interface: r.interface, proto: r.proto == .tcp ? .tcp : .udp, up: r.up, down: r.down,
                                            utf8: r.utf8, nice: r.nice, ports: r.ports, balance: r.balance))
        }
        return rules
    }

    static func classifier(_ rules: [ClassificationRule], defaults: Bool = true) throws -> Classifier {
        let index = { (name: String) in rules.firstIndex { $0.name == name } }
        if defaults { return try Classifier(rules: rules, tcpDefault: index("tcp_default"), udpDefault: index("udp_default")) }
        return try Classifier(rules: rules.filter { $0.name != "tcp_default" && $0.name != "udp_default" })
    }
}

/// FlowTap's own example configuration, examples/flowtap.yaml (always present).
enum OwnExample {
    static var path: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("examples/flowtap.yaml").path
    }

    static func rules() throws -> [ClassificationRule] { try ExampleRules.load(path) }
}

/// The original SF-TAP `examples/fabs.yaml` (flow-abstractor master, BSD-3-Clause), from the shared
/// corpus (`sftap/fabs.yaml`, its licence beside it).
enum FabsExample {
    static func path() throws -> String {
        try Corpus.require("sftap/fabs.yaml").path
    }

    static func rules() throws -> [ClassificationRule] { try ExampleRules.load(try path()) }

    static func index(_ name: String) throws -> Int {
        try rules().firstIndex { $0.name == name }!
    }

    static func classifier(defaults: Bool = true) throws -> Classifier {
        try ExampleRules.classifier(try rules(), defaults: defaults)
    }
}
