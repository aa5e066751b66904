import PacketCore
import Wire

/// Packets built to cover every link type, IP variant and transport the decoder knows.
enum Fixtures {
    static let v4a = IPAddress("192.0.2.1")!
    static let v4b = IPAddress("198.51.100.7")!
    static let v6a = IPAddress("2001:db8::1")!
    static let v6b = IPAddress("2001:db8:0:1::beef")!

    static let links: [PacketBuilder.Link] = [
        .ethernet(),
        .ethernet(vlans: [.init(id: 100)]),
        .ethernet(vlans: [.init(id: 10, tpid: EtherType.qinq), .init(id: 20)]),
        .ethernet(vlans: [.init(id: 30, tpid: EtherType.qinqLegacy), .init(id: 40)]),
        .linuxSLL, .linuxSLL2, .null, .loop, .none,
    ]

    static var networks: [PacketBuilder.Network] {
        var v4options = PacketBuilder.IPv4(source: v4a, destination: v4b)
        v4options.options = [0x94, 0x04, 0x00, 0x00] // Router Alert (RFC 2113)
        var v6ext = PacketBuilder.IPv6(source: v6a, destination: v6b)
        v6ext.extensions = [.hopByHop(options: [5, 2, 0, 0]), .destinationOptions(), .routing(type: 4, segmentsLeft: 0, data: [0, 0, 0, 0]), .authentication()]
        return [
            .ipv4(.init(source: v4a, destination: v4b)),
            .ipv4(v4options),
            .ipv6(.init(source: v6a, destination: v6b)),
            .ipv6(v6ext),
        ]
    }

    static var transports: [PacketBuilder.Transport] {
        var syn = PacketBuilder.TCP(sourcePort: 49152, destinationPort: 80, sequence: 0xFFFF_FF00, flags: [.syn])
        syn.options = [.mss(1460), .sackPermitted, .timestamp(value: 1, echo: 0), .nop, .windowScale(7)]
        var data = PacketBuilder.TCP(sourcePort: 80, destinationPort: 49152, sequence: 7, acknowledgement: 9, flags: [.ack, .psh])
        data.options = [.nop, .nop, .sack([(100, 200), (300, 400)])]
        return [.tcp(syn), .tcp(data), .udp(sourcePort: 5353, destinationPort: 53), .icmp(type: 8, code: 0, rest: 0x0001_0002), .icmpv6(type: 128, code: 0, rest: 0x0001_0002)]
    }

    /// Every combination, with a short payload; ICMP only under IPv4 and ICMPv6 only under IPv6.
    static var all: [(name: String, link: PacketBuilder.Link, network: PacketBuilder.Network, transport: PacketBuilder.Transport, bytes: [UInt8])] {
        var out: [(String, PacketBuilder.Link, PacketBuilder.Network, PacketBuilder.Transport, [UInt8])] = []
        let payload = Array("GET / HTTP/1.1\r\n\r\n".utf8)
        for (li, link) in links.enumerated() {
            for (ni, network) in networks.enumerated() {
                for (ti, transport) in transports.enumerated() {
                    let isV6: Bool = if case .ipv6 = network { true } else { false }
                    if case .icmp = transport, isV6 { continue }
                    if case .icmpv6 = transport, !isV6 { continue }
                    let bytes = PacketBuilder.frame(link: link, network: network, transport: transport, payload: payload)
                    out.append(("link\(li)-net\(ni)-l4\(ti)", link, network, transport, bytes))
                }
            }
        }
        return out
    }
}
