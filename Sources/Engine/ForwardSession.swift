#if canImport(Glibc)
import Glibc
#endif
import Capture
import Forwarding
import PacketCore
import Sharding
import Synchronization
import Telemetry
import Wire

/// `flowtap forward`: UDP datagrams from exporters relayed to collectors by rules (gForwarder's rule
/// lines or YAML), optionally keeping each exporter's source address. `threads` workers, each with its
/// own `SO_REUSEPORT` socket per listen address; the calling thread reloads rules on SIGHUP, prints
/// statistics, and stops everything on SIGINT/SIGTERM (or when `stop()` says so), then returns the summary.
public struct ForwardSession: Sendable {
    public var rulesPath: String
    public var listen: [String]
    public var keepSource = false
    public var threads = 1
    public var receiveBufferBytes: Int32 = 32 << 20
    public var sendBufferBytes: Int32 = 4 << 20
    /// Seconds between statistics lines on standard error; nil for none.
    public var statsInterval: Double?
    /// Tap mode: capture the exporters' datagrams from this interface instead of receiving them on sockets.
    public var tapInterface: String?
    /// Tap mode: the capture filter (default `udp`).
    public var tapFilter: String?
    /// Where `--http` reads counters (nil: no endpoint).
    public var telemetry: TelemetryHub?

    public init(rulesPath: String, listen: [String]) {
        self.rulesPath = rulesPath
        self.listen = listen
    }

    public struct SetupError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads and checks the rule file.
    public func loadRules() throws(RuleFileError) -> ForwardRuleSet {
        try ForwardRuleSet.load(path: rulesPath, keepSourceByDefault: keepSource)
    }

    public func run(log: @escaping @Sendable (String) -> Void = { writeStandardError($0 + "\n") }, stop: () -> Bool = { false }) throws -> String {
        let rules = try loadRules()
        let plan = ForwardPlan(rules)
        try Self.checkRawSockets(plan)
        var endpoints: [(IPAddress, UInt16)] = []
        for text in listen {
            guard let endpoint = ForwardSockets.parseListen(text) else {
                throw SetupError(description: "--listen \(text): write ADDRESS:PORT, e.g. 0.0.0.0:2055, [::]:514 or 127.0.0.1:6343")
            }
            endpoints.append(endpoint)
        }
        // Every socket and capture is opened before any worker starts, so a port in use fails the command at once.
        var workerSockets: [[(fd: Int32, port: UInt16)]] = []
        var captures: [LiveCapture] = []
        do {
            for _ in 0 ..< threads {
                if let tapInterface {
                    let capture = try LiveCapture(interface: tapInterface, filter: tapFilter ?? "udp", immediate: true, inboundOnly: true)
                    // By address pair, frames unchanged: the kernel's defragmenting fanout would hand over
                    // reassembled datagrams with several threads while one thread skips fragments.
                    if threads > 1 { try capture.joinFanoutByAddresses(group: UInt16(truncatingIfNeeded: getpid()), members: threads) }
                    captures.append(capture)
                    workerSockets.append([])
                    continue
                }
                var mine: [(fd: Int32, port: UInt16)] = []
                for (address, port) in endpoints { mine.append((try ForwardSockets.listen(address, port: port, receiveBuffer: receiveBufferBytes, reusePort: threads > 1), port)) }
                workerSockets.append(mine)
            }
        } catch {
            for fds in workerSockets { for s in fds { close(s.fd) } }
            throw SetupError(description: "\(error)")
        }
        defer { for fds in workerSockets { for s in fds { close(s.fd) } } }

        let shared = ForwardShared(plan: plan, workers: threads, log: log)
        let workers = workerSockets.enumerated().map { ForwardWorker(id: $0.offset, listeners: $0.element, shared: shared, sendBuffer: sendBufferBytes) }
        let source = tapInterface.map { "a tap on \($0) (\(tapFilter ?? "udp"))" } ?? listen.joined(separator: ", ")
        log("forward: \(Self.describe(plan)); from \(source) with \(threads) thread\(threads == 1 ? "" : "s")")
        let tapCounters = TapTotals(threads: captures.count)
        let threadHandles = workers.enumerated().map { i, worker in
            startThread {
                if captures.isEmpty { worker.run() } else { Self.tap(captures[i], worker, shared, tapCounters, thread: i) }
            }
        }
        var lastStats = Self.seconds()
        var clock = telemetry?.makeClock()
        func publish() {
            guard let hub = telemetry else { return }
            var kernelDrops = workers.reduce(UInt64(0)) { $0 + $1.kernelDrops() }
            for capture in captures { kernelDrops += capture.statistics?.droppedByKernel ?? 0 }
            let (current, c) = shared.counters()
            hub.publish(Self.snapshot(current, c, kernelDrops: kernelDrops, input: tapInterface ?? listen.joined(separator: ",")))
        }
        while !StopSignal.requested && !stop() {
            usleep(50_000)
            if clock?.isDue() == true { publish() }
            if HangupSignal.take() {
                do {
                    let next = ForwardPlan(try loadRules())
                    try Self.checkRawSockets(next)
                    shared.install(next)
                    log("forward: rules reloaded from \(rulesPath): \(Self.describe(next))")
                } catch {
                    log("forward: SIGHUP: the new rules are not used, the old ones stay: \(error)")
                }
            }
            if let interval = statsInterval, Self.seconds() - lastStats >= interval {
                lastStats = Self.seconds()
                let (_, c) = shared.counters()
                log("forward: received \(c.received), forwarded \(c.forwarded), sampled out \(c.sampledOut), unmatched \(c.unmatched), lost \(c.lost), kernel drops \(workers.reduce(0) { $0 + $1.kernelDrops() })")
            }
        }
        shared.stop()
        for thread in threadHandles { pthread_join(thread, nil) }
        var kernelDrops = workers.reduce(UInt64(0)) { $0 + $1.kernelDrops() }
        for capture in captures { kernelDrops += capture.statistics?.droppedByKernel ?? 0 }
        let (current, counters) = shared.counters()
        publish()
        var summary = Self.summary(current, counters, kernelDrops: kernelDrops)
        if !captures.isEmpty { summary = tapCounters.total.summary + summary }
        return summary
    }

