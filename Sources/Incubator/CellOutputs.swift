#if canImport(Glibc)
import Glibc
#endif
import CShims
import Capture
import PacketCore
import Synchronization
import UnixSockets

/// What each cell has been given and what it could not take.
public struct CellCounters: Sendable {
    public var frames: UInt64 = 0
    public var bytes: UInt64 = 0
    /// Frames the cell's output refused: a send error (interface down, host unreachable), a write error
    /// (disk full), a closed socket.
    public var failed: UInt64 = 0
    /// A pcap cell holds one link type (its first frame's); frames of another are counted here (use .pcapng).
    public var otherLinkType: UInt64 = 0
    /// VXLAN and interface cells carry Ethernet frames; a frame that is neither Ethernet nor IP is counted here.
    public var notEthernet: UInt64 = 0
    /// A socket cell's reader is slower than the traffic and its queue (`CellOutputs.streamQueueBytes`) is full.
    public var full: UInt64 = 0
    public var lastError: String?

    public var dropped: UInt64 { failed &+ otherLinkType &+ notEthernet &+ full }
}

/// The cells' outputs, one per `CellSpec`, each with its counters. Sends to VXLAN and interface cells
/// are batched (sendmmsg of up to 64 frames); `flush()` sends what is queued.
public final class CellOutputs {
    /// Each cell's kind; pcap and pcapng writers sit in `pcapWriters` and `pcapngWriters` (an enum
    /// payload of references would be retained and released on every frame).
    enum Output {
        case pcap
        case pcapng
        case vxlan(fd: Int32, vni: UInt32)
        case sftap(fd: Int32, headerWritten: Bool)
        case interface(fd: Int32, destinationMAC: [UInt8]?)
    }

    public let specs: [CellSpec]
    var outputs: [Output] = []
    var pcapWriters: [PcapWriter?]
    var pcapngWriters: [PcapngWriter?]
    let paths: [String]
    public private(set) var counters: [CellCounters]
    /// `counters` read under the cells' lock, for another thread than the senders (the telemetry endpoint).
    public var lockedCounters: [CellCounters] { lock.withLock { _ in counters } }
    /// Per cell with batched sends: its batch, and the frame lengths queued (for the counters).
    var batches: [OpaquePointer?]
    var queuedLengths: [[Int]]
    let results: UnsafeMutablePointer<Int32>
    /// Frames queued for sending point into these copies (a capture reuses its buffer), 64 KiB per slot.
    let slots: UnsafeMutableRawPointer
    var slotsUsed = 0
    static let batchSize = 64
    let lock = Mutex(())
    var sftapBuffers: [[UInt8]]
    /// Per socket cell, where each queued frame ends in its buffer and its length: a frame counts as
    /// delivered once its last byte is written, and as failed when the reader goes before that.
    var sftapFrames: [[(end: Int, length: Int)]]

    public struct OpenError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Whether a socket cell (`sftap:`) waits for its reader: yes for files read offline (nothing is
    /// lost), no live, where a stalled reader must not hold up capture, the bridge or the other cells —
    /// its frames then wait in a queue of `streamQueueBytes` and, past that, are dropped and counted.
    public let blocking: Bool
    public let streamQueueBytes: Int
    /// Socket cells whose reader went away (EPIPE): their frames are counted, not queued.
    var closedStreams: Set<Int> = []

    /// Opens every cell's output; an error names the cell.
    public init(_ specs: [CellSpec], blocking: Bool = true, streamQueueBytes: Int = 8 << 20) throws(OpenError) {
        self.specs = specs
        self.blocking = blocking
        self.streamQueueBytes = streamQueueBytes
        counters = Array(repeating: CellCounters(), count: specs.count)
        pcapWriters = Array(repeating: nil, count: specs.count)
        pcapngWriters = Array(repeating: nil, count: specs.count)
        paths = specs.map { if case .file(let path) = $0.target { path } else { "" } }
        batches = Array(repeating: nil, count: specs.count)
        queuedLengths = Array(repeating: [], count: specs.count)
        sftapBuffers = Array(repeating: [], count: specs.count)
        sftapFrames = Array(repeating: [], count: specs.count)
        results = .allocate(capacity: Self.batchSize)
        slots = .allocate(byteCount: Self.batchSize * 65536, alignment: 16)
        for (i, spec) in specs.enumerated() {
            switch spec.target {
            case .file(let path):
                if path.hasSuffix(".pcapng") {
                    do { pcapngWriters[i] = try PcapngWriter(path: path) } catch { throw OpenError(description: "cell \(i) (\(spec)): \(error)") }
                    outputs.append(.pcapng)
                } else {
                    outputs.append(.pcap)
                }
            case .vxlan(let host, let port, let vni):
                let fd = socket(host.isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
                var (storage, length) = Self.storage(host, port: port)
                let status = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) } }
                guard fd >= 0, status == 0 else { throw OpenError(description: "cell \(i) (\(spec)): connect: \(String(cString: strerror(errno)))") }
                var size: Int32 = 4 << 20
                _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
                outputs.append(.vxlan(fd: fd, vni: vni))
                batches[i] = flowtap_send_batch_create(UInt32(Self.batchSize))
            case .sftap(let path):
                let fd: Int32
                do { fd = try SocketClient.connect(path) } catch {
                    throw OpenError(description: "cell \(i) (\(spec)): \(error) (is `flowtap abstract` serving its pcap injection socket there?)")
                }
                if !blocking { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
                outputs.append(.sftap(fd: fd, headerWritten: false))
                sftapBuffers[i].reserveCapacity(1 << 16)
            case .interface(let name, let mac):
                let fd = flowtap_packet_send_socket(name)
                guard fd >= 0 else {
                    throw OpenError(description: "cell \(i) (\(spec)): cannot send on \(name): \(String(cString: strerror(errno)))\(errno == EPERM ? " (needs root or CAP_NET_RAW)" : "")")
                }
                outputs.append(.interface(fd: fd, destinationMAC: mac))
                batches[i] = flowtap_send_batch_create(UInt32(Self.batchSize))
            }
        }
    }

