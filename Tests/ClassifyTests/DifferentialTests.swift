import Classify
import Foundation
import TestSupport
import XCTest

/// Our Vectorscan answers against a backtracking reference (Swift `Regex`,
/// one Unicode scalar per byte, so it reads bytes as RE2's Latin-1 mode
/// does) on seeded mutations of typical first bytes.
///
/// This is the test that caught Debian's libvectorscan 5.4.9 missing
/// matches in its AVX-512 and AVX2 scan routines (see
/// VectorscanRuntime.swift), before the start-up self-test chose another.
final class DifferentialTests: XCTestCase {
    /// (pattern as in the config, the same for the reference engine)
    static let patterns: [(re2: String, reference: String)] = {
        var list = ((try? OwnExample.rules()) ?? []).flatMap { [$0.up, $0.down].compactMap { $0 } }.map { ($0, $0) }
        // RE2's '$' is the reference's '\z'.
        list = list.map { ($0.0, $0.1.replacingOccurrences(of: "e$", with: #"e\z"#)) }
        list += [
            ("^A.*B", "^A.*B"), ("A.+B", "A.+B"), ("x.*y.*z", "x.*y.*z"), (#"Host: .+\r\n"#, #"Host: .+\r\n"#),
            (#"(foo|bar).{10,}baz"#, #"(foo|bar).{10,}baz"#), (#"[0-9]{4}-[0-9]{2}"#, #"[0-9]{4}-[0-9]{2}"#),
            (#"^[^\n]*\r\n\r\n"#, #"^[^\n]*\r\n\r\n"#), ("end$", #"end\z"#),
        ]
        return list
    }()

    static let seeds: [[UInt8]] = [
        Payload.httpRequest, Payload.httpResponse, Payload.connectRequest, Payload.connectResponse, Payload.trackerRequest,
        Payload.switchingProtocols, Payload.sshClient, Payload.smtpGreeting, Payload.ehlo, Payload.ftpGreeting, Payload.user,
        Payload.popGreeting, Payload.ircClient, Payload.ircServer, Payload.syslog, Payload.dhtPing, "AxyB foo bar baz 2024-01 x y z end",
    ].map { Array($0.utf8) } + [Payload.clientHello, Payload.serverHello, Payload.dnsQuery]

    func testAgreesWithReferenceOnMutatedPayloads() throws {
        let patterns = Self.patterns
        // One UDP rule per pattern, each on its own port: classifying on
        // port i asks "does pattern i match?" against the full database.
        let rules = patterns.indices.map { i in
            ClassificationRule(name: "p\(i)", proto: .udp, up: patterns[i].re2, ports: [UInt16(i + 1) ... UInt16(i + 1)])
        }
        let classifier = try Classifier(rules: rules)
        let references = try patterns.map { try Regex($0.reference).dotMatchesNewlines().matchingSemantics(.unicodeScalar) }

        var rng = SeededRandom(seed: 0x5F7A_2015)
        var mismatches: [String] = []
        let inputs = 2500
        for _ in 0 ..< inputs {
            let data = mutate(Self.seeds[Int(rng.next() % UInt64(Self.seeds.count))], &rng)
            var text = String.UnicodeScalarView()
            text.append(contentsOf: data.map { Unicode.Scalar($0) })
            let string = String(text)
            for i in patterns.indices {
                let expected = (try? references[i].firstMatch(in: string)) != nil
                let port = UInt16(i + 1)
                let got = classifier.udp(port, port, data) != nil
                if got != expected, mismatches.count < 10 {
                    mismatches.append("pattern \(patterns[i].re2) expected \(expected) on \(data.count) bytes \(data.prefix(120))")
                }
            }
        }
        XCTAssertTrue(mismatches.isEmpty, "Vectorscan (\(classifier.compiled.vectorscanRuntime)) disagrees:\n" + mismatches.joined(separator: "\n"))
    }

    func testRuntimeIsNamed() throws {
        let classifier = try ExampleRules.classifier(try OwnExample.rules())
        XCTAssertTrue(classifier.compiled.vectorscanRuntime.contains("hs_scan"), classifier.compiled.vectorscanRuntime)
        print("vectorscan runtime: \(classifier.compiled.vectorscanRuntime)")
        // No patterns, nothing selected.
        let portsOnly = try Classifier(rules: [ClassificationRule(name: "dns", proto: .udp, ports: [53 ... 53])])
        XCTAssertTrue(portsOnly.compiled.vectorscanRuntime.hasPrefix("none"))
    }

    /// Insertions, deletions, long runs, random tails, truncation, repetition.
    private func mutate(_ seed: [UInt8], _ rng: inout SeededRandom) -> [UInt8] {
        var bytes = seed
        let alphabet = Array("aZ \r\n:0123456789xAB".utf8)
        for _ in 0 ..< Int(rng.next() % 5) {
            switch rng.next() % 6 {
            case 0 where !bytes.isEmpty:
                bytes.remove(at: Int(rng.next() % UInt64(bytes.count)))
            case 1:
                bytes.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: Int(rng.next() % UInt64(bytes.count + 1)))
            case 2:
                let at = Int(rng.next() % UInt64(bytes.count + 1))
                bytes.insert(contentsOf: [UInt8](repeating: 0x78, count: 1 + Int(rng.next() % 200)), at: at)
            case 3:
                bytes += (0 ..< Int(rng.next() % 100)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 4 where !bytes.isEmpty:
                bytes.removeLast(Int(rng.next() % UInt64(bytes.count)))
            case 5:
                bytes = Array([[UInt8]](repeating: bytes, count: 1 + Int(rng.next() % 4)).joined())
            default:
                break
            }
        }
        return bytes
    }
}
