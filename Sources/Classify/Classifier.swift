// Classify: SF-TAP rule classification (reference §3) on Vectorscan.
//
// # What a call answers
// Which rule section a TCP connection or a UDP datagram belongs to, and
// which side of the rule each direction's bytes matched. The caller (the
// engine) decides *when* to ask: SF-TAP asks once both directions have
// data, and forces an answer on close or past 64 KiB; that policy is not
// here. This module sees only ports and bytes.
//
// # Semantics (SF-TAP's `send_tcp_data` and `in_datagram`)
// - Patterns are RE2 source compiled with Vectorscan, block mode, one
//   database per protocol (and per text mode, below). Flags: DOTALL always
//   (RE2 `dot_nl=true`); UTF8 only for `utf8: yes`, otherwise byte-wise,
//   which is RE2's Latin-1; ALLOWEMPTY, so '.*' and '^.?' match an empty
//   buffer as RE2 does; SINGLEMATCH, since only "did it match" matters.
//   Matching is RE2 PartialMatch: anywhere, unless anchored with '^'.
// - Order: rules grouped by `nice`, ascending. Within a level, first the
//   regex rules, then the port-only rules, each in byte order of the
//   section name (SF-TAP's `std::map<std::string>`); equal names keep
//   input order. After every level, the default rule, if given.
// - TCP regex rule: a TCP rule with both `up` and `down`. It matches when
//   its ports match and (buf1 ~ up and buf2 ~ down → first .up, second
//   .down) or else (buf1 ~ down and buf2 ~ up → .down, .up). Only the
//   first 4096 bytes of each direction are examined. Either buffer may be
//   empty.
// - UDP regex rule: a UDP rule with `up`; `down` is never used. It matches
//   when its ports match and the whole datagram (no 4 KiB cut) ~ up; the
//   datagram is labelled .up.
// - Port-only rule: a TCP rule lacking `up` or `down`, a UDP rule lacking
//   `up`. It matches on ports alone; labels .unmatched. So a TCP rule with
//   only `up` and no `port` takes every flow at its level, as in SF-TAP.
//   Each protocol tries only its own rules.
// - Ports: a rule matches if either endpoint's port lies in any of its
//   inclusive ranges; no ranges means any port.
// - `tcp_default`/`udp_default` (indices passed in): tried last, labels
//   .unmatched; they are never tried inside a level, whatever their
//   `proto`, `nice` or patterns. No match and no default: nil.
//
// # Where FlowTap differs from SF-TAP, on purpose
// - No first-byte cache and no LRU reordering (`cache`, `lru` keys). The
//   cache skipped the port check and inverted labels when hit through
//   buf2; LRU made same-nice ties depend on each regex thread's history.
//   Here ties always go to the alphabetically first rule, so the same
//   bytes always give the same answer.
// - A pattern Vectorscan cannot compile stops start-up with a
//   `ClassifierError` naming rule, key and pattern. RE2 logged the error
//   and the rule silently never matched. Patterns that are never scanned
//   (a default rule's, a UDP `down`, one side of a port-only TCP rule)
//   are still checked.
// - `$` is rewritten to `\z` so it keeps RE2's end-of-text meaning (see
//   RE2Dialect.swift); other dialect gaps are listed there.
// - `utf8: yes` patterns see each buffer only up to its first byte that is
//   not well-formed UTF-8 (or a character cut by the 4096-byte limit).
//   Vectorscan leaves matching of invalid UTF-8 undefined; RE2 lets an
//   unanchored match start after such bytes, which is lost here. A
//   `$`/`\z` in a utf8 pattern matches at that cut.
//   Byte-wise patterns live in their own database and always see every
//   examined byte.
// - An empty UDP datagram is classified like any other (SF-TAP read its
//   nonexistent first byte for the cache index).
// - All patterns are scanned at once per buffer, rather than rule by rule;
//   the answer is the same, the work is one pass per direction.
//
// # Which Vectorscan routine runs
// The first rule set with patterns runs a known-answer self-test (see
// VectorscanRuntime.swift). Debian 12's libvectorscan 5.4.9 misses matches
// in its AVX-512 and AVX2 scan routines, so on such machines the SSE4.2
// (corei7) routine is used instead, with databases compiled for it;
// `CompiledRules.vectorscanRuntime` names the choice for the logs. If no
// routine passes, start-up fails with a `.vectorscan` error.
//
// # Invariants and limits
// - A call allocates nothing: Vectorscan scratch, the match bitsets and
//   the plans are made in `init`. Each buffer is scanned at most once per
//   call, and only when some regex rule's ports match (a port-only rule
//   earlier in the order answers without scanning).
// - Matches are recorded by pattern id in a fixed bitset (ids are dense,
//   identical patterns share one), handed to the C callback as its context
//   pointer; no Swift object is captured.
// - Time per call is linear in the examined bytes (Vectorscan does not
//   backtrack) plus the number of rules. With the example config, release
//   build, corei7 routine: ~0.1 µs for a port-only answer, ~0.7 µs for a
//   small HTTP exchange, ~1.5 µs when both directions fill 4096 bytes.
// - Inspection depth: 4096 bytes per TCP direction (`tcpInspectionLimit`);
//   a UDP datagram whole (at most 65535 bytes on the wire).
//
// # Threads
// `CompiledRules` is immutable and `Sendable`: compile once, share it.
// A `Classifier` owns Vectorscan scratch and the bitsets, so it must be
// used from one thread at a time; make one per thread with
// `Classifier(compiled:)`.

