#if canImport(Glibc)
import Glibc
#endif
import Capture
import Engine
import Flows
import PacketCore
import Wire
import TestSupport
import XCTest

/// The flow engine's steady state (known TCP and UDP flows, in-order data) allocates nothing per packet.
/// Counted with the LD_PRELOAD malloc-counting shim described in Tests/DefragmentTests/AllocationTests.swift;
/// skips without it. Meaningful in a release build.
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
}
