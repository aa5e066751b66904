import Capture
import Flows
import FlowCore
import PacketCore
import Telemetry
import Outputs
import Wire

/// The part of a telemetry snapshot every flow engine gives: its counters as metrics, and the flows
/// it holds now as talkers, protocol mix and largest flows. Built on the engine's own thread when
/// its clock says one is due.
///
/// The views come from a walk of the flow table (`FlowViewWalker`), made only while someone reads the
/// status API (the dashboard): `/metrics` alone never costs a walk. They describe the flows open
/// during the last complete pass: a finished flow leaves the talkers and top flows as it leaves the table.
enum FlowTelemetry {
    /// Talkers one engine offers to the merge (a host split across shards adds up only if it is in
    /// each shard's list, so each gives more than the page shows).
    static let talkersPerEngine = 50
    static let flowsPerEngine = 10

    /// The engine's counters; with `views`, the next slice of the flow-table walk for talkers, protocols
    /// and top flows too (the views of the last complete pass go with the snapshot).
    static func snapshot<Sink>(engine: FlowEngine<Sink>, input: String, views: Bool, walker: inout FlowViewWalker) -> TelemetrySnapshot {
        var s = TelemetrySnapshot()
        let c = engine.counters
        let table = engine.table
        s.packets = c.packets
        s.bytes = c.bytes
        s.activeFlows = UInt64(table.count)
        s.counter("flowtap_packets_total", "Packets the command took in: frames captured or injected, datagrams received.", c.packets, ["input": input])
        s.counter("flowtap_bytes_total", "Bytes of the packets the command took in (frame lengths on the wire, or datagram payloads).", c.bytes, ["input": input])
        s.gauge("flowtap_flows_active", "Flows in the flow table.", Double(table.count))
        s.counter("flowtap_flows_created_total", "Flows the flow engine created.", c.flowsCreated)
        let reasons = ["normal", "reset", "timeout", "evicted"]
        for (i, reason) in reasons.enumerated() where i < c.destroyed.count {
            s.counter("flowtap_flows_ended_total", "Flows ended, by reason (FIN both ways, RST, idle or end of input, evicted from a full table).", c.destroyed[i], ["reason": reason])
        }
        s.counter("flowtap_flows_evicted_total", "Flows ended early because the flow table was full (see --max-flows).", c.evictions)
        let ignored: [(String, UInt64)] = [("non_ip", c.nonIP), ("other_transport", c.otherTransport), ("tcp_without_flow", c.tcpWithoutFlow),
                                           ("tcp_after_close", c.tcpAfterClose), ("undecodable", c.undecodable)]
        for (reason, value) in ignored {
            s.counter("flowtap_packets_ignored_total", "Packets that made no flow event, by reason.", value, ["reason": reason])
        }
        s.counter("flowtap_ip_fragments_total", "IP fragments seen.", c.fragments)
        s.counter("flowtap_ip_datagrams_reassembled_total", "IP datagrams rebuilt from fragments.", c.reassembledDatagrams)
        let tcp = engine.tcp.counters
        s.counter("flowtap_tcp_segments_total", "TCP segments given to reassembly.", tcp.segments)
        s.counter("flowtap_tcp_stream_bytes_total", "Bytes TCP reassembly delivered in order.", tcp.deliveredBytes)
        s.counter("flowtap_tcp_gaps_total", "Holes TCP reassembly skipped (data never seen).", tcp.gaps)
        s.counter("flowtap_tcp_dropped_total", "TCP data reassembly dropped, by reason (memory cap, a direction's cap, pressure).", tcp.memcapDrops, ["reason": "memcap"])
        s.counter("flowtap_tcp_dropped_total", "TCP data reassembly dropped, by reason (memory cap, a direction's cap, pressure).", tcp.directionCapSkips, ["reason": "direction_cap"])
        s.counter("flowtap_tcp_dropped_total", "TCP data reassembly dropped, by reason (memory cap, a direction's cap, pressure).", tcp.pressureSkips, ["reason": "pressure"])
        s.gauge("flowtap_tcp_buffered_bytes", "Bytes TCP reassembly holds out of order.", Double(engine.tcp.bufferedBytes))
        for (anomaly, count) in engine.anomalies.nonZero {
            s.counter("flowtap_anomalies_total", "Malformed or suspicious packets, by kind.", count, labels: [MetricLabel(name: "kind", value: anomaly.name)])
        }
        s.hasViews = false
        if views {
            walker.step(table)
            walker.apply(to: &s)
        }
        return s
    }

