#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress display on standard error, shown only when it is a terminal.
///
/// Callers call `update` every few thousand packets; it checks the clock and
/// redraws at most twice a second, so the cost per packet is nil.
public struct ProgressReporter: Sendable {
    private var name = ""
    private var totalBytes: Int?
    private var lastDraw: Double = 0
    private var started: Double = 0
    private var drawn = false

    /// nil unless standard error is a terminal (or `force`).
    public static func forTerminal(force: Bool = false) -> ProgressReporter? {
        force || isatty(2) != 0 ? ProgressReporter() : nil
    }


    public mutating func begin(name: String, totalBytes: Int?) {
        self.name = name
        self.totalBytes = totalBytes
        started = MonotonicClock.seconds()
        lastDraw = started
    }

    public mutating func update(bytes: Int, packets: UInt64) {
        let t = MonotonicClock.seconds()
        guard t - lastDraw >= 0.5 else { return }
        lastDraw = t
        let rate = Double(bytes) / max(t - started, 1e-9) / 1e6
        var line = "\r\(name): \(packets) packets, \(bytes / 1_000_000) MB"
        if let totalBytes, totalBytes > 0 { line += " (\(bytes * 100 / totalBytes)%)" }
        line += ", \(Int(rate)) MB/s"
        writeStandardError(line + "\u{1B}[K")
        drawn = true
    }

    public mutating func end() {
        if drawn { writeStandardError("\r\u{1B}[K") }
        drawn = false
    }
}
