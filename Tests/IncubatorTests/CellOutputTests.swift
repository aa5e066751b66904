#if canImport(Glibc)
import Glibc
#endif
import Capture
import Engine
import Foundation
import Incubator
import PacketCore
import TestSupport
import XCTest

/// Remote and socket cells get exactly the frames a file cell in their place gets: VXLAN datagrams
/// (RFC 7348 header, then the frame) and a pcap stream on a UNIX socket (what `flowtap abstract`'s
/// pcap injection socket reads).
final class CellOutputTests: XCTestCase {
    func frames(_ path: String) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        let reader = try CaptureFileReader(path: path)
        while let record = try reader.next() { out.append(Array(record.bytes)) }
        return out
    }

    func testVXLANAndPcapStreamCellsCarryTheFramesAFileCellWould() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-cells-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("input.pcap").path
        try IncubateSplitTests.generate(input, sessions: 300, seed: 9, impaired: true)
        // The reference: three file cells.
        let reference = (0 ..< 3).map { dir.appendingPathComponent("ref\($0).pcap").path }
        _ = try IncubateSession(cells: try reference.map { try CellSpec(parsing: "file:\($0)") }).run(files: [input])

        // Cell 0 over VXLAN (VNI 77) to a UDP socket here, cell 1 as a pcap stream on a UNIX socket, cell 2 a file.
        let receiver = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(receiver) }
        var size: Int32 = 32 << 20
        setsockopt(receiver, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(receiver, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(receiver, $0, &length) } }
        let vxlanPort = UInt16(bigEndian: address.sin_port)

        let socketPath = dir.appendingPathComponent("pcap.sock").path
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var unixAddress = sockaddr_un()
        unixAddress.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &unixAddress.sun_path) { raw in for (i, b) in socketPath.utf8.enumerated() { raw[i] = b } }
        _ = withUnsafePointer(to: &unixAddress) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        listen(listener, 1)
        let streamed = dir.appendingPathComponent("streamed.pcap").path
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let connection = accept(listener, nil, nil)
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(connection, &chunk, chunk.count)
                if n <= 0 { break }
                bytes += chunk[0 ..< n]
            }
            close(connection)
            FileManager.default.createFile(atPath: streamed, contents: Data(bytes))
            done.signal()
        }
        let third = dir.appendingPathComponent("c2.pcap").path
        let summary = try IncubateSession(cells: [
            try CellSpec(parsing: "vxlan:127.0.0.1:\(vxlanPort),vni=77"),
            try CellSpec(parsing: "sftap:\(socketPath)"),
            try CellSpec(parsing: "file:\(third)"),
        ]).run(files: [input])
        done.wait()

        var datagrams: [[UInt8]] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(receiver, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if n <= 0 { break }
            datagrams.append(Array(buffer[0 ..< n]))
        }
        let expected = try frames(reference[0])
        XCTAssertEqual(datagrams.count, expected.count, summary)
        XCTAssertTrue(datagrams.allSatisfy { Array($0.prefix(8)) == [0x08, 0, 0, 0, 0, 0, 77, 0] }, "VXLAN header with the I flag and VNI 77")
        XCTAssertEqual(datagrams.map { Array($0.dropFirst(8)) }, expected)
        XCTAssertEqual(try frames(streamed), try frames(reference[1]))
        XCTAssertEqual(try frames(third), try frames(reference[2]))
        XCTAssertGreaterThan(expected.count, 1000)
    }

    func testCellSpecsAndTheirErrors() throws {
        XCTAssertEqual(try CellSpec(parsing: "vxlan:10.0.0.2").target, .vxlan(host: IPAddress("10.0.0.2")!, port: 4789, vni: 1))
        XCTAssertEqual(try CellSpec(parsing: "vxlan:[2001:db8::2]:8472,vni=5,weight=3").weight, 3)
        XCTAssertEqual(try CellSpec(parsing: "if:veth1@02:00:00:00:00:09").target, .interface(name: "veth1", destinationMAC: [2, 0, 0, 0, 0, 9]))
        XCTAssertEqual(try CellSpec(parsing: "file:/tmp/a.pcapng").target, .file(path: "/tmp/a.pcapng"))
        for bad in ["pcap:/tmp/x", "file:", "vxlan:host", "if:veth1@zz", "file:/x,weight=0", "file:/x,colour=red"] {
            XCTAssertThrowsError(try CellSpec(parsing: bad), bad) { XCTAssertTrue("\($0)".hasPrefix("--cell \(bad): "), "\($0)") }
        }
    }
}

