#if canImport(Glibc)
import Glibc
#endif
import CZlib
import PacketCore

/// Reads a pcap or pcapng file, or a stream of them (a pipe, standard input).
///
/// Input is read with `read(2)` into a reusable 1 MiB window that the parser
/// walks in place; only a record that straddles the window's end is moved.
/// The window grows only for a record larger than itself (bounded by
/// `CaptureFormatParser.maxRecordLength`).
///
/// Why not libpcap's reader, and why not `mmap`: on a 100 MB, 308,819-packet
/// capture (page cache warm, `flowtap-bench read`, median of 7) this reader
/// takes 12.2 ms (25 Mpps), libpcap's `pcap_next_ex` 30.0 ms, and the same
/// parser over an `mmap` of the file 33.0 ms, where page faults dominate. A
/// window also cannot fault (SIGBUS) when another process truncates the file.
///
/// A file that ends inside a record is not an error for the packets before
/// it: `next()` returns nil and `truncatedTail` says how many bytes were left.
///
/// gzip-compressed input (a file or a stream whose first bytes are gzip's
/// magic, as tshark reads `capture.pcap.gz`) is inflated by zlib into the same
/// window; concatenated gzip members are read one after another. Offsets in
/// errors and `bytesConsumed` then count decompressed bytes.
public final class CaptureFileReader {
    public let path: String
    private var parser = CaptureFormatParser()
    private let fd: Int32
    // Stream mode: a window over the input.
    private var window: UnsafeMutableRawPointer?
    private var windowCapacity = 0
    private var windowFill = 0
    private var streamEnded = false
    private var offset = 0
    private var consumedBeforeWindow = 0

    /// Total size for regular files (for progress), nil for streams and compressed input.
    public private(set) var totalBytes: Int?
    /// Set once the input turned out to be gzip-compressed.
    private var inflater: GzipInflater?
    private var sniffed = false

    /// Whether the input is gzip-compressed (known after the first `next()`).
    public var isCompressed: Bool { inflater != nil }
    /// Bytes left over after the last whole record, when the input ended inside one.
    public private(set) var truncatedTail = 0

