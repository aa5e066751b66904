#if canImport(Glibc)
import Glibc
#endif

/// Writes every byte to `fd`, retrying short writes and EINTR.
/// Returns nil on success, or the errno of the failed `write(2)`.
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
    writeAll(fd, bytes, UnsafeRawBufferPointer(start: nil, count: 0))
}

/// Writes `first` then `second` with `writev`, retrying on EINTR and short writes: one call in the
/// usual case, so appends to a file (`O_APPEND`) shared with other writers keep the two together.
/// Returns nil, or the errno that stopped it.
public func writeAll(_ fd: Int32, _ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Int32? {
    var done = 0
    let total = first.count + second.count
    while done < total {
        // What is left of each part; an empty part is a zero-length vector, which writev skips.
        let intoFirst = min(done, first.count), intoSecond = done - intoFirst
        var parts = (iovec(iov_base: UnsafeMutableRawPointer(mutating: first.baseAddress.map { $0 + intoFirst }), iov_len: first.count - intoFirst),
                     iovec(iov_base: UnsafeMutableRawPointer(mutating: second.baseAddress.map { $0 + intoSecond }), iov_len: second.count - intoSecond))
        let n = withUnsafePointer(to: &parts) { $0.withMemoryRebound(to: iovec.self, capacity: 2) { writev(fd, $0, 2) } }
        if n < 0 {
            if errno == EINTR { continue }
            return errno
        }
        if n == 0 { return EIO }
        done += n
    }
    return nil
}

/// The text of an errno value.
public func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }
