import Capture
import Foundation
import PacketCore
import Wire

/// Datagrams from many exporters to the forwarder, as the namespace topology of
/// scripts/forward-netns.sh carries them: NetFlow v9 from IPv4 exporters that all use template 256,
/// each with its own layout, and syslog from IPv4 and IPv6 exporters.
struct ExporterTraffic {
    struct Datagram {
        var exporter: IPAddress
        var sourcePort: UInt16
        var destinationPort: UInt16
        var payload: [UInt8]
    }

    /// One flow as nfdump prints it: exporter|src|dst|sport|dport|proto|packets|bytes.
    struct Flow: Hashable, Comparable {
        var text: String
        static func < (a: Flow, b: Flow) -> Bool { a.text < b.text }
    }

    var datagrams: [Datagram] = []
    var flows: [Flow] = []

    static let forwarderV4 = IPAddress("10.1.0.254")!
    static let forwarderV6 = IPAddress("fd00:1::fe")!

    /// Field layouts (type, length) that exporters give template 256; with one exporter's template
    /// applied to another's data, lengths and orders disagree and every value decodes wrong.
    static let layouts: [[(UInt16, UInt16)]] = [
        [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (2, 4), (1, 4), (22, 4), (21, 4)],
        [(1, 8), (2, 8), (4, 1), (7, 2), (11, 2), (12, 4), (8, 4), (21, 4), (22, 4)],
        [(22, 4), (21, 4), (8, 4), (7, 2), (12, 4), (11, 2), (5, 1), (4, 1), (2, 4), (1, 4), (10, 2)],
    ]

    /// `v4` NetFlow-and-syslog exporters 10.1.0.11…, `v6` syslog exporters fd00:1::11…, datagrams interleaved.
    init(v4: Int, v6: Int, netflowDatagrams: Int = 5, recordsPerDatagram: Int = 10, syslogPerExporter: Int = 10) {
        var perExporter: [[Datagram]] = []
        let unixSeconds: UInt32 = 1_790_000_000
        for e in 0 ..< v4 {
            let exporter = IPAddress(ipv4: 0x0A01_000B + UInt32(e))
            let layout = Self.layouts[e % Self.layouts.count]
            var list: [Datagram] = []
            var sequence: UInt32 = 0
            for d in 0 ..< netflowDatagrams {
                var records: [[UInt8]] = []
                for r in 0 ..< recordsPerDatagram {
                    let n = d * recordsPerDatagram + r
                    let source = IPAddress(ipv4: 0xC0A8_0000 | UInt32(e) << 8 | UInt32(n + 1))
                    let destination = IPAddress(ipv4: 0xAC10_0000 | UInt32(n % 7) << 8 | UInt32(e + 1))
                    let sport = UInt16(10000 + n), dport: UInt16 = [53, 80, 443][n % 3]
                    let proto: UInt8 = n % 2 == 0 ? 6 : 17
                    let packets = UInt64(1 + e * 7 + n), bytes = packets * UInt64(60 + n)
                    var record: [UInt8] = []
                    for (type, length) in layout {
                        switch type {
                        case 8: record += PacketBuilder.be32(source.ipv4Value)
                        case 12: record += PacketBuilder.be32(destination.ipv4Value)
                        case 7: record += PacketBuilder.be16(sport)
                        case 11: record += PacketBuilder.be16(dport)
                        case 4: record.append(proto)
                        case 5: record.append(0)
                        case 10: record += PacketBuilder.be16(3)
                        case 2, 1:
                            let v = type == 2 ? packets : bytes
                            record += length == 8 ? PacketBuilder.be32(UInt32(v >> 32)) + PacketBuilder.be32(UInt32(truncatingIfNeeded: v)) : PacketBuilder.be32(UInt32(v))
                        case 22: record += PacketBuilder.be32(100_000)
                        case 21: record += PacketBuilder.be32(104_000)
                        default: fatalError("field \(type)")
                        }
                    }
                    records.append(record)
                    flows.append(Flow(text: "\(exporter)|\(source)|\(destination)|\(sport)|\(dport)|\(proto)|\(packets)|\(bytes)"))
                }
                sequence += 1
                list.append(Datagram(exporter: exporter, sourcePort: UInt16(40000 + e), destinationPort: 2055,
                                     payload: Self.netflow9(layout: d == 0 ? layout : nil, records: records, sequence: sequence, unixSeconds: unixSeconds + UInt32(d))))
            }
            for s in 0 ..< syslogPerExporter {
                list.append(Datagram(exporter: exporter, sourcePort: UInt16(51400 + e), destinationPort: 514,
                                     payload: Array("<\(8 * 16 + s % 8)>1 2026-12-03T05:00:0\(s % 10)Z router\(e) flowtap - - - message \(s) from \(exporter)".utf8)))
            }
            perExporter.append(list)
        }
        for e in 0 ..< v6 {
            let exporter = IPAddress("fd00:1::\(String(0x11 + e, radix: 16))")!
            perExporter.append((0 ..< syslogPerExporter * 2).map { s in
                Datagram(exporter: exporter, sourcePort: UInt16(52400 + e), destinationPort: 514,
                         payload: Array("<13>Dec  3 05:00:00 host\(e) app: v6 message \(s) from \(exporter)".utf8))
            })
        }
        // Round robin over exporters: template-256 datagrams of different exporters interleave.
        var cursor = Array(repeating: 0, count: perExporter.count)
        while cursor.indices.contains(where: { cursor[$0] < perExporter[$0].count }) {
            for i in perExporter.indices where cursor[i] < perExporter[i].count {
                datagrams.append(perExporter[i][cursor[i]])
                cursor[i] += 1
            }
        }
    }