    static func endpoint(_ address: IPAddress, _ port: UInt16, _ proto: UInt8) -> String {
        guard proto == 6 || proto == 17 else { return address.description }
        return address.isIPv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    static func protocolName(_ number: UInt8) -> String {
        switch number {
        case 6: "tcp"
        case 17: "udp"
        case 1: "icmp"
        case 58: "ipv6-icmp"
        case 132: "sctp"
        default: "ip-\(number)"
        }
    }
}

/// Publishes a pipeline's shards to a hub, each shard from its own thread: after a batch (several
/// shards, or live capture) or on the reader's tick (one shard reading files), when that shard's
/// clock says a snapshot is due. `extra` adds what the shard's sink counts, on the same thread.
final class PipelineTelemetry<Sink: FlowEventSink>: @unchecked Sendable {
    let hub: TelemetryHub
    let input: String
    /// Parts below this number belong to the command's other threads.
    let firstPart: Int
    let extra: (Int, FlowEngine<Sink>, inout TelemetrySnapshot) -> Void
    /// One clock and one flow-table walker per shard, each touched only by its shard's thread.
    private let clocks: UnsafeMutableBufferPointer<TelemetryClock>
    private let walkers: UnsafeMutableBufferPointer<FlowViewWalker>
    private unowned let pipeline: Pipeline<Sink>
    private var packetsAtCheck: UInt64 = 0
    private var packetsAtTick: UInt64 = .max

    init(hub: TelemetryHub, pipeline: Pipeline<Sink>, input: String, firstPart: Int = 1,
         extra: @escaping (Int, FlowEngine<Sink>, inout TelemetrySnapshot) -> Void = { _, _, _ in }) {
        self.hub = hub
        self.pipeline = pipeline
        self.input = input
        self.firstPart = firstPart
        self.extra = extra
        clocks = .allocate(capacity: pipeline.engines.count)
        clocks.initialize(repeating: hub.makeClock())
        walkers = .allocate(capacity: pipeline.engines.count)
        walkers.initialize(repeating: FlowViewWalker())
        let afterBatch = pipeline.afterBatch, onTick = pipeline.onTick
        pipeline.afterBatch = { [unowned self] shard in
            afterBatch?(shard)
            if clocks[shard].isDue() { publish(shard) }
        }
        let first = pipeline.engines[0]
        pipeline.onTick = { [unowned self] in
            onTick?()
            // One shard: the tick comes every 256 packets from files, but after every packet live (and
            // after each read that timed out), so the clock is read only after 64 more packets or on an
            // idle tick.
            let packets = first.counters.packets
            if packets &- packetsAtCheck >= 64 || packets == packetsAtTick {
                packetsAtCheck = packets
                if clocks[0].isDue() { publish(0) }
            }
            packetsAtTick = packets
        }
    }

    deinit {
        clocks.deallocate()
        _ = walkers.deinitialize()
        walkers.deallocate()
    }

    func publish(_ shard: Int, final: Bool = false) {
        let engine = pipeline.engines[shard]
        var snapshot = FlowTelemetry.snapshot(engine: engine, input: input, views: final || hub.viewsWanted, walker: &walkers[shard])
        extra(shard, engine, &snapshot)
        hub.publish(snapshot, part: firstPart + shard)
    }

    /// Every shard once more, from the calling thread once the run is over (the final numbers).
    func publishAll() {
        for shard in pipeline.engines.indices { publish(shard, final: true) }
    }
}

extension TelemetrySnapshot {
    /// A record writer's outputs: records written and dropped by reason, per output.
    mutating func add(outputs: [RecordWriter.OutputStatistics]) {
        for output in outputs {
            let label = [MetricLabel(name: "output", value: output.name)]
            counter("flowtap_records_written_total", "Records an output took (a file's writes, or those Redis confirmed).", output.records, labels: label)
            for (reason, count) in output.dropped {
                counter("flowtap_records_dropped_total", "Records an output lost, by reason.", count, labels: label + [MetricLabel(name: "reason", value: reason)])
            }
            gauge("flowtap_records_queued", "Records an output holds to send.", Double(output.queued), labels: label)
        }
    }
}

extension TelemetrySnapshot {
    /// A live capture handle's own counts (libpcap's `pcap_stats`): what the kernel and the interface dropped.
    mutating func add(capture statistics: LiveCapture.Statistics?, input: String) {
        guard let statistics else { return }
        let label = [MetricLabel(name: "input", value: input)]
        counter("flowtap_capture_received_total", "Packets the capture handle received (libpcap's ps_recv).", statistics.received, labels: label)
        counter("flowtap_capture_dropped_total", "Packets lost before FlowTap read them, by where (libpcap's ps_drop and ps_ifdrop).", statistics.droppedByKernel,
                labels: label + [MetricLabel(name: "where", value: "kernel")])
        counter("flowtap_capture_dropped_total", "Packets lost before FlowTap read them, by where (libpcap's ps_drop and ps_ifdrop).", statistics.droppedByInterface,
                labels: label + [MetricLabel(name: "where", value: "interface")])
        counter("flowtap_capture_skipped_copies_total", "Frames a shard's capture handle skipped as copies of what the fanout group received before the handle joined it.",
                statistics.skippedBeforeJoining, labels: label)
    }
}

/// A shard's talkers, protocols and largest flows, built a slice of the flow table at a time so that
/// one snapshot's share of the walk is bounded whatever the table's size: at most `entriesPerStep`
/// entries per publication (twice a second). A table within that is walked whole at each step; a
/// million-flow table takes about 30 steps (15 s) per complete pass, and the views shown are those of
/// the last complete pass. Measured with callgrind (`flows -r` on 647,286 packets, the status read
/// twice a second throughout): 234 M instructions in 56 steps over 449,055 live entries, about 520
/// per live entry, so a full step costs at most about 17 M instructions (a few milliseconds, 1% of
/// a core at two steps a second) and nothing while nobody reads the status.
struct FlowViewWalker {
    static let entriesPerStep = 32_768

