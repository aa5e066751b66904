import PacketCore

/// Builds one JSON object (a record line) into a reusable byte buffer.
///
/// Analyzers write records with it instead of `JSONEncoder`: keys and
/// values are appended in order, strings escaped per RFC 8259 §7 (bytes
/// that are not valid UTF-8 become U+FFFD), and `line()` hands back the
/// finished record with its newline. `reset()` keeps the capacity.
public struct JSONWriter: ~Copyable, Sendable {
    /// The record so far.
    public internal(set) var buffer: RecordBytes
    /// The record so far, as an array (a copy).
    public var bytes: [UInt8] { buffer.array }
    /// Per open container, one bit from the least significant up: whether nothing was written in it yet
    /// (a bit stack rather than an array: it is read and written for every key and value).
    private var emptyBits: UInt64 = 0
    /// Open containers.
    private var depth = 0
    /// The empty bits of containers nested deeper than 64 (no record does; kept so nothing traps).
    private var deeperEmpty: [Bool] = []
    /// A key was written and its value is next.
    private var afterKey = false

    public init(capacity: Int = 4096) { buffer = RecordBytes(capacity: capacity) }

    public mutating func reset() {
        buffer.removeAll()
        emptyBits = 0
        depth = 0
        deeperEmpty.removeAll(keepingCapacity: true)
        afterKey = false
    }

    /// A comma before every element but the first of its container.
    @inline(__always)
    private mutating func element() {
        if takeComma() { buffer.append(UInt8(ascii: ",")) }
    }

    /// Marks the open container as no longer empty; returns whether the element takes a comma.
    @inline(__always)
    private mutating func takeComma() -> Bool {
        guard depth > 0 else { return false }
        if depth > 64 {
            let wasEmpty = deeperEmpty[deeperEmpty.count - 1]
            deeperEmpty[deeperEmpty.count - 1] = false
            return !wasEmpty
        }
        let bit: UInt64 = 1 << UInt64(depth - 1)
        let wasEmpty = emptyBits & bit != 0
        emptyBits &= ~bit
        return !wasEmpty
    }

    private mutating func pushContainer() {
        depth += 1
        if depth > 64 { deeperEmpty.append(true) } else { emptyBits |= 1 << UInt64(depth - 1) }
    }

    private mutating func popContainer() {
        guard depth > 0 else { return }
        if depth > 64 { deeperEmpty.removeLast() } else { emptyBits &= ~(1 << UInt64(depth - 1)) }
        depth -= 1
    }

