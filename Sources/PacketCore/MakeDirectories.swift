#if canImport(Glibc)
import Glibc
#endif

/// `mkdir -p`: makes `path` and every missing directory above it with `mode` (less the umask).
/// Returns nil when all exist afterwards, else the directory that could not be made and errno.
public func makeDirectories(_ path: String, mode: mode_t) -> (path: String, errno: Int32)? {
    var prefix = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        prefix += "/" + part
        if mkdir(prefix, mode) != 0 && errno != EEXIST { return (prefix, errno) }
    }
    return nil
}
