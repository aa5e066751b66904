/// RFC 4648 §4 base64 (standard alphabet, padded).
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ input: [UInt8]) -> [UInt8] {
        input.withUnsafeBytes { encode($0) }
    }

    public static func encode(_ input: UnsafeRawBufferPointer) -> [UInt8] {
        // Written into the array's storage directly: four appends per group were most of the cost.
        [UInt8](unsafeUninitializedCapacity: encodedCount(input.count)) { out, initialized in
            initialized = encode(input, into: out.baseAddress!)
        }
    }

    /// Bytes `encode` writes for `count` input bytes.
    public static func encodedCount(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    /// Writes the encoding of `input` at `out` (room for `encodedCount(input.count)` bytes); returns that count.
    @discardableResult
    public static func encode(_ input: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) -> Int {
        alphabet.withUnsafeBufferPointer { symbols in
            var i = 0, o = 0
            while i + 3 <= input.count {
                let v = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
                out[o] = symbols[Int(v >> 18)]
                out[o + 1] = symbols[Int(v >> 12 & 63)]
                out[o + 2] = symbols[Int(v >> 6 & 63)]
                out[o + 3] = symbols[Int(v & 63)]
                i += 3
                o += 4
            }
            let rest = input.count - i
            if rest > 0 {
                let v = UInt32(input[i]) << 16 | (rest == 2 ? UInt32(input[i + 1]) << 8 : 0)
                out[o] = symbols[Int(v >> 18)]
                out[o + 1] = symbols[Int(v >> 12 & 63)]
                out[o + 2] = rest == 2 ? symbols[Int(v >> 6 & 63)] : UInt8(ascii: "=")
                out[o + 3] = UInt8(ascii: "=")
                o += 4
            }
            return o
        }
    }
}
