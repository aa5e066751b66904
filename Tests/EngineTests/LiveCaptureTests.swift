import Capture
import Foundation
import PacketCore
import TestSupport
import Wire
import XCTest

/// `flowtap filter -i lo` on real loopback traffic: the filter runs in the
/// kernel, so only the matching datagrams reach the output file.
final class LiveCaptureTests: XCTestCase {
    func sendUDP(port: UInt16, count: Int) {
        for i in 0 ..< count { Loopback.sendUDP(Array("flowtap-live-\(i)".utf8), port: port) }
    }

    func testFilterOnLoopbackKeepsOnlyMatchingPackets() throws {
        guard geteuid() == 0 else { throw OracleMissing.error("live capture needs root") }
        let flowtap = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path
        guard FileManager.default.isExecutableFile(atPath: flowtap) else { throw OracleMissing.error("flowtap executable not built") }
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-live-\(getpid()).pcap").path
        defer { unlink(output) }
        let port = UInt16(40_000 + getpid() % 10_000)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: flowtap)
        process.arguments = ["filter", "-i", "lo", "-w", output, "-c", "5", "udp and dst port \(port)"]
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        // Keep sending until the capture is up and has kept five; bounded to 10 s.
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline {
            sendUDP(port: port &+ 1, count: 3)
            sendUDP(port: port, count: 1)
            usleep(100_000)
        }
        if process.isRunning {
            process.terminate()
            XCTFail("capture did not finish within 10 s")
        }
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        let reader = try CaptureFileReader(path: output)
        var decoder = PacketDecoder()
        var packet = DecodedPacket()
        var kept = 0
        while let record = try reader.next() {
            decoder.decode(record.bytes, originalLength: record.originalLength, linkType: record.linkType, into: &packet)
            XCTAssertEqual(packet.transport, .udp)
            XCTAssertEqual(packet.destinationPort, port)
            XCTAssertEqual(packet.destination, IPAddress("127.0.0.1"))
            kept += 1
        }
        XCTAssertEqual(kept, 5)
    }
}
