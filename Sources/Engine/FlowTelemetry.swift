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
/// The views walk the whole flow table (a pass over 88-byte entries: about 2 ms per 100,000 flows
/// here, twice a second), and describe the flows open at that moment: a finished flow leaves the
/// talkers and top flows as it leaves the table.
enum FlowTelemetry {
    /// Talkers one engine offers to the merge (a host split across shards adds up only if it is in
    /// each shard's list, so each gives more than the page shows).
    static let talkersPerEngine = 50
    static let flowsPerEngine = 10

    static func snapshot<Sink>(engine: FlowEngine<Sink>, input: String) -> TelemetrySnapshot {
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
        addFlowViews(table, to: &s)
        return s
    }

    static func addFlowViews(_ table: FlowTable, to s: inout TelemetrySnapshot) {
        guard table.count > 0 else { return }
        var largest = TopList<Int>(limit: flowsPerEngine) { table.entries[$0].bytes }
        var hosts: [IPAddress: TrafficShare] = [:]
        var protocols: [UInt8: TrafficShare] = [:]
        hosts.reserveCapacity(min(table.count * 2, 1 << 16))
        var latest = Timestamp(nanoseconds: 0)
        for slot in table.entries.indices where table.isLive(slot) {
            let e = table.entries[slot]
            if e.lastSeen > latest { latest = e.lastSeen }
            largest.offer(slot)
            let share = TrafficShare(name: "", packets: UInt64(e.packets), bytes: e.bytes, flows: 1)
            for address in [e.key.address1, e.key.address2] {
                hosts[address, default: TrafficShare(name: address.description, packets: 0, bytes: 0, flows: 0)].add(share)
            }
            protocols[e.key.ipProtocol, default: TrafficShare(name: protocolName(e.key.ipProtocol), packets: 0, bytes: 0, flows: 0)].add(share)
        }
        var talkers = TopList<TrafficShare>(limit: talkersPerEngine) { $0.bytes }
        for host in hosts.values { talkers.offer(host) }
        s.talkers = talkers.sorted
        s.protocols = protocols.values.sorted { $0.bytes > $1.bytes }
        s.topFlows = largest.sorted.map { slot in
            let e = table.entries[slot]
            let proto = protocolName(e.key.ipProtocol)
            return TopFlow(endpointA: endpoint(e.key.address1, e.key.port1, e.key.ipProtocol), endpointB: endpoint(e.key.address2, e.key.port2, e.key.ipProtocol),
                           proto: proto, packets: UInt64(e.packets), bytes: e.bytes, seconds: Double(e.lastSeen.nanoseconds - e.created.nanoseconds) / 1e9)
        }
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
    /// One clock per shard, each touched only by its shard's thread.
    private let clocks: UnsafeMutableBufferPointer<TelemetryClock>
    private unowned let pipeline: Pipeline<Sink>

    init(hub: TelemetryHub, pipeline: Pipeline<Sink>, input: String, firstPart: Int = 1,
         extra: @escaping (Int, FlowEngine<Sink>, inout TelemetrySnapshot) -> Void = { _, _, _ in }) {
        self.hub = hub
        self.pipeline = pipeline
        self.input = input
        self.firstPart = firstPart
        self.extra = extra
        clocks = .allocate(capacity: pipeline.engines.count)
        clocks.initialize(repeating: hub.makeClock())
        let afterBatch = pipeline.afterBatch, onTick = pipeline.onTick
        pipeline.afterBatch = { [unowned self] shard in
            afterBatch?(shard)
            if clocks[shard].isDue() { publish(shard) }
        }
        pipeline.onTick = { [unowned self] in
            onTick?()
            if clocks[0].isDue() { publish(0) }
        }
    }

    deinit { clocks.deallocate() }

    func publish(_ shard: Int) {
        let engine = pipeline.engines[shard]
        var snapshot = FlowTelemetry.snapshot(engine: engine, input: input)
        extra(shard, engine, &snapshot)
        hub.publish(snapshot, part: firstPart + shard)
    }

    /// Every shard once more, from the calling thread once the run is over (the final numbers).
    func publishAll() {
        for shard in pipeline.engines.indices { publish(shard) }
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
    }
}
