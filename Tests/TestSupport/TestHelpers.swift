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

/// The per-thread malloc count exported by the LD_PRELOAD counting shim described in
/// Tests/DefragmentTests/AllocationTests.swift; the calling test skips when the shim is not loaded.
public func mallocCallCounter() throws -> @convention(c) () -> UInt64 {
    guard let symbol = dlsym(nil, "flowtap_malloc_calls") else {
        throw XCTSkip("run with LD_PRELOAD of the counting shim (see Tests/DefragmentTests/AllocationTests.swift)")
    }
    return unsafeBitCast(symbol, to: (@convention(c) () -> UInt64).self)
}
