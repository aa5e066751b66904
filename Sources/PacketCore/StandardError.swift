#if canImport(Glibc)
import Glibc
#endif

/// Writes text to standard error with one `write(2)`, unbuffered (cold paths only).
public func writeStandardError(_ text: String) {
    var copy = text
    copy.withUTF8 { bytes in
        var done = 0
        while done < bytes.count {
            let n = write(2, bytes.baseAddress! + done, bytes.count - done)
            if n <= 0 { return }
            done += n
        }
    }
}