    /// Opens `path`; "-" is standard input.
    public init(path: String) throws(CaptureError) {
        self.path = path
        if path == "-" {
            fd = 0
        } else {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw CaptureError(source: path, reason: "cannot open: \(String(cString: strerror(errno)))")
            }
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            if fd > 0 { close(fd) }
            throw CaptureError(source: path, reason: "cannot stat: \(reason)")
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw CaptureError(source: path, reason: "is a directory, not a capture file")
        }
        totalBytes = (info.st_mode & S_IFMT) == S_IFREG ? Int(info.st_size) : nil
        if let totalBytes, totalBytes > 0 { _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL) }
        windowCapacity = 1 << 20
        window = UnsafeMutableRawPointer.allocate(byteCount: windowCapacity, alignment: 16)
    }

    deinit {
        inflater?.end()
        window?.deallocate()
        if fd > 0 { close(fd) }
    }

    /// Bytes of the input consumed so far.
    public var bytesConsumed: Int { consumedBeforeWindow + offset }

    /// Link types seen so far, in first-seen order.
    public var linkTypes: [LinkType] { parser.linkTypesSeen }

    public var format: CaptureFormatParser.Format { parser.format }

    /// The next packet, or nil at the end of the input.
    @inline(__always)
    public func next() throws(CaptureError) -> PacketRecord? {
        if let record = parser.nextPcapRecordQuickly(window, count: windowFill, offset: &offset) { return record }
        return try nextRecord()
    }

    /// `next()` for everything but a whole classic pcap record already in the window.
    private func nextRecord() throws(CaptureError) -> PacketRecord? {
        while true {
            let view = UnsafeRawBufferPointer(start: window, count: windowFill)
            switch parser.next(view, offset: &offset) {
            case .packet(let record): return record
            case .failure(let at, let reason):
                throw CaptureError(source: path, offset: consumedBeforeWindow + at, reason: reason)
            case .needMore(let needed):
                if streamEnded {
                    if offset < windowFill {
                        if parser.format == .undetermined && consumedBeforeWindow == 0 {
                            throw CaptureError(source: path, reason: "too short to be a capture (\(windowFill) bytes)")
                        }
                        truncatedTail = windowFill - offset
                        offset = windowFill
                    }
                    return nil
                }
                try refill(minimum: needed)
            }
        }
    }

    /// Moves unread bytes to the front of the window and reads more.
    private func refill(minimum: Int) throws(CaptureError) {
        let unread = windowFill - offset
        if offset > 0 {
            if unread > 0, let window { memmove(window, window + offset, unread) }
            consumedBeforeWindow += offset
            offset = 0
            windowFill = unread
        }
        if minimum > windowCapacity {
            let grown = UnsafeMutableRawPointer.allocate(byteCount: minimum, alignment: 16)
            if let window { grown.copyMemory(from: window, byteCount: windowFill); window.deallocate() }
            window = grown
            windowCapacity = minimum
        }
        if !sniffed { try sniffCompression() }
        while windowFill < windowCapacity {
            let n: Int
            if let inflater {
                do {
                    n = try inflater.inflate(fd: fd, into: window! + windowFill, count: windowCapacity - windowFill)
                } catch {
                    throw CaptureError(source: path, offset: consumedBeforeWindow + windowFill, reason: error.description)
                }
            } else {
                n = read(fd, window! + windowFill, windowCapacity - windowFill)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw CaptureError(source: path, offset: consumedBeforeWindow + windowFill, reason: "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 {
                streamEnded = true
                return
            }
            windowFill += n
            if windowFill - offset >= minimum { return }
        }
    }


    /// Reads the input's first bytes; gzip's magic (1f 8b) switches the reader to inflating them and
    /// everything after.
    private func sniffCompression() throws(CaptureError) {
        sniffed = true
        while windowFill < 2 {
            let n = read(fd, window! + windowFill, windowCapacity - windowFill)
            if n < 0 {
                if errno == EINTR { continue }
                throw CaptureError(source: path, reason: "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            windowFill += n
        }
        guard windowFill >= 2, window!.load(as: UInt8.self) == 0x1F, window!.load(fromByteOffset: 1, as: UInt8.self) == 0x8B else { return }
        do {
            let inflater = try GzipInflater()
            inflater.take(UnsafeRawBufferPointer(start: window, count: windowFill))
            self.inflater = inflater
        } catch {
            throw CaptureError(source: path, reason: error.description)
        }
        windowFill = 0
        totalBytes = nil
    }
}

/// zlib's inflate over a file descriptor, for gzip-compressed captures: compressed bytes are read
/// into a 256 KiB buffer and inflated into the caller's window.
final class GzipInflater {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private var stream = z_stream()
    private let input: UnsafeMutablePointer<UInt8>
    private let inputCapacity = 256 << 10
    private var inputEnded = false

    init() throws(Failure) {
        input = .allocate(capacity: inputCapacity)
        // 15 + 32: the largest window, and a gzip (or zlib) header detected by inflate itself.
        let status = inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            input.deallocate()
            throw Failure(description: "cannot start gzip decompression (zlib status \(status))")
        }
    }

    func end() {
        inflateEnd(&stream)
        input.deallocate()
    }

    /// Hands inflate bytes already read from the input (the sniffed head).
    func take(_ bytes: UnsafeRawBufferPointer) {
        let n = min(bytes.count, inputCapacity)
        if n > 0 { UnsafeMutableRawPointer(input).copyMemory(from: bytes.baseAddress!, byteCount: n) }
        stream.next_in = input
        stream.avail_in = UInt32(n)
    }

    /// Inflates up to `count` bytes into `out`, reading `fd` as needed; 0 at the end of the input.
    func inflate(fd: Int32, into out: UnsafeMutableRawPointer, count: Int) throws(Failure) -> Int {
        stream.next_out = out.assumingMemoryBound(to: UInt8.self)
        stream.avail_out = UInt32(min(count, Int(UInt32.max)))
        while stream.avail_out > 0 {
            if stream.avail_in == 0 && !inputEnded {
                let n = read(fd, input, inputCapacity)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Failure(description: "read failed: \(String(cString: strerror(errno)))")
                }
                if n == 0 { inputEnded = true }
                stream.next_in = input
                stream.avail_in = UInt32(n)
            }
            let before = stream.avail_out
            let status = CZlib.inflate(&stream, Z_NO_FLUSH)
            if status == Z_STREAM_END {
                // Another gzip member may follow (concatenated .gz files).
                if stream.avail_in == 0 && inputEnded { break }
                inflateReset(&stream)
                continue
            }
            if status == Z_BUF_ERROR && inputEnded && stream.avail_in == 0 {
                if before == stream.avail_out { break }
                continue
            }
            guard status == Z_OK || status == Z_BUF_ERROR else {
                let message = stream.msg.map { String(cString: $0) } ?? "status \(status)"
                throw Failure(description: "gzip data is corrupt: \(message)")
            }
            if inputEnded && stream.avail_in == 0 && before == stream.avail_out { break }
        }
        return count - Int(stream.avail_out)
    }
}
