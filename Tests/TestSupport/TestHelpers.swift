#if canImport(Glibc)
import Glibc
#endif
import XCTest

/// SplitMix64 (Steele, Lea, Flood 2014): seeded, repeatable test input.
public struct SeededRandom: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Bytes from lower-case hex text, skipping anything else (tshark's `follow,…,raw` lines).
public func hexBytes<S: StringProtocol>(_ text: S) -> [UInt8] {
    var out: [UInt8] = []
    var high: UInt8?
    for c in text.utf8 {
        let v: UInt8
        switch c {
        case UInt8(ascii: "0") ... UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
        case UInt8(ascii: "a") ... UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
        default: continue
        }
        if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
    }
    return out
}

/// The per-thread malloc count exported by the LD_PRELOAD counting shim (scripts/malloc-count.c);
/// the calling test skips when the shim is not loaded. `scripts/test.sh` runs these tests with it.
/// Fails the test when the counter does not see an allocation Swift makes, or a zero would prove nothing.
public func mallocCallCounter(file: StaticString = #filePath, line: UInt = #line) throws -> @convention(c) () -> UInt64 {
    guard let symbol = dlsym(nil, "flowtap_malloc_calls") else {
        throw XCTSkip("run with LD_PRELOAD of the counting shim scripts/malloc-count.c (scripts/test.sh does)")
    }
    let mallocCalls = unsafeBitCast(symbol, to: (@convention(c) () -> UInt64).self)
    let before = mallocCalls()
    let probe = [Int](unsafeUninitializedCapacity: 64) { _, count in count = 0 }
    XCTAssertGreaterThan(mallocCalls() &- before, 0, "the shim does not see allocations", file: file, line: line)
    XCTAssertGreaterThanOrEqual(probe.capacity, 64, file: file, line: line)
    return mallocCalls
}