import CVectorscan

/// Classifies TCP connections and UDP datagrams by SF-TAP rules.
/// Use from one thread at a time (it owns Vectorscan scratch).
public final class Classifier {
    /// Bytes of each TCP direction that are examined (SF-TAP `read_bytes(…, 4096)`).
    public static let tcpInspectionLimit = 4096

    public let compiled: CompiledRules
    public var rules: [ClassificationRule] { compiled.rules }
    /// Scans Vectorscan refused (it only does so for invalid arguments, so
    /// this should stay 0); each lost that buffer's matches.
    public private(set) var scanFailures: UInt64 = 0

    private let scratch: OpaquePointer?
    /// `hs_scan` or the variant the self-test chose; set when any database exists.
    private let scanFunction: ScanFunction?
    private let tcpSteps: [RuleStep]
    private let tcpPorts: [PortRange]
    private let tcpBytewise: OpaquePointer?
    private let tcpUTF8: OpaquePointer?
    private let tcpDefault: Int32
    private let tcpWords: Int
    /// Two bitsets of `tcpWords` words: buffer1's matches, then buffer2's.
    private let tcpBits: UnsafeMutablePointer<UInt64>
    private let udpSteps: [RuleStep]
    private let udpPorts: [PortRange]
    private let udpBytewise: OpaquePointer?
    private let udpUTF8: OpaquePointer?
    private let udpDefault: Int32
    private let udpWords: Int
    private let udpBits: UnsafeMutablePointer<UInt64>
    /// Vectorscan wants a non-null data pointer even for zero bytes.
    private let emptyByte: UnsafeMutablePointer<UInt8>

    /// Compiles `rules` and prepares a classifier for the calling thread.
    public convenience init(rules: [ClassificationRule], tcpDefault: Int? = nil, udpDefault: Int? = nil) throws(ClassifierError) {
        try self.init(compiled: CompiledRules(rules: rules, tcpDefault: tcpDefault, udpDefault: udpDefault))
    }

    /// A classifier over an already compiled rule set (one per thread).
    public init(compiled: CompiledRules) throws(ClassifierError) {
        self.compiled = compiled
        // One scratch grown to fit every database this classifier scans.
        var scratch: OpaquePointer?
        for database in [compiled.tcp.bytewise, compiled.tcp.utf8, compiled.udp.bytewise, compiled.udp.utf8] {
            guard let database else { continue }
            let rc = hs_alloc_scratch(database.handle, &scratch)
            guard rc == HS_SUCCESS else {
                if let scratch { hs_free_scratch(scratch) }
                throw ClassifierError(kind: .vectorscan, ruleName: nil, side: nil, pattern: nil, message: "hs_alloc_scratch returned \(rc)", offset: nil)
            }
        }
        self.scratch = scratch
        scanFunction = compiled.scan
        tcpSteps = compiled.tcp.steps
        tcpPorts = compiled.tcp.ports
        tcpBytewise = compiled.tcp.bytewise?.handle
        tcpUTF8 = compiled.tcp.utf8?.handle
        tcpDefault = compiled.tcp.defaultRule
        tcpWords = max(1, (compiled.tcp.patternCount + 63) / 64)
        tcpBits = .allocate(capacity: 2 * tcpWords)
        tcpBits.initialize(repeating: 0, count: 2 * tcpWords)
        udpSteps = compiled.udp.steps
        udpPorts = compiled.udp.ports
        udpBytewise = compiled.udp.bytewise?.handle
        udpUTF8 = compiled.udp.utf8?.handle
        udpDefault = compiled.udp.defaultRule
        udpWords = max(1, (compiled.udp.patternCount + 63) / 64)
        udpBits = .allocate(capacity: udpWords)
        udpBits.initialize(repeating: 0, count: udpWords)
        emptyByte = .allocate(capacity: 1)
        emptyByte.initialize(to: 0)
    }

    deinit {
        if let scratch { hs_free_scratch(scratch) }
        tcpBits.deallocate()
        udpBits.deallocate()
        emptyByte.deallocate()
    }

