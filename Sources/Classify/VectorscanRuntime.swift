// Which Vectorscan scan routine to trust, decided once per process by a
// known-answer self-test. Start-up only.
//
// Why: a "fat runtime" libhs holds one scan routine per instruction set
// (core2, corei7, avx2, avx512) and `hs_scan` jumps to the best one the
// CPU has. Debian 12's libvectorscan5 5.4.9 on an AVX-512 machine misses
// matches there: with '.' = any byte, '^A.*B' fails once 64 or more bytes
// separate A and B, and so does '^HTTP/1\.[01] [1-9][0-9]{2} .+\r?\n' for a
// status line over ~80 bytes. Its avx2 routine has a bug of its own:
// '^(EH|HE)LO .+\r\n' misses a 25-byte EHLO line when 'foo' shares the
// database. On fuzzed inputs built from SF-TAP's example patterns,
// 0.5-3.5 % of inputs got a wrong answer through `hs_scan` and 0.25 %
// through avx2; the corei7 (SSE4.2) and core2 (SSSE3) routines, with
// databases compiled for the baseline platform, agreed with Python's `re`
// on all of 200,000.
//
// So: try `hs_scan` on probes built from those cases; if it fails, use the
// same library's `corei7_hs_scan` (when the CPU has AVX2, and so SSE4.2
// and POPCNT) or else `core2_hs_scan`, each self-tested the same way. A
// database must be compiled for the routine that scans it (a corei7 scan
// of an AVX2 database crashed), so the fallbacks get baseline databases.
// The variant routines are found with dlsym: a library without them, or a
// fixed one, keeps `hs_scan`. If no candidate passes, start-up fails with
// a `.vectorscan` error rather than classifying wrongly.

import CVectorscan

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `hs_scan`'s signature, to call a variant routine through a pointer.
typealias ScanFunction = @convention(c) (
    OpaquePointer?, UnsafePointer<CChar>?, UInt32, UInt32, OpaquePointer?, match_event_handler?, UnsafeMutableRawPointer?
) -> hs_error_t

struct VectorscanRuntime: Sendable {
    let scan: ScanFunction
    /// The platform databases must be compiled for; nil = the host.
    let platform: hs_platform_info_t?
    /// e.g. "hs_scan" or "corei7_hs_scan (hs_scan failed the self-test)".
    let summary: String

    /// Selected on first use, then fixed for the process.
    static let selected: Result<VectorscanRuntime, ClassifierError> = select()

    private static func select() -> Result<VectorscanRuntime, ClassifierError> {
        var host = hs_platform_info_t()
        guard hs_populate_platform(&host) == HS_SUCCESS else {
            return .failure(ClassifierError(kind: .vectorscan, ruleName: nil, side: nil, pattern: nil, message: "hs_populate_platform failed", offset: nil))
        }
        var candidates: [(name: String, scan: ScanFunction, platform: hs_platform_info_t?)] = [("hs_scan", hs_scan, nil)]
        // Fallbacks scan databases compiled for the baseline platform.
        var baseline = host
        baseline.cpu_features = 0
        baseline.tune = UInt32(HS_TUNE_FAMILY_GENERIC)
        // corei7 needs SSE4.2 and POPCNT, which every AVX2 CPU has.
        if host.cpu_features & UInt64(HS_CPU_FEATURES_AVX2) != 0, let corei7 = symbol("corei7_hs_scan") {
            candidates.append(("corei7_hs_scan", corei7, baseline))
        }
        // SSSE3 (core2) is the least any libhs build runs on.
        if let core2 = symbol("core2_hs_scan") {
            candidates.append(("core2_hs_scan", core2, baseline))
        }
        var failed: [String] = []
        for candidate in candidates {
            if passesSelfTest(candidate.scan, platform: candidate.platform) {
                let note = failed.isEmpty ? "" : " (\(failed.joined(separator: ", ")) failed the self-test)"
                return .success(VectorscanRuntime(scan: candidate.scan, platform: candidate.platform, summary: candidate.name + note))
            }
            failed.append(candidate.name)
        }
        let version = String(cString: hs_version())
        return .failure(ClassifierError(
            kind: .vectorscan, ruleName: nil, side: nil, pattern: nil,
            message: "libhs \(version) gives wrong answers on this CPU (\(failed.joined(separator: ", ")) failed"
                + " the known-answer self-test); install another Vectorscan or Hyperscan build",
            offset: nil))
    }

    private static func symbol(_ name: String) -> ScanFunction? {
        #if os(Linux)
        // RTLD_DEFAULT (null on glibc and musl): libhs is linked into the process.
        guard let address = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(address, to: ScanFunction.self)
        #else
        // Fat-runtime builds, with per-CPU routines, are Linux-only.
        return nil
        #endif
    }

    /// Patterns, and inputs with the pattern ids each must match. Built
    /// from the failures described above, plus inputs that must not match.
    private struct Probe {
        var patterns: [String]
        var cases: [(data: [UInt8], matches: [UInt32])]
    }

    private static var probes: [Probe] {
        func gap(_ n: Int, _ head: String, _ tail: String) -> [UInt8] {
            Array(head.utf8) + [UInt8](repeating: 0x78, count: n) + Array(tail.utf8)
        }
        let status = #"^HTTP/1\.[01] [1-9][0-9]{2} .+\r?\n"#
        return [
            Probe(patterns: ["^A.*B"], cases: [0, 63, 64, 65, 100, 300].map { (gap($0, "A", "B"), [0]) } + [(gap(100, "A", ""), [])]),
            Probe(patterns: ["A.+B"], cases: [1, 102, 103, 150].map { (gap($0, "A", "B"), [0]) } + [(gap(150, "", "B"), [])]),
            Probe(patterns: [status], cases: [10, 64, 65, 70, 200].map { (gap($0, "HTTP/1.1 101 ", "\r\n"), [0]) }),
            Probe(patterns: ["foo", #"^(EH|HE)LO .+\r\n"#], cases: [
                (Array("EHLO client.example.org\r\n".utf8), [1]),
                (gap(80, "EHLO ", "\r\nfoo"), [0, 1]),
                (gap(80, "HELO ", "\n"), []),
            ]),
        ]
    }

    private static func passesSelfTest(_ scan: ScanFunction, platform: hs_platform_info_t?) -> Bool {
        for probe in probes {
            guard let database = try? VectorscanDatabase(
                patterns: probe.patterns, ids: probe.patterns.indices.map { UInt32($0) },
                flags: CompiledRules.flags(utf8: false), platform: platform,
                origins: probe.patterns.map { PatternOrigin(rule: "self-test", side: .up, source: $0, insertions: []) })
            else { return false }
            var scratch: OpaquePointer?
            guard hs_alloc_scratch(database.handle, &scratch) == HS_SUCCESS, let scratch else { return false }
            defer { hs_free_scratch(scratch) }
            for (data, expected) in probe.cases {
                var bits: UInt64 = 0
                let rc = data.withUnsafeBufferPointer { bytes in
                    withUnsafeMutablePointer(to: &bits) { context in
                        let text = UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self)
                        return scan(database.handle, text, UInt32(bytes.count), 0, scratch, recordMatch, UnsafeMutableRawPointer(context))
                    }
                }
                let want = expected.reduce(UInt64(0)) { $0 | (1 << UInt64($1)) }
                if rc != HS_SUCCESS || bits != want { return false }
            }
        }
        return true
    }
}