    /// What tap mode saw that was not a whole UDP datagram.
    struct TapCounters {
        var packets: UInt64 = 0
        var notUDP: UInt64 = 0
        var fragments: UInt64 = 0
        var cutShort: UInt64 = 0
        var summary: String {
            "tap: packets \(packets); not UDP \(notUDP), IP fragments (not reassembled; skipped) \(fragments), cut short by the snap length \(cutShort)\n"
        }
    }

    /// Each tap thread's counters, published by the thread, summed for the summary.
    final class TapTotals: Sendable {
        let value: Mutex<[TapCounters]>
        init(threads: Int) { value = Mutex(Array(repeating: TapCounters(), count: threads)) }
        var total: TapCounters {
            value.withLock { all in
                all.reduce(into: TapCounters()) {
                    $0.packets &+= $1.packets
                    $0.notUDP &+= $1.notUDP
                    $0.fragments &+= $1.fragments
                    $0.cutShort &+= $1.cutShort
                }
            }
        }
    }

    /// Tap mode's loop: packets from the capture, decoded, their UDP datagrams routed by `worker`. Queued
    /// sends go out when the capture has nothing more at once, or every 64 datagrams.
    static func tap(_ capture: LiveCapture, _ worker: ForwardWorker, _ shared: ForwardShared, _ totals: TapTotals, thread: Int) {
        var decoder = PacketDecoder()
        var packet = DecodedPacket()
        var seen = TapCounters()
        var queued = false
        while !shared.stopped {
            worker.adoptNewPlanIfAny()
            let record: PacketRecord?
            do { record = try capture.next(waitMilliseconds: queued ? 0 : 100) } catch { break }
            guard let record else {
                if queued { worker.flushAll(); queued = false }
                worker.publishIfDue()
                totals.value.withLock { $0[thread] = seen }
                continue
            }
            seen.packets &+= 1
            decoder.decode(record.bytes, originalLength: record.originalLength, linkType: record.linkType, into: &packet)
            if packet.isFragment { seen.fragments &+= 1; continue }
            guard packet.transport == .udp else { seen.notUDP &+= 1; continue }
            guard packet.payloadCapturedLength == packet.payloadLength else { seen.cutShort &+= 1; continue }
            let payload = UnsafeRawBufferPointer(rebasing: record.bytes[packet.payloadOffset ..< packet.payloadOffset + packet.payloadLength])
            worker.forward(captured: payload, source: packet.source, sourcePort: packet.sourcePort, port: packet.destinationPort)
            queued = true
        }
        worker.flushAll()
        worker.publish()
        totals.value.withLock { $0[thread] = seen }
    }

