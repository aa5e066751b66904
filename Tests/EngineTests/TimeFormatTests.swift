import CShims
import TestSupport
import XCTest

/// SF-TAP's text headers print time as "%.17g"; the formatter's integer path must equal printf exactly.
final class TimeFormatTests: XCTestCase {
    private func fast(_ value: Double) -> String { format(value, flowtap_format_g17) }
    private func libc(_ value: Double) -> String { format(value, flowtap_format_g17_libc) }

    private func format(_ value: Double, _ f: (UnsafeMutablePointer<CChar>, Int, Double) -> Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBufferPointer { f($0.baseAddress!, 64, value) }
        XCTAssertGreaterThan(n, 0)
        return String(decoding: buffer.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func testCaptureTimestampsMatchPrintf() {
        var random = SeededRandom(seed: 17)
        var checked = 0
        for _ in 0 ..< 300_000 {
            // Seconds since 1970 up to 2106 plus microseconds, as the engine forms them.
            let seconds = Double(UInt32.random(in: 0 ... .max, using: &random))
            let micros = Double(Int.random(in: 0 ..< 1_000_000, using: &random))
            let value = seconds + micros * 1e-6
            XCTAssertEqual(fast(value), libc(value), "\(value.bitPattern)")
            checked += 1
        }
        XCTAssertEqual(checked, 300_000)
    }

    func testEdgesAndArbitraryDoublesMatchPrintf() {
        var values: [Double] = [0, 1, 0.5, 9.5, 10, 99.99999999999999, 999.99999999999999, 1e15, 9_999_999_999_999_998, 1e16, 1e17,
                                123_456_789.000_000_1, 1_700_000_000.123_456, 4_294_967_295.999_999, .ulpOfOne + 1, 2.5, 0.1, -1, .infinity]
        var random = SeededRandom(seed: 18)
        for _ in 0 ..< 200_000 {
            // Random bit patterns across the fast path's range [1, 1e16) and beyond it.
            let exponent = UInt64.random(in: 1000 ... 1080, using: &random)
            let mantissa = UInt64.random(in: 0 ..< (1 << 52), using: &random)
            values.append(Double(bitPattern: exponent << 52 | mantissa))
        }
        for value in values where !value.isNaN {
            XCTAssertEqual(fast(value), libc(value), "\(value.bitPattern)")
        }
    }
}
