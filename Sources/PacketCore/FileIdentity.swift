#if canImport(Glibc)
import Glibc
#endif

/// Whether two paths name one existing file (same device and inode); "-" (standard input or output)
/// is never the same file. Commands refuse an output that is one of their inputs: opening it for
/// writing would empty it before it is read.
public func isSameFile(_ a: String, _ b: String) -> Bool {
    var sa = stat(), sb = stat()
    guard a != "-", b != "-", stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
}
