import CaptureTools
import Abstraction
import FlowCore
import ArgumentParser
import Capture
import Defragment
import Engine
import Flows
import PacketCore
import Reassembly
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// Feeds the flow engine a SYN flood from spoofed sources and a flood of
/// fragments that never complete, and reports peak memory and counters:
/// memory must stay within the configured flow-table and fragment limits.
/// With `--flows N` every SYN stays a live, idle flow (the table holds N):
/// new flows per second on one core and what an idle TCP flow costs.
struct BenchFloodCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flood",
        abstract: "SYN and fragment floods through the flow engine: peak memory and what the limits dropped.",
        discussion: """
        Packets are built in memory (no capture file) from spoofed IPv4 sources, one new flow each. Bytes per \
        idle TCP flow: the growth of peak RSS (getrusage ru_maxrss) over the SYN flood divided by the flows left \
        live, beside what the engine and the sink reserve per flow.

        Examples:
          flowtap-bench flood --syns 2000000 --max-flows 100000
          flowtap-bench flood --flows 10000000 --fragments 0
          flowtap-bench flood --syns 0 --fragments 1000000 --fragment-memory 16
          flowtap-bench flood --syns 0 --fragments 0 --ooo-flows 10000 --ooo-segments 300
        """
    )

    @Option(help: "Spoofed SYNs, each from a new source.")
    var syns: Int = 2_000_000

    @Option(help: "Fragments that never complete, each of a new datagram.")
    var fragments: Int = 1_000_000

    @Option(help: "Flow table limit.")
    var maxFlows: Int = 100_000

    @Option(help: "Concurrent flows: sets --syns and --max-flows to this, so every SYN stays a live flow.")
    var flows: Int?

    @Option(help: "Where flows go: null (events counted) or abstract (flowtap abstract's per-flow state, events dropped).")
    var sink: FloodSink = .abstract

    @Option(help: "Fragment reassembly memory limit in MiB.")
    var fragmentMemory: Int = 32

    @Option(name: .customLong("ooo-flows"), help: "TCP flows flooded with 1-byte out-of-order segments, each behind a hole of its own (0: no such flood).")
    var oooFlows: Int = 0

    @Option(name: .customLong("ooo-segments"), help: "1-byte out-of-order segments per --ooo-flows flow.")
    var oooSegments: Int = 1000

    static func peakRSSBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
    }

    static func mib(_ bytes: Int) -> String { String(format3: Double(bytes) / 1_048_576) }

    func run() throws {
        var config = FlowEngineConfig()
        config.table.maxFlows = flows ?? maxFlows
        config.defragment.maxTotalBytes = fragmentMemory << 20
        switch sink {
        case .null:
            flood(FlowEngine(config: config, sink: NullFlowSink()), sinkStateBytes: 0, sinkReservedBytes: { _ in 0 })
        case .abstract:
            let engine = FlowEngine(config: config, sink: try FloodSink.abstractor())
            flood(engine, sinkStateBytes: Abstractor<DiscardingOutputs>.flowStateBytes,
                  sinkReservedBytes: { $0.sink.flowStateReservedBytes })
        }
    }

    func flood<Sink: FlowEventSink>(_ engine: FlowEngine<Sink>, sinkStateBytes: Int, sinkReservedBytes: (FlowEngine<Sink>) -> Int) {
        let syns = flows ?? self.syns
        let maxFlows = engine.config.table.maxFlows
        let baseline = Self.peakRSSBytes()
        var frame = PacketBuilder.frame(
            network: .ipv4(.init(source: IPAddress(ipv4: 0x0A00_0001), destination: IPAddress(ipv4: 0xC0A8_0001))),
            transport: .tcp(.init(sourcePort: 1, destinationPort: 80, flags: [.syn])))
        let start = MonotonicClock.seconds()
        frame.withUnsafeMutableBytes { raw in
            for i in 0 ..< syns {
                // Rewrite the source address and port in place: a new flow per packet.
                let source = UInt32(0x0B00_0000) &+ UInt32(truncatingIfNeeded: i)
                raw.storeBytes(of: source.bigEndian, toByteOffset: 26, as: UInt32.self)
                raw.storeBytes(of: UInt16(truncatingIfNeeded: i).bigEndian, toByteOffset: 34, as: UInt16.self)
                let record = PacketRecord(timestamp: Timestamp(nanoseconds: 1_700_000_000_000_000_000 + Int64(i) * 1000),
                                          originalLength: raw.count, linkType: .ethernet, interfaceID: 0, bytes: UnsafeRawBufferPointer(raw))
                engine.process(record)
            }
        }
        let synSeconds = MonotonicClock.seconds() - start
        let afterSYN = Self.peakRSSBytes()
        let live = engine.table.count
        let engineReserved = engine.flowStateReservedBytes, sinkReserved = sinkReservedBytes(engine)
        var header = PacketBuilder.IPv4(source: IPAddress(ipv4: 0x0C00_0001), destination: IPAddress(ipv4: 0xC0A8_0001))
        header.moreFragments = true
        var fragment = PacketBuilder.wrap(link: .ethernet(), datagram: PacketBuilder.ip(.ipv4(header), protocol: 17, payload: [UInt8](repeating: 0x41, count: 1024)))
        let fragmentStart = MonotonicClock.seconds()
        fragment.withUnsafeMutableBytes { raw in
            for i in 0 ..< fragments {
                raw.storeBytes(of: UInt16(truncatingIfNeeded: i).bigEndian, toByteOffset: 18, as: UInt16.self)
                raw.storeBytes(of: (UInt32(0x0C00_0000) &+ UInt32(truncatingIfNeeded: i >> 16)).bigEndian, toByteOffset: 26, as: UInt32.self)
                let record = PacketRecord(timestamp: Timestamp(nanoseconds: 1_700_000_100_000_000_000 + Int64(i) * 1000),
                                          originalLength: raw.count, linkType: .ethernet, interfaceID: 0, bytes: UnsafeRawBufferPointer(raw))
                engine.process(record)
            }
        }
        let fragmentSeconds = MonotonicClock.seconds() - fragmentStart
        let afterFragments = Self.peakRSSBytes()
        if oooFlows > 0 { outOfOrderFlood(engine) }
        let c = engine.counters
        print("SYN flood (sink \(sink.rawValue)): \(syns) SYNs in \(String(format3: synSeconds)) s, \(String(format3: Double(c.flowsCreated) / synSeconds / 1e6)) M new flows/s on one core; flows created \(c.flowsCreated), evicted at the \(maxFlows)-flow limit \(c.evictions), live \(live), peak \(engine.table.peakCount)")
        if fragments > 0 {
            print("fragment flood: \(fragments) fragments in \(String(format3: fragmentSeconds)) s; \(engine.defragmenter.counters)")
        }
        print("peak RSS: \(Self.mib(baseline)) MiB at start, \(Self.mib(afterSYN)) MiB after the SYN flood, \(Self.mib(afterFragments)) MiB after the fragment flood"
              + (oooFlows > 0 ? ", \(Self.mib(Self.peakRSSBytes())) MiB after the out-of-order flood" : ""))
        let perFlow = { (bytes: Int) in bytes / max(1, live) }
        print("per idle TCP flow: \(perFlow(afterSYN - baseline)) bytes of peak RSS growth over \(live) live flows;"
              + " reserved \(perFlow(engineReserved + sinkReserved)) bytes (engine \(perFlow(engineReserved)), of which flow table \(perFlow(engine.table.reservedBytes)); sink \(perFlow(sinkReserved)))")
        print("per-slot layout: \(FlowEngine<Sink>.bytesPerSlot) bytes in the engine (table entry \(MemoryLayout<FlowTable.Entry>.stride), TCP reassembly \(TCPReassembler.bytesPerSlot), linger mark 1) + \(sinkStateBytes) in the sink\(sink == .abstract ? " (Abstractor FlowState)" : ""), plus the table's hash index")
    }

    /// `--ooo-flows` flows opened with a SYN, then `--ooo-segments` 1-byte segments each at sequence 2, 4, 6 …
    /// (byte 1 never comes), round-robin over the flows: the reassembly pool, the per-direction cap and the
    /// pressure rule bound the memory; the time per segment should not grow with the segments per flow.
    func outOfOrderFlood<Sink: FlowEventSink>(_ engine: FlowEngine<Sink>) {
        let network = PacketBuilder.Network.ipv4(.init(source: IPAddress(ipv4: 0x0D00_0001), destination: IPAddress(ipv4: 0xC0A8_0002)))
        var syn = PacketBuilder.frame(network: network, transport: .tcp(.init(sourcePort: 1, destinationPort: 443, flags: [.syn])))
        var data = PacketBuilder.frame(network: network, transport: .tcp(.init(sourcePort: 1, destinationPort: 443, sequence: 2, flags: [.ack])), payload: [0x61])
        var time: Int64 = 1_700_000_200_000_000_000
        func send(_ raw: UnsafeMutableRawBufferPointer, flow: Int) {
            raw.storeBytes(of: (UInt32(0x0D00_0000) &+ UInt32(truncatingIfNeeded: flow)).bigEndian, toByteOffset: 26, as: UInt32.self)
            time += 1000
            engine.process(PacketRecord(timestamp: Timestamp(nanoseconds: time), originalLength: raw.count, linkType: .ethernet, interfaceID: 0,
                                        bytes: UnsafeRawBufferPointer(raw)))
        }
        syn.withUnsafeMutableBytes { raw in for f in 0 ..< oooFlows { send(raw, flow: f) } }
        let start = MonotonicClock.seconds()
        data.withUnsafeMutableBytes { raw in
            for k in 0 ..< oooSegments {
                raw.storeBytes(of: (UInt32(2) &+ 2 &* UInt32(truncatingIfNeeded: k)).bigEndian, toByteOffset: 38, as: UInt32.self)
                for f in 0 ..< oooFlows { send(raw, flow: f) }
            }
        }
        let seconds = MonotonicClock.seconds() - start
        let t = engine.tcp.counters, segments = oooFlows * oooSegments
        print("out-of-order flood: \(segments) 1-byte segments into \(oooFlows) flows in \(String(format3: seconds)) s "
              + "(\(String(format3: Double(segments) / seconds / 1e6)) M segments/s, \(String(format3: seconds / Double(segments) * 1e9)) ns each); "
              + "pool peak \(Self.mib(engine.tcp.peakBufferedBytes)) MiB of \(Self.mib(engine.config.tcp.maxBufferedBytesTotal)) MiB, reserved \(Self.mib(engine.tcp.reservedBytes)) MiB; "
              + "holes skipped at the direction cap \(t.directionCapSkips), under pressure \(t.pressureSkips), memcap drops \(t.memcapDrops), gaps \(t.gaps)")
    }
}
