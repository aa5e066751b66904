#if canImport(Glibc)
import Abstraction
import Glibc
#endif
import Capture
import Engine
import Foundation
import PacketCore
import SFTapConfig
import TestSupport
import Wire
import XCTest

/// The sharded pipeline (`abstract --threads 2`) allocates nothing per packet once its flows are
/// classified: on the reading thread (which also runs shard 0) and on the worker thread alike.
/// Each thread reads its own malloc count after every batch (the shim counts per thread), so the
/// count covers reading, shard choice, hand-over, the engine, the abstractor and the file outputs.
/// Needs the LD_PRELOAD shim (`scripts/test.sh`); meaningful in a release build.
final class ShardedAllocationTests: XCTestCase {
    /// Samples one shard's thread takes after each batch: (packets its engine has seen, mallocs on the thread).
    private final class Samples: @unchecked Sendable {
        var points: [(packets: UInt64, mallocs: UInt64)] = []
        init() { points.reserveCapacity(1024) }
    }

    /// 128 HTTP connections: handshake, request, response header, then 40 rounds of 500-byte
    /// response segments each ACKed, interleaved across connections.
    private func capture(_ path: String) throws {
        let writer = try PcapWriter(path: path, linkType: .ethernet)
        var time: Int64 = 1_700_000_000_000_000_000
        let flows = 128
        var clientSequence = [UInt32](repeating: 1000, count: flows), serverSequence = [UInt32](repeating: 50_000, count: flows)
        func send(_ i: Int, fromClient: Bool, _ flags: TCPFlags, _ payload: [UInt8]) throws {
            let client = IPAddress(ipv4: 0x0A00_0000 | UInt32(i)), server = IPAddress(ipv4: 0xC633_6400 | UInt32(i % 7))
            let tcp = fromClient
                ? PacketBuilder.TCP(sourcePort: UInt16(20_000 + i), destinationPort: 80, sequence: clientSequence[i], acknowledgement: serverSequence[i], flags: flags)
                : PacketBuilder.TCP(sourcePort: 80, destinationPort: UInt16(20_000 + i), sequence: serverSequence[i], acknowledgement: clientSequence[i], flags: flags)
            let advance = UInt32(payload.count) &+ (flags.contains(.syn) || flags.contains(.fin) ? 1 : 0)
            if fromClient { clientSequence[i] &+= advance } else { serverSequence[i] &+= advance }
            let frame = PacketBuilder.frame(network: .ipv4(.init(source: fromClient ? client : server, destination: fromClient ? server : client)),
                                            transport: .tcp(tcp), payload: payload)
            time += 2_000
            try writer.write(timestamp: Timestamp(nanoseconds: time), bytes: frame)
        }
        for i in 0 ..< flows { try send(i, fromClient: true, [.syn], []) }
        for i in 0 ..< flows { try send(i, fromClient: false, [.syn, .ack], []) }
        for i in 0 ..< flows { try send(i, fromClient: true, [.ack], []) }
        for i in 0 ..< flows { try send(i, fromClient: true, [.ack, .psh], Array("GET /item/\(i) HTTP/1.1\r\nHost: shard.test\r\n\r\n".utf8)) }
        for i in 0 ..< flows { try send(i, fromClient: false, [.ack, .psh], Array("HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n".utf8)) }
        for _ in 0 ..< 40 {
            for i in 0 ..< flows {
                try send(i, fromClient: false, [.ack], [UInt8](repeating: 0x62, count: 500))
                try send(i, fromClient: true, [.ack], [])
            }
        }
        try writer.flush()
    }

    func testShardedPipelineAllocatesNothingPerPacketAfterWarmUp() throws {
        let mallocCalls = try mallocCallCounter()
        var root = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { root.deleteLastPathComponent() }
        let settings = try SFTapSettings.load(path: root.appendingPathComponent("examples/flowtap.yaml").path, currentDirectory: "/tmp")
        let base = NSTemporaryDirectory() + "flowtap-sharded-allocations-\(getpid())"
        defer {
            try? FileManager.default.removeItem(atPath: base)
            unlink(base + ".pcap")
        }
        try capture(base + ".pcap")
        let files = OutputFileSet(directory: base)
        let outputs = [FileEventOutputs(sharing: files), FileEventOutputs(sharing: files)]
        let first = try Abstractor(settings: settings, outputs: outputs[0])
        let runner = Pipeline(sinks: [first, try Abstractor(settings: settings, outputs: outputs[1], compiled: first.compiledRules)])
        let samples = [Samples(), Samples()]
        let engines = runner.engines
        runner.afterBatch = { shard in
            samples[shard].points.append((engines[shard].counters.packets, mallocCalls()))
        }
        try runner.run(files: [base + ".pcap"])
        for o in outputs { try o.close() }
        files.closeAll()

        for (shard, s) in samples.enumerated() {
            let total = engines[shard].counters.packets
            XCTAssertGreaterThan(total, 2_000, "shard \(shard) saw too few packets to measure")
            // Warm-up: the handshakes, requests and response headers, 5 of the 85 packets per flow.
            // Measured: from the first sample past 20% of the shard's packets to the last one before the end
            // (the last sample follows `finish`, which ends every flow).
            let steady = s.points.dropLast().filter { $0.packets >= total / 5 }
            XCTAssertGreaterThanOrEqual(steady.count, 2, "shard \(shard): samples \(s.points.map(\.packets))")
            guard let from = steady.first, let to = steady.last else { continue }
            // The shim counts on this thread: flow set-up during warm-up allocated.
            XCTAssertGreaterThan(from.mallocs, 0, "shard \(shard): no allocation seen at all; is the shim counting this thread?")
            print("sharded allocations: shard \(shard): \(to.mallocs &- from.mallocs) mallocs over \(to.packets - from.packets) steady-state packets")
            XCTAssertEqual(to.mallocs &- from.mallocs, 0, "shard \(shard)")
        }
        XCTAssertEqual(runner.engines.map(\.sink.counters.tcpFlowsClassified).reduce(0, +), 128)
    }
}
