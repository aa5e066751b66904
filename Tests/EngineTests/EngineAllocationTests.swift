#if canImport(Glibc)
import Abstraction
import FlowCore
import Glibc
#endif
import Capture
import Engine
import Flows
import Foundation
import PacketCore
import SFTapConfig
import TrafficGen
import Wire
import TestSupport
import XCTest

/// The flow engine's steady state (known TCP and UDP flows, in-order data) allocates nothing per packet,
/// alone and as `flowtap abstract` runs it (classification and event streams written to files).
/// Counted with the LD_PRELOAD malloc-counting shim (scripts/malloc-count.c; `scripts/test.sh` builds and
/// loads it); skips without it. Meaningful in a release build.
final class EngineAllocationTests: XCTestCase {
    struct NullSink: FlowEventSink {
        var bytes = 0
        mutating func flowCreated(_ flow: FlowView, time: Timestamp) {}
        mutating func flowData(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) { self.bytes &+= bytes.count }
        mutating func flowDestroyed(_ flow: FlowView, reason: DestroyReason, time: Timestamp) {}
    }

    func testSteadyStatePacketsAllocateNothing() throws {
        let mallocCalls = try mallocCallCounter()
        let engine = FlowEngine(sink: NullSink())
        // 64 TCP connections and 64 UDP flows, each sending in-order data.
        var frames: [[UInt8]] = []
        var sequence = [UInt32](repeating: 1000, count: 64)
        func tcp(_ i: Int, _ flags: TCPFlags, _ length: Int) -> [UInt8] {
            let t = PacketBuilder.TCP(sourcePort: UInt16(10_000 + i), destinationPort: 80, sequence: sequence[i], acknowledgement: 1, flags: flags)
            sequence[i] &+= UInt32(length) &+ (flags.contains(.syn) ? 1 : 0)
            return PacketBuilder.frame(network: .ipv4(.init(source: IPAddress(ipv4: 0x0A00_0000 | UInt32(i)), destination: IPAddress(ipv4: 0xC0A8_0001))),
                                       transport: .tcp(t), payload: [UInt8](repeating: 0x61, count: length))
        }
        var time: Int64 = 1_700_000_000_000_000_000
        func feed(_ frame: [UInt8]) {
            time += 1000
            frame.withUnsafeBytes { engine.process(PacketRecord(timestamp: Timestamp(nanoseconds: time), originalLength: $0.count, linkType: .ethernet, interfaceID: 0, bytes: $0)) }
        }
        for i in 0 ..< 64 { feed(tcp(i, [.syn], 0)) }
        for _ in 0 ..< 4 {
            for i in 0 ..< 64 {
                frames.append(tcp(i, [.ack, .psh], 500))
                frames.append(PacketBuilder.frame(network: .ipv4(.init(source: IPAddress(ipv4: 0x0B00_0000 | UInt32(i)), destination: IPAddress(ipv4: 0xC0A8_0002))),
                                                  transport: .udp(sourcePort: 5000, destinationPort: 53), payload: [UInt8](repeating: 1, count: 60)))
            }
        }
        // Warm up: every flow exists and every array has grown.
        for frame in frames.prefix(256) { feed(frame) }
        let before = mallocCalls()
        for frame in frames.dropFirst(256) { feed(frame) }
        let allocations = mallocCalls() &- before
        print("engine allocations: \(allocations) over \(frames.count - 256) packets")
        XCTAssertEqual(allocations, 0)
    }

