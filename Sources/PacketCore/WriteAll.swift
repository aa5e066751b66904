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
        var parts = (iovec(), iovec())
        var count: Int32 = 0
        withUnsafeMutableBytes(of: &parts) { raw in
            let vectors = raw.bindMemory(to: iovec.self)
            if done < first.count, let base = first.baseAddress {
                vectors[Int(count)] = iovec(iov_base: UnsafeMutableRawPointer(mutating: base + done), iov_len: first.count - done)
                count += 1
            }
            let intoSecond = max(0, done - first.count)
            if intoSecond < second.count, let base = second.baseAddress {
                vectors[Int(count)] = iovec(iov_base: UnsafeMutableRawPointer(mutating: base + intoSecond), iov_len: second.count - intoSecond)
                count += 1
            }
        }
        let n = withUnsafePointer(to: &parts) { $0.withMemoryRebound(to: iovec.self, capacity: 2) { writev(fd, $0, count) } }
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
