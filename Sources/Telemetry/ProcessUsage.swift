#if canImport(Glibc)
import Glibc
#endif

/// The process's own resource use, as Prometheus's client libraries name it
/// (`process_cpu_seconds_total`, `process_resident_memory_bytes`, …): read on the HTTP thread at
/// each scrape, from getrusage and /proc/self.
public struct ProcessUsage: Sendable {
    public var cpuSeconds: Double
    public var residentBytes: Double
    public var virtualBytes: Double
    public var openFileDescriptors: Double
    public var maxFileDescriptors: Double

    public static func current() -> ProcessUsage {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        var resident = 0.0
        var virtual = 0.0
        // statm: size and resident in pages.
        if let text = readSmallFile("/proc/self/statm") {
            let fields = text.split(separator: " ")
            let page = Double(sysconf(Int32(_SC_PAGESIZE)))
            if fields.count >= 2 {
                virtual = (Double(fields[0]) ?? 0) * page
                resident = (Double(fields[1]) ?? 0) * page
            }
        }
        var open = 0.0
        if let dir = opendir("/proc/self/fd") {
            while readdir(dir) != nil { open += 1 }
            closedir(dir)
            open -= 3 // ".", ".." and the directory's own descriptor
        }
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        return ProcessUsage(cpuSeconds: cpu, residentBytes: resident, virtualBytes: virtual, openFileDescriptors: max(0, open),
                            maxFileDescriptors: Double(limit.rlim_cur))
    }

    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return String(decoding: buffer[..<n], as: UTF8.self)
    }
}