    /// Keys are literals: their bytes are read in place and written as they are, with no scan, after a
    /// debug check that none needs escaping (a `String` key cost 144 instructions, most of a record's time
    /// in `flows` on flows of a few packets).
    @inline(__always)
    mutating func key(_ key: StaticString) {
        assert(key.hasPointerRepresentation && Self.isPlain(UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)),
               "JSON keys are plain ASCII literals")
        appendQuoted(UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount), comma: takeComma(), colon: true)
        afterKey = true
    }

    /// A key computed at run time (a metric's label name): scanned, and escaped where it needs it.
    public mutating func key(escaping key: String) {
        let comma = takeComma()
        let done: Bool? = key.utf8.withContiguousStorageIfAvailable { text in
            guard Self.isPlain(text) else { return false }
            appendQuoted(text, comma: comma, colon: true)
            return true
        }
        if done != true {
            if comma { buffer.append(UInt8(ascii: ",")) }
            appendString(key.utf8)
            buffer.append(UInt8(ascii: ":"))
        }
        afterKey = true
    }

    /// `"text"` for text that needs no escaping, with the comma before a key and the colon after it,
    /// written in one reservation.
    @inline(__always)
    private mutating func appendQuoted(_ text: UnsafeBufferPointer<UInt8>, comma: Bool = false, colon: Bool) {
        let n = text.count
        var at = buffer.reserve(n + 4)
        if comma {
            at.pointee = UInt8(ascii: ",")
            at += 1
        }
        Self.writeQuoted(text, to: at)
        at[n + 2] = UInt8(ascii: ":")
        buffer.didWrite(n + (colon ? 3 : 2) + (comma ? 1 : 0))
    }

    /// `"text"` at `at` (room for `text.count + 2` bytes), text that needs no escaping.
    @inline(__always)
    private static func writeQuoted(_ text: UnsafeBufferPointer<UInt8>, to at: UnsafeMutablePointer<UInt8>) {
        at.pointee = UInt8(ascii: "\"")
        if let source = text.baseAddress { copySmall(from: source, to: at + 1, count: text.count) }
        at[text.count &+ 1] = UInt8(ascii: "\"")
    }

    /// Copies `count` bytes; up to 32 (keys, most values) as two overlapping loads and stores of the
    /// widest size that fits instead of a call to memmove or a byte loop.
    @inline(__always)
    private static func copySmall(from source: UnsafePointer<UInt8>, to target: UnsafeMutablePointer<UInt8>, count: Int) {
        let from = UnsafeRawPointer(source), to = UnsafeMutableRawPointer(target)
        @inline(__always) func pair<T>(_: T.Type) {
            let size = MemoryLayout<T>.size
            let head = from.loadUnaligned(as: T.self), tail = from.loadUnaligned(fromByteOffset: count - size, as: T.self)
            to.storeBytes(of: head, as: T.self)
            to.storeBytes(of: tail, toByteOffset: count - size, as: T.self)
        }
        switch count {
        case 16 ... 32: pair(SIMD16<UInt8>.self)
        case 8 ..< 16: pair(UInt64.self)
        case 4 ..< 8: pair(UInt32.self)
        case 2 ..< 4: pair(UInt16.self)
        case 1: target.pointee = source.pointee
        case 0: break
        default: target.update(from: source, count: count)
        }
    }

    /// Raw bytes appended as one copy.
    @inline(__always)
    mutating func appendBytes(_ raw: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: raw)
    }

    /// Printable ASCII without a quote or backslash: copied into a JSON string as it is. Eight bytes are
    /// tested at once (the "has a byte less than n" and "has a zero byte" word tricks): keys and most
    /// values pass, and this scan is most of what writing them costs.
    @inline(__always)
    private static func isPlain(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        var i = 0
        let count = text.count
        if let base = text.baseAddress {
            let raw = UnsafeRawPointer(base)
            @inline(__always) func plainWord(_ w: UInt64) -> Bool {
                let quote = w ^ (ones &* 0x22), backslash = w ^ (ones &* 0x5C)
                let control = (w &- ones &* 0x20) & ~w
                let zeroQuote = (quote &- ones) & ~quote, zeroBackslash = (backslash &- ones) & ~backslash
                return (w | control | zeroQuote | zeroBackslash) & highs == 0
            }
            if count >= 8 {
                while i + 8 <= count {
                    if !plainWord(raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { return false }
                    i += 8
                }
                // The last bytes as one word overlapping the ones already tested.
                return i == count || plainWord(raw.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self))
            }
        }
        while i < count {
            let b = text[i]
            if b < 0x20 || b >= 0x80 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { return false }
            i += 1
        }
        return true
    }

    mutating func valueStart() {
        if afterKey { afterKey = false } else { element() }
    }

    public mutating func beginObject(_ key: StaticString? = nil) {
        if let key { self.key(key) }
        valueStart()
        buffer.append(UInt8(ascii: "{"))
        pushContainer()
    }

    public mutating func endObject() {
        buffer.append(UInt8(ascii: "}"))
        popContainer()
    }

    public mutating func beginArray(_ key: StaticString? = nil) {
        if let key { self.key(key) }
        valueStart()
        buffer.append(UInt8(ascii: "["))
        pushContainer()
    }

    public mutating func endArray() {
        buffer.append(UInt8(ascii: "]"))
        popContainer()
    }

    /// A value that needs no escaping (most: names, states, flags) goes in with its key in one
    /// reservation; 204 instructions a short string in `flows` records when the key and the value were
    /// written one after the other.
    public mutating func string(_ key: StaticString?, _ value: String) {
        let done: Bool? = value.utf8.withContiguousStorageIfAvailable { text in
            guard Self.isPlain(text) else { return false }
            Self.writeQuoted(text, to: reserveValue(key, count: text.count &+ 2))
            buffer.didWrite(text.count &+ 2)
            return true
        }
        if done == true { return }
        if let key { self.key(key) }
        valueStart()
        appendUTF8(value)
    }

    /// A byte as two lower-case hex digits in a JSON string (`"1b"`).
    public mutating func hexByte(_ key: StaticString?, _ value: UInt8) {
        let at = reserveValue(key, count: 4)
        at[0] = UInt8(ascii: "\"")
        at[1] = hexDigit(value >> 4)
        at[2] = hexDigit(value & 0xF)
        at[3] = UInt8(ascii: "\"")
        buffer.didWrite(4)
    }

    /// A string's bytes read in place (a native string's contiguous UTF-8): scanning them is several times
    /// cheaper than walking `String.UTF8View`, and keys and most values are such strings.
    @inline(__always)
    private mutating func appendUTF8(_ text: String) {
        let done: Void? = text.utf8.withContiguousStorageIfAvailable { appendString($0) }
        if done == nil { appendString(text.utf8) }
    }

    public mutating func string(_ key: StaticString?, _ value: [UInt8]) { string(key, bytes: value) }

    public mutating func string<C: Collection>(_ key: StaticString?, bytes value: C) where C.Element == UInt8 {
        if let key { self.key(key) }
        valueStart()
        appendString(value)
    }

    /// With a key: the comma, the key, the sign and the digits in one reservation (written as a key, then
    /// a value, a number cost about 200 instructions, a quarter of a `flows` record with its 27 numbers).
    public mutating func number(_ key: StaticString?, _ value: Int) {
        let magnitude = UInt64(value.magnitude)
        let width = decimalDigitCount(magnitude)
        let count = (value < 0 ? 1 : 0) &+ width
        var at = reserveValue(key, count: count)
        if value < 0 {
            at.pointee = UInt8(ascii: "-")
            at += 1
        }
        Self.writeDigits(magnitude, width: width, to: at)
        buffer.didWrite(count)
    }

    /// Writes what precedes a value of exactly `count` bytes (the comma, and with `key` the quoted key
    /// and colon) and reserves the value's room in the same reservation; the caller writes the value at
    /// the pointer returned, then calls `buffer.didWrite(count)`. Transparent: marked `@inline(__always)`,
    /// the optimiser outlined it once `number` grew, and every number paid a call (65 instructions a call).
    @_transparent
    mutating func reserveValue(_ key: StaticString?, count: Int) -> UnsafeMutablePointer<UInt8> {
        guard let key else {
            valueStart()
            return buffer.reserve(count)
        }
        assert(key.hasPointerRepresentation && Self.isPlain(UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)),
               "JSON keys are plain ASCII literals")
        let comma = takeComma()
        let n = key.utf8CodeUnitCount
        let prefix = (comma ? 1 : 0) &+ n &+ 3
        var at = buffer.reserve(prefix &+ count)
        if comma {
            at.pointee = UInt8(ascii: ",")
            at += 1
        }
        at.pointee = UInt8(ascii: "\"")
        Self.copySmall(from: key.utf8Start, to: at + 1, count: n)
        at[n &+ 1] = UInt8(ascii: "\"")
        at[n &+ 2] = UInt8(ascii: ":")
        buffer.didWrite(prefix)
        return at + (n &+ 3)
    }

    /// `v`'s last `width` decimal digits, right to left, into `at[0 ..< width]`: two at a time from a table
    /// of the hundred pairs (half the divisions; counters of three to six digits are most numbers).
    @inline(__always)
    private static func writeDigits(_ v: UInt64, width: Int, to at: UnsafeMutablePointer<UInt8>) {
        let pairs = digitPairs.utf8Start
        var v = v
        var i = width
        while i >= 2 {
            let (q, r) = v.quotientAndRemainder(dividingBy: 100)
            i &-= 2
            at[i] = pairs[2 &* Int(truncatingIfNeeded: r)]
            at[i &+ 1] = pairs[2 &* Int(truncatingIfNeeded: r) &+ 1]
            v = q
        }
        if i == 1 { at[0] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10) }
    }

    /// "00", "01" … "99" in a row: a literal, so it sits in read-only data and needs no set-up.
    @inline(__always)
    private static var digitPairs: StaticString {
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"
    }

    /// `n` in decimal, left-padded with zeros to `minimumCount` digits, written in place (no String):
    /// the width first, then the digits from the right straight into the record (a digit a number for
    /// most counters; 112 instructions a number when the digits went through a scratch tuple and a copy).
    mutating func appendDigits(_ n: UInt64, minimumCount: Int) {
        if n < 10 && minimumCount <= 1 { return buffer.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: n)) }
        let width = max(decimalDigitCount(n), minimumCount)
        Self.writeDigits(n, width: width, to: buffer.reserve(width))
        buffer.didWrite(width)
    }

    public mutating func number(_ key: StaticString?, _ value: Double) {
        if let key { self.key(key) }
        valueStart()
        guard value.isFinite else { return buffer.append(contentsOf: "null".utf8) }
        if !appendShortestDecimal(value) { buffer.append(contentsOf: "\(value)".utf8) }
    }

    public mutating func bool(_ key: StaticString?, _ value: Bool) {
        if let key { self.key(key) }
        valueStart()
        buffer.append(contentsOf: (value ? "true" : "false").utf8)
    }

    public mutating func null(_ key: StaticString?) {
        if let key { self.key(key) }
        valueStart()
        buffer.append(contentsOf: "null".utf8)
    }

    /// `text` as one quoted JSON string, escaped as every record escapes it (for records built as text).
    public static func quoted(_ text: String) -> String {
        var writer = JSONWriter(capacity: text.utf8.count + 8)
        writer.appendString(text.utf8)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    /// A JSON string from bytes; invalid UTF-8 sequences become U+FFFD.
    private mutating func appendString<C: Collection>(_ raw: C) where C.Element == UInt8 {
        // ASCII without characters to escape (most keys and values) is copied as it is.
        let done: Bool? = raw.withContiguousStorageIfAvailable { text in
            guard Self.isPlain(text) else { return false }
            appendQuoted(text, colon: false)
            return true
        }
        if done == true { return }
        // ASCII with characters to escape (a DNS name's presentation escapes, a header holding a quote):
        // escaped a byte at a time in one reservation rather than decoded into Unicode scalars first.
        if done == false {
            let ascii: Bool? = raw.withContiguousStorageIfAvailable { text in
                guard Self.isASCII(text) else { return false }
                appendEscapedASCII(text)
                return true
            }
            if ascii == true { return }
        }
        buffer.append(UInt8(ascii: "\""))
        if done == nil && raw.allSatisfy({ $0 >= 0x20 && $0 < 0x80 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            buffer.append(contentsOf: raw)
            buffer.append(UInt8(ascii: "\""))
            return
        }
        let text = String(decoding: raw, as: UTF8.self)
        for scalar in text.unicodeScalars {
            if scalar.value < 0x80 {
                let at = buffer.reserve(6)
                buffer.didWrite(Self.writeEscapedASCII(UInt8(truncatingIfNeeded: scalar.value), to: at))
            } else {
                UTF8.encode(scalar) { buffer.append($0) }
            }
        }
        buffer.append(UInt8(ascii: "\""))
    }

    /// Whether every byte is below 0x80 (eight at a time).
    @inline(__always)
    private static func isASCII(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = text.baseAddress else { return true }
        let raw = UnsafeRawPointer(base)
        var i = 0
        while i + 8 <= text.count {
            if raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
            i += 8
        }
        while i < text.count {
            if text[i] >= 0x80 { return false }
            i += 1
        }
        return true
    }

    /// `text` (ASCII) as a quoted JSON string, in one reservation.
    private mutating func appendEscapedASCII(_ text: UnsafeBufferPointer<UInt8>) {
        // At most six bytes a byte (\u00XX) and the two quotes.
        let start = buffer.reserve(6 * text.count + 2)
        var at = start
        at.pointee = UInt8(ascii: "\"")
        at += 1
        for byte in text { at += Self.writeEscapedASCII(byte, to: at) }
        at.pointee = UInt8(ascii: "\"")
        at += 1
        buffer.didWrite(at - start)
    }

    /// One ASCII byte inside a JSON string (RFC 8259 §7): the short escapes for quote, backslash, newline,
    /// carriage return and tab, \u00XX for other controls, else the byte; writes up to six bytes at `at`
    /// and returns how many.
    @inline(__always)
    private static func writeEscapedASCII(_ byte: UInt8, to at: UnsafeMutablePointer<UInt8>) -> Int {
        let short: UInt8
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): short = byte
        case UInt8(ascii: "\n"): short = UInt8(ascii: "n")
        case UInt8(ascii: "\r"): short = UInt8(ascii: "r")
        case UInt8(ascii: "\t"): short = UInt8(ascii: "t")
        case 0 ..< 0x20:
            at[0] = UInt8(ascii: "\\")
            at[1] = UInt8(ascii: "u")
            at[2] = UInt8(ascii: "0")
            at[3] = UInt8(ascii: "0")
            at[4] = hexDigit(byte >> 4)
            at[5] = hexDigit(byte & 0xF)
            return 6
        default:
            at.pointee = byte
            return 1
        }
        at[0] = UInt8(ascii: "\\")
        at[1] = short
        return 2
    }

    /// The record as one line of text.
    public var line: String { buffer.withUnsafeBytes { String(decoding: $0, as: UTF8.self) } + "\n" }

    /// The record and its newline, lent to `body` without making a String.
    public mutating func withLine(_ body: (UnsafeRawBufferPointer) -> Void) {
        buffer.append(UInt8(ascii: "\n"))
        buffer.withUnsafeBytes { body($0) }
        buffer.removeLast()
    }
}
