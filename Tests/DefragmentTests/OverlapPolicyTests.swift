import Defragment
import PacketCore
import Wire
import XCTest

/// The policies' per-byte definition, written from the table in
/// `OverlapPolicy`'s documentation with one owner per byte: a reference to
/// check the extent bookkeeping against.
struct ByteOwnerModel {
    static func newWins(_ policy: OverlapPolicy, s: Int, e: Int, s0: Int, e0: Int) -> Bool {
        switch policy {
        case .first: return false
        case .last: return true
        case .bsd: return s < s0
        case .bsdRight: return e > e0 || (e == e0 && s <= s0)
        case .linux: return s <= s0
        case .windows: return s < s0 && e > e0
        case .solaris: return s < s0 && e >= e0
        }
    }

    /// Feeds fragments in order; the payload at the moment the datagram first completes, or nil.
    static func reassemble(_ fragments: [FragmentSpec], policy: OverlapPolicy) -> [UInt8]? {
        completion(fragments, policy: policy).map(\.payload)
    }

    /// The payload and the index of the fragment that completed it.
    static func completion(_ fragments: [FragmentSpec], policy: OverlapPolicy) -> (payload: [UInt8], index: Int)? {
        let size = fragments.map(\.end).max() ?? 0
        var bytes = [UInt8](repeating: 0, count: size)
        var owner = [(Int, Int)?](repeating: nil, count: size)
        var haveFirst = false
        var end: Int?
        for (index, f) in fragments.enumerated() {
            for i in f.offset ..< f.end {
                if let (s0, e0) = owner[i], !newWins(policy, s: f.offset, e: f.end, s0: s0, e0: e0) { continue }
                bytes[i] = f.data[i - f.offset]
                owner[i] = (f.offset, f.end)
            }
            if f.offset == 0 { haveFirst = true }
            if !f.more { end = f.end }
            if haveFirst, let end, owner[0 ..< end].allSatisfy({ $0 != nil }) {
                return (Array(bytes[0 ..< end]), index)
            }
        }
        return nil
    }
}

final class OverlapPolicyTests: XCTestCase {
    /// Two overlapping fragments, then fillers that complete the datagram: the payload, one letter per 8 bytes.
    func resolve(_ policy: OverlapPolicy, old: (Int, Int), new: (Int, Int), ipv6: Bool = false) -> String {
        let harness = Harness(policy: policy)
        var specs = [
            FragmentSpec(offset: old.0, data: Array(repeating: UInt8(ascii: "O"), count: old.1 - old.0), more: true),
            FragmentSpec(offset: new.0, data: Array(repeating: UInt8(ascii: "N"), count: new.1 - new.0), more: true),
        ]
        // Fill holes in [0, 32) with "_", then the last fragment "Z" at [32, 40).
        var covered = [Bool](repeating: false, count: 32)
        for s in specs { for i in s.offset ..< s.end { covered[i] = true } }
        for block in 0 ..< 4 where !covered[block * 8] {
            specs.append(FragmentSpec(offset: block * 8, data: Array(repeating: UInt8(ascii: "_"), count: 8), more: true))
        }
        specs.append(FragmentSpec(offset: 32, data: Array(repeating: UInt8(ascii: "Z"), count: 8), more: false))
        var result: Outcome = .incomplete
        for spec in specs {
            result = harness.feed(FragmentFactory.build(spec, ipv6: ipv6, id: 7))
        }
        guard let datagram = result.datagram else { return "incomplete: \(result)" }
        return String(reassembledPayload(datagram).enumerated().compactMap {
            $0.offset % 8 == 0 ? Character(UnicodeScalar($0.element)) : nil
        })
    }

    /// `bsd-right` has no Novak expectation in the corpus, so its cases are
    /// spelled out from frag3's insert logic (old fragment O, new fragment N).
    func testBSDRightPairwise() {
        // New starts inside the old one and reaches further right: new wins the overlap.
        XCTAssertEqual(resolve(.bsdRight, old: (0, 16), new: (8, 24)), "ONN_Z")
        // New lies inside the old one: the old one reaches at least as far, it wins.
        XCTAssertEqual(resolve(.bsdRight, old: (0, 24), new: (8, 16)), "OOO_Z")
        // New starts earlier but ends inside the old one: old wins (frag3 truncates the new one).
        XCTAssertEqual(resolve(.bsdRight, old: (8, 24), new: (0, 16)), "NOO_Z")
        // New covers the old one: new wins.
        XCTAssertEqual(resolve(.bsdRight, old: (8, 16), new: (0, 24)), "NNN_Z")
        // Same end: the fragment that starts first wins; a retransmission of the same range wins.
        XCTAssertEqual(resolve(.bsdRight, old: (0, 16), new: (8, 16)), "OO__Z")
        XCTAssertEqual(resolve(.bsdRight, old: (8, 16), new: (0, 16)), "NN__Z")
        XCTAssertEqual(resolve(.bsdRight, old: (0, 16), new: (0, 16)), "NN__Z")
    }