    /// Classifies a TCP connection from the first bytes of each direction.
    ///
    /// `buffer1` holds what endpoint 1 (port1) sent, `buffer2` what endpoint
    /// 2 sent; either may be empty. Only the first `tcpInspectionLimit`
    /// bytes of each are examined. Nil: no rule and no `tcp_default`.
    public func classifyTCP(
        port1: UInt16, port2: UInt16, buffer1: UnsafeRawBufferPointer, buffer2: UnsafeRawBufferPointer
    ) -> Classification? {
        let bits1 = tcpBits
        let bits2 = tcpBits + tcpWords
        var scanned = false
        var i = 0
        while i < tcpSteps.count {
            let step = tcpSteps[i]
            i &+= 1
            guard Self.portsMatch(step, tcpPorts, port1, port2) else { continue }
            if step.up < 0 {
                return Classification(ruleIndex: Int(step.rule), first: .unmatched, second: .unmatched)
            }
            if !scanned {
                scan(buffer1, limit: Self.tcpInspectionLimit, tcpBytewise, tcpUTF8, into: bits1, words: tcpWords)
                scan(buffer2, limit: Self.tcpInspectionLimit, tcpBytewise, tcpUTF8, into: bits2, words: tcpWords)
                scanned = true
            }
            if Self.test(bits1, step.up), Self.test(bits2, step.down) {
                return Classification(ruleIndex: Int(step.rule), first: .up, second: .down)
            }
            if Self.test(bits1, step.down), Self.test(bits2, step.up) {
                return Classification(ruleIndex: Int(step.rule), first: .down, second: .up)
            }
        }
        if tcpDefault >= 0 {
            return Classification(ruleIndex: Int(tcpDefault), first: .unmatched, second: .unmatched)
        }
        return nil
    }

    /// Classifies one UDP datagram by its ports and whole payload.
    /// Nil: no rule and no `udp_default` (SF-TAP drops the datagram).
    public func classifyUDP(port1: UInt16, port2: UInt16, payload: UnsafeRawBufferPointer) -> DatagramClassification? {
        var scanned = false
        var i = 0
        while i < udpSteps.count {
            let step = udpSteps[i]
            i &+= 1
            guard Self.portsMatch(step, udpPorts, port1, port2) else { continue }
            if step.up < 0 {
                return DatagramClassification(ruleIndex: Int(step.rule), matched: .unmatched)
            }
            if !scanned {
                scan(payload, limit: Int(UInt32.max), udpBytewise, udpUTF8, into: udpBits, words: udpWords)
                scanned = true
            }
            if Self.test(udpBits, step.up) {
                return DatagramClassification(ruleIndex: Int(step.rule), matched: .up)
            }
        }
        if udpDefault >= 0 {
            return DatagramClassification(ruleIndex: Int(udpDefault), matched: .unmatched)
        }
        return nil
    }

    // MARK: - Hot-path helpers

    @inline(__always)
    private func scan(
        _ buffer: UnsafeRawBufferPointer, limit: Int, _ bytewise: OpaquePointer?, _ utf8: OpaquePointer?,
        into bits: UnsafeMutablePointer<UInt64>, words: Int
    ) {
        bits.update(repeating: 0, count: words)
        let count = min(buffer.count, limit)
        let base = UnsafeRawPointer(buffer.baseAddress ?? UnsafeRawPointer(emptyByte))
        let context = UnsafeMutableRawPointer(bits)
        // A failed scan leaves the bitset partial (fewer matches); counted.
        guard let scanFunction else { return }
        if let bytewise {
            let rc = scanFunction(bytewise, base.assumingMemoryBound(to: CChar.self), UInt32(count), 0, scratch, recordMatch, context)
            if rc != HS_SUCCESS { scanFailures &+= 1 }
        }
        if let utf8 {
            let valid = validUTF8PrefixLength(base.assumingMemoryBound(to: UInt8.self), count)
            let rc = scanFunction(utf8, base.assumingMemoryBound(to: CChar.self), UInt32(valid), 0, scratch, recordMatch, context)
            if rc != HS_SUCCESS { scanFailures &+= 1 }
        }
    }

    @inline(__always)
    private static func test(_ bits: UnsafeMutablePointer<UInt64>, _ id: Int32) -> Bool {
        let id = Int(id)
        return bits[id &>> 6] & (1 &<< UInt64(id & 63)) != 0
    }

    @inline(__always)
    private static func portsMatch(_ step: RuleStep, _ ports: [PortRange], _ port1: UInt16, _ port2: UInt16) -> Bool {
        if step.portStart == step.portEnd { return true }
        var i = Int(step.portStart)
        let end = Int(step.portEnd)
        while i < end {
            let range = ports[i]
            if (range.lower <= port1 && port1 <= range.upper) || (range.lower <= port2 && port2 <= range.upper) {
                return true
            }
            i &+= 1
        }
        return false
    }
}

/// Vectorscan match callback: sets bit `id` in the bitset passed as
/// context. Ids are dense and below the bitset's size by construction.
let recordMatch: match_event_handler = { id, _, _, _, context in
    guard let context else { return 0 }
    let words = context.assumingMemoryBound(to: UInt64.self)
    words[Int(id &>> 6)] |= 1 &<< UInt64(id & 63)
    return 0
}
