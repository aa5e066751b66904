import CaptureTools
import Abstraction
import FlowCore
import Capture
import Engine
import Flows
import Wire
import Foundation
import PacketCore
import SFTapConfig
import TestSupport
import XCTest

/// Classification with the example rules (examples/flowtap.yaml) against nDPI 4.2's labels for the
/// nDPI test captures: HTTP, TLS, SSH, SMTP, FTP, IRC, POP3 and DNS over TCP, where both have a rule.
final class NDPIClassificationTests: XCTestCase {
    struct Flow: Decodable {
        var l4: String
        var a: String
        var b: String
        var raw: [String: AnyDecodable]
    }

    struct AnyDecodable: Decodable {
        var string: String?
        init(from decoder: Decoder) throws {
            string = try? decoder.singleValueContainer().decode(String.self)
        }
    }

    struct Result: Decodable { var flows: [Flow] }

    /// nDPI master protocol → the example config's rule.
    static let mapping: [String: String] = ["HTTP": "http", "TLS": "tls", "SSH": "ssh", "SMTP": "smtp", "FTP_CONTROL": "ftp",
                                            "IRC": "irc", "POP3": "pop3", "DNS": "dns_tcp"]

    static func endpoint(_ text: String) -> (IPAddress, UInt16)? {
        // "1.2.3.4:80" or "[2001:db8::1]:443"
        var t = Substring(text)
        guard let colon = t.lastIndex(of: ":"), let port = UInt16(t[t.index(after: colon)...]) else { return nil }
        t = t[..<colon]
        if t.hasPrefix("[") { t = t.dropFirst().dropLast() }
        guard let address = IPAddress(t) else { return nil }
        return (address, port)
    }

    func testExampleRulesAgreeWithNDPI() throws {
        let dir = try Corpus.require("ndpi-4.2")
        var root = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { root.deleteLastPathComponent() }
        let settings = try SFTapSettings.load(path: root.appendingPathComponent("examples/flowtap.yaml").path, currentDirectory: "/tmp")
        var agree: [String: Int] = [:], total: [String: Int] = [:], unseen: [String: Int] = [:], midstream: [String: Int] = [:]
        var disagreements: [String] = []
        let out = "/tmp/flowtap-ndpi-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let captures = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("pcap").path).sorted()
        for name in captures {
            guard let data = FileManager.default.contents(atPath: dir.appendingPathComponent("result/\(name).json").path),
                  let result = try? JSONDecoder().decode(Result.self, from: data) else { continue }
            // Flows whose handshake was captured: only there do both directions' first bytes exist to classify.
            var withSYN = Set<FlowKey>()
            if let reader = try? CaptureFileReader(path: dir.appendingPathComponent("pcap/\(name)").path) {
                var decoder = PacketDecoder()
                decoder.decapsulateTunnels = true
                var p = DecodedPacket()
                while let record = try? reader.next() {
                    decoder.decode(record.bytes, originalLength: record.originalLength, linkType: record.linkType, into: &p)
                    if p.transport == .tcp && p.tcpFlags.contains(.syn) {
                        withSYN.insert(FlowKey.make(source: p.source, sourcePort: p.sourcePort, destination: p.destination, destinationPort: p.destinationPort, ipProtocol: 6).key)
                    }
                }
            }
            var ours: [FlowKey: String] = [:]
            let outputs = FileEventOutputs(directory: out)
            let abstractor = try Abstractor(settings: settings, outputs: outputs)
            abstractor.onClassified = { key, rule in ours[FlowKey(address1: key.address1, port1: key.port1, address2: key.address2, port2: key.port2, ipProtocol: 6)] = rule }
            var config = FlowEngineConfig()
            config.vlanInKey = false
            _ = try Pipeline.run(config: config, files: [dir.appendingPathComponent("pcap/\(name)").path], sink: abstractor)
            try? outputs.close()
            for flow in result.flows where flow.l4 == "TCP" {
                guard let proto = flow.raw["proto"]?.string, let label = proto.split(separator: "/").last.map(String.init),
                      let master = label.split(separator: ".").first.map(String.init), let rule = Self.mapping[master],
                      let a = Self.endpoint(flow.a), let b = Self.endpoint(flow.b) else { continue }
                let key = FlowKey.make(source: a.0, sourcePort: a.1, destination: b.0, destinationPort: b.1, ipProtocol: 6).key
                guard withSYN.contains(key) else {
                    midstream[master, default: 0] += 1
                    continue
                }
                guard let got = ours[key] else {
                    // FlowTap emits nothing for a flow no rule matched (e.g. one direction only, never classified).
                    unseen[master, default: 0] += 1
                    continue
                }
                total[master, default: 0] += 1
                if got == rule { agree[master, default: 0] += 1 } else { disagreements.append("\(name) \(flow.a) \(flow.b): nDPI \(proto), FlowTap \(got)") }
            }
        }
        var line = "nDPI agreement:"
        for master in total.keys.sorted() { line += " \(master) \(agree[master] ?? 0)/\(total[master]!)" }
        line += "; not compared: no handshake in the capture \(midstream.values.reduce(0, +)), FlowTap left unclassified \(unseen.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))"
        print(line)
        for d in disagreements.prefix(40) { print("  " + d) }
        // A flow FlowTap left unclassified is a disagreement, not a flow left out of the count.
        let agreed = agree.values.reduce(0, +), compared = total.values.reduce(0, +) + unseen.values.reduce(0, +)
        print("nDPI agreement over every TCP flow with a captured handshake: \(agreed)/\(compared)")
        XCTAssertEqual(compared, 170)
        XCTAssertGreaterThanOrEqual(agreed, 151)
    }
}
