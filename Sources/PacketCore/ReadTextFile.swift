#if canImport(Glibc)
import Glibc
#endif

public struct ReadFileError: Error, CustomStringConvertible {
    public var description: String
}

/// Reads a whole (small) text file: configurations and rule files, at most 16 MiB.
public func readTextFile(_ path: String) throws(ReadFileError) -> String {
    String(decoding: try readFileBytes(path, limit: 16 << 20, what: "a configuration file"), as: UTF8.self)
}

/// Reads a whole small file's bytes; more than `limit` bytes is an error ("larger than …; this is not `what`").
public func readFileBytes(_ path: String, limit: Int, what: String) throws(ReadFileError) -> [UInt8] {
    guard let file = fopen(path, "rb") else { throw ReadFileError(description: String(cString: strerror(errno))) }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = fread(&chunk, 1, chunk.count, file)
        if n > 0 { bytes += chunk[0 ..< n] }
        if n < chunk.count { break }
        if bytes.count > limit { throw ReadFileError(description: "larger than \(limit >> 20) MiB; this is not \(what)") }
    }
    return bytes
}
