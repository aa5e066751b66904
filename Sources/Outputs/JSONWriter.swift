/// Builds one JSON object (a record line) into a reusable byte buffer.
///
/// Analyzers write records with it instead of `JSONEncoder`: keys and
/// values are appended in order, strings escaped per RFC 8259 §7 (bytes
/// that are not valid UTF-8 become U+FFFD), and `line()` hands back the
/// finished record with its newline. `reset()` keeps the capacity.
public struct JSONWriter: Sendable {
    public internal(set) var bytes: [UInt8] = []
    /// Per open container: whether nothing was written in it yet.
    private var empty: [Bool] = []
    /// A key was written and its value is next.
    private var afterKey = false
    /// The date and time of day `timestamp(_:_:)` wrote last.
    var timestampCache = TimestampCache()

    public init(capacity: Int = 4096) { bytes.reserveCapacity(capacity) }

    public mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        empty.removeAll(keepingCapacity: true)
        afterKey = false
    }

    /// A comma before every element but the first of its container.
    private mutating func element() {
        guard let last = empty.last else { return }
        if !last { bytes.append(UInt8(ascii: ",")) }
        empty[empty.count - 1] = false
    }

    private mutating func key(_ key: String) {
        element()
        appendUTF8(key)
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    private mutating func valueStart() {
        if afterKey { afterKey = false } else { element() }
    }

    public mutating func beginObject(_ key: String? = nil) {
        if let key { self.key(key) }
        valueStart()
        bytes.append(UInt8(ascii: "{"))
        empty.append(true)
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        empty.removeLast()
    }

    public mutating func beginArray(_ key: String? = nil) {
        if let key { self.key(key) }
        valueStart()
        bytes.append(UInt8(ascii: "["))
        empty.append(true)
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        empty.removeLast()
    }

    public mutating func string(_ key: String?, _ value: String) {
        if let key { self.key(key) }
        valueStart()
        appendUTF8(value)
    }

    /// A string's bytes read in place (a native string's contiguous UTF-8): scanning them is several times
    /// cheaper than walking `String.UTF8View`, and keys and most values are such strings.
    @inline(__always)
    private mutating func appendUTF8(_ text: String) {
        let done: Void? = text.utf8.withContiguousStorageIfAvailable { appendString($0) }
        if done == nil { appendString(text.utf8) }
    }

    public mutating func string(_ key: String?, _ value: [UInt8]) { string(key, bytes: value) }

    public mutating func string<C: Collection>(_ key: String?, bytes value: C) where C.Element == UInt8 {
        if let key { self.key(key) }
        valueStart()
        appendString(value)
    }

    public mutating func number(_ key: String?, _ value: Int) {
        if let key { self.key(key) }
        valueStart()
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        // Decimal digits written in place, most significant first (no String per number).
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[23 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[(24 - count)...]))
        }
    }

    public mutating func number(_ key: String?, _ value: Double) {
        if let key { self.key(key) }
        valueStart()
        bytes.append(contentsOf: (value.isFinite ? "\(value)" : "null").utf8)
    }

    public mutating func bool(_ key: String?, _ value: Bool) {
        if let key { self.key(key) }
        valueStart()
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    public mutating func null(_ key: String?) {
        if let key { self.key(key) }
        valueStart()
        bytes.append(contentsOf: "null".utf8)
    }

    /// `text` as one quoted JSON string, escaped as every record escapes it (for records built as text).
    public static func quoted(_ text: String) -> String {
        var writer = JSONWriter(capacity: text.utf8.count + 8)
        writer.appendString(text.utf8)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    /// A JSON string from bytes; invalid UTF-8 sequences become U+FFFD.
    private mutating func appendString<C: Collection>(_ raw: C) where C.Element == UInt8 {
        bytes.append(UInt8(ascii: "\""))
        // ASCII without characters to escape (most keys and values) is copied as it is.
        if raw.allSatisfy({ $0 >= 0x20 && $0 < 0x80 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            bytes.append(contentsOf: raw)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        let text = String(decoding: raw, as: UTF8.self)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped(UInt8(ascii: "\""))
            case "\\": escaped(UInt8(ascii: "\\"))
            case "\n": escaped(UInt8(ascii: "n"))
            case "\r": escaped(UInt8(ascii: "r"))
            case "\t": escaped(UInt8(ascii: "t"))
            default:
                if scalar.value < 0x20 {
                    bytes.append(contentsOf: "\\u00".utf8)
                    bytes.append(hexDigit(UInt8(scalar.value >> 4)))
                    bytes.append(hexDigit(UInt8(scalar.value & 0xF)))
                } else {
                    UTF8.encode(scalar) { bytes.append($0) }
                }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// A two-character escape: a backslash and `character`.
    private mutating func escaped(_ character: UInt8) {
        bytes.append(UInt8(ascii: "\\"))
        bytes.append(character)
    }

    /// The record as one line of text.
    public var line: String { String(decoding: bytes, as: UTF8.self) + "\n" }

    /// The record and its newline, lent to `body` without making a String.
    public mutating func withLine(_ body: (UnsafeRawBufferPointer) -> Void) {
        bytes.append(UInt8(ascii: "\n"))
        bytes.withUnsafeBytes { body($0) }
        bytes.removeLast()
    }
}

/// The lower-case hex digit of a nibble (0…15).
@inline(__always)
public func hexDigit(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? UInt8(ascii: "0") &+ nibble : UInt8(ascii: "a") &+ (nibble &- 10)
}
