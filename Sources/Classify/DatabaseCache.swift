import CVectorscan
import PacketCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Compiled Vectorscan databases kept on disk between runs, as Suricata keeps its Hyperscan
/// databases: compiling the SF-TAP rules costs about 90 M instructions (15–20 ms) on every start,
/// loading them back about 1 M; on a 0.2 s run that was a tenth of its CPU.
///
/// A file holds the exact key the database was compiled from (libhs version, target platform, and
/// every pattern with its id and flags), then the serialized database and a checksum of it. A
/// database is used only when the whole key matches byte for byte and the checksum agrees; anything
/// else (no file, another key, a short or damaged file, a database libhs refuses) means compiling
/// as before and writing the file anew. Files are named by a hash of the key, written to a temporary
/// name and renamed into place, so concurrent runs never read a half-written file.
///
/// Where: `$FLOWTAP_CACHE_DIR`, else `$XDG_CACHE_HOME/flowtap/vectorscan`, else
/// `$HOME/.cache/flowtap/vectorscan`; `FLOWTAP_CACHE_DIR=` (empty) turns the cache off. A directory
/// that cannot be made or written is silently not used: caching never stops a run.
struct DatabaseCache: Sendable {
    let directory: String

    static let magic: [UInt8] = Array("FLOWTAP-VECTORSCAN-DB 1\n".utf8)

    /// The cache of this process, from the environment (nil when turned off or without a home).
    static let shared: DatabaseCache? = {
        if let configured = getenv("FLOWTAP_CACHE_DIR").map({ String(cString: $0) }) {
            return configured.isEmpty ? nil : DatabaseCache(directory: configured)
        }
        if let xdg = getenv("XDG_CACHE_HOME").map({ String(cString: $0) }), xdg.hasPrefix("/") {
            return DatabaseCache(directory: xdg + "/flowtap/vectorscan")
        }
        if let home = getenv("HOME").map({ String(cString: $0) }), home.hasPrefix("/") {
            return DatabaseCache(directory: home + "/.cache/flowtap/vectorscan")
        }
        return nil
    }()

    /// Everything a compile depends on, as bytes.
    static func key(patterns: [String], ids: [UInt32], flags: UInt32, platform: hs_platform_info_t?) -> [UInt8] {
        var key = Array("libhs \(String(cString: hs_version()))\n".utf8)
        var target = platform ?? hs_platform_info_t()
        if platform == nil { _ = hs_populate_platform(&target) }
        append(UInt64(target.tune), to: &key)
        append(target.cpu_features, to: &key)
        append(UInt64(platform == nil ? 1 : 0), to: &key)
        append(UInt64(flags), to: &key)
        append(UInt64(patterns.count), to: &key)
        for (pattern, id) in zip(patterns, ids) {
            append(UInt64(id), to: &key)
            append(UInt64(pattern.utf8.count), to: &key)
            key.append(contentsOf: pattern.utf8)
        }
        return key
    }

    private static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// FNV-1a, 64 bits: names files and checks their contents (the key itself is compared whole).
    static func fnv1a(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    func path(for key: [UInt8]) -> String {
        let h = key.withUnsafeBytes { Self.fnv1a($0) }
        let hex = String(h, radix: 16)
        return directory + "/" + String(repeating: "0", count: 16 - hex.count) + hex + ".db"
    }

    /// The database stored under `key`, or nil.
    func load(key: [UInt8]) -> OpaquePointer? {
        guard let file = Self.readFile(path(for: key)) else { return nil }
        return file.withUnsafeBytes { Self.database(in: $0, key: key) }
    }

    /// The database a cache file's bytes hold for `key`, or nil when they are not exactly such a file.
    static func database(in raw: UnsafeRawBufferPointer, key: [UInt8]) -> OpaquePointer? {
        var at = 0
        func take(_ n: Int) -> UnsafeRawBufferPointer? {
            guard n >= 0, n <= raw.count - at else { return nil }
            defer { at += n }
            return UnsafeRawBufferPointer(rebasing: raw[at ..< at + n])
        }
        func word() -> UInt64? { take(8).map { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) } }
        guard let magic = take(Self.magic.count), magic.elementsEqual(Self.magic),
              let keyLength = word(), keyLength == UInt64(key.count), let stored = take(key.count), stored.elementsEqual(key),
              let length = word(), length <= UInt64(Int.max), let checksum = word(),
              let body = take(Int(length)), at == raw.count, Self.fnv1a(body) == checksum else { return nil }
        var database: OpaquePointer?
        let rc = body.withMemoryRebound(to: CChar.self) { hs_deserialize_database($0.baseAddress, $0.count, &database) }
        return rc == HS_SUCCESS ? database : nil
    }

    /// A cache file's bytes for `key` as `store` writes them (for tests and the fuzz target's seeds).
    static func fileBytes(database: OpaquePointer, key: [UInt8]) -> [UInt8]? {
        var bytes: UnsafeMutablePointer<CChar>?
        var length = 0
        guard hs_serialize_database(database, &bytes, &length) == HS_SUCCESS, let bytes else { return nil }
        defer { free(bytes) }
        let body = UnsafeRawBufferPointer(start: bytes, count: length)
        var file = magic
        append(UInt64(key.count), to: &file)
        file.append(contentsOf: key)
        append(UInt64(length), to: &file)
        append(fnv1a(body), to: &file)
        file.append(contentsOf: body)
        return file
    }

    /// Writes `database` under `key` (errors ignored: the next run compiles again).
    func store(_ database: OpaquePointer, key: [UInt8]) {
        guard let file = Self.fileBytes(database: database, key: key), makeDirectories(directory, mode: 0o700) == nil else { return }
        let target = path(for: key), temporary = target + ".\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let written = file.withUnsafeBytes { writeAll(fd, $0) == nil }
        close(fd)
        if !written || rename(temporary, target) != 0 { unlink(temporary) }
    }

    /// A cache file's bytes: a regular file (never a FIFO someone left there) of at most 64 MiB.
    private static func readFile(_ path: String) -> [UInt8]? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return try? readFileBytes(path, limit: 64 << 20, what: "a rules cache file")
    }
}

/// The fuzz target's entry: `bytes` read as a rules-cache file for the key "fuzz"; a database it
/// holds is loaded and freed. Never traps, whatever the bytes.
public func fuzzRulesCacheFile(_ bytes: UnsafeRawBufferPointer) {
    if let database = DatabaseCache.database(in: bytes, key: Array("fuzz".utf8)) { hs_free_database(database) }
}
