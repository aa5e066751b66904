#if canImport(Glibc)
import Glibc
#endif
import CShims
import Capture
import Incubator
import PacketCore
import Sharding
import Synchronization
import Telemetry

/// A stop flag the tap threads poll.
final class TapRun: Sendable {
    let flag = Atomic<Bool>(false)
    var stopped: Bool { flag.load(ordering: .relaxed) }
    func stop() { flag.store(true, ordering: .relaxed) }
}

/// `flowtap incubate -r FILE…`: every frame of the captures to the cell of its flow.
public struct IncubateSession {
    public var input = PipelineInput()
    public var cells: [CellSpec]
    public var selection = Incubator.Selection.flow
    public var dropNonIP = false
    public var fragments = FragmentCells()
    /// Where `--http` reads counters (tap and bridge modes; nil: no endpoint).
    public var telemetry: TelemetryHub?

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
    /// With `threads` > 1, that many rings share the interface in a `PACKET_FANOUT` group that picks the
    /// ring by the IP addresses alone (a classic BPF program): every frame of an address pair, both ways
    /// and every fragment, reaches one thread in order, unchanged (the kernel's own hash would split a
    /// flow's fragments from its other packets, and its defragmentation would change the frames). Each
    /// thread has its own decoder and fragment table; the cells are shared. Queued sends go out whenever a thread's ring
    /// has nothing more at once; `statsInterval` prints the counters.
    public func run(interface: String, filter: String?, threads: Int = 1, statsInterval: Double?, log: @escaping @Sendable (String) -> Void = { writeStandardError($0) },
                    stop: () -> Bool = { false }) throws -> String {
        for spec in cells {
            if case .interface(let name, _) = spec.target, name == interface {
                throw CaptureError(source: interface, reason: "cell \(spec) sends on the interface being captured: every frame would come back")
            }
        }
        // Not immediate: the kernel hands over whole ring blocks (at most 100 ms old), far fewer wake-ups
        // than one per frame; a tap has no one waiting on its latency (the bridge does, and is immediate).
        var captures: [LiveCapture] = []
        for _ in 0 ..< max(threads, 1) {
            let capture = try LiveCapture(interface: interface, filter: filter, immediate: false)
            if threads > 1 { try capture.joinFanoutByAddresses(group: UInt16(truncatingIfNeeded: getpid() ^ 0x5A5A), members: threads) }
            captures.append(capture)
        }
        let outputs = try CellOutputs(cells, blocking: false)
        let incubators = captures.map { _ in Incubator(outputs: outputs, selection: selection, dropNonIP: dropNonIP, fragments: fragments) }
        let running = TapRun()
        let hub = telemetry
        let handles = zip(captures, incubators).enumerated().map { i, pair in
            let (capture, incubator) = pair
            return startThread {
                var queued = false
                var clock = hub?.makeClock()
                while !running.stopped {
                    if let hub, clock!.isDue() { hub.publish(Self.snapshot(incubator, capture: capture, input: interface), part: 1 + i) }
                    guard let record = try? capture.next(waitMilliseconds: queued ? 0 : 100) else {
                        if queued { outputs.flush(); queued = false }
                        continue
                    }
                    incubator.process(record)
                    queued = true
                }
                incubator.finish()
                hub?.publish(Self.snapshot(incubator, capture: capture, input: interface), part: 1 + i)
            }
        }
        var lastStats = MonotonicClock.seconds()
        var clock = hub?.makeClock()
        while !StopSignal.requested && !stop() {
            usleep(50_000)
            if let hub, clock!.isDue() { hub.publish(Self.snapshot(cells: outputs), part: 0) }
            if let statsInterval, MonotonicClock.seconds() - lastStats >= statsInterval {
                lastStats = MonotonicClock.seconds()
                log(Self.summary(incubators, kernelDrops: captures.reduce(0) { $0 + ($1.statistics?.droppedByKernel ?? 0) }))
            }
        }
        running.stop()
        for handle in handles { pthread_join(handle, nil) }
        try outputs.close()
        hub?.publish(Self.snapshot(cells: outputs), part: 0)
        return Self.summary(incubators, kernelDrops: captures.reduce(0) { $0 + ($1.statistics?.droppedByKernel ?? 0) })
    }

