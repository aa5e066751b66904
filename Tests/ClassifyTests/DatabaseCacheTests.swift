@testable import Classify
import CVectorscan
import Glibc
import XCTest

/// Compiled databases kept on disk: one that loads scans exactly as the one compiled; a file of another
/// key, a damaged or a truncated file is never used (the rules are compiled and the file written anew).
final class DatabaseCacheTests: XCTestCase {
    let patterns = [#"^GET "#, #"HTTP/1\.[01]"#, #"foo.*bar"#, #"^\x16\x03[\x00-\x03]"#]

    func directory() -> String {
        let path = "/tmp/flowtap-dbcache-\(getpid())-\(name.filter { $0.isLetter })"
        _ = try? FileManager.default.removeItem(atPath: path)
        return path
    }

    func compile(_ patterns: [String], cache: DatabaseCache?) throws -> VectorscanDatabase {
        try VectorscanDatabase(patterns: patterns, ids: patterns.indices.map { UInt32($0) }, flags: CompiledRules.flags(utf8: false), platform: nil,
                               origins: patterns.map { PatternOrigin(rule: "test", side: .up, source: $0, insertions: []) }, cache: cache)
    }

    /// The ids `database` matches in `text`.
    func matches(_ database: OpaquePointer, _ text: String) -> Set<UInt32> {
        var scratch: OpaquePointer?
        XCTAssertEqual(hs_alloc_scratch(database, &scratch), HS_SUCCESS)
        defer { hs_free_scratch(scratch) }
        var found: UInt64 = 0
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBufferPointer { b in
            withUnsafeMutablePointer(to: &found) { context in
                hs_scan(database, UnsafeRawPointer(b.baseAddress!).assumingMemoryBound(to: CChar.self), UInt32(b.count), 0, scratch, { id, _, _, _, context in
                    context!.assumingMemoryBound(to: UInt64.self).pointee |= 1 << UInt64(id)
                    return 0
                }, UnsafeMutableRawPointer(context))
            }
        }
        return Set((0 ..< 64).filter { found & (1 << UInt64($0)) != 0 }.map { UInt32($0) })
    }

    let inputs = ["GET / HTTP/1.1\r\n", "HTTP/1.0 200 OK", "xx foo and bar", "\u{16}\u{03}\u{01}abc", "nothing", ""]

    func testALoadedDatabaseScansAsTheCompiledOne() throws {
        let cache = DatabaseCache(directory: directory())
        let key = DatabaseCache.key(patterns: patterns, ids: patterns.indices.map { UInt32($0) }, flags: CompiledRules.flags(utf8: false), platform: nil)
        XCTAssertNil(cache.load(key: key))
        let compiled = try compile(patterns, cache: cache)
        XCTAssertTrue(FileManager.default.fileExists(atPath: cache.path(for: key)))
        let loaded = try XCTUnwrap(cache.load(key: key))
        defer { hs_free_database(loaded) }
        let uncached = try compile(patterns, cache: nil)
        for text in inputs {
            XCTAssertEqual(matches(loaded, text), matches(uncached.handle, text), text)
            XCTAssertEqual(matches(compiled.handle, text), matches(uncached.handle, text), text)
        }
        XCTAssertEqual(matches(loaded, "GET / HTTP/1.1"), [0, 1])
        // Another pattern set is another key and another file.
        var other = patterns
        other[2] = #"foo.*baz"#
        let otherKey = DatabaseCache.key(patterns: other, ids: other.indices.map { UInt32($0) }, flags: CompiledRules.flags(utf8: false), platform: nil)
        XCTAssertNotEqual(cache.path(for: otherKey), cache.path(for: key))
        XCTAssertNil(cache.load(key: otherKey))
        let otherDatabase = try compile(other, cache: cache)
        XCTAssertEqual(matches(otherDatabase.handle, "xx foo and bar"), [])
        XCTAssertEqual(matches(otherDatabase.handle, "xx foo and baz"), [2])
    }

    func testDamagedFilesAreNeverUsed() throws {
        let cache = DatabaseCache(directory: directory())
        let key = DatabaseCache.key(patterns: patterns, ids: patterns.indices.map { UInt32($0) }, flags: CompiledRules.flags(utf8: false), platform: nil)
        _ = try compile(patterns, cache: cache)
        let path = cache.path(for: key)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        var damaged: [Data] = []
        for offset in [3, DatabaseCache.magic.count + 9, good.count / 2, good.count - 1] {
            var d = good
            d[offset] ^= 0x40
            damaged.append(d)
        }
        damaged.append(good.prefix(good.count - 10))
        damaged.append(good + Data([0]))
        damaged.append(Data())
        for (i, bytes) in damaged.enumerated() {
            try bytes.write(to: URL(fileURLWithPath: path))
            XCTAssertNil(cache.load(key: key), "damaged file \(i)")
            // The next compile writes a good file again, and it loads.
            let database = try compile(patterns, cache: cache)
            XCTAssertEqual(matches(database.handle, "GET / HTTP/1.0"), [0, 1])
            let reloaded = try XCTUnwrap(cache.load(key: key), "after damaged file \(i)")
            hs_free_database(reloaded)
        }
    }

    /// The fuzz target's saved seed is a whole, valid file for its key, so replays reach libhs's deserialiser.
    func testTheFuzzSeedIsAValidFile() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/rules-cache/valid-database.db")
        let bytes = try [UInt8](Data(contentsOf: url))
        let database = try XCTUnwrap(bytes.withUnsafeBytes { DatabaseCache.database(in: $0, key: Array("fuzz".utf8)) })
        defer { hs_free_database(database) }
        XCTAssertNil(bytes.withUnsafeBytes { DatabaseCache.database(in: $0, key: Array("fuzzy".utf8)) })
    }

    func testAnUnwritableDirectoryOnlyMeansCompiling() throws {
        let cache = DatabaseCache(directory: "/proc/flowtap-no-such-directory/cache")
        let database = try compile(patterns, cache: cache)
        XCTAssertEqual(matches(database.handle, "HTTP/1.1"), [1])
    }
}
