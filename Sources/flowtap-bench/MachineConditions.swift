#if canImport(Glibc)
import Glibc
#endif

/// CPU time the hypervisor gave to other guests while this VM had work: /proc/stat's `steal`.
///
/// A process's own CPU seconds leave it out, but its wall time does not, and two threads are hit
/// harder than one (either may be the one stopped). On a shared VM a run with a few percent of steal
/// says more about the host than about the code, so the bench commands report it beside each row.
enum HostSteal {
    struct Sample {
        var steal: UInt64
        var total: UInt64
    }

    /// The machine-wide counters (all CPUs, in clock ticks), or nil where /proc/stat has no steal field.
    static func sample() -> Sample? {
        guard let file = fopen("/proc/stat", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 512)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // "cpu  user nice system idle iowait irq softirq steal guest guest_nice"; guest time is already in user.
        let fields = text.split(separator: " ").dropFirst().prefix(8).compactMap { UInt64($0) }
        guard text.hasPrefix("cpu "), fields.count == 8 else { return nil }
        return Sample(steal: fields[7], total: fields.reduce(0, +))
    }

    /// The share (0…1) of all CPUs' time between two samples that was stolen; nil without /proc/stat.
    /// The counters move once a clock tick (10 ms at USER_HZ 100): a span within one tick shows none.
    static func share(from start: Sample?, to end: Sample?) -> Double? {
        guard let start, let end else { return nil }
        guard end.total > start.total else { return 0 }
        return Double(end.steal &- start.steal) / Double(end.total - start.total)
    }

    /// "median 0.4%, max 2.1%" for a row's shares, or nil without any.
    static func summary(_ shares: [Double]) -> String? {
        guard !shares.isEmpty else { return nil }
        return "median \(percent(BenchLoops.median(shares))), max \(percent(shares.max()!))"
    }

    /// One decimal: "2.1%".
    static func percent(_ share: Double) -> String {
        let tenths = Int((max(0, share) * 1000).rounded())
        return "\(tenths / 10).\(tenths % 10)%"
    }
}

/// Copies of the captures in memory, so that every round reads them from RAM.
///
/// A VM's page cache is not the guest's to keep: on this kind of machine a 200 MB capture was found
/// 60–90% resident a minute after it was written, with 22 GB free, so each round read part of it
/// from the disk again and the reading thread waited on it. A copy on tmpfs stays in memory.
enum CaptureStaging {
    /// The file system type of the mount holding `path` ("tmpfs", "ext4"…), from /proc/self/mounts.
    static func fileSystemType(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        let full = String(cString: resolved)
        free(resolved)
        var best: (length: Int, type: String)?
        for line in Subprocess.readText("/proc/self/mounts").split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3 else { continue }
            // Spaces in mount points are written as \040; such mounts simply never match.
            let point = String(fields[1])
            let inside = point == "/" || full == point || full.hasPrefix(point + "/")
            if inside, point.count >= (best?.length ?? -1) { best = (point.count, String(fields[2])) }
        }
        return best?.type
    }

    struct Staged {
        /// The paths to read: the copies, or the originals when they were not copied.
        var files: [String]
        /// The directory holding the copies (removed by `remove`), nil when nothing was copied.
        var directory: String?
        /// Where the captures are read from, for the report.
        var note: String

        func remove() {
            if let directory { Subprocess.removeTree(directory) }
        }
    }

    /// Copies `files` into a new directory under `scratch` when `scratch` is tmpfs and the copies take at
    /// most half of the memory available; otherwise reads the originals and says why.
    static func stage(_ files: [String], under scratch: String) throws -> Staged {
        guard fileSystemType(scratch) == "tmpfs" else {
            return Staged(files: files, directory: nil, note: "read in place (\(scratch) is not tmpfs)")
        }
        var total = 0
        for file in files {
            var info = stat()
            guard stat(file, &info) == 0 else { throw BenchError("\(file): \(String(cString: strerror(errno)))") }
            total += Int(info.st_size)
        }
        if let available = memoryAvailable(), total > available / 2 {
            return Staged(files: files, directory: nil,
                          note: "read in place (\(total >> 20) MiB of captures, \(available >> 20) MiB of memory available)")
        }
        let directory = try Subprocess.temporaryDirectoryIn(scratch, "flowtap-bench-captures")
        var copies: [String] = []
        do {
            for (index, file) in files.enumerated() {
                let name = file.split(separator: "/").last.map(String.init) ?? "capture"
                let copy = "\(directory)/\(index)-\(name)"
                try copyFile(file, to: copy)
                copies.append(copy)
            }
        } catch {
            Subprocess.removeTree(directory)
            throw error
        }
        return Staged(files: copies, directory: directory, note: "read from copies in \(directory) (memory; --in-place reads the originals)")
    }

    /// MemAvailable from /proc/meminfo, in bytes.
    static func memoryAvailable() -> Int? {
        for line in Subprocess.readText("/proc/meminfo").split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            if let kib = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) { return kib * 1024 }
        }
        return nil
    }

    static func copyFile(_ source: String, to target: String) throws {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw BenchError("\(source): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let output = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw BenchError("\(target): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        while true {
            let n = read(input, buffer, 1 << 20)
            if n == 0 { return }
            guard n > 0 else {
                if errno == EINTR { continue }
                throw BenchError("\(source): \(String(cString: strerror(errno)))")
            }
            var written = 0
            while written < n {
                let w = write(output, buffer + written, n - written)
                guard w > 0 else {
                    if w < 0 && errno == EINTR { continue }
                    throw BenchError("\(target): \(String(cString: strerror(errno)))")
                }
                written += w
            }
        }
    }
}
