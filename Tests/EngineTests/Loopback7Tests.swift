import SFTapCodec
import Abstraction
import Engine
import Flows
import Foundation
import PacketCore
import SFTapConfig
import XCTest

/// Flows written back through loopback7 are classified and written like captured ones, one hop deeper.
final class Loopback7Tests: XCTestCase {
    var directory = ""

    override func setUp() {
        directory = "/tmp/flowtap-l7-\(getpid())-\(UUID().uuidString.prefix(8))"
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func injector(hopLimit: Int = 4, binary: Bool = false) throws -> (Loopback7Injector<FileEventOutputs>, FileEventOutputs) {
        var root = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { root.deleteLastPathComponent() }
        var settings = try SFTapSettings.load(path: root.appendingPathComponent("examples/flowtap.yaml").path, currentDirectory: "/tmp")
        settings.global.hopLimit = hopLimit
        let outputs = FileEventOutputs(directory: directory)
        let injector = Loopback7Injector(abstractor: try Abstractor(settings: settings, outputs: outputs), binary: binary, hopLimit: hopLimit,
                                         now: { Timestamp(seconds: 1_700_000_000, microseconds: 0) })
        return (injector, outputs)
    }

    func send(_ injector: Loopback7Injector<FileEventOutputs>, _ connection: Int, _ bytes: [UInt8], chunk: Int = .max) -> [Loopback7Injector<FileEventOutputs>.Verdict] {
        // Feed in pieces, keeping the unconsumed tail as the socket server does.
        var pending: [UInt8] = [], verdicts: [Loopback7Injector<FileEventOutputs>.Verdict] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + chunk)
            pending += bytes[offset ..< end]
            offset = end
            let v = pending.withUnsafeBytes { injector.receive(connection: connection, $0) }
            verdicts.append(v)
            if case .consumed(let n) = v { pending.removeFirst(n) } else { break }
        }
        return verdicts
    }

    func text(_ header: String, _ body: String = "") -> [UInt8] { Array((header + "\n" + body).utf8) }

    func testInjectedTCPFlowIsClassifiedOneHopDeeperWithEndpointsReordered() throws {
        let (l7, outputs) = try injector()
        let request = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n", response = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        // ip1 given higher than ip2: FlowTap swaps them and flips `from`; unknown keys (match) are ignored.
        let base = "ip1=10.0.0.9,ip2=10.0.0.1,port1=40000,port2=80,hop=0,l3=ipv4,l4=tcp"
        var bytes = text(base + ",event=CREATED,time=1700000001.5")
        bytes += text(base + ",event=DATA,from=1,match=up,len=\(request.utf8.count),time=1700000001.6", request)
        bytes += text(base + ",event=DATA,from=2,len=\(response.utf8.count),time=1700000001.7", response)
        bytes += text(base + ",event=DESTROYED,reason=RESET")
        let verdicts = send(l7, 1, bytes, chunk: 7)
        XCTAssertFalse(verdicts.contains { if case .close = $0 { true } else { false } })
        try outputs.close()
        let http = try String(contentsOfFile: directory + "/tcp/http", encoding: .utf8)
        let lines = http.utf8.split(separator: 10).map { String(decoding: $0, as: UTF8.self) }.filter { $0.hasPrefix("ip1=") }
        XCTAssertEqual(lines.count, 4, http)
        guard lines.count == 4 else { return }
        XCTAssertEqual(lines[0], "ip1=10.0.0.1,ip2=10.0.0.9,port1=80,port2=40000,vlan=-1,hop=1,l3=ipv4,l4=tcp,event=CREATED,time=1700000001.5")
        XCTAssertTrue(lines[1].contains(",event=DATA,from=2,match=up,len=\(request.utf8.count),"), lines[1])
        XCTAssertTrue(lines[2].contains(",event=DATA,from=1,match=down,"), lines[2])
        XCTAssertTrue(lines[3].contains(",event=DESTROYED,reason=RESET,"), lines[3])
        XCTAssertTrue(http.contains(request))
        XCTAssertEqual(l7.counters.events, 4)
    }

    func testHopLimitMalformedHeadersAndUDPCreated() throws {
        let (l7, _) = try injector(hopLimit: 2)
        let base = "ip1=10.0.0.1,ip2=10.0.0.2,port1=1,port2=2,l3=ipv4,l4=tcp"
        XCTAssertEqual(send(l7, 1, text(base + ",hop=1,event=CREATED")), [.consumed(text(base + ",hop=1,event=CREATED").count)])
        XCTAssertEqual(l7.counters.droppedHopLimit, 0)
        _ = send(l7, 1, text(base + ",hop=2,event=CREATED"))
        XCTAssertEqual(l7.counters.droppedHopLimit, 1)
        for bad in [base + ",hop=0,event=EXPLODED", "l3=ipv9,l4=tcp", base + ",event=CREATED",
                    "ip1=10.0.0.1,ip2=10.0.0.2,port1=1,port2=2,hop=0,l3=ipv4,l4=udp,event=CREATED", base + ",hop=0,event=DATA,len=-3"] {
            let verdicts = send(l7, 2, text(bad))
            XCTAssertTrue(verdicts.contains { if case .close = $0 { true } else { false } }, bad)
        }
        XCTAssertEqual(send(l7, 3, Array(repeating: UInt8(ascii: "a"), count: 5000)).last.map { if case .close = $0 { true } else { false } }, true)
        // A DATA header whose body has not arrived yet waits for it (the connection's reader keeps it).
        let before = l7.counters.events
        let head = text(base + ",hop=0,event=DATA,len=10", "abc")
        XCTAssertEqual(send(l7, 4, head), [.consumed(head.count)])
        XCTAssertEqual(l7.counters.events, before)
        _ = send(l7, 4, Array("defghij".utf8))
        XCTAssertEqual(l7.counters.events, before + 1)
    }

    /// Headers that once trapped the whole process (a second, String-splitting parser did `UInt8(hop + 1)`
    /// and `Int64(t * 1e9)`): now read by the shared reader, they close only their connection or are taken.
    func testOutOfRangeHopAndTimeNeverTrap() throws {
        let (l7, _) = try injector(hopLimit: 4)
        let base = "ip1=10.0.0.1,ip2=10.0.0.2,port1=1,port2=2,l3=ipv4,l4=tcp"
        for (n, bad) in [",hop=-2,event=CREATED", ",hop=9223372036854775807,event=CREATED", ",hop=256,event=CREATED"].enumerated() {
            let verdicts = send(l7, 10 + n, text(base + bad))
            XCTAssertTrue(verdicts.contains { if case .close = $0 { true } else { false } }, bad)
        }
        // The largest time the format takes is accepted as it is.
        let events = l7.counters.events
        _ = send(l7, 20, text(base + ",hop=0,event=CREATED,time=9999999999"))
        XCTAssertEqual(l7.counters.events, events + 1)
        // A hop one below a limit of 255 or more cannot wrap.
        let (deep, _) = try injector(hopLimit: 300)
        _ = send(deep, 1, text(base + ",hop=255,event=CREATED"))
        XCTAssertEqual(deep.counters.events, 1)
    }

    func testClosingAConnectionDestroysItsFlows() throws {
        let (l7, outputs) = try injector()
        let base = "ip1=10.0.0.1,ip2=10.0.0.2,port1=5000,port2=22,hop=0,l3=ipv4,l4=tcp"
        _ = send(l7, 9, text(base + ",event=CREATED") + text(base + ",event=DATA,from=1,len=9", "SSH-2.0-\n")
                 + text(base + ",event=DATA,from=2,len=9", "SSH-2.0-\n"))
        l7.closed(connection: 9)
        try outputs.close()
        let ssh = try String(contentsOfFile: directory + "/tcp/ssh", encoding: .utf8)
        XCTAssertTrue(ssh.contains(",hop=1,l3=ipv4,l4=tcp,event=DESTROYED,reason=NORMAL,"), ssh)
    }

    /// Binary events written by the abstractor read back through a binary loopback7 are accepted whole.
    func testBinaryHeadersRoundTrip() throws {
        let (l7, outputs) = try injector(binary: true)
        let key = FlowKey.make(source: IPAddress("2001:db8::2")!, sourcePort: 53, destination: IPAddress("2001:db8::1")!, destinationPort: 999, ipProtocol: 17).key
        var formatter = SFTapHeaderWriter()
        defer { formatter.deallocate() }
        let payload = Array("\u{12}\u{34}\u{01}\u{00}".utf8)
        let header = Array(formatter.binary(key: key, event: .data, fromFirst: false, match: .none, length: payload.count, reason: .normal,
                                            time: Timestamp(seconds: 1_700_000_000, microseconds: 5)))
        XCTAssertEqual(header.count, 64)
        let split = send(l7, 1, header + payload, chunk: 10)
        XCTAssertFalse(split.contains { if case .close = $0 { true } else { false } })
        XCTAssertEqual(send(l7, 2, header + payload), [.consumed(68)])
        try outputs.close()
        let dns = try Data(contentsOf: URL(fileURLWithPath: directory + "/udp/dns"))
        // Two injected datagrams, each re-emitted in text with hop 1.
        let text = String(decoding: dns, as: UTF8.self)
        XCTAssertEqual(text.components(separatedBy: ",hop=1,l3=ipv6,l4=udp,event=DATA,from=2,match=none,len=4,").count - 1, 2, text)
    }
}
