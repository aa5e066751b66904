#if canImport(Glibc)
import Glibc
#endif
import CLibpcap
import CShims
import PacketCore

/// Live capture from a Linux interface through libpcap.
///
/// A filter given here is compiled by libpcap and attached with
/// `pcap_setfilter`, which on Linux installs it in the kernel socket
/// (SO_ATTACH_FILTER), so rejected packets never reach user space.
///
/// Reads never block past the timeout: the handle is non-blocking and `next()`
/// waits in `poll(2)` on its descriptor for at most `timeoutMilliseconds`.
/// (libpcap's own read timeout does not fire on an idle TPACKET_V3 ring, so a
/// blocking read on a quiet interface would wait for the next packet: no
/// statistics, no hand-over of pending events, no reaction to SIGINT.)
/// `immediate` delivers each packet as it comes instead of when the kernel
/// retires a ring block, for live analysis where latency matters.
public final class LiveCapture {
    public let interface: String
    private let handle: OpaquePointer
    public let linkType: LinkType
    private let descriptor: Int32
    private let waitMilliseconds: Int32
    /// Frames received before this instant are skipped (`LiveShards` sets it on every handle but the
    /// first, just before the handle joins its fanout group). From activation until it joins, a handle
    /// receives every frame on the interface, and each of those frames also reaches the handles already in
    /// the group (or the first handle, which receives everything until then): kept, they were the same
    /// frame on two shards, a flow made twice. Cleared at the first frame received after it.
    public var skipBefore: Timestamp?
    /// Frames skipped for `skipBefore`: copies another handle of the group received.
    public private(set) var skippedBeforeJoining: UInt64 = 0

    public struct Statistics: Sendable {
        public var received: UInt64
        public var droppedByKernel: UInt64
        public var droppedByInterface: UInt64
        /// Frames this handle skipped as copies of the group's from before it joined (`skipBefore`).
        public var skippedBeforeJoining: UInt64 = 0
    }