    deinit {
        results.deallocate()
        slots.deallocate()
    }

    /// Hands one frame to `cell` (cells that carry Ethernet give a frame of another link type an
    /// Ethernet header in front of its IP packet).
    /// Safe from several threads (tap mode's workers share the cells): one lock, uncontended with one.
    public func send(cell: Int, timestamp: Timestamp, originalLength: Int, linkType: LinkType, bytes: UnsafeRawBufferPointer) {
        lock.withLock { _ in sendLocked(cell: cell, timestamp: timestamp, originalLength: originalLength, linkType: linkType, bytes: bytes) }
    }

    func sendLocked(cell: Int, timestamp: Timestamp, originalLength: Int, linkType: LinkType, bytes: UnsafeRawBufferPointer) {
        switch outputs[cell] {
        case .pcap:
            if pcapWriters[cell] == nil {
                // The file takes the first frame's link type.
                do { pcapWriters[cell] = try PcapWriter(path: paths[cell], linkType: linkType) } catch {
                    fail(cell, "\(error)")
                    return
                }
            }
            guard let w = pcapWriters[cell] else { return }
            guard w.linkType == linkType else { counters[cell].otherLinkType &+= 1; return }
            do { try w.write(timestamp: timestamp, originalLength: originalLength, bytes: bytes) } catch { fail(cell, "\(error)"); return }
            delivered(cell, bytes.count)
        case .pcapng:
            guard let w = pcapngWriters[cell] else { return }
            do { try w.write(timestamp: timestamp, originalLength: originalLength, linkType: linkType, bytes: bytes) } catch { fail(cell, "\(error)"); return }
            delivered(cell, bytes.count)
        case .sftap(let fd, let headerWritten):
            if closedStreams.contains(cell) { fail(cell, "the reader closed the socket"); return }
            if !blocking && sftapBuffers[cell].count + 16 + bytes.count > streamQueueBytes {
                flushStream(cell)
                if sftapBuffers[cell].count + 16 + bytes.count > streamQueueBytes { counters[cell].full &+= 1; return }
            }
            if !headerWritten {
                // The pcap global header (microseconds, snap length 262144) with the first frame's link type.
                var header: [UInt8] = [0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0]
                withUnsafeBytes(of: linkType.rawValue.littleEndian) { header += $0 }
                sftapBuffers[cell] += header
                outputs[cell] = .sftap(fd: fd, headerWritten: true)
            }
            let (seconds, micros) = timestamp.secondAndMicroseconds
            let recordHeader = (UInt32(truncatingIfNeeded: seconds).littleEndian, UInt32(truncatingIfNeeded: micros).littleEndian,
                                UInt32(bytes.count).littleEndian, UInt32(originalLength).littleEndian)
            withUnsafeBytes(of: recordHeader) { sftapBuffers[cell].append(contentsOf: $0) }
            sftapBuffers[cell].append(contentsOf: bytes)
            sftapFrames[cell].append((sftapBuffers[cell].count, bytes.count))
            if sftapBuffers[cell].count >= 1 << 16 { flushStream(cell) }
        case .vxlan(_, let vni):
            guard let (ethernet, body) = Self.ethernet(linkType, bytes) else { counters[cell].notEthernet &+= 1; return }
            // RFC 7348 §5: flags with the I bit, 24 reserved bits, the VNI, 8 reserved bits.
            var header: (UInt64, UInt64, UInt64) = (0, 0, 0)
            let headerLength = withUnsafeMutableBytes(of: &header) { h -> Int in
                h.storeBytes(of: UInt32(0x0800_0000).bigEndian, toByteOffset: 0, as: UInt32.self)
                h.storeBytes(of: (vni << 8).bigEndian, toByteOffset: 4, as: UInt32.self)
                if let ethernet {
                    for (k, b) in ethernet.enumerated() { h[8 + k] = b }
                    return 8 + ethernet.count
                }
                return 8
            }
            queue(cell, header: header, headerLength: headerLength, body: body)
        case .interface(_, let mac):
            guard let (ethernet, body) = Self.ethernet(linkType, bytes) else { counters[cell].notEthernet &+= 1; return }
            var header: (UInt64, UInt64, UInt64) = (0, 0, 0)
            var frame = body
            var headerLength = 0
            withUnsafeMutableBytes(of: &header) { h in
                if let ethernet { for (k, b) in ethernet.enumerated() { h[k] = b }; headerLength = ethernet.count }
                if let mac {
                    // SF-TAP's `@mac`: the destination address rewritten, the rest of the frame as it was.
                    if headerLength == 0 { for k in 0 ..< 6 { h[k] = mac[k] }; headerLength = 6; frame = UnsafeRawBufferPointer(rebasing: body[6...]) }
                    else { for k in 0 ..< 6 { h[k] = mac[k] } }
                }
            }
            queue(cell, header: header, headerLength: headerLength, body: frame)
        }
    }

