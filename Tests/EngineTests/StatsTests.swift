import CaptureTools
import Capture
import Engine
import Foundation
import PacketCore
import TestSupport
import XCTest

final class StatsTests: XCTestCase {
    /// Rewrites a capture as pcapng with FlowTap's writer, or with Wireshark's editcap when present.
    func convertToPcapng(_ input: String, _ output: String, useEditcap: Bool) throws -> Bool {
        if useEditcap {
            guard let editcap = Corpus.tool("editcap") else { return false }
            let (_, status) = try Corpus.run(editcap, ["-F", "pcapng", input, output])
            return status == 0
        }
        let reader = try CaptureFileReader(path: input)
        let writer = try PcapngWriter(path: output)
        while let record = try reader.next() { try writer.write(record) }
        try writer.flush()
        return true
    }

    func statsText(_ path: String) throws -> String {
        let result = try StatsRunner().run(files: [path])
        // Drop the file-specific lines; everything else must match.
        return StatsReport.text(result, top: 20).split(separator: "\n").filter { !$0.hasPrefix("warning") }.joined(separator: "\n")
    }

    func testPcapAndPcapngOfTheSamePacketsGiveTheSameStats() throws {
        let dir = try Corpus.require("tcpdump/tests")
        let names = ["dns_udp.pcap", "QinQpacket.pcap", "mptcp-v1.pcap", "ipv6-routing-header.pcap", "icmpv6.pcap", "pppoe.pcap", "mpls-traceroute.pcap", "tftp.pcap"]
        var compared = 0
        for name in names {
            let input = dir.appendingPathComponent(name).path
            guard FileManager.default.fileExists(atPath: input) else { continue }
            let expected = try statsText(input)
            for useEditcap in [false, true] {
                let output = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-ng-\(getpid())-\(useEditcap).pcapng").path
                defer { unlink(output) }
                guard try convertToPcapng(input, output, useEditcap: useEditcap) else { continue }
                XCTAssertEqual(try statsText(output), expected, "\(name) via \(useEditcap ? "editcap" : "PcapngWriter")")
                compared += 1
            }
        }
        XCTAssertGreaterThanOrEqual(compared, names.count)
    }

    func testCountsOnAKnownCapture() throws {
        let path = try Corpus.require("tcpdump/tests/QinQpacket.pcap").path
        let s = try StatsRunner().run(files: [path]).stats
        // tcpdump -e shows 249 frames: 144 double-tagged IPv4/UDP (DHCP) and 105 ARP, all with VLAN tags.
        XCTAssertEqual(s.packets, 249)
        XCTAssertEqual(s.protocols.vlanTagged, 249)
        XCTAssertEqual(s.protocols.ipv4, 144)
        XCTAssertEqual(s.protocols.udp, 144)
        XCTAssertEqual(s.protocols.arp, 105)
        XCTAssertEqual(s.linkTypes.map(\.0), [.ethernet])
    }

    func testJSONOutputParses() throws {
        let path = try Corpus.require("tcpdump/tests/dns_udp.pcap").path
        let result = try StatsRunner().run(files: [path, path])
        let object = try JSONSerialization.jsonObject(with: Data(StatsReport.json(result).utf8)) as? [String: Any]
        XCTAssertEqual(object?["packets"] as? Int, 4)
        XCTAssertEqual((object?["protocols"] as? [String: Int])?["udp"], 4)
    }
}
