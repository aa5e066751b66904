import PacketCore

/// One captured packet as a reader hands it out.
///
/// `bytes` points into the reader's buffer (the mapped file or the stream
/// buffer) and is valid until the reader's next call; copy it to keep it.
public struct PacketRecord: @unchecked Sendable {
    public var timestamp: Timestamp
    public var originalLength: Int
    public var linkType: LinkType
    /// pcapng interface index (0 for classic pcap and live capture).
    public var interfaceID: Int
    public var bytes: UnsafeRawBufferPointer

    @inlinable
    public init(timestamp: Timestamp, originalLength: Int, linkType: LinkType, interfaceID: Int, bytes: UnsafeRawBufferPointer) {
        self.timestamp = timestamp
        self.originalLength = originalLength
        self.linkType = linkType
        self.interfaceID = interfaceID
        self.bytes = bytes
    }

    @inlinable public var capturedLength: Int { bytes.count }
}

/// A capture file or stream that cannot be read further.
public struct CaptureError: Error, CustomStringConvertible, Sendable {
    /// The file, device or stream name.
    public var source: String
    /// Byte offset into the source where the problem sits, when known.
    public var offset: Int?
    public var reason: String

    public init(source: String, offset: Int? = nil, reason: String) {
        self.source = source
        self.offset = offset
        self.reason = reason
    }

    public var description: String {
        if let offset { return "\(source): at byte \(offset): \(reason)" }
        return "\(source): \(reason)"
    }
}