    /// `flowtap abstract`'s whole path: FlowEngine → Abstractor (examples/flowtap.yaml) → FileEventOutputs,
    /// over a generated capture of thousands of concurrent sessions (HTTP, TLS, SSH, other TCP, DNS, UDP,
    /// ICMP; IPv4 and IPv6; some VLAN-tagged).
    ///
    /// Warm-up is per flow: a TCP flow warms up until the abstractor has classified it (its first packet
    /// creates table, reassembly and abstractor state; its first bytes are held, classified and written
    /// out), a UDP or ICMP flow with its first packet (which creates its table entry). Allocations there are
    /// per flow and allowed. Every later packet of a warmed-up flow — in-order data, ACKs, FINs, the
    /// DESTROYED events they cause, and datagrams classified one by one — must allocate nothing, measured
    /// around each `process` call while other flows are still warming up around it.
    func testAbstractPathAllocatesNothingPerPacketAfterWarmUp() throws {
        let mallocCalls = try mallocCallCounter()

        var root = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { root.deleteLastPathComponent() }
        let settings = try SFTapSettings.load(path: root.appendingPathComponent("examples/flowtap.yaml").path, currentDirectory: "/tmp")
        let directory = NSTemporaryDirectory() + "flowtap-abstract-allocations-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outputs = FileEventOutputs(directory: directory)
        let abstractor = try Abstractor(settings: settings, outputs: outputs)
        var classified = Set<FlowKey>()
        abstractor.onClassified = { key, _ in classified.insert(key) }
        var config = FlowEngineConfig()
        config.tcp.requireSYN = !settings.global.midstream
        let engine = FlowEngine(config: config, sink: abstractor)

        var options = TrafficGenerator.Options()
        options.sessions = 4000
        options.sessionsPerSecond = 20_000
        options.seed = 11
        var frames: [(Timestamp, [UInt8])] = []
        _ = TrafficGenerator(options: options).generate { frames.append(($0, $1)) }
        // Each packet's flow key, as the engine makes it (outer VLAN in the key), found before measuring.
        var decoder = PacketDecoder()
        var packet = DecodedPacket()
        let keys: [FlowKey] = frames.map { _, frame in
            frame.withUnsafeBytes { decoder.decode($0, originalLength: $0.count, linkType: .ethernet, into: &packet) }
            let proto: UInt8 = switch packet.transport {
            case .tcp: IPProtocol.tcp
            case .udp: IPProtocol.udp
            case .icmp: IPProtocol.icmp
            default: IPProtocol.icmpv6
            }
            let ports = proto == IPProtocol.tcp || proto == IPProtocol.udp
            return FlowKey.make(source: packet.source, sourcePort: ports ? packet.sourcePort : 0, destination: packet.destination,
                                destinationPort: ports ? packet.destinationPort : 0, ipProtocol: proto,
                                vlan: packet.outerVLAN ?? FlowKey.noVLAN).key
        }

        var datagramFlows = Set<FlowKey>()
        var steadyPackets = 0, steadyAllocations: UInt64 = 0, warmUpPackets = 0, warmUpAllocations: UInt64 = 0
        var steadyFlows = Set<FlowKey>()
        var offenders: [(packet: Int, mallocs: UInt64)] = []
        for i in frames.indices {
            let key = keys[i]
            let steady = key.ipProtocol == IPProtocol.tcp ? classified.contains(key) : !datagramFlows.insert(key).inserted
            let before = mallocCalls()
            frames[i].1.withUnsafeBytes {
                engine.process(PacketRecord(timestamp: frames[i].0, originalLength: $0.count, linkType: .ethernet, interfaceID: 0, bytes: $0))
            }
            let allocations = mallocCalls() &- before
            if steady {
                steadyPackets += 1
                steadyAllocations &+= allocations
                steadyFlows.insert(key)
                if allocations > 0 && offenders.count < 10 { offenders.append((i, allocations)) }
            } else {
                warmUpPackets += 1
                warmUpAllocations &+= allocations
            }
        }
        engine.finish()
        try outputs.close()

        let c = abstractor.counters
        print("abstract allocations: \(steadyAllocations) mallocs over \(steadyPackets) steady-state packets of \(steadyFlows.count) flows"
              + " (warm-up: \(warmUpAllocations) over \(warmUpPackets) packets; \(c.tcpFlowsClassified) TCP flows classified, \(c.events) events,"
              + " peak \(engine.table.peakCount) concurrent flows)")
        // The measurement covered the whole path: many flows, many packets, events actually written.
        XCTAssertGreaterThan(steadyPackets, 20_000)
        XCTAssertGreaterThan(steadyFlows.count, 3000)
        XCTAssertGreaterThan(engine.table.peakCount, 100)
        XCTAssertGreaterThan(c.tcpFlowsClassified, 1500)
        XCTAssertEqual(c.outputErrors, 0)
        XCTAssertGreaterThan(outputs.summary.map(\.2).reduce(0, +), 1_000_000, "bytes written to the interface files")
        XCTAssertEqual(steadyAllocations, 0, "first packets that allocated (index, mallocs): \(offenders)")
    }
}
