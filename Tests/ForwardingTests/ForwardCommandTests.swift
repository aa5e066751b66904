#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TestSupport
import XCTest

/// `flowtap forward` as a user meets it: --check, errors that name file:line, options that cannot go together.
final class ForwardCommandTests: XCTestCase {
    static let flowtap = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path

    func testCheckPrintsTheRulesAndErrorsNameFileAndLine() throws {
        let good = writeRules("10.2.2.3 8086 10.2.2.3 A\n10.2.2.5 9996 10.2.2.3 A\n", name: "check-\(getpid()).txt")
        defer { unlink(good) }
        let (output, errors, status) = try Corpus.runCapturingErrors(Self.flowtap, ["forward", "--rules", good, "--check"])
        XCTAssertEqual(status, 0, errors)
        XCTAssertTrue(output.contains("2 rules (gforwarder)") && output.contains("line 2: from 10.2.2.5 to port 9996 → 10.2.2.3:9996"), output)

        let bad = writeRules("rules:\n  - port: 2055\n    to: [10.0.0.1:2055]\n    sampel: 3\n")
        defer { unlink(bad) }
        let (_, badErrors, badStatus) = try Corpus.runCapturingErrors(Self.flowtap, ["forward", "--rules", bad, "--listen", "127.0.0.1:0"])
        XCTAssertEqual(badStatus, 1)
        XCTAssertTrue(badErrors.contains("\(bad):4: unknown key 'sampel' in rule 1"), badErrors)

        let (_, usage, usageStatus) = try Corpus.runCapturingErrors(Self.flowtap, ["forward", "--rules", good])
        XCTAssertNotEqual(usageStatus, 0)
        XCTAssertTrue(usage.contains("give at least one --listen"), usage)
        let (_, both, bothStatus) = try Corpus.runCapturingErrors(Self.flowtap, ["forward", "--rules", good, "--listen", "127.0.0.1:9", "-i", "lo"])
        XCTAssertNotEqual(bothStatus, 0)
        XCTAssertTrue(both.contains("not both"), both)
    }

    /// A port already taken fails at start, naming the address and the reason.
    func testAPortInUseFailsAtOnce() throws {
        let taken = TestSocket()
        let rules = writeRules("rules:\n  - to: 127.0.0.1:9\n")
        defer { unlink(rules) }
        let (_, errors, status) = try Corpus.runCapturingErrors(Self.flowtap, ["forward", "--rules", rules, "--listen", "127.0.0.1:\(taken.port)"])
        XCTAssertEqual(status, 1)
        XCTAssertTrue(errors.contains("--listen 127.0.0.1:\(taken.port): bind: Address already in use"), errors)
    }
}