    /// A NetFlow v9 export packet (RFC 3954 §5): header, then the template flowset when `layout` is given,
    /// then a data flowset of `records` for template 256, padded to four bytes.
    static func netflow9(layout: [(UInt16, UInt16)]?, records: [[UInt8]], sequence: UInt32, unixSeconds: UInt32) -> [UInt8] {
        var out = PacketBuilder.be16(9) + PacketBuilder.be16(UInt16(records.count + (layout == nil ? 0 : 1)))
        out += PacketBuilder.be32(110_000) + PacketBuilder.be32(unixSeconds) + PacketBuilder.be32(sequence) + PacketBuilder.be32(0)
        if let layout {
            var body = PacketBuilder.be16(256) + PacketBuilder.be16(UInt16(layout.count))
            for (type, length) in layout { body += PacketBuilder.be16(type) + PacketBuilder.be16(length) }
            out += PacketBuilder.be16(0) + PacketBuilder.be16(UInt16(4 + body.count)) + body
        }
        var data = records.flatMap { $0 }
        while (4 + data.count) % 4 != 0 { data.append(0) }
        out += PacketBuilder.be16(256) + PacketBuilder.be16(UInt16(4 + data.count)) + data
        return out
    }

    /// The datagrams as Ethernet frames from the exporters' side of the topology to the forwarder.
    func writeCapture(to path: String) throws {
        let writer = try PcapWriter(path: path, linkType: .ethernet)
        let link = PacketBuilder.Link.ethernet(source: [2, 0, 0, 1, 0, 1], destination: [2, 0, 0, 1, 0, 0xFE])
        for (i, d) in datagrams.enumerated() {
            let network: PacketBuilder.Network = d.exporter.isIPv6
                ? .ipv6(.init(source: d.exporter, destination: Self.forwarderV6))
                : .ipv4(.init(source: d.exporter, destination: Self.forwarderV4))
            let frame = PacketBuilder.frame(link: link, network: network, transport: .udp(sourcePort: d.sourcePort, destinationPort: d.destinationPort), payload: d.payload)
            try writer.write(timestamp: Timestamp(seconds: 1_790_000_000 + Int64(i / 1000), microseconds: Int64(i % 1000) * 1000), bytes: frame)
        }
        try writer.flush()
    }
}
