import Capture
import Foundation
import PacketCore
import TrafficGen
import Wire
import XCTest

/// A deliberately naive reading of a generated capture, independent of the
/// generator's own bookkeeping: decode every frame (checksums verified),
/// reassemble IP fragments by key and offset, check the transport checksum of
/// every whole datagram, and rebuild each TCP direction by sequence number
/// relative to its ISN (first-seen byte wins, a later different byte is a
/// failure). Counts what it sees so tests can compare with `ImpairmentCounts`.
struct ReferenceModel {
    /// One transport datagram after IP reassembly.
    struct Datagram {
        var source: IPAddress
        var destination: IPAddress
        var proto: UInt8
        /// Transport header and payload.
        var bytes: [UInt8]
        var vlan: UInt16?
    }

    /// One side of a TCP connection as the reference reassembler saw it.
    struct Direction {
        /// Sequence number of stream byte 0.
        var base: UInt32?
        var sawSYN = false
        var sawFIN = false
        var sawRST = false
        var data: [UInt8?] = []
        var ranges: Set<Range<Int>> = []
        var highest = 0
        var conflicts = 0

        /// The stream from byte 0 up to the first hole, and whether there was a hole.
        var stream: (bytes: [UInt8], complete: Bool) {
            var out: [UInt8] = []
            for byte in data {
                guard let byte else { return (out, false) }
                out.append(byte)
            }
            return (out, true)
        }
    }

    struct Connection {
        var client = Direction()
        var server = Direction()
        var packets = 0
    }

    var packets = 0
    /// Decoder anomalies by name, on any frame.
    var anomalies: [String: Int] = [:]
    var badTransportChecksums = 0
    var counts = TrafficGenerator.ImpairmentCounts()
    /// By session id.
    var tcp: [Int: Connection] = [:]
    /// By session id; per direction, the payloads in arrival order.
    var datagrams: [Int: (client: [[UInt8]], server: [[UInt8]])] = [:]
    var unmatched = 0

    private struct Endpoints: Hashable { var a: IPAddress, b: IPAddress, pa: UInt16, pb: UInt16, proto: UInt8 }
    private var sessions: [Endpoints: TrafficGenerator.SessionRecord] = [:]

    /// Reads `path` and attributes every datagram to one of `records` by its addresses and ports.
    init(path: String, records: [TrafficGenerator.SessionRecord]) throws {
        for record in records {
            let s = record.session
            let proto: UInt8 = switch s.kind.transport {
            case .tcp: IPProtocol.tcp
            case .udp: IPProtocol.udp
            case .icmp: s.client.isIPv6 ? IPProtocol.icmpv6 : IPProtocol.icmp
            }
            let ports = s.kind.transport == .icmp ? (s.clientPort, 0) : (s.clientPort, s.serverPort)
            sessions[Endpoints(a: s.client, b: s.server, pa: ports.0, pb: ports.1, proto: proto)] = record
        }
        try read(path)
    }

    private mutating func read(_ path: String) throws {
        struct FragmentKey: Hashable { var source: IPAddress, destination: IPAddress, proto: UInt8, id: UInt32 }
        struct Pending { var pieces: [(offset: Int, data: [UInt8], more: Bool)] = []; var vlan: UInt16? }
        var fragments: [FragmentKey: Pending] = [:]

        let reader = try CaptureFileReader(path: path)
        var decoder = PacketDecoder(verifyChecksums: true)
        var packet = DecodedPacket()
        while let record = try reader.next() {
            packets += 1
            decoder.decode(record.bytes, originalLength: record.originalLength, linkType: record.linkType, into: &packet)
            for anomaly in Anomaly.allCases where anomaly != .none && packet.has(anomaly) {
                anomalies[anomaly.name, default: 0] += 1
            }
            guard packet.isIP else { continue }
            let end = packet.networkOffset + packet.ipTotalLength
            let transport = Array(record.bytes[packet.transportOffset ..< end])
            guard packet.isFragment else {
                let datagram = Datagram(source: packet.source, destination: packet.destination, proto: packet.ipProtocol,
                                        bytes: transport, vlan: packet.outerVLAN)
                take(datagram)
                continue
            }
            let key = FragmentKey(source: packet.source, destination: packet.destination, proto: packet.ipProtocol, id: packet.ipIdentification)
            fragments[key, default: Pending(vlan: packet.outerVLAN)].pieces.append((packet.fragmentOffset, transport, packet.moreFragments))
            counts.fragments += 1
            guard let pending = fragments[key], let last = pending.pieces.first(where: { !$0.more }) else { continue }
            let total = last.offset + last.data.count
            let sorted = pending.pieces.sorted { $0.offset < $1.offset }
            var whole: [UInt8] = []
            for piece in sorted where piece.offset == whole.count { whole += piece.data }
            guard whole.count == total else { continue }
            fragments[key] = nil
            counts.fragmentedDatagrams += 1
            if pending.pieces.map(\.offset) != sorted.map(\.offset) { counts.shuffledDatagrams += 1 }
            take(Datagram(source: key.source, destination: key.destination, proto: key.proto, bytes: whole, vlan: pending.vlan))
        }
        XCTAssertTrue(fragments.isEmpty, "\(fragments.count) datagrams never completed")
    }

