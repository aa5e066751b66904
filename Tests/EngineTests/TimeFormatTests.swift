import SFTapCodec
import CShims
import Engine
import Flows
import PacketCore
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
        for _ in 0 ..< 300_000 {
            // Seconds since 1970 up to 2106 plus microseconds, as the engine forms them.
            let seconds = Double(UInt32.random(in: 0 ... .max, using: &random))
            let micros = Double(Int.random(in: 0 ..< 1_000_000, using: &random))
            let value = seconds + micros * 1e-6
            XCTAssertEqual(fast(value), libc(value), "\(value.bitPattern)")
        }
    }

    /// The capture-time path, its ten integer digits kept while the second stays the same, against
    /// printf: runs of times within one second, jumps between seconds, and values outside its range.
    func testCaptureTimePathWithItsCacheMatchesPrintf() {
        var random = SeededRandom(seed: 31)
        var cache = flowtap_time_text()
        cache.seconds = .max
        var buffer = [CChar](repeating: 0, count: 64)
        var seconds = 1_700_000_000.0
        for step in 0 ..< 300_000 {
            switch Int.random(in: 0 ..< 100, using: &random) {
            case 0: seconds = Double(UInt32.random(in: 0 ... .max, using: &random))
            case 1: seconds = Double(Int.random(in: 999_999_990 ... 1_000_000_010, using: &random))
            case 2: seconds = 9_999_999_999
            case 3 ..< 20: seconds += 1
            default: break
            }
            let micros = step % 50 == 0 ? Double([0, 999_999, 100_000, 10].randomElement(using: &random)!)
                                        : Double(Int.random(in: 0 ..< 1_000_000, using: &random))
            let value = seconds + micros * 1e-6
            let n = buffer.withUnsafeMutableBufferPointer { flowtap_format_g17_time($0.baseAddress!, 64, value, &cache) }
            XCTAssertGreaterThan(n, 0)
            let text = String(decoding: buffer.prefix(Int(max(0, n))).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            XCTAssertEqual(text, libc(value), "\(value.bitPattern)")
        }
        // The largest values below 1e10, which round up to it.
        for value in [9_999_999_999.999_999, 9_999_999_999.999_999_9, 1e10.nextDown, 1e9, 1e9.nextDown] {
            let n = buffer.withUnsafeMutableBufferPointer { flowtap_format_g17_time($0.baseAddress!, 64, value, &cache) }
            XCTAssertEqual(String(decoding: buffer.prefix(Int(max(0, n))).map { UInt8(bitPattern: $0) }, as: UTF8.self), libc(value))
        }
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

/// Addresses in text headers are inet_ntop's text, written without inet_ntop.
final class AddressFormatTests: XCTestCase {
    func testAddressesMatchInetNtop() {
        var random = SeededRandom(seed: 19)
        var addresses: [IPAddress] = [.zero, IPAddress(ipv4: 0xFFFF_FFFF), IPAddress(ipv4: 0x0A00_0001)]
        // Shapes with zero runs of every length and place, IPv4-mapped and -compatible forms.
        for _ in 0 ..< 100_000 {
            var words = (0 ..< 8).map { _ in UInt64.random(in: 0 ... 0xFFFF, using: &random) }
            for i in words.indices where Bool.random(using: &random) || Int.random(in: 0 ..< 3, using: &random) == 0 { words[i] = 0 }
            if Int.random(in: 0 ..< 10, using: &random) == 0 { words[5] = 0xFFFF; for i in 0 ..< 5 { words[i] = 0 } }
            if Int.random(in: 0 ..< 20, using: &random) == 0 { words[7] = 1 }
            let high = words[0 ..< 4].reduce(0) { $0 << 16 | $1 }, low = words[4 ..< 8].reduce(0) { $0 << 16 | $1 }
            addresses.append(IPAddress(high: high, low: low, isIPv6: true))
            addresses.append(IPAddress(ipv4: UInt32.random(in: 0 ... .max, using: &random)))
        }
        var mismatches = 0
        for a in addresses where SFTapHeaderWriter.addressText(a) != SFTapHeaderWriter.inetNtop(a) {
            mismatches += 1
            if mismatches < 5 { XCTFail("\(SFTapHeaderWriter.addressText(a)) != \(SFTapHeaderWriter.inetNtop(a))") }
        }
        XCTAssertEqual(mismatches, 0)
    }
}

/// Numbers in text headers (ports, octets, lengths, VLAN -1) as Swift prints them.
final class DecimalFormatTests: XCTestCase {
    func testDecimalsMatchSwift() {
        var values = Array(-1_000 ... 70_000) + [Int.max, Int.min, Int.min + 1, 99_999_999, 100_000_000, 1_000_000_000_000_000_000]
        var random = SeededRandom(seed: 37)
        for _ in 0 ..< 100_000 { values.append(Int(truncatingIfNeeded: UInt64.random(in: 0 ... .max, using: &random) >> UInt64.random(in: 0 ... 63, using: &random))) }
        var mismatches = 0
        for v in values where SFTapHeaderWriter.decimalText(v) != String(v) {
            mismatches += 1
            if mismatches < 5 { XCTFail("\(v): \(SFTapHeaderWriter.decimalText(v))") }
        }
        XCTAssertEqual(mismatches, 0)
    }
}

/// A flow's cached header prefix gives the same header, byte for byte, as formatting from the key.
final class HeaderPrefixTests: XCTestCase {
    func testPrefixedHeadersEqualHeadersFromTheKey() {
        var random = SeededRandom(seed: 23)
        var plain = SFTapHeaderWriter(), cached = SFTapHeaderWriter(), prefixWriter = SFTapHeaderWriter()
        defer { plain.deallocate(); cached.deallocate(); prefixWriter.deallocate() }
        let protocols: [UInt8] = [6, 17, 1, 58]
        for n in 0 ..< 50_000 {
            let v6 = n % 3 == 0
            func address() -> IPAddress {
                v6 ? IPAddress(high: UInt64.random(in: 0 ... .max, using: &random) & (n % 2 == 0 ? 0xFFFF_0000_0000_FFFF : .max),
                               low: UInt64.random(in: 0 ... .max, using: &random), isIPv6: true)
                   : IPAddress(ipv4: UInt32.random(in: 0 ... .max, using: &random))
            }
            let key = FlowKey(address1: address(), port1: UInt16.random(in: 0 ... .max, using: &random), address2: address(),
                              port2: UInt16.random(in: 0 ... .max, using: &random), ipProtocol: protocols[n % 4],
                              vlan: n % 5 == 0 ? FlowKey.noVLAN : UInt16.random(in: 0 ... 4095, using: &random),
                              hop: UInt8.random(in: 0 ... .max, using: &random))
            let prefix = Array(prefixWriter.textPrefix(key: key))
            XCTAssertLessThanOrEqual(prefix.count, SFTapHeaderWriter.maxTextPrefix)
            let event: SFTapEvent.Kind = [.created, .destroyed, .data][n % 3]
            let fromFirst: Bool? = [true, false, nil][(n / 3) % 3]
            let match: SFTapEvent.Match = [.up, .down, .none][(n / 9) % 3]
            let reason: DestroyReason = [.normal, .reset, .timeout, .compromised][(n / 27) % 4]
            let length = Int.random(in: 0 ... 70_000, using: &random)
            let time = Timestamp(nanoseconds: Int64.random(in: 0 ... 4_000_000_000_000_000_000, using: &random) / 1000 * 1000)
            let expected = Array(plain.text(key: key, event: event, fromFirst: fromFirst, match: match, length: length, reason: reason, time: time))
            let got = prefix.withUnsafeBytes {
                Array(cached.text(prefix: $0, event: event, fromFirst: fromFirst, match: match, length: length, reason: reason, time: time))
            }
            if got != expected {
                XCTFail("\(String(decoding: got, as: UTF8.self)) != \(String(decoding: expected, as: UTF8.self))")
                return
            }
        }
    }
}