    /// The same pairs under the other policies, from Suricata's and frag3's rules.
    func testPairwiseAcrossPolicies() {
        // Same start, new longer.
        let sameStartLonger: [OverlapPolicy: String] = [
            .first: "OON_Z", .last: "NNN_Z", .bsd: "OON_Z", .bsdRight: "NNN_Z", .linux: "NNN_Z", .windows: "OON_Z", .solaris: "OON_Z",
        ]
        // New starts earlier and ends at the same place.
        let earlierSameEnd: [OverlapPolicy: String] = [
            .first: "NOO_Z", .last: "NNN_Z", .bsd: "NNN_Z", .bsdRight: "NNN_Z", .linux: "NNN_Z", .windows: "NOO_Z", .solaris: "NNN_Z",
        ]
        // New starts earlier and ends later.
        let covering: [OverlapPolicy: String] = [
            .first: "NON_Z", .last: "NNN_Z", .bsd: "NNN_Z", .bsdRight: "NNN_Z", .linux: "NNN_Z", .windows: "NNN_Z", .solaris: "NNN_Z",
        ]
        for policy in OverlapPolicy.allCases {
            for ipv6 in [false, true] {
                XCTAssertEqual(resolve(policy, old: (0, 16), new: (0, 24), ipv6: ipv6), sameStartLonger[policy], "\(policy) ipv6=\(ipv6)")
                XCTAssertEqual(resolve(policy, old: (8, 24), new: (0, 24), ipv6: ipv6), earlierSameEnd[policy], "\(policy) ipv6=\(ipv6)")
                XCTAssertEqual(resolve(policy, old: (8, 16), new: (0, 24), ipv6: ipv6), covering[policy], "\(policy) ipv6=\(ipv6)")
            }
        }
    }

    func testDropCodesFitTheInlineCounters() {
        XCTAssertLessThanOrEqual(DefragmentDrop.allCases.count, 16)
        var counts = DefragmentDropCounts()
        for (i, reason) in DefragmentDrop.allCases.enumerated() { counts[reason] = UInt64(i + 1) }
        XCTAssertEqual(counts.total, UInt64((1 ... DefragmentDrop.allCases.count).reduce(0, +)))
        XCTAssertEqual(Set(DefragmentDrop.allCases.map(\.name)).count, DefragmentDrop.allCases.count)
    }

    func testPolicyNamesAreTheSuricataNames() {
        XCTAssertEqual(OverlapPolicy.allCases.map(\.rawValue), ["first", "last", "bsd", "bsd-right", "linux", "windows", "solaris"])
        XCTAssertEqual(DefragmentConfig().policy, .bsd)
    }

    /// Random overlapping fragment sets under every policy: the extent
    /// bookkeeping gives the per-byte model's payload, at the same fragment.
    func testRandomOverlapsMatchThePerByteModel() {
        var rng = SeededRandom(seed: 0xDEF4_A61E)
        var checked = 0
        for trial in 0 ..< 400 {
            let ipv6 = trial % 2 == 1
            let blocks = Int.random(in: 3 ... 40, using: &rng)
            let end = blocks * 8
            // A tiling of [0, end) whose last piece has MF = 0, plus overlapping extras.
            var specs: [FragmentSpec] = []
            var at = 0
            while at < end {
                // At least two pieces: offset 0 with MF = 0 is no fragment (IPv4) or an atomic one (IPv6).
                let length = min(at == 0 ? end - 8 : end - at, 8 * Int.random(in: 1 ... 6, using: &rng))
                specs.append(FragmentSpec(offset: at, data: rng.bytes(length), more: at + length < end))
                at += length
            }
            for _ in 0 ..< Int.random(in: 1 ... 12, using: &rng) {
                let first = Int.random(in: 0 ..< blocks, using: &rng)
                let last = Int.random(in: first ..< min(blocks, first + 8), using: &rng)
                let isLast = first > 0 && last == blocks - 1 && rng.chance(50)
                specs.append(FragmentSpec(offset: first * 8, data: rng.bytes((last - first + 1) * 8), more: !isLast))
            }
            specs.shuffle(using: &rng)
            for policy in OverlapPolicy.allCases {
                let harness = Harness(policy: policy)
                var completedAt: Int?
                var datagram: [UInt8] = []
                for (index, spec) in specs.enumerated() {
                    let outcome = harness.feed(FragmentFactory.build(spec, ipv6: ipv6, id: UInt32(trial)))
                    if let bytes = outcome.datagram {
                        completedAt = index
                        datagram = bytes
                        break
                    }
                    XCTAssertEqual(outcome, .incomplete, "trial \(trial) \(policy) fragment \(index)")
                }
                guard let model = ByteOwnerModel.completion(specs, policy: policy) else {
                    XCTFail("trial \(trial): the model never completes")
                    continue
                }
                XCTAssertEqual(completedAt, model.index, "trial \(trial) \(policy)")
                XCTAssertEqual(reassembledPayload(datagram), model.payload, "trial \(trial) \(policy) ipv6=\(ipv6)")
                XCTAssertEqual(harness.counters.bytesHeld, 0)
                checked += 1
            }
        }
        XCTAssertEqual(checked, 400 * OverlapPolicy.allCases.count)
    }
}