    /// Fails early when a rule keeps sources and raw sockets are not allowed.
    static func checkRawSockets(_ plan: ForwardPlan) throws {
        for ipv6 in [false, true] where plan.destinations.contains(where: { $0.keepSource && $0.address.isIPv6 == ipv6 }) {
            let fd = try ForwardSockets.raw(ipv6: ipv6, sendBuffer: 0)
            close(fd)
        }
    }

    /// The rules as FlowTap reads them, one per line (`forward --check`).
    public static func explain(_ set: ForwardRuleSet) -> String {
        var s = "\(set.file): \(set.rules.count) rule\(set.rules.count == 1 ? "" : "s") (\(set.format.rawValue)); the first that matches wins\n"
        for rule in set.rules {
            let from = rule.sources.isEmpty ? "any exporter"
                : rule.sources.map { $0.length == 0 ? "any \($0.isIPv6 ? "IPv6" : "IPv4") exporter" : $0.description }.joined(separator: ", ")
            let ports = rule.ports == 0 ... 65535 ? "any port" : rule.ports.lowerBound == rule.ports.upperBound ? "port \(rule.ports.lowerBound)" : "ports \(rule.ports.lowerBound)-\(rule.ports.upperBound)"
            let kinds = rule.kinds == 0 ? "" : " (" + PayloadKind.allCases.filter { rule.kinds & (1 << $0.rawValue) != 0 }.map(\.description).joined(separator: ", ") + ")"
            s += "  \(rule.name == "line \(rule.line)" ? rule.name : "\(rule.name) [line \(rule.line)]"): from \(from) to \(ports)\(kinds) → \(rule.destinations.map(\.description).joined(separator: "; "))\n"
        }
        s += set.defaultDestinations.isEmpty ? "  otherwise: drop (counted)\n" : "  otherwise → \(set.defaultDestinations.map(\.description).joined(separator: "; "))\n"
        return s
    }

    static func describe(_ plan: ForwardPlan) -> String {
        let r = plan.rules
        return "\(r.rules.count) rule\(r.rules.count == 1 ? "" : "s") (\(r.format.rawValue)) from \(r.file), \(plan.destinations.count) destination\(plan.destinations.count == 1 ? "" : "s"), "
            + (r.defaultDestinations.isEmpty ? "unmatched datagrams dropped" : "unmatched datagrams to \(r.defaultDestinations.map(\.endpoint).joined(separator: ", "))")
    }

