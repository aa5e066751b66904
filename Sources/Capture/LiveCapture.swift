#if canImport(Glibc)
import Glibc
#endif
import CLibpcap
import PacketCore

/// Live capture from a Linux interface through libpcap.
///
/// A filter given here is compiled by libpcap and attached with
/// `pcap_setfilter`, which on Linux installs it in the kernel socket
/// (SO_ATTACH_FILTER), so rejected packets never reach user space.
public final class LiveCapture {
    public let interface: String
    private let handle: OpaquePointer
    public let linkType: LinkType

    public struct Statistics: Sendable {
        public var received: UInt64
        public var droppedByKernel: UInt64
        public var droppedByInterface: UInt64
    }

    /// Opens and activates `interface`.
    /// - Parameters:
    ///   - snapLength: bytes kept per packet.
    ///   - promiscuous: put the interface in promiscuous mode.
    ///   - bufferSize: kernel ring size in bytes.
    ///   - timeoutMilliseconds: how long a read waits before returning with no packet.
    ///   - filter: a tcpdump expression, or nil.
    public init(
        interface: String, snapLength: Int = 262_144, promiscuous: Bool = true,
        bufferSize: Int = 32 << 20, timeoutMilliseconds: Int = 100, filter: String? = nil
    ) throws(CaptureError) {
        self.interface = interface
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_create(interface, &errorBuffer) else {
            throw CaptureError(source: interface, reason: "cannot open interface: \(String(cString: errorBuffer))")
        }
        self.handle = handle
        pcap_set_snaplen(handle, Int32(snapLength))
        pcap_set_promisc(handle, promiscuous ? 1 : 0)
        pcap_set_timeout(handle, Int32(timeoutMilliseconds))
        pcap_set_buffer_size(handle, Int32(clamping: bufferSize))
        let status = pcap_activate(handle)
        if status < 0 {
            let text = String(cString: pcap_geterr(handle))
            pcap_close(handle)
            let hint = status == PCAP_ERROR_PERM_DENIED ? " (capturing needs root or CAP_NET_RAW)" : ""
            throw CaptureError(source: interface, reason: "cannot start capture: \(text)\(hint)")
        }
        linkType = LinkType(rawValue: UInt32(pcap_datalink(handle)))
        if let filter {
            var program = bpf_program()
            guard pcap_compile(handle, &program, filter, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
                let text = String(cString: pcap_geterr(handle))
                pcap_close(handle)
                throw CaptureError(source: interface, reason: "filter '\(filter)': \(text)")
            }
            defer { pcap_freecode(&program) }
            guard pcap_setfilter(handle, &program) == 0 else {
                let text = String(cString: pcap_geterr(handle))
                pcap_close(handle)
                throw CaptureError(source: interface, reason: "cannot attach filter: \(text)")
            }
        }
    }

    deinit { pcap_close(handle) }

    /// The next packet; nil when the read timed out with nothing (call again).
    /// Throws when the capture failed or was broken off.
    public func next() throws(CaptureError) -> PacketRecord? {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        let status = pcap_next_ex(handle, &header, &data)
        switch status {
        case 1:
            guard let header, let data else { return nil }
            let h = header.pointee
            return PacketRecord(
                timestamp: Timestamp(seconds: Int64(h.ts.tv_sec), microseconds: Int64(h.ts.tv_usec)),
                originalLength: Int(h.len), linkType: linkType, interfaceID: 0,
                bytes: UnsafeRawBufferPointer(start: data, count: Int(h.caplen)))
        case 0:
            return nil
        case PCAP_ERROR_BREAK:
            throw CaptureError(source: interface, reason: "capture stopped")
        default:
            throw CaptureError(source: interface, reason: "capture failed: \(String(cString: pcap_geterr(handle)))")
        }
    }

    /// Makes a blocked `next()` return; safe to call from a signal handler's thread.
    public func breakLoop() { pcap_breakloop(handle) }

    /// Joins kernel fanout group `group` (Linux packet sockets): the handles of one group share the
    /// interface's packets, each flow to one handle by a hash of its addresses and ports that is the
    /// same in both directions; with defragmentation on, fragments are hashed as their datagram.
    public func joinFanout(group: UInt16) throws(CaptureError) {
        // <linux/if_packet.h>: SOL_PACKET 263, PACKET_FANOUT 18, PACKET_FANOUT_HASH 0, PACKET_FANOUT_FLAG_DEFRAG 0x8000.
        var argument = Int32(group) | Int32(0x8000) << 16
        let rc = setsockopt(pcap_fileno(handle), 263, 18, &argument, socklen_t(MemoryLayout<Int32>.size))
        guard rc == 0 else {
            throw CaptureError(source: interface, reason: "cannot join packet fanout group \(group): \(String(cString: strerror(errno)))")
        }
    }

    public var statistics: Statistics? {
        var s = pcap_stat()
        guard pcap_stats(handle, &s) == 0 else { return nil }
        return Statistics(received: UInt64(s.ps_recv), droppedByKernel: UInt64(s.ps_drop), droppedByInterface: UInt64(s.ps_ifdrop))
    }
}
