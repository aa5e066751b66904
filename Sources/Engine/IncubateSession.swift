import Capture
import Incubator
import PacketCore

/// `flowtap incubate -r FILE…`: every frame of the captures to the cell of its flow.
public struct IncubateSession {
    public var input = PipelineInput()
    public var cells: [CellSpec]
    public var selection = Incubator.Selection.flow
    public var dropNonIP = false
    public var fragments = FragmentCells()

    public init(cells: [CellSpec]) { self.cells = cells }

    /// Splits `files` ("-" is standard input) over the cells; returns the summary.
    public func run(files: [String]) throws -> String {
        let outputs = try CellOutputs(cells)
        let incubator = Incubator(outputs: outputs, selection: selection, dropNonIP: dropNonIP, fragments: fragments)
        let (_, filtered) = try input.forEachRecord(in: files) { incubator.process($0) }
        incubator.finish()
        try outputs.close()
        var report = Self.summary(incubator)
        if filtered > 0 { report = "frames the filter rejected \(filtered)\n" + report }
        return report
    }

    /// Tap mode: frames from a live interface (libpcap's TPACKET_V3 ring) until SIGINT/SIGTERM or `stop()`.
    /// Queued sends go out whenever the ring has nothing more at once; `statsInterval` prints the counters.
    public func run(interface: String, filter: String?, statsInterval: Double?, log: (String) -> Void = { writeStandardError($0) },
                    stop: () -> Bool = { false }) throws -> String {
        for spec in cells {
            if case .interface(let name, _) = spec.target, name == interface {
                throw CaptureError(source: interface, reason: "cell \(spec) sends on the interface being captured: every frame would come back")
            }
        }
        let capture = try LiveCapture(interface: interface, filter: filter, immediate: true)
        let outputs = try CellOutputs(cells)
        let incubator = Incubator(outputs: outputs, selection: selection, dropNonIP: dropNonIP, fragments: fragments)
        var queued = false
        var lastStats = MonotonicClock.seconds()
        while !StopSignal.requested && !stop() {
            guard let record = try capture.next(waitMilliseconds: queued ? 0 : 100) else {
                if queued { outputs.flush(); queued = false }
                if let statsInterval, MonotonicClock.seconds() - lastStats >= statsInterval {
                    lastStats = MonotonicClock.seconds()
                    log(Self.summary(incubator, kernelDrops: capture.statistics?.droppedByKernel))
                }
                continue
            }
            incubator.process(record)
            queued = true
        }
        incubator.finish()
        try outputs.close()
        return Self.summary(incubator, kernelDrops: capture.statistics?.droppedByKernel)
    }

    /// Frames in, per cell, per drop reason, non-IP frames and the fragment table.
    public static func summary(_ incubator: Incubator, kernelDrops: UInt64? = nil) -> String {
        let c = incubator.counters
        var s = kernelDrops.map { "frames the kernel's capture ring dropped \($0)\n" } ?? ""
        s += "frames in \(c.frames) (\(c.bytes) bytes), by \(incubator.selection.rawValue) hash over \(incubator.cellCount) cells; "
            + "non-IP \(c.nonIP) (\(incubator.dropNonIP ? "dropped" : "to cell 0")), IP fragments \(c.fragments)\n"
        for (i, spec) in incubator.outputs.specs.enumerated() {
            let k = incubator.outputs.counters[i]
            s += "cell \(i) \(spec): frames \(k.frames) (\(k.bytes) bytes)"
            if k.failed > 0 { s += ", not delivered \(k.failed) (\(k.lastError ?? "error"))" }
            if k.otherLinkType > 0 { s += ", of another link type than the file's \(k.otherLinkType) (name the file .pcapng)" }
            if k.notEthernet > 0 { s += ", not Ethernet or IP (cannot be sent) \(k.notEthernet)" }
            s += "\n"
        }
        let f = incubator.fragments.counters
        if c.fragments > 0 {
            s += "fragments: after their first \(f.followed), held for their first \(f.held) (released with it \(f.releasedWithFirst)), "
                + "sent without their first \(f.withoutFirst) (hold full \(f.holdFull)); datagrams remembered at most \(f.peakRemembered) "
                + "of \(incubator.fragments.capacity), forgotten \(f.evicted); held bytes at most \(f.peakHeldBytes)\n"
        }
        return s
    }
}