    /// Inline mode: a transparent bridge between two interfaces. Every frame received on one is sent
    /// unchanged on the other first, then handed to its cell, so forwarding never waits for a cell.
    /// Runs until SIGINT/SIGTERM or `stop()`.
    public func run(bridge first: String, _ second: String, statsInterval: Double?, log: (String) -> Void = { writeStandardError($0) },
                    stop: () -> Bool = { false }) throws -> String {
        for spec in cells {
            if case .interface(let name, _) = spec.target, name == first || name == second {
                throw CaptureError(source: name, reason: "cell \(spec) sends on a bridged interface")
            }
        }
        let sides = [try LiveCapture(interface: first, immediate: true, inboundOnly: true),
                     try LiveCapture(interface: second, immediate: true, inboundOnly: true)]
        var senders: [Int32] = []
        for name in [second, first] {
            let fd = flowtap_packet_send_socket(name)
            guard fd >= 0 else { throw CaptureError(source: name, reason: "cannot send on it: \(String(cString: strerror(errno)))") }
            senders.append(fd)
        }
        defer { for fd in senders { close(fd) } }
        let outputs = try CellOutputs(cells, blocking: false)
        let incubator = Incubator(outputs: outputs, selection: selection, dropNonIP: dropNonIP, fragments: fragments)
        var bridged = [UInt64](repeating: 0, count: 2), failed = [UInt64](repeating: 0, count: 2)
        var firstError: String?
        var fds = sides.map { pollfd(fd: $0.selectableDescriptor, events: Int16(POLLIN), revents: 0) }
        var lastStats = MonotonicClock.seconds()
        let names = [first, second]
        func report() -> String {
            var s = ""
            for side in 0 ..< 2 {
                s += "bridged \(names[side]) → \(names[1 - side]): \(bridged[side]) frames"
                if failed[side] > 0 { s += ", not forwarded \(failed[side]) (\(firstError ?? "error"))" }
                s += "; the capture ring dropped \(sides[side].statistics?.droppedByKernel ?? 0)\n"
            }
            return s + Self.summary(incubator)
        }
        var clock = telemetry?.makeClock()
        func publish() {
            guard let hub = telemetry else { return }
            var s = Self.snapshot(incubator, capture: nil, input: "\(first)+\(second)")
            for side in 0 ..< 2 {
                s.add(capture: sides[side].statistics, input: names[side])
                let label = [MetricLabel(name: "from", value: names[side]), MetricLabel(name: "to", value: names[1 - side])]
                s.counter("flowtap_bridge_frames_total", "Frames the bridge forwarded.", bridged[side], labels: label)
                s.counter("flowtap_bridge_dropped_total", "Frames the bridge could not forward.", failed[side], labels: label)
            }
            let cells = Self.snapshot(cells: outputs)
            s.metrics += cells.metrics
            s.tables += cells.tables
            hub.publish(s, part: 0)
        }
        while !StopSignal.requested && !stop() {
            if clock?.isDue() == true { publish() }
            var busy = false
            for side in 0 ..< 2 {
                for _ in 0 ..< 64 {
                    guard let record = try sides[side].next(waitMilliseconds: 0) else { break }
                    busy = true
                    let sent = send(senders[side], record.bytes.baseAddress, record.bytes.count, 0)
                    if sent == record.bytes.count { bridged[side] &+= 1 } else {
                        failed[side] &+= 1
                        if firstError == nil { firstError = String(cString: strerror(errno)) }
                    }
                    incubator.process(record)
                }
            }
            if busy { continue }
            outputs.flush()
            if let statsInterval, MonotonicClock.seconds() - lastStats >= statsInterval {
                lastStats = MonotonicClock.seconds()
                log(report())
            }
            _ = poll(&fds, 2, 100)
        }
        incubator.finish()
        try outputs.close()
        publish()
        return report()
    }

    /// One tap thread's part of the `--http` snapshot (read on that thread).
    static func snapshot(_ incubator: Incubator, capture: LiveCapture?, input: String) -> TelemetrySnapshot {
        var s = TelemetrySnapshot()
        let c = incubator.counters
        s.packets = c.frames
        s.bytes = c.bytes
        s.counter("flowtap_packets_total", "Packets the command took in: frames captured or injected, datagrams received.", c.frames, ["input": input])
        s.counter("flowtap_bytes_total", "Bytes of the packets the command took in (frame lengths on the wire, or datagram payloads).", c.bytes, ["input": input])
        s.counter("flowtap_incubator_non_ip_frames_total", "Frames that were not IP (to cell 0, or dropped with --drop-non-ip).", c.nonIP)
        s.counter("flowtap_incubator_dropped_total", "Frames the incubator dropped on purpose, by reason.", c.nonIPDropped, ["reason": "non_ip"])
        s.counter("flowtap_ip_fragments_total", "IP fragments seen.", c.fragments)
        let f = incubator.fragments.counters
        s.counter("flowtap_incubator_fragments_without_first_total", "Fragments sent before or without their first fragment (cell chosen by addresses).", f.withoutFirst)
        s.counter("flowtap_incubator_fragment_datagrams_forgotten_total", "Fragmented datagrams forgotten with the fragment table full.", f.evicted)
        s.add(capture: capture?.statistics, input: input)
        return s
    }

