import Capture
import Foundation
import PacketCore
import TestSupport
import Wire
import XCTest

/// FlowTap's decoder against tcpdump 4.99.3's own expected output (`tests/*.out`
/// in the corpus), packet by packet: IP version, addresses, ports, transport
/// protocol, and the lengths tcpdump prints.
final class TcpdumpDifferentialTests: XCTestCase {
    struct Expectation {
        var isIPv6: Bool
        var source: IPAddress
        var destination: IPAddress
        var sourcePort: UInt16?
        var destinationPort: UInt16?
        /// "tcp", "udp", "icmp", "icmp6" when tcpdump's text names it.
        var transport: String?
        var payloadLength: Int?
        var ipProtocol: UInt8?
        var ipTotalLength: Int?
        var text: String
    }

    struct Tally {
        var packets = 0, addresses = 0, ports = 0, transports = 0, lengths = 0, ipHeaderFields = 0
        var mismatches: [String] = []
    }

    /// Splits tcpdump's `addr.port` / `addr` endpoint text.
    static func endpoint(_ text: Substring) -> (IPAddress, UInt16?)? {
        if let address = IPAddress(text) { return (address, nil) }
        guard let dot = text.lastIndex(of: "."), let port = UInt16(text[text.index(after: dot)...]),
              let address = IPAddress(text[..<dot]) else { return nil }
        return (address, port)
    }

    /// Parses "A > B: rest" into an expectation.
    static func parseFlow(_ line: Substring, isIPv6: Bool, into e: inout Expectation) -> Bool {
        guard let arrow = line.range(of: " > "), let colon = line.range(of: ": ", range: arrow.upperBound ..< line.endIndex) ?? line.range(of: ":", options: .backwards) else { return false }
        guard let a = endpoint(line[line.startIndex ..< arrow.lowerBound].trimmingCharacters(in: .whitespaces)[...]),
              let b = endpoint(line[arrow.upperBound ..< colon.lowerBound]) else { return false }
        e.source = a.0
        e.destination = b.0
        e.sourcePort = a.1
        e.destinationPort = b.1
        var rest = line[colon.upperBound...].trimmingCharacters(in: .whitespaces)[...]
        // IPv6 extension headers are printed between the addresses and the ports: "RT6 (…) 5645 > 5642: UDP, …".
        if isIPv6, e.sourcePort == nil, ["RT6", "HBH", "DSTOPT", "frag", "AH(", "mobility"].contains(where: { rest.hasPrefix($0) }),
           let r = rest.range(of: #" (\d+) > (\d+): "#, options: .regularExpression) {
            let ports = rest[r].split(whereSeparator: { $0 == " " || $0 == ">" || $0 == ":" })
            e.sourcePort = UInt16(ports[0])
            e.destinationPort = UInt16(ports[1])
            rest = rest[r.upperBound...]
        }
        if rest.hasPrefix("Flags [") {
            e.transport = "tcp"
            if let r = rest.range(of: #", length (\d+)"#, options: .regularExpression) {
                e.payloadLength = Int(rest[r].dropFirst(", length ".count))
            }
        } else if rest.hasPrefix("UDP, length ") {
            e.transport = "udp"
            e.payloadLength = Int(rest.dropFirst("UDP, length ".count).prefix { $0.isNumber })
        } else if rest.hasPrefix("ICMP6") {
            e.transport = "icmp6"
        } else if rest.hasPrefix("ICMP ") {
            e.transport = "icmp"
        }
        return true
    }