final class IncubatorConfigTests: XCTestCase {
    func testTheExampleConfigReadsAsWritten() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples/incubator.yaml").path
        let config = try IncubatorConfig.load(path: path)
        XCTAssertEqual(config.cells.map(\.target), [
            .file(path: "cell0.pcapng"),
            .vxlan(host: IPAddress("192.0.2.12")!, port: 4789, vni: 7),
            .interface(name: "veth-c2", destinationMAC: [2, 0, 0, 0, 0, 0x11]),
        ])
        XCTAssertEqual(config.cells.map(\.weight), [1, 2, 1])
        XCTAssertEqual(config.selection, .flow)
        XCTAssertEqual(config.fragments.capacity, 65536)
    }

    func testErrorsNameFileLineAndKey() {
        let cases: [(String, String)] = [
            ("cells:\n  - file:a.pcap\n  - vxlan:nowhere\n", "c.yaml:3: key 'cells': vxlan:nowhere: 'nowhere' is not an IP address"),
            ("cells:\n  - spec: file:a.pcap\n    wieght: 2\n", "c.yaml:3: key 'wieght': unknown; a cell holds spec, weight, vni, mac"),
            ("hash: crc\ncells: [file:a.pcap]\n", "c.yaml:1: key 'hash': is flow or sftap"),
            ("fragments:\n  hold_seconds: forever\ncells: [file:a.pcap]\n", "c.yaml:2: key 'hold_seconds': takes seconds"),
            ("cels: [file:a.pcap]\n", "c.yaml:1: key 'cels': unknown; the top level holds cells"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try IncubatorConfig.parse(text, file: "c.yaml")) { XCTAssertTrue("\($0)".hasPrefix(expected), "\($0)") }
        }
    }
}

/// Live modes never wait for a socket cell: a reader that stalls has its frames queued, then dropped and
/// counted; a reader that goes away costs no signal and no other cell anything.
final class StalledCellTests: XCTestCase {
    func listener(_ path: String) -> Int32 {
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        listen(fd, 1)
        return fd
    }

    func testAStalledOrVanishedReaderCostsOnlyItsCell() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-stalled-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let stalledPath = dir.appendingPathComponent("stalled.sock").path, gonePath = dir.appendingPathComponent("gone.sock").path
        let stalled = listener(stalledPath), gone = listener(gonePath)
        defer { close(stalled); close(gone) }
        let file = dir.appendingPathComponent("c2.pcap").path
        let outputs = try CellOutputs([try CellSpec(parsing: "sftap:\(stalledPath)"), try CellSpec(parsing: "sftap:\(gonePath)"), try CellSpec(parsing: "file:\(file)")],
                                      blocking: false, streamQueueBytes: 256 << 10)
        // The stalled reader accepts and never reads; the other accepts and closes at once.
        let accepted = accept(stalled, nil, nil)
        defer { close(accepted) }
        close(accept(gone, nil, nil))
        let frame = [UInt8](repeating: 0x5A, count: 1000)
        let started = MonotonicClock.seconds()
        let n = 20_000
        for i in 0 ..< n {
            frame.withUnsafeBytes { bytes in
                for cell in 0 ..< 3 {
                    outputs.send(cell: cell, timestamp: Timestamp(seconds: 1, microseconds: Int64(i)), originalLength: bytes.count, linkType: .ethernet, bytes: bytes)
                }
            }
            if i % 64 == 63 { outputs.flush() }
        }
        try outputs.close()
        let seconds = MonotonicClock.seconds() - started
        let c = outputs.counters
        print("stalled reader: delivered \(c[0].frames), queue full \(c[0].full), left queued \(c[0].failed); vanished reader: \(c[1].failed) failed (\(c[1].lastError ?? "")); file \(c[2].frames); \(seconds) s")
        XCTAssertGreaterThan(c[0].full, 0, "the stalled reader's queue filled")
        XCTAssertEqual(c[0].frames + c[0].full + c[0].failed, UInt64(n), "every frame delivered, dropped with the queue full, or left in it at the end")
        XCTAssertGreaterThan(c[1].failed, 0)
        XCTAssertEqual(c[1].frames + c[1].failed + c[1].full, UInt64(n), "each of the vanished reader's frames is counted once")
        XCTAssertEqual(c[2].frames, UInt64(n), "the file cell got every frame")
        XCTAssertEqual(try CaptureFileReader(path: file).next()?.bytes.count, 1000)
    }
}