    private mutating func take(_ d: Datagram) {
        // RFC 1071 over the pseudo-header and the whole transport datagram.
        if d.proto != IPProtocol.icmp {
            let sum = d.bytes.withUnsafeBytes {
                InternetChecksum.add($0, to: InternetChecksum.pseudoHeader(source: d.source, destination: d.destination,
                                                                            protocol: d.proto, length: d.bytes.count))
            }
            if InternetChecksum.finish(sum) != 0 { badTransportChecksums += 1 }
        } else if InternetChecksum.checksum(d.bytes) != 0 {
            badTransportChecksums += 1
        }
        guard d.bytes.count >= 8 else { return unmatched += 1 }
        let p0 = UInt16(d.bytes[0]) << 8 | UInt16(d.bytes[1])
        let p1 = UInt16(d.bytes[2]) << 8 | UInt16(d.bytes[3])
        let icmp = d.proto == IPProtocol.icmp || d.proto == IPProtocol.icmpv6
        // ICMP echo: identifier at bytes 4–5, the same both ways.
        let echoID = UInt16(d.bytes[4]) << 8 | UInt16(d.bytes[5])
        let forward = icmp ? Endpoints(a: d.source, b: d.destination, pa: echoID, pb: 0, proto: d.proto)
                           : Endpoints(a: d.source, b: d.destination, pa: p0, pb: p1, proto: d.proto)
        let backward = icmp ? Endpoints(a: d.destination, b: d.source, pa: echoID, pb: 0, proto: d.proto)
                            : Endpoints(a: d.destination, b: d.source, pa: p1, pb: p0, proto: d.proto)
        let fromClient: Bool
        let session: TrafficGenerator.SessionRecord
        if let s = sessions[forward] {
            (session, fromClient) = (s, true)
        } else if let s = sessions[backward] {
            (session, fromClient) = (s, false)
        } else {
            return unmatched += 1
        }
        if d.vlan != session.session.vlan { unmatched += 1 }
        let eligible = d.bytes.count >= TrafficGenerator.Impairments.minimumFragmentableLength
        switch d.proto {
        case IPProtocol.tcp:
            let headerLength = Int(d.bytes[12] >> 4) * 4
            if d.bytes.count > headerLength && eligible { counts.fragmentCandidates += 1 }
            var connection = tcp[session.id] ?? Connection()
            connection.packets += 1
            if fromClient { segment(d.bytes, &connection.client) } else { segment(d.bytes, &connection.server) }
            tcp[session.id] = connection
        case IPProtocol.udp:
            if eligible { counts.fragmentCandidates += 1 }
            var lists = datagrams[session.id] ?? ([], [])
            if fromClient { lists.client.append(Array(d.bytes[8...])) } else { lists.server.append(Array(d.bytes[8...])) }
            datagrams[session.id] = lists
        default:
            var lists = datagrams[session.id] ?? ([], [])
            if fromClient { lists.client.append(Array(d.bytes[8...])) } else { lists.server.append(Array(d.bytes[8...])) }
            datagrams[session.id] = lists
        }
    }

    private mutating func segment(_ bytes: [UInt8], _ direction: inout Direction) {
        let seq = UInt32(bytes[4]) << 24 | UInt32(bytes[5]) << 16 | UInt32(bytes[6]) << 8 | UInt32(bytes[7])
        let flags = TCPFlags(rawValue: bytes[13])
        let payload = Array(bytes[(Int(bytes[12] >> 4) * 4)...])
        if flags.contains(.syn) {
            direction.sawSYN = true
            direction.base = seq &+ 1
            return
        }
        // Picked up mid-stream: the first segment seen starts the stream.
        if direction.base == nil { direction.base = seq }
        if flags.contains(.fin) { direction.sawFIN = true }
        if flags.contains(.rst) { direction.sawRST = true }
        guard !payload.isEmpty, let base = direction.base else { return }
        let start = Int(seq &- base)
        // Bytes before the stream start (or absurdly far ahead) never come from the generator.
        guard start < 1 << 24 else { return direction.conflicts += 1 }
        let range = start ..< start + payload.count
        if direction.data.count < range.upperBound {
            direction.data += [UInt8?](repeating: nil, count: range.upperBound - direction.data.count)
        }
        var fresh = false
        for (i, byte) in zip(range, payload) {
            if let old = direction.data[i] {
                if old != byte { direction.conflicts += 1 }
            } else {
                direction.data[i] = byte
                fresh = true
            }
        }
        if direction.ranges.contains(range) {
            counts.duplicateSegments += 1
        } else if !fresh {
            counts.overlappingSegments += 1
        } else {
            counts.dataSegments += 1
            if range.lowerBound < direction.highest { counts.lateSegments += 1 }
        }
        direction.ranges.insert(range)
        direction.highest = max(direction.highest, range.upperBound)
    }
}

enum Temporary {
    /// A fresh path in the temporary directory, removed by the caller.
    static func path(_ suffix: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-gen-\(UUID().uuidString)\(suffix)").path
    }
}