    /// Expectations for each packet number of one `.out` file.
    static func expectations(_ outText: String) -> [Int: Expectation] {
        var result: [Int: Expectation] = [:]
        let lines = outText.split(separator: "\n", omittingEmptySubsequences: false)
        var i = 0
        while i < lines.count {
            defer { i += 1 }
            let line = lines[i]
            let fields = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
            guard fields.count == 3, let number = Int(fields[0]), fields[1].contains(":") else { continue }
            var body = fields[2]
            var e = Expectation(isIPv6: false, source: .zero, destination: .zero, text: String(line))
            if body.hasPrefix("IP (") {
                // -v: "IP (tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto TCP (6), length 60)" then the flow line.
                if let r = body.range(of: #"proto \S+ \((\d+)\)"#, options: .regularExpression) {
                    e.ipProtocol = UInt8(body[r].split(separator: "(").last!.dropLast())
                }
                if let r = body.range(of: #"length (\d+)\)$"#, options: .regularExpression) {
                    e.ipTotalLength = Int(body[r].dropFirst("length ".count).dropLast())
                }
                guard i + 1 < lines.count, lines[i + 1].hasPrefix("    ") else { continue }
                guard parseFlow(lines[i + 1], isIPv6: false, into: &e) else { continue }
                e.text += " / " + lines[i + 1].trimmingCharacters(in: .whitespaces)
            } else if body.hasPrefix("IP6 (") {
                guard let r = body.range(of: #"payload length: (\d+)\) "#, options: .regularExpression) else { continue }
                e.isIPv6 = true
                let header = body[body.startIndex ..< r.upperBound]
                e.ipTotalLength = 40 + (Int(body[r].dropFirst("payload length: ".count).prefix { $0.isNumber }) ?? 0)
                if let p = header.range(of: #"next-header \S+ \((\d+)\)"#, options: .regularExpression) {
                    // Only the first next header is printed; it equals the protocol when there are no extensions.
                    let first = UInt8(header[p].split(separator: "(").last!.dropLast())
                    if first != 0 && first != 43 && first != 44 && first != 51 && first != 60 && first != 135 { e.ipProtocol = first }
                }
                body = body[r.upperBound...]
                guard parseFlow(body, isIPv6: true, into: &e) else { continue }
            } else if body.hasPrefix("IP ") || body.hasPrefix("IP6 ") {
                e.isIPv6 = body.hasPrefix("IP6 ")
                guard parseFlow(body.dropFirst(e.isIPv6 ? 4 : 3), isIPv6: e.isIPv6, into: &e) else { continue }
            } else {
                continue
            }
            if result[number] == nil { result[number] = e }
        }
        return result
    }

    func compare(pcap: URL, expected: [Int: Expectation], tally: inout Tally) throws {
        let reader = try CaptureFileReader(path: pcap.path)
        var decoder = PacketDecoder()
        var p = DecodedPacket()
        var number = 0
        while let record = try reader.next() {
            number += 1
            guard let e = expected[number] else { continue }
            decoder.decode(record.bytes, originalLength: record.originalLength, linkType: record.linkType, into: &p)
            tally.packets += 1
            let tag = "\(pcap.lastPathComponent)#\(number)"
            func miss(_ what: String) { tally.mismatches.append("\(tag): \(what) — tcpdump: \(e.text)") }
            guard p.network == (e.isIPv6 ? .ipv6 : .ipv4) else {
                miss("network \(p.network) anomaly \(p.anomaly.name)")
                continue
            }
            guard p.source == e.source, p.destination == e.destination else {
                miss("addresses \(p.source) > \(p.destination)")
                continue
            }
            tally.addresses += 1
            let weHavePorts = p.transport == .tcp || p.transport == .udp
            // A header cut short: FlowTap flags a truncation but keeps the ports if they were captured.
            let truncatedWithPorts = p.isTruncated && (p.ipProtocol == 6 || p.ipProtocol == 17)
            if let sp = e.sourcePort, let dp = e.destinationPort {
                if weHavePorts || truncatedWithPorts {
                    if p.sourcePort == sp && p.destinationPort == dp { tally.ports += 1 } else { miss("ports \(p.sourcePort) > \(p.destinationPort)") }
                } else if p.ipProtocol == 6 || p.ipProtocol == 17 {
                    miss("tcpdump shows ports, FlowTap decoded no \(p.ipProtocol == 6 ? "TCP" : "UDP") header (anomaly \(p.anomaly.name))")
                }
            } else if weHavePorts {
                miss("FlowTap decoded ports \(p.sourcePort) > \(p.destinationPort), tcpdump shows none")
            }
            if let t = e.transport {
                let ours: String = switch p.transport {
                case .tcp: "tcp"
                case .udp: "udp"
                case .icmp: "icmp"
                case .icmpv6: "icmp6"
                default: "\(p.transport)"
                }
                // tcpdump names the protocol of a header it could print only in part ("[|icmp]", "length 0 (invalid)",
                // or just the type byte); FlowTap names the same protocol number and records a truncation anomaly.
                let numbers: [String: UInt8] = ["tcp": 6, "udp": 17, "icmp": 1, "icmp6": 58]
                let bothSawTruncation = p.isTruncated && numbers[t] == p.ipProtocol
                if ours == t || bothSawTruncation { tally.transports += 1 } else { miss("transport \(ours) (anomaly \(p.anomaly.name))") }
                if let length = e.payloadLength, ours == t {
                    if length == p.payloadLength { tally.lengths += 1 } else { miss("payload length \(p.payloadLength)") }
                }
            }
            if let proto = e.ipProtocol {
                if proto == p.ipProtocol { tally.ipHeaderFields += 1 } else { miss("ip protocol \(p.ipProtocol)") }
            }
            if let total = e.ipTotalLength {
                if total == p.ipTotalLength { tally.ipHeaderFields += 1 } else { miss("ip length \(p.ipTotalLength)") }
            }
        }
    }

    /// The corpus tests whose options only add verbosity (no -e/-x/-t or filters), unoptioned first.
    static func cases(_ dir: URL) throws -> [(pcap: String, out: String)] {
        var rows: [(String, String, String)] = []
        for list in ["TESTLIST", "TESTLIST.full"] {
            guard let text = try? String(contentsOf: dir.appendingPathComponent(list), encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3)
                guard parts.count >= 3 else { continue }
                let options = parts.count > 3 ? String(parts[3]).trimmingCharacters(in: .whitespaces) : ""
                guard ["", "-v", "-vv", "-vvv", "-n"].contains(options) else { continue }
                rows.append((String(parts[1]), String(parts[2]), options))
            }
        }
        rows.sort { ($0.2.count, $0.0) < ($1.2.count, $1.0) }
        return rows.map { ($0.0, $0.1) }
    }

