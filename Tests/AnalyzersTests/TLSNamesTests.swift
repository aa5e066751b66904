import Analyzers
import Foundation
import TestSupport
import XCTest

/// The names TLS records carry beside version and cipher-suite numbers are Wireshark's (tshark's own
/// value tables, `tshark -G values`): every name FlowTap knows must be the one tshark gives the same code.
final class TLSNamesTests: XCTestCase {
    func tsharkValues(_ field: String) throws -> [UInt16: String] {
        guard let tshark = Corpus.tool("tshark") else { throw OracleMissing.error("tshark not installed") }
        let (out, status) = try Corpus.run(tshark, ["-G", "values"])
        XCTAssertEqual(status, 0)
        var table: [UInt16: String] = [:]
        for line in out.split(separator: "\n") {
            let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard parts.count >= 4, parts[0] == "V", parts[1] == field else { continue }
            let text = String(parts[2])
            let code = text.hasPrefix("0x") ? UInt16(text.dropFirst(2), radix: 16) : UInt16(text)
            if let code { table[code] = String(parts[3]) }
        }
        return table
    }

    func testCipherSuiteNamesAreTsharks() throws {
        let tshark = try tsharkValues("tls.handshake.ciphersuite")
        XCTAssertGreaterThan(tshark.count, 300)
        for (code, name) in TLSNames.cipherSuites.sorted(by: { $0.key < $1.key }) {
            XCTAssertEqual(tshark[code], name, String(format: "cipher suite 0x%04x", code))
        }
        XCTAssertEqual(TLSNames.cipherSuite(0x1301), "TLS_AES_128_GCM_SHA256")
        XCTAssertNil(TLSNames.cipherSuite(0x0A0A), "a GREASE value has no name")
    }

    func testVersionNamesAreTsharks() throws {
        let tshark = try tsharkValues("tls.handshake.version")
        var checked = 0
        for code in UInt16(0) ... UInt16.max {
            guard let name = TLSNames.version(code) else { continue }
            // DTLS 1.3 (RFC 9147 §5.3, 0xfefc) is newer than Debian 12's tshark table.
            if code == 0xFEFC && tshark[code] == nil { continue }
            XCTAssertEqual(tshark[code], name, String(format: "version 0x%04x", code))
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 14)
    }
}
