import Foundation
import XCTest

/// An external truth a test needs (the corpus, tcpdump, tshark, python3, the built executables) is
/// missing. On a developer's machine the test skips; under CI (`FLOWTAP_REQUIRE_ORACLES=1`, set by
/// `.ci/run`) the same absence fails the test, so a skip can never pass for a comparison.
public struct OracleMissing: Error, CustomStringConvertible {
    public var description: String

    public static var required: Bool { ProcessInfo.processInfo.environment["FLOWTAP_REQUIRE_ORACLES"] == "1" }

    /// What to throw: `XCTSkip` normally, a failure when oracles are required.
    public static func error(_ why: String) -> any Error {
        required ? OracleMissing(description: "required oracle missing (FLOWTAP_REQUIRE_ORACLES=1): \(why)") : XCTSkip(why)
    }
}

/// Locates `../shared/corpus` beside the checkout (or `$FLOWTAP_CORPUS`).
public enum Corpus {
    public static let root: URL? = {
        if let env = ProcessInfo.processInfo.environment["FLOWTAP_CORPUS"] {
            return URL(fileURLWithPath: env)
        }
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { url.deleteLastPathComponent() }
        let candidate = url.deletingLastPathComponent().appendingPathComponent("shared/corpus")
        return FileManager.default.fileExists(atPath: candidate.path) ? candidate : nil
    }()

    public static func require(_ sub: String) throws -> URL {
        guard let root else { throw OracleMissing.error("shared/corpus not found beside the checkout; set FLOWTAP_CORPUS") }
        let url = root.appendingPathComponent(sub)
        guard FileManager.default.fileExists(atPath: url.path) else { throw OracleMissing.error("\(sub) not in the corpus") }
        return url
    }

    /// Path of an executable on PATH, or nil.
    public static func tool(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/usr/sbin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        for dir in ["/usr/sbin", "/usr/bin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
        return nil
    }

    /// Runs a program and returns its standard output and exit status.
    @discardableResult
    public static func run(_ path: String, _ arguments: [String]) throws -> (String, Int32) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (String(decoding: data, as: UTF8.self), process.terminationStatus)
    }

    /// Runs an executable; returns standard output, standard error and the exit status.
    public static func runCapturingErrors(_ path: String, _ arguments: [String]) throws -> (output: String, errors: String, status: Int32) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let out = Pipe()
        // Standard error goes to a file, so neither stream can fill a pipe and stall the child.
        let errorPath = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-stderr-\(UUID().uuidString)").path
        FileManager.default.createFile(atPath: errorPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errorPath) }
        process.standardOutput = out
        process.standardError = FileHandle(forWritingAtPath: errorPath)
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errors = FileManager.default.contents(atPath: errorPath) ?? Data()
        return (String(decoding: output, as: UTF8.self), String(decoding: errors, as: UTF8.self), process.terminationStatus)
    }
}

extension Corpus {
    /// `path` opened for a child's output, created or emptied in place with open(2). FileManager's
    /// createFile writes a new file and renames it over the path, which would replace /dev/null itself.
    public static func outputHandle(_ path: String) -> FileHandle {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        return fd >= 0 ? FileHandle(fileDescriptor: fd, closeOnDealloc: true) : FileHandle.nullDevice
    }
}
