/// An output socket (`home/tcp/<if>` …). Rules that share an `if` share one.
public struct OutputID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    init(_ index: Int) { rawValue = Int32(index) }
    public var description: String { "output#\(rawValue)" }
}

/// An input socket (`home/loopback7`, `home/pcap`).
public struct InputID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    init(_ index: Int) { rawValue = Int32(index) }
    public var description: String { "input#\(rawValue)" }
}

/// One accepted connection on an input socket; never reused by the server.
public struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    public let input: InputID
    public let serial: UInt64
    public var description: String { "\(input)/conn#\(serial)" }
}

/// One reader (analyzer) connected to an output; never reused by the server.
public struct ReaderID: Hashable, Sendable, CustomStringConvertible {
    public let serial: UInt64
    public var description: String { "reader#\(serial)" }
}

/// What an input handler did with the bytes it was shown.
public enum InputVerdict: Sendable, Equatable {
    /// Every byte was used.
    case `continue`
    /// Only the first `n` bytes were used: the server keeps the rest and
    /// shows it again, followed by the next bytes received. A handler that
    /// keeps a full buffer (`n == 0` when it is full) gets the connection
    /// closed with `.bufferOverflow`.
    case consumed(Int)
    /// Close this connection (bad input); `onClose` follows with `.handlerClosed`.
    case close
}

/// Why an input connection ended; handed to `onClose`.
public enum InputCloseReason: Sendable, Equatable {
    /// The client closed (read returned 0).
    case peerClosed
    /// The data handler returned `.close`, or `closeConnection` was called.
    case handlerClosed
    /// The handler kept a full per-connection buffer without consuming any of it.
    case bufferOverflow
    /// recv failed with this errno.
    case readError(Int32)
    /// `SocketServer.close()`.
    case serverClosed
}

/// Shown each read's bytes (any retained tail first); answers what it used.
public typealias InputDataHandler = (ConnectionID, UnsafeRawBufferPointer) -> InputVerdict
/// Called once per connection, after its descriptor is closed.
public typealias InputCloseHandler = (ConnectionID, InputCloseReason) -> Void

/// Counters for one output socket. Drops are counted per (event, reader):
/// an event two readers could not take counts twice.
public struct OutputStatistics: Sendable {
    public var id: OutputID
    public var path: String
    /// Readers connected now.
    public var readers: Int
    public var readersAccepted: UInt64
    /// Connections closed at once because `maxReadersPerOutput` were connected.
    public var readersRefused: UInt64
    public var readersDisconnected: UInt64
    /// `publish` calls and their header+body bytes, readers or not.
    public var eventsPublished: UInt64
    public var bytesPublished: UInt64
    /// Whole events not queued for a reader because its queue was full (summed over readers, past ones included).
    public var eventsDropped: UInt64
    public var bytesDropped: UInt64
    /// accept4 failures other than EAGAIN (e.g. EMFILE).
    public var acceptErrors: UInt64
    /// The readers connected now.
    public var readerDetails: [ReaderStatistics]
}

/// Counters for one reader of an output.
public struct ReaderStatistics: Sendable {
    public var id: ReaderID
    /// Events (and their bytes) accepted for this reader: written or queued.
    public var events: UInt64
    public var bytes: UInt64
    /// Bytes the kernel took.
    public var bytesWritten: UInt64
    /// Whole events dropped because the queue was full.
    public var eventsDropped: UInt64
    public var bytesDropped: UInt64
    /// Writes that took only part of what was offered (the socket filled up).
    public var partialWrites: UInt64
    /// Bytes the analyzer wrote to us, read and thrown away.
    public var bytesDiscarded: UInt64
    /// Bytes queued, not yet written.
    public var pendingBytes: Int
    public var queueCapacity: Int
}

/// Counters for one input socket.
public struct InputStatistics: Sendable {
    public var id: InputID
    public var path: String
    /// Connections open now.
    public var connections: Int
    public var connectionsAccepted: UInt64
    /// Connections closed at once because `maxConnectionsPerInput` were open.
    public var connectionsRefused: UInt64
    public var bytesReceived: UInt64
    /// Connections closed because the handler kept a full buffer.
    public var overflowCloses: UInt64
    public var acceptErrors: UInt64
}