    func testDecodeAgreesWithTcpdumpExpectedOutput() throws {
        let dir = try Corpus.require("tcpdump/tests")
        var tally = Tally()
        var files = 0
        var seen = Set<String>()
        for (pcap, out) in try Self.cases(dir.deletingLastPathComponent()) {
            let pcapURL = dir.appendingPathComponent(pcap)
            guard FileManager.default.fileExists(atPath: pcapURL.path),
                  let text = try? String(contentsOf: dir.appendingPathComponent(out), encoding: .isoLatin1) else { continue }
            var expected = Self.expectations(text)
            // Each packet is compared once, from the first (least verbose) output that shows it.
            expected = expected.filter { seen.insert("\(pcap)#\($0.key)").inserted }
            guard !expected.isEmpty else { continue }
            files += 1
            try compare(pcap: pcapURL, expected: expected, tally: &tally)
        }
        print("tcpdump differential: \(files) captures, \(tally.packets) IP packets compared; agreeing: addresses \(tally.addresses), ports \(tally.ports), transport \(tally.transports), payload lengths \(tally.lengths), IP protocol/length fields \(tally.ipHeaderFields); mismatches \(tally.mismatches.count)")
        for m in tally.mismatches.prefix(40) { print("  " + m) }
        XCTAssertEqual(tally.packets, 852)
        XCTAssertEqual(tally.mismatches.count, 0)
    }
}
