#if canImport(Glibc)
import Glibc
#endif

public struct ReadFileError: Error, CustomStringConvertible {
    public var description: String
}

/// Reads a whole (small) text file: configurations and rule files, at most 16 MiB.
public func readTextFile(_ path: String) throws(ReadFileError) -> String {
    guard let file = fopen(path, "rb") else { throw ReadFileError(description: String(cString: strerror(errno))) }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = fread(&chunk, 1, chunk.count, file)
        if n > 0 { bytes += chunk[0 ..< n] }
        if n < chunk.count { break }
        if bytes.count > 16 << 20 { throw ReadFileError(description: "larger than 16 MiB; this is not a configuration file") }
    }
    return String(decoding: bytes, as: UTF8.self)
}
