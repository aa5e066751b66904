#if canImport(Glibc)
import Glibc
#endif
import Capture
import Incubator
import PacketCore
import TestSupport
import Wire
import XCTest

/// The incubator's per-frame path (decode, flow hash, weighted cell, pcap cell writes, batched VXLAN
/// sends) allocates nothing once warm. Counted with the LD_PRELOAD shim in a release build
/// (`scripts/test.sh`); skips without it.
final class IncubatorAllocationTests: XCTestCase {
    func testSplittingAFrameAllocatesNothing() throws {
        let mallocCalls = try mallocCallCounter()
        let sink = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(sink) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sink, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(sink, $0, &length) } }
        let outputs = try CellOutputs([try CellSpec(parsing: "file:/dev/null"), try CellSpec(parsing: "file:/dev/null,weight=2"),
                                       try CellSpec(parsing: "vxlan:127.0.0.1:\(UInt16(bigEndian: address.sin_port))")])
        let incubator = Incubator(outputs: outputs)
        var frames: [[UInt8]] = []
        for i in 0 ..< 512 {
            let client = IPAddress(ipv4: 0x0A00_0000 | UInt32(i)), server = IPAddress("192.0.2.1")!
            frames.append(PacketBuilder.frame(network: .ipv4(.init(source: client, destination: server)),
                                              transport: .tcp(.init(sourcePort: UInt16(10_000 + i), destinationPort: 80, sequence: 1, acknowledgement: 1, flags: [.ack, .psh])),
                                              payload: [UInt8](repeating: 0x61, count: 200)))
            frames.append(PacketBuilder.frame(link: .ethernet(vlans: [.init(id: 7)]), network: .ipv6(.init(source: IPAddress("2001:db8::\(i + 1)")!, destination: IPAddress("2001:db8::ffff")!)),
                                              transport: .udp(sourcePort: 5353, destinationPort: UInt16(20_000 + i)), payload: [1, 2, 3, 4]))
        }
        func run(_ rounds: Int) {
            for round in 0 ..< rounds {
                for (i, frame) in frames.enumerated() {
                    frame.withUnsafeBytes {
                        incubator.process(PacketRecord(timestamp: Timestamp(seconds: 1_700_000_000 + Int64(round), microseconds: Int64(i)), originalLength: $0.count,
                                                       linkType: .ethernet, interfaceID: 0, bytes: $0))
                    }
                }
                outputs.flush()
            }
        }
        run(2)
        let before = mallocCalls()
        run(10)
        let allocations = mallocCalls() &- before
        print("incubator allocations: \(allocations) over \(frames.count * 10) frames")
        XCTAssertEqual(allocations, 0)
        try outputs.close()
    }
}