    typealias Sum = HostSums.Sum

    struct Candidate {
        var key: FlowKey
        var packets: UInt64
        var bytes: UInt64
        var seconds: Double
    }

    var cursor = 0
    var hosts = HostSums()
    /// By IP protocol number.
    var protocols = [Sum](repeating: Sum(), count: 256)
    var largest = TopList<Candidate>(limit: FlowTelemetry.flowsPerEngine) { $0.bytes }
    /// The views of the last complete pass.
    var talkers: [TrafficShare] = []
    var protocolShares: [TrafficShare] = []
    var topFlows: [TopFlow] = []
    var completed = false

    /// Walks the next slice; at the end of the table, turns the sums into views and starts over.
    mutating func step(_ table: FlowTable) {
        let count = table.entries.count
        let end = min(count, cursor + Self.entriesPerStep)
        table.entries.withUnsafeBufferPointer { entries in
            var slot = cursor
            while slot < end {
                defer { slot += 1 }
                guard table.isLive(slot) else { continue }
                let e = entries[slot]
                // Most flows are smaller than the smallest kept: one comparison, no call.
                if !largest.isFull || e.bytes > largest.items[largest.items.count - 1].bytes {
                    largest.offer(Candidate(key: e.key, packets: UInt64(e.packets), bytes: e.bytes,
                                            seconds: Double(e.lastSeen.nanoseconds - e.created.nanoseconds) / 1e9))
                }
                let packets = UInt64(e.packets)
                hosts.add(e.key.address1, packets: packets, bytes: e.bytes)
                hosts.add(e.key.address2, packets: packets, bytes: e.bytes)
                protocols[Int(e.key.ipProtocol)].add(packets: packets, bytes: e.bytes)
            }
        }
        cursor = end
        guard cursor >= count else { return }
        var top = TopList<(IPAddress, Sum)>(limit: FlowTelemetry.talkersPerEngine) { $0.1.bytes }
        hosts.forEach { address, sum in top.offer((address, sum)) }
        talkers = top.sorted.map { TrafficShare(name: $0.0.description, packets: $0.1.packets, bytes: $0.1.bytes, flows: $0.1.flows) }
        protocolShares = protocols.indices.filter { protocols[$0].flows > 0 }
            .map { TrafficShare(name: FlowTelemetry.protocolName(UInt8($0)), packets: protocols[$0].packets, bytes: protocols[$0].bytes, flows: protocols[$0].flows) }
            .sorted { $0.bytes > $1.bytes }
        topFlows = largest.sorted.map { c in
            TopFlow(endpointA: FlowTelemetry.endpoint(c.key.address1, c.key.port1, c.key.ipProtocol),
                    endpointB: FlowTelemetry.endpoint(c.key.address2, c.key.port2, c.key.ipProtocol),
                    proto: FlowTelemetry.protocolName(c.key.ipProtocol), packets: c.packets, bytes: c.bytes, seconds: c.seconds)
        }
        completed = true
        cursor = 0
        hosts.removeAll()
        protocols = [Sum](repeating: Sum(), count: 256)
        largest = TopList<Candidate>(limit: FlowTelemetry.flowsPerEngine) { $0.bytes }
    }

    /// The last complete pass's views into `s` (nothing before the first pass completes).
    func apply(to s: inout TelemetrySnapshot) {
        guard completed else { return }
        s.talkers = talkers
        s.protocols = protocolShares
        s.topFlows = topFlows
        s.hasViews = true
    }
}
