import PacketCore

/// A defect in an SF-TAP event stream: what is wrong, where (the byte offset
/// of the event's first header byte) and which field. Built only when input
/// is bad; `description` formats it on demand.
public struct SFTapStreamError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: UInt8, Sendable, CaseIterable {
        /// Text: no newline within `SFTapEventReader.maxHeaderBytes`; skipped to the next newline.
        case headerTooLong
        /// Text: a field that is not `key=value`; the line is skipped.
        case malformedField
        /// A known field whose value is not one the format allows; text: the line is skipped.
        case badValue
        /// Text: a required field is absent; the line is skipped.
        case missingField
        /// DATA longer than the reader's `maxBody`: the body is skipped unread.
        case bodyTooLong
        /// The stream ended inside an event.
        case truncated
    }

    /// A header field, named as the text format names it.
    public enum Field: UInt8, Sendable, CaseIterable {
        case ip1, ip2, port1, port2, vlan, hop, l3, l4, event, from, match, len, reason, time

        public var name: String { "\(self)" }
    }

    public var code: Code
    /// Byte offset in the stream of the header the error is about.
    public var offset: UInt64
    public var field: Field?
    /// The offending number, where there is one (a binary field's byte, a length).
    public var value: Int?
    public var format: SFTapEventReader.Format

    public init(code: Code, offset: UInt64, field: Field? = nil, value: Int? = nil, format: SFTapEventReader.Format) {
        self.code = code
        self.offset = offset
        self.field = field
        self.value = value
        self.format = format
    }

    public var description: String {
        let at = "\(format) event stream, byte \(offset): "
        let name = field.map { $0.name } ?? "?"
        switch (code, format) {
        case (.headerTooLong, _):
            return at + "no newline within \(SFTapEventReader.maxHeaderBytes) bytes: not a text event stream? (try --format binary); skipped to the next newline"
        case (.malformedField, _):
            return at + "a header field is not key=value; the line is skipped"
        case (.badValue, .binary):
            return at + "\(name) byte \(value ?? -1) is not a valid value: the stream is not SF-TAP binary, or lost its framing (try --format text); reading stops"
        case (.badValue, .text):
            return at + "\(name)= has a value the format does not allow; the line is skipped"
        case (.missingField, _):
            return at + "the header has no \(name)= field; the line is skipped"
        case (.bodyTooLong, _):
            return at + "DATA len=\(value ?? -1) is above the reader's limit on a body; the body is skipped unread"
        case (.truncated, _):
            return at + "the stream ended inside an event"
        }
    }
}
