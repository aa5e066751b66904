#if canImport(Glibc)
import Glibc
#endif
import PacketCore

/// A socket call that failed: which call, on what, and the system's reason.
public struct ForwardSocketError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ what: String, _ call: String, _ code: Int32 = errno) {
        description = "\(what): \(call): \(String(cString: strerror(code)))"
            + (code == EPERM || code == EACCES ? " (raw sockets need root or CAP_NET_RAW)" : "")
    }
}

/// Socket addresses to and from `IPAddress` and the sockets the forwarder opens.
public enum ForwardSockets {
    /// A sockaddr_in or sockaddr_in6 in a storage, and its length.
    public static func storage(_ address: IPAddress, port: UInt16) -> (sockaddr_storage, socklen_t) {
        var storage = sockaddr_storage()
        if address.isIPv6 {
            withUnsafeMutableBytes(of: &storage) { raw in
                raw.storeBytes(of: sa_family_t(AF_INET6), toByteOffset: 0, as: sa_family_t.self)
                raw.storeBytes(of: port.bigEndian, toByteOffset: 2, as: UInt16.self)
                raw.storeBytes(of: address.high.bigEndian, toByteOffset: 8, as: UInt64.self)
                raw.storeBytes(of: address.low.bigEndian, toByteOffset: 16, as: UInt64.self)
            }
            return (storage, socklen_t(MemoryLayout<sockaddr_in6>.size))
        }
        withUnsafeMutableBytes(of: &storage) { raw in
            raw.storeBytes(of: sa_family_t(AF_INET), toByteOffset: 0, as: sa_family_t.self)
            raw.storeBytes(of: port.bigEndian, toByteOffset: 2, as: UInt16.self)
            raw.storeBytes(of: address.ipv4Value.bigEndian, toByteOffset: 4, as: UInt32.self)
        }
        return (storage, socklen_t(MemoryLayout<sockaddr_in>.size))
    }

    /// The address and port in a sockaddr_in or sockaddr_in6; an IPv4-mapped IPv6 address (a `[::]`
    /// socket receiving IPv4) comes back as the IPv4 address.
    public static func endpoint(_ storage: UnsafePointer<sockaddr_storage>) -> (IPAddress, UInt16) {
        let raw = UnsafeRawBufferPointer(start: storage, count: MemoryLayout<sockaddr_storage>.size)
        let port = raw.beUInt16(at: 2)
        if storage.pointee.ss_family == sa_family_t(AF_INET6) {
            let a = IPAddress.ipv6(raw, at: 8)
            if a.high == 0 && a.low >> 32 == 0xFFFF { return (IPAddress(ipv4: UInt32(truncatingIfNeeded: a.low)), port) }
            return (a, port)
        }
        return (IPAddress.ipv4(raw, at: 4), port)
    }

    /// `ADDR:PORT` or `[IPv6]:PORT`.
    public static func parseListen(_ text: String) -> (IPAddress, UInt16)? {
        DestinationText.parse(text, defaultPort: nil)
    }

    /// A UDP socket bound to `address`:`port` with `SO_REUSEPORT` (one per worker thread on the same
    /// port; the kernel spreads exporters over them by their address and port, so one exporter's
    /// datagrams stay in order on one worker), a large receive buffer and the kernel's drop counter.
    /// Without `reusePort` (one worker) a port another process holds fails with EADDRINUSE rather than
    /// being shared with it.
    public static func listen(_ address: IPAddress, port: UInt16, receiveBuffer: Int32, reusePort: Bool = true) throws(ForwardSocketError) -> Int32 {
        let what = "--listen \(ForwardDestination(address: address, port: port).endpoint)"
        let fd = socket(address.isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw ForwardSocketError(what, "socket") }
        var on: Int32 = 1
        if reusePort { _ = setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, socklen_t(MemoryLayout<Int32>.size)) }
        _ = setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, socklen_t(MemoryLayout<Int32>.size))
        var size = receiveBuffer
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        // `[::]:P` takes IPv6 only, so `0.0.0.0:P` can be listened on beside it.
        if address.isIPv6 { _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &on, socklen_t(MemoryLayout<Int32>.size)) }
        var (storage, length) = storage(address, port: port)
        let status = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard status == 0 else {
            let code = errno
            close(fd)
            throw ForwardSocketError(what, "bind", code)
        }
        return fd
    }

    /// A UDP socket connected to a collector: the kernel then reports its ICMP errors (a dead
    /// collector's port unreachable) on this socket alone, so one dead collector is counted and never
    /// slows the others.
    public static func connected(to destination: ForwardDestination, sendBuffer: Int32) throws(ForwardSocketError) -> Int32 {
        let fd = socket(destination.address.isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw ForwardSocketError("destination \(destination.endpoint)", "socket") }
        var size = sendBuffer
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var (storage, length) = storage(destination.address, port: destination.port)
        let status = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) } }
        guard status == 0 else {
            let code = errno
            close(fd)
            throw ForwardSocketError("destination \(destination.endpoint)", "connect", code)
        }
        return fd
    }

    /// A raw socket that sends whole IP packets FlowTap builds (`IPPROTO_RAW` implies `IP_HDRINCL` and,
    /// for IPv6, `IPV6_HDRINCL`).
    public static func raw(ipv6: Bool, sendBuffer: Int32) throws(ForwardSocketError) -> Int32 {
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_RAW.rawValue), Int32(IPPROTO_RAW))
        guard fd >= 0 else { throw ForwardSocketError("keep-source (\(ipv6 ? "IPv6" : "IPv4"))", "socket(SOCK_RAW)") }
        var size = sendBuffer
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        return fd
    }

    /// The drop counter of a UDP socket in /proc/net/udp or udp6 (its last column), found by inode:
    /// drops after the last datagram received are not carried by SO_RXQ_OVFL.
    public static func kernelDrops(_ fd: Int32) -> UInt64? {
        var status = stat()
        guard fstat(fd, &status) == 0 else { return nil }
        let inode = String(status.st_ino)
        for table in ["/proc/net/udp", "/proc/net/udp6"] {
            guard let file = fopen(table, "r") else { continue }
            defer { fclose(file) }
            var line = [CChar](repeating: 0, count: 512)
            while fgets(&line, Int32(line.count), file) != nil {
                let fields = String(cString: line).split(whereSeparator: { $0 == " " || $0 == "\n" })
                // sl local remote st queues timer retransmits uid timeout inode refs pointer drops
                if fields.count >= 13 && fields[9] == inode { return UInt64(fields[12]) }
            }
        }
        return nil
    }
}