    /// A synthetic Ethernet header for frames of other link types (raw IP, Linux cooked, BSD loopback),
    /// else nil and the frame as it is; nil as a whole when there is no IP packet to wrap.
    /// Made once: a header built per frame would allocate per frame.
    static let syntheticIPv4: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]
    static let syntheticIPv6: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xDD]

    static func ethernet(_ linkType: LinkType, _ bytes: UnsafeRawBufferPointer) -> ([UInt8]?, UnsafeRawBufferPointer)? {
        if linkType == .ethernet { return bytes.count >= 14 ? (nil, bytes) : nil }
        let start: Int
        switch linkType {
        case .raw, .ipv4, .ipv6, .rawBSD12, .rawBSD14: start = 0
        case .null, .loop: start = 4
        case .linuxSLL: start = 16
        case .linuxSLL2: start = 20
        default: return nil
        }
        guard bytes.count > start else { return nil }
        let version = bytes[start] >> 4
        guard version == 4 || version == 6 else { return nil }
        return (version == 6 ? syntheticIPv6 : syntheticIPv4, UnsafeRawBufferPointer(rebasing: bytes[start...]))
    }

    func queue(_ cell: Int, header: (UInt64, UInt64, UInt64), headerLength: Int, body: UnsafeRawBufferPointer) {
        guard let batch = batches[cell] else { return }
        if flowtap_send_batch_count(batch) == UInt32(Self.batchSize) || slotsUsed == Self.batchSize { flushLocked() }
        let slot = slots + slotsUsed * 65536
        let n = min(body.count, 65536)
        if n > 0 { slot.copyMemory(from: body.baseAddress!, byteCount: n) }
        slotsUsed += 1
        withUnsafeBytes(of: header) { h in
            _ = flowtap_send_batch_add(batch, h.baseAddress, UInt32(headerLength), slot, UInt32(n), nil, 0)
        }
        queuedLengths[cell].append(headerLength + n)
    }

    /// Sends what the batched cells hold and writes out the streams' buffers.
    public func flush() { lock.withLock { _ in flushLocked() } }

    func flushLocked() {
        for cell in outputs.indices {
            switch outputs[cell] {
            case .vxlan(let fd, _), .interface(let fd, _):
                guard let batch = batches[cell], flowtap_send_batch_count(batch) > 0 else { continue }
                let n = Int(flowtap_send_batch_count(batch))
                _ = flowtap_send_batch_flush(batch, fd, results)
                for i in 0 ..< n {
                    if results[i] == 0 { delivered(cell, queuedLengths[cell][i]) } else { fail(cell, String(cString: strerror(results[i]))) }
                }
                queuedLengths[cell].removeAll(keepingCapacity: true)
            case .sftap:
                flushStream(cell)
            case .pcap, .pcapng:
                break
            }
        }
        slotsUsed = 0
    }

    /// Writes out a socket cell's queue: all of it when blocking; otherwise what the socket takes now,
    /// the rest kept for later.
    func flushStream(_ cell: Int) {
        guard case .sftap(let fd, _) = outputs[cell], !sftapBuffers[cell].isEmpty else { return }
        let flags = Int32(MSG_NOSIGNAL) | (blocking ? 0 : Int32(MSG_DONTWAIT))
        var failure: Int32 = 0
        let done = sftapBuffers[cell].withUnsafeBytes { b -> Int in
            var done = 0
            while done < b.count {
                let n = Glibc.send(fd, b.baseAddress! + done, b.count - done, flags)
                if n < 0 && errno == EINTR { continue }
                if n < 0 {
                    if errno != EAGAIN && errno != EWOULDBLOCK { failure = errno }
                    break
                }
                done += n
            }
            return done
        }
        sftapBuffers[cell].removeFirst(done)
        var sent = 0
        while sent < sftapFrames[cell].count && sftapFrames[cell][sent].end <= done {
            delivered(cell, sftapFrames[cell][sent].length)
            sent += 1
        }
        sftapFrames[cell].removeFirst(sent)
        for i in sftapFrames[cell].indices { sftapFrames[cell][i].end -= done }
        if failure != 0 {
            // The reader is gone: every frame not wholly written is lost, and so is each one after.
            let reason = "send: \(String(cString: strerror(failure)))"
            for _ in sftapFrames[cell] { fail(cell, reason) }
            if sftapFrames[cell].isEmpty && counters[cell].lastError == nil { counters[cell].lastError = reason }
            closedStreams.insert(cell)
            sftapBuffers[cell].removeAll()
            sftapFrames[cell].removeAll()
        }
    }

    /// Flushes and closes every output (files get their last bytes; sockets are closed).
    public func close() throws {
        try lock.withLock { _ throws in try closeLocked() }
    }

    func closeLocked() throws {
        flushLocked()
        // What a socket cell's reader has not taken by now is lost: counted.
        for cell in sftapFrames.indices where !sftapFrames[cell].isEmpty {
            for _ in sftapFrames[cell] { fail(cell, "still queued at the end: the reader did not read") }
            sftapFrames[cell].removeAll()
        }
        for (i, output) in outputs.enumerated() {
            switch output {
            case .pcap:
                // A cell that got no frame still gets its (empty) file, so every cell can be read.
                do { try (pcapWriters[i] ?? PcapWriter(path: paths[i], linkType: .ethernet)).flush() } catch { fail(i, "\(error)") }
            case .pcapng: do { try pcapngWriters[i]?.flush() } catch { fail(i, "\(error)") }
            case .vxlan(let fd, _), .interface(let fd, _), .sftap(let fd, _): Glibc.close(fd)
            }
            if let b = batches[i] { flowtap_send_batch_destroy(b); batches[i] = nil }
        }
    }

    @inline(__always)
    func delivered(_ cell: Int, _ n: Int) {
        counters[cell].frames &+= 1
        counters[cell].bytes &+= UInt64(n)
    }

    func fail(_ cell: Int, _ why: String) {
        counters[cell].failed &+= 1
        if counters[cell].lastError == nil { counters[cell].lastError = why }
    }

    static func storage(_ address: IPAddress, port: UInt16) -> (sockaddr_storage, socklen_t) {
        var storage = sockaddr_storage()
        let length = withUnsafeMutableBytes(of: &storage) { raw -> socklen_t in
            raw.storeBytes(of: port.bigEndian, toByteOffset: 2, as: UInt16.self)
            if address.isIPv6 {
                raw.storeBytes(of: sa_family_t(AF_INET6), toByteOffset: 0, as: sa_family_t.self)
                raw.storeBytes(of: address.high.bigEndian, toByteOffset: 8, as: UInt64.self)
                raw.storeBytes(of: address.low.bigEndian, toByteOffset: 16, as: UInt64.self)
                return socklen_t(MemoryLayout<sockaddr_in6>.size)
            }
            raw.storeBytes(of: sa_family_t(AF_INET), toByteOffset: 0, as: sa_family_t.self)
            raw.storeBytes(of: address.ipv4Value.bigEndian, toByteOffset: 4, as: UInt32.self)
            return socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        return (storage, length)
    }
}