    static func seconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// The `--http` snapshot: totals, by kind, per rule and per destination with every loss by reason.
    static func snapshot(_ plan: ForwardPlan, _ c: ForwardCounters, kernelDrops: UInt64, input: String) -> TelemetrySnapshot {
        var s = TelemetrySnapshot()
        s.packets = c.received
        s.bytes = c.receivedBytes
        s.counter("flowtap_packets_total", "Packets the command took in: frames captured or injected, datagrams received.", c.received, ["input": input])
        s.counter("flowtap_bytes_total", "Bytes of the packets the command took in (frame lengths on the wire, or datagram payloads).", c.receivedBytes, ["input": input])
        s.counter("flowtap_forward_dropped_total", "Datagrams not forwarded, by reason.", kernelDrops, ["reason": "kernel"])
        s.counter("flowtap_forward_dropped_total", "Datagrams not forwarded, by reason.", c.unmatched, ["reason": "unmatched"])
        s.counter("flowtap_forward_dropped_total", "Datagrams not forwarded, by reason.", c.truncated, ["reason": "too_long"])
        for kind in PayloadKind.allCases {
            s.counter("flowtap_forward_datagrams_by_kind_total", "Datagrams received, by what they carry.", c.kinds[Int(kind.rawValue)], labels: [MetricLabel(name: "kind", value: "\(kind)")])
        }
        var rules = StatusTable(title: "Rules", columns: ["rule", "datagrams", "bytes"])
        var destinations = StatusTable(title: "Destinations", columns: ["destination", "forwarded", "bytes", "sampled out", "lost"])
        var exporters: [TrafficShare] = []
        for (r, name) in plan.ruleNames.enumerated() {
            let label = [MetricLabel(name: "rule", value: name)]
            s.counter("flowtap_forward_rule_datagrams_total", "Datagrams a rule matched.", c.rules[r].datagrams, labels: label)
            rules.rows.append([name, String(c.rules[r].datagrams), String(c.rules[r].bytes)])
            exporters.append(TrafficShare(name: "rule \(name)", packets: c.rules[r].datagrams, bytes: c.rules[r].bytes, flows: 0))
            for d in plan.destinations(ofRule: r) {
                let dc = c.destinations[d]
                let dl = label + [MetricLabel(name: "destination", value: "\(plan.destinations[d])")]
                s.counter("flowtap_forward_datagrams_total", "Datagrams forwarded to a destination.", dc.forwarded, labels: dl)
                s.counter("flowtap_forward_bytes_total", "Bytes forwarded to a destination.", dc.bytes, labels: dl)
                s.counter("flowtap_forward_sampled_out_total", "Datagrams a destination's sampling left out (on purpose, not lost).", dc.sampledOut, labels: dl)
                for (reason, value) in [("refused", dc.refused), ("unreachable", dc.unreachable), ("too_long", dc.tooLong), ("family_mismatch", dc.familyMismatch), ("other", dc.otherErrors)] {
                    s.counter("flowtap_forward_destination_dropped_total", "Datagrams a destination did not get, by reason.", value, labels: dl + [MetricLabel(name: "reason", value: reason)])
                }
                destinations.rows.append(["\(plan.destinations[d])", String(dc.forwarded), String(dc.bytes), String(dc.sampledOut), String(dc.lost)])
            }
        }
        s.protocols = PayloadKind.allCases.map { TrafficShare(name: "\($0)", packets: c.kinds[Int($0.rawValue)], bytes: 0, flows: 0) }.filter { $0.packets > 0 }
        s.talkers = exporters.sorted { $0.bytes > $1.bytes }
        s.tables = [rules, destinations]
        return s
    }

    /// The summary: totals, then each rule and its destinations with every way a datagram was not delivered.
    public static func summary(_ plan: ForwardPlan, _ c: ForwardCounters, kernelDrops: UInt64) -> String {
        var s = "datagrams received \(c.received) (\(c.receivedBytes) bytes), dropped by the kernel (receive buffer or capture ring full) \(kernelDrops); "
            + "forwarded \(c.forwarded) (\(c.forwardedBytes) bytes), sampled out \(c.sampledOut), lost in sending \(c.lost), "
            + "unmatched and dropped \(c.unmatched)"
        if c.truncated > 0 { s += ", longer than 65,535 bytes \(c.truncated)" }
        s += "\nby kind: " + PayloadKind.allCases.map { "\($0) \(c.kinds[Int($0.rawValue)])" }.joined(separator: ", ")
        let names = plan.ruleNames
        for (r, name) in names.enumerated() {
            let range = plan.destinations(ofRule: r)
            if r == names.count - 1 && range.isEmpty { continue }
            s += "\nrule '\(name)': datagrams \(c.rules[r].datagrams) (\(c.rules[r].bytes) bytes)"
            for d in range {
                let dc = c.destinations[d]
                s += "\n  → \(plan.destinations[d]): forwarded \(dc.forwarded) (\(dc.bytes) bytes)"
                if dc.sampledOut > 0 { s += ", sampled out \(dc.sampledOut)" }
                if dc.refused > 0 { s += ", refused by the collector (ICMP port unreachable) \(dc.refused)" }
                if dc.unreachable > 0 { s += ", no route or neighbour \(dc.unreachable)" }
                if dc.tooLong > 0 { s += ", too long to send with the source kept \(dc.tooLong)" }
                if dc.familyMismatch > 0 { s += ", exporter of the other address family (source cannot be kept) \(dc.familyMismatch)" }
                if dc.otherErrors > 0 { s += ", other send errors \(dc.otherErrors)" }
            }
        }
        return s + "\n"
    }
}