    /// The cells' own counters and table (under the cells' lock).
    static func snapshot(cells: CellOutputs) -> TelemetrySnapshot {
        var s = TelemetrySnapshot()
        var table = StatusTable(title: "Cells", columns: ["cell", "frames", "bytes", "dropped", "last error"])
        for (i, k) in cells.lockedCounters.enumerated() {
            let label = [MetricLabel(name: "cell", value: String(i)), MetricLabel(name: "target", value: cells.specs[i].description)]
            s.counter("flowtap_cell_frames_total", "Frames delivered to a cell.", k.frames, labels: label)
            s.counter("flowtap_cell_bytes_total", "Bytes delivered to a cell.", k.bytes, labels: label)
            for (reason, value) in [("send_failed", k.failed), ("other_link_type", k.otherLinkType), ("not_ethernet", k.notEthernet), ("queue_full", k.full)] {
                s.counter("flowtap_cell_dropped_total", "Frames a cell did not get, by reason.", value, labels: label + [MetricLabel(name: "reason", value: reason)])
            }
            table.rows.append(["\(i) \(cells.specs[i])", String(k.frames), String(k.bytes), String(k.dropped), k.lastError ?? ""])
        }
        s.tables.append(table)
        return s
    }

    /// Frames in, per cell, per drop reason, non-IP frames and the fragment table.
    public static func summary(_ incubator: Incubator, kernelDrops: UInt64? = nil) -> String {
        summary([incubator], kernelDrops: kernelDrops)
    }

    /// The same over several threads' incubators sharing one set of cells.
    public static func summary(_ incubators: [Incubator], kernelDrops: UInt64? = nil) -> String {
        let incubator = incubators[0]
        var c = Incubator.Counters()
        var f = FragmentCells.Counters()
        for i in incubators {
            c.frames &+= i.counters.frames
            c.bytes &+= i.counters.bytes
            c.nonIP &+= i.counters.nonIP
            c.nonIPDropped &+= i.counters.nonIPDropped
            c.fragments &+= i.counters.fragments
            f.add(i.fragments.counters)
        }
        var s = kernelDrops.map { "frames the kernel's capture ring dropped \($0)\n" } ?? ""
        if incubators.count > 1 { s += "threads \(incubators.count): frames \(incubators.map { String($0.counters.frames) }.joined(separator: ", "))\n" }
        s += "frames in \(c.frames) (\(c.bytes) bytes), by \(incubator.selection.rawValue) hash over \(incubator.cellCount) cells; "
            + "non-IP \(c.nonIP) (\(incubator.dropNonIP ? "dropped" : "to cell 0")), IP fragments \(c.fragments)\n"
        for (i, spec) in incubator.outputs.specs.enumerated() {
            let k = incubator.outputs.counters[i]
            s += "cell \(i) \(spec): frames \(k.frames) (\(k.bytes) bytes)"
            if k.failed > 0 { s += ", not delivered \(k.failed) (\(k.lastError ?? "error"))" }
            if k.otherLinkType > 0 { s += ", of another link type than the file's \(k.otherLinkType) (name the file .pcapng)" }
            if k.notEthernet > 0 { s += ", not Ethernet or IP (cannot be sent) \(k.notEthernet)" }
            if k.full > 0 { s += ", dropped with the reader's queue full \(k.full)" }
            s += "\n"
        }
        if c.fragments > 0 {
            s += "fragments: after their first \(f.followed), held for their first \(f.held) (released with it \(f.releasedWithFirst)), "
                + "sent without their first \(f.withoutFirst) (hold full \(f.holdFull)); datagrams remembered at most \(f.peakRemembered) "
                + "of \(incubator.fragments.capacity), forgotten \(f.evicted); held bytes at most \(f.peakHeldBytes)\n"
        }
        return s
    }
}