    /// Opens and activates `interface`.
    /// - Parameters:
    ///   - snapLength: bytes kept per packet.
    ///   - promiscuous: put the interface in promiscuous mode.
    ///   - bufferSize: kernel ring size in bytes.
    ///   - timeoutMilliseconds: how long a read waits before returning with no packet.
    ///   - filter: a tcpdump expression, or nil.
    ///   - inboundOnly: only packets the interface received, not those this host sent.
    public init(
        interface: String, snapLength: Int = 262_144, promiscuous: Bool = true,
        bufferSize: Int = 32 << 20, timeoutMilliseconds: Int = 100, filter: String? = nil, immediate: Bool = false,
        inboundOnly: Bool = false
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
        if immediate { pcap_set_immediate_mode(handle, 1) }
        waitMilliseconds = Int32(clamping: max(1, timeoutMilliseconds))
        let status = pcap_activate(handle)
        if status < 0 {
            let text = String(cString: pcap_geterr(handle))
            pcap_close(handle)
            let hint = status == PCAP_ERROR_PERM_DENIED ? " (capturing needs root or CAP_NET_RAW)" : ""
            throw CaptureError(source: interface, reason: "cannot start capture: \(text)\(hint)")
        }
        // A tap that also transmits on the interface must not read its own packets back.
        if inboundOnly { _ = pcap_setdirection(handle, PCAP_D_IN) }
        linkType = LinkType(rawValue: UInt32(pcap_datalink(handle)))
        descriptor = pcap_get_selectable_fd(handle)
        if descriptor >= 0 && pcap_setnonblock(handle, 1, &errorBuffer) != 0 {
            let text = String(cString: errorBuffer)
            pcap_close(handle)
            throw CaptureError(source: interface, reason: "cannot make the capture non-blocking: \(text)")
        }
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

    /// The next packet; nil when none came within the timeout (call again).
    /// Throws when the capture failed or was broken off (`breakLoop`).
    public func next() throws(CaptureError) -> PacketRecord? { try next(waitMilliseconds: waitMilliseconds) }

    /// The next packet, waiting at most `waitMilliseconds` for one (0: only what is already there), so a
    /// caller holding work for the idle moment (events to hand over) gets the moment at once.
    public func next(waitMilliseconds: Int32) throws(CaptureError) -> PacketRecord? {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        var status = pcap_next_ex(handle, &header, &data)
        if status == 0 && descriptor >= 0 && waitMilliseconds > 0 {
            // Nothing ready: wait for the descriptor, at most the timeout, then try once more.
            var ready = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&ready, 1, min(waitMilliseconds, self.waitMilliseconds))
            status = pcap_next_ex(handle, &header, &data)
        }
        if let skipBefore {
            // Copies from before this handle joined its group, oldest first: skipped without waiting.
            while status == 1, let h = header?.pointee, Self.timestamp(h) < skipBefore {
                skippedBeforeJoining &+= 1
                status = pcap_next_ex(handle, &header, &data)
            }
            if status == 1 { self.skipBefore = nil }
        }
        switch status {
        case 1:
            guard let header, let data else { return nil }
            let h = header.pointee
            return PacketRecord(
                timestamp: Self.timestamp(h),
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

    /// A frame's capture time from its libpcap header (microseconds).
    @inline(__always)
    private static func timestamp(_ header: pcap_pkthdr) -> Timestamp {
        Timestamp(seconds: Int64(header.ts.tv_sec), microseconds: Int64(header.ts.tv_usec))
    }

    /// The descriptor to poll(2) for packets, or -1 when the platform gives none.
    public var selectableDescriptor: Int32 { descriptor }

    /// Makes a blocked `next()` return; safe to call from a signal handler's thread.
    public func breakLoop() { pcap_breakloop(handle) }

    /// Joins kernel fanout group `group` (Linux packet sockets): the handles of one group share the
    /// interface's packets, each flow to one handle by a hash of its addresses and ports that is the
    /// same in both directions; with defragmentation on, fragments are hashed as their datagram.
    /// Without `defragment` the kernel hands fragments over as they came (it hashes them by addresses).
    public func joinFanout(group: UInt16, defragment: Bool = true) throws(CaptureError) {
        // <linux/if_packet.h>: SOL_PACKET 263, PACKET_FANOUT 18, PACKET_FANOUT_HASH 0, PACKET_FANOUT_FLAG_DEFRAG 0x8000.
        var argument = Int32(group) | (defragment ? Int32(0x8000) << 16 : 0)
        let rc = setsockopt(pcap_fileno(handle), 263, 18, &argument, socklen_t(MemoryLayout<Int32>.size))
        guard rc == 0 else {
            throw CaptureError(source: interface, reason: "cannot join packet fanout group \(group): \(String(cString: strerror(errno)))")
        }
    }

    /// Joins fanout group `group` of `members` handles choosing by a symmetric hash of the IP addresses
    /// alone (a classic BPF program, `flowtap_fanout_by_addresses`): every frame of an address pair —
    /// both directions, every fragment, unchanged — goes to one handle, in order.
    public func joinFanoutByAddresses(group: UInt16, members: Int) throws(CaptureError) {
        guard flowtap_fanout_by_addresses(pcap_fileno(handle), group, UInt32(members)) == 0 else {
            throw CaptureError(source: interface, reason: "cannot join packet fanout group \(group) by addresses: \(String(cString: strerror(errno)))")
        }
    }

    public var statistics: Statistics? {
        var s = pcap_stat()
        guard pcap_stats(handle, &s) == 0 else { return nil }
        return Statistics(received: UInt64(s.ps_recv), droppedByKernel: UInt64(s.ps_drop), droppedByInterface: UInt64(s.ps_ifdrop),
                          skippedBeforeJoining: skippedBeforeJoining)
    }
}
