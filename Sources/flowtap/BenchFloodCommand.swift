import ArgumentParser
import Capture
import Defragment
import Engine
import Flows
import PacketCore
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// Feeds the flow engine a SYN flood from spoofed sources and a flood of
/// fragments that never complete, and reports peak memory and counters:
/// memory must stay within the configured flow-table and fragment limits.
struct BenchFloodCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flood",
        abstract: "SYN and fragment floods through the flow engine: peak memory and what the limits dropped.",
        discussion: """
        Packets are built in memory (no capture file) from spoofed IPv4 sources, one new flow each.

        Examples:
          flowtap bench flood --syns 2000000 --max-flows 100000
          flowtap bench flood --syns 0 --fragments 1000000 --fragment-memory 16
        """
    )

    @Option(help: "Spoofed SYNs, each from a new source.")
    var syns: Int = 2_000_000

    @Option(help: "Fragments that never complete, each of a new datagram.")
    var fragments: Int = 1_000_000

    @Option(help: "Flow table limit.")
    var maxFlows: Int = 100_000

    @Option(help: "Fragment reassembly memory limit in MiB.")
    var fragmentMemory: Int = 32

    struct NullSink: FlowEventSink {
        var created: UInt64 = 0
        var destroyed: UInt64 = 0
        mutating func flowCreated(_ flow: FlowView, time: Timestamp) { created &+= 1 }
        mutating func flowData(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {}
        mutating func flowDestroyed(_ flow: FlowView, reason: DestroyReason, time: Timestamp) { destroyed &+= 1 }
    }

    static func peakRSSMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    func run() throws {
        var config = FlowEngineConfig()
        config.table.maxFlows = maxFlows
        config.defragment.maxTotalBytes = fragmentMemory << 20
        let engine = FlowEngine(config: config, sink: NullSink())
        let baseline = Self.peakRSSMiB()
        var frame = PacketBuilder.frame(
            network: .ipv4(.init(source: IPAddress(ipv4: 0x0A00_0001), destination: IPAddress(ipv4: 0xC0A8_0001))),
            transport: .tcp(.init(sourcePort: 1, destinationPort: 80, flags: [.syn])))
        let start = BenchReadCommand.now()
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
        let synSeconds = BenchReadCommand.now() - start
        let afterSYN = Self.peakRSSMiB()
        var header = PacketBuilder.IPv4(source: IPAddress(ipv4: 0x0C00_0001), destination: IPAddress(ipv4: 0xC0A8_0001))
        header.moreFragments = true
        var fragment = PacketBuilder.wrap(link: .ethernet(), datagram: PacketBuilder.ip(.ipv4(header), protocol: 17, payload: [UInt8](repeating: 0x41, count: 1024)))
        let fragmentStart = BenchReadCommand.now()
        fragment.withUnsafeMutableBytes { raw in
            for i in 0 ..< fragments {
                raw.storeBytes(of: UInt16(truncatingIfNeeded: i).bigEndian, toByteOffset: 18, as: UInt16.self)
                raw.storeBytes(of: (UInt32(0x0C00_0000) &+ UInt32(truncatingIfNeeded: i >> 16)).bigEndian, toByteOffset: 26, as: UInt32.self)
                let record = PacketRecord(timestamp: Timestamp(nanoseconds: 1_700_000_100_000_000_000 + Int64(i) * 1000),
                                          originalLength: raw.count, linkType: .ethernet, interfaceID: 0, bytes: UnsafeRawBufferPointer(raw))
                engine.process(record)
            }
        }
        let fragmentSeconds = BenchReadCommand.now() - fragmentStart
        let afterFragments = Self.peakRSSMiB()
        let c = engine.counters
        print("SYN flood: \(syns) SYNs in \(String(format3: synSeconds)) s (\(String(format3: Double(syns) / synSeconds / 1e6)) M/s); flows created \(c.flowsCreated), evicted at the \(maxFlows)-flow limit \(c.evictions), live \(engine.table.count), peak \(engine.table.peakCount)")
        print("fragment flood: \(fragments) fragments in \(String(format3: fragmentSeconds)) s; \(engine.defragmenter.counters)")
        print("peak RSS: \(String(format3: baseline)) MiB at start, \(String(format3: afterSYN)) MiB after the SYN flood, \(String(format3: afterFragments)) MiB after the fragment flood")
        print("flow table reserves \(engine.table.reservedBytes / 1024) KiB for \(engine.table.peakCount) flows (\(engine.table.reservedBytes / max(1, engine.table.peakCount)) bytes per flow)")
    }
}
