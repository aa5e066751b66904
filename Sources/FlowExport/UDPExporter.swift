#if canImport(Glibc)
import Glibc
#endif
import PacketCore

/// Sends export datagrams to one collector over UDP, from one socket connected to it.
///
/// UDP export cannot know whether the collector received a datagram; what FlowTap can see is counted:
/// send errors (an ICMP port unreachable from a collector that is not listening comes back as
/// `ECONNREFUSED` on the next send) and datagrams the kernel would not queue.
public final class UDPExporter {
    public struct Counters: Sendable {
        public var datagrams: UInt64 = 0
        public var bytes: UInt64 = 0
        public var sendErrors: UInt64 = 0
        public var lastError: Int32 = 0
        public init() {}
    }

    public struct SetupError: Error, CustomStringConvertible {
        public var description: String
    }

    public private(set) var builder: ExportMessageBuilder
    public private(set) var counters = Counters()
    private let socketDescriptor: Int32

    public init(destination: ExportDestination) throws(SetupError) {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        hints.ai_protocol = Int32(IPPROTO_UDP)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(destination.host, String(destination.port), &hints, &list)
        guard status == 0, let first = list else {
            throw SetupError(description: "export to \(destination): cannot resolve '\(destination.host)': \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { throw SetupError(description: "export to \(destination): socket: \(String(cString: strerror(errno)))") }
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw SetupError(description: "export to \(destination): connect: \(reason)")
        }
        // A large send buffer absorbs the burst at the end of a file, when every open flow is exported at once.
        var size: Int32 = 4 << 20
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        socketDescriptor = fd
        builder = ExportMessageBuilder(destination: destination)
    }

    deinit { close(socketDescriptor) }

    public var destination: ExportDestination { builder.destination }

    public func export(_ flow: ExportedFlow, now: Timestamp) {
        builder.add(flow, now: now) { send($0) }
        flushIfDue(now: now)
    }

    /// Sends a message that has waited its `maxDelay` for more records.
    public func flushIfDue(now: Timestamp) {
        if builder.due(now: now) { builder.flush(now: now) { send($0) } }
    }

    public func flush(now: Timestamp) {
        builder.flush(now: now) { send($0) }
    }

    private func send(_ datagram: UnsafeRawBufferPointer) {
        var waits = 0
        while true {
            let n = Glibc.send(socketDescriptor, datagram.baseAddress, datagram.count, 0)
            if n == datagram.count {
                counters.datagrams &+= 1
                counters.bytes &+= UInt64(n)
                return
            }
            if n < 0 && errno == EINTR { continue }
            // A full send queue: wait for it rather than drop (export is not on the packet path).
            if n < 0 && (errno == EAGAIN || errno == ENOBUFS) && waits < 50 {
                waits += 1
                var pfd = pollfd(fd: socketDescriptor, events: Int16(POLLOUT), revents: 0)
                _ = poll(&pfd, 1, 100)
                continue
            }
            counters.sendErrors &+= 1
            counters.lastError = n < 0 ? errno : 0
            return
        }
    }

    /// One line for a command's summary.
    public var summary: String {
        let b = builder.counters
        var s = "export \(destination): \(b.records) records in \(counters.datagrams) datagrams (\(b.templateMessages) with templates)"
        if b.unexportable > 0 { s += ", \(b.unexportable) IPv6 records NetFlow v5 cannot carry" }
        if counters.sendErrors > 0 { s += ", \(counters.sendErrors) send errors (last: \(String(cString: strerror(counters.lastError))))" }
        return s
    }
}
