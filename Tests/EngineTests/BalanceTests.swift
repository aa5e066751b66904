import Abstraction
import FlowCore
import Capture
import Engine
import Foundation
import PacketCore
import SFTapConfig
import Wire
import XCTest

final class BalanceTests: XCTestCase {
    /// The reference's vector: 192.168.0.1:62918 ↔ 192.168.0.2:80 hashes to 0xF595 → `http1` of 4 sockets.
    func testBalanceVectorLandsOnHTTP1() throws {
        let yaml = """
        http:
          proto: TCP
          if: http
          up: '^GET '
          down: '^HTTP/1'
          balance: 4
        """
        let settings = try SFTapSettings(SFTapConfig.parse(yaml, file: "balance.yaml"), currentDirectory: "/tmp")
        let dir = "/tmp/flowtap-balance-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let outputs = FileEventOutputs(directory: dir)
        let engine = FlowEngine(sink: try Abstractor(settings: settings, outputs: outputs))
        let client = IPAddress("192.168.0.1")!, server = IPAddress("192.168.0.2")!
        func send(_ fromClient: Bool, _ flags: TCPFlags, _ seq: UInt32, _ payload: String, _ t: Int64) {
            let tcp = fromClient ? PacketBuilder.TCP(sourcePort: 62918, destinationPort: 80, sequence: seq, acknowledgement: 1, flags: flags)
                                 : PacketBuilder.TCP(sourcePort: 80, destinationPort: 62918, sequence: seq, acknowledgement: 1, flags: flags)
            let network: PacketBuilder.Network = fromClient ? .ipv4(.init(source: client, destination: server)) : .ipv4(.init(source: server, destination: client))
            let frame = PacketBuilder.frame(network: network, transport: .tcp(tcp), payload: Array(payload.utf8))
            frame.withUnsafeBytes { engine.process(PacketRecord(timestamp: Timestamp(seconds: 1_700_000_000 + t, microseconds: 0), originalLength: $0.count, linkType: .ethernet, interfaceID: 0, bytes: $0)) }
        }
        send(true, [.syn], 100, "", 0)
        send(false, [.syn, .ack], 500, "", 1)
        send(true, [.ack, .psh], 101, "GET / HTTP/1.1\r\n\r\n", 2)
        send(false, [.ack, .psh], 501, "HTTP/1.1 200 OK\r\n\r\n", 3)
        engine.finish()
        try outputs.close()
        let sizes = (0 ..< 4).map { (try? Data(contentsOf: URL(fileURLWithPath: "\(dir)/tcp/http\($0)")).count) ?? -1 }
        XCTAssertEqual(sizes.filter { $0 > 0 }.count, 1, "\(sizes)")
        XCTAssertGreaterThan(sizes[1], 0, "\(sizes)")
    }
}
