import FlowCore
import CLibpcap
import Capture
import Engine
import Flows
import PacketCore
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// What one pass over the input measured: packets and captured bytes seen, and the wall time.
struct PassResult {
    var packets = 0
    /// Captured bytes (the sum of the records' captured lengths).
    var bytes = 0
    var seconds = 0.0
}

/// The packet loops the bench commands time. Each loop is one pass over every file, in order;
/// the clock covers opening the files and the whole loop.
enum BenchLoops {
    static func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

    /// How far `captureLoop` takes each packet.
    enum Depth {
        /// The reader alone (the first byte of each packet is touched).
        case read
        /// Reader and `PacketDecoder`.
        case decode
        /// Reader, decoder, and a flow-table lookup (insert when new) per IP packet.
        case flows
    }

    /// One pass of FlowTap's reader over `files`, taking each packet to `depth`.
    ///
    /// At `.flows` the keys and timeout classes are the flow engine's (endpoint order, outer VLAN,
    /// TCP/UDP/ICMP classes, TCP closing after FIN or RST) and idle flows are removed once per
    /// second of packet time, but there is no defragmentation (fragments are only counted), no TCP
    /// start rule (every TCP packet finds or makes a flow) and no reassembly. `flows` returns the
    /// number of flows inserted.
    static func captureLoop(_ files: [String], depth: Depth, decoder: PacketDecoder = PacketDecoder(),
                            flows: inout Int) throws(CaptureError) -> PassResult {
        let start = MonotonicClock.seconds()
        var result = PassResult()
        var sink: UInt64 = 0
        var decoder = decoder
        var packet = DecodedPacket()
        let table = depth == .flows ? FlowTable() : nil
        var lastExpiry = Int64.min
        for file in files {
            let reader = try CaptureFileReader(path: file)
            while let record = try reader.next() {
                result.packets &+= 1
                result.bytes &+= record.bytes.count
                switch depth {
                case .read:
                    if record.bytes.count > 0 { sink &+= UInt64(record.bytes[0]) }
                case .decode:
                    decoder.decode(record.bytes, originalLength: record.originalLength, linkType: record.linkType, into: &packet)
                    sink &+= UInt64(packet.sourcePort)
                case .flows:
                    decoder.decode(record.bytes, originalLength: record.originalLength, linkType: record.linkType, into: &packet)
                    guard let table else { break }
                    let time = record.timestamp
                    if lastExpiry == .min || time.nanoseconds >= lastExpiry &+ 1_000_000_000 {
                        while let slot = table.expired(now: time) { table.remove(slot) }
                        lastExpiry = time.nanoseconds
                    }
                    if track(packet, in: table, time: time) { flows &+= 1 }
                }
            }
        }
        result.seconds = MonotonicClock.seconds() - start
        if sink == 42 { print("") }
        return result
    }

    /// Finds or inserts the flow of one decoded packet; returns whether it was new.
    @inline(__always)
    static func track(_ p: DecodedPacket, in table: FlowTable, time: Timestamp) -> Bool {
        guard p.isIP, !p.isFragment else { return false }
        let ipProtocol: UInt8, timeoutClass: UInt8
        switch p.transport {
        case .tcp: (ipProtocol, timeoutClass) = (IPProtocol.tcp, 0)
        case .udp: (ipProtocol, timeoutClass) = (IPProtocol.udp, 1)
        case .icmp: (ipProtocol, timeoutClass) = (IPProtocol.icmp, 2)
        case .icmpv6: (ipProtocol, timeoutClass) = (IPProtocol.icmpv6, 2)
        default: return false
        }
        let ports = ipProtocol == IPProtocol.tcp || ipProtocol == IPProtocol.udp
        let (key, _) = FlowKey.make(source: p.source, sourcePort: ports ? p.sourcePort : 0, destination: p.destination,
                                    destinationPort: ports ? p.destinationPort : 0, ipProtocol: ipProtocol,
                                    vlan: p.outerVLAN ?? FlowKey.noVLAN)
        var created = false
        let slot: Int
        if let found = table.find(key) {
            slot = found
        } else {
            if table.isFull, let victim = table.leastRecentlyActive { table.remove(victim) }
            slot = table.insert(key, time: time, timeoutClass: timeoutClass)
            created = true
        }
        table.touch(slot, time: time)
        if ipProtocol == IPProtocol.tcp && (p.tcpFlags.contains(.fin) || p.tcpFlags.contains(.rst)) { table.setTimeoutClass(slot, 3) }
        return created
    }

    /// One pass of libpcap's `pcap_next_ex` over `files`, touching each packet's first byte.
    static func libpcapLoop(_ files: [String]) throws -> PassResult {
        let start = MonotonicClock.seconds()
        var result = PassResult()
        var sink: UInt64 = 0
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        for file in files {
            guard let handle = pcap_open_offline(file, &errorBuffer) else {
                let message = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                throw BenchError("libpcap cannot open \(file): \(message)")
            }
            defer { pcap_close(handle) }
            var header: UnsafeMutablePointer<pcap_pkthdr>?
            var data: UnsafePointer<UInt8>?
            while pcap_next_ex(handle, &header, &data) == 1 {
                guard let header else { continue }
                result.packets &+= 1
                let caplen = Int(header.pointee.caplen)
                result.bytes &+= caplen
                if let data, caplen > 0 { sink &+= UInt64(data[0]) }
            }
        }
        result.seconds = MonotonicClock.seconds() - start
        if sink == 42 { print("") }
        return result
    }
}

/// A flow-event sink that only counts: the flow engine runs in full and nothing is done with its events.
struct NullFlowSink: FlowEventSink {
    var created: UInt64 = 0
    var destroyed: UInt64 = 0
    var dataBytes: UInt64 = 0
    mutating func flowCreated(_ flow: FlowView, time: Timestamp) { created &+= 1 }
    mutating func flowData(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) { dataBytes &+= UInt64(bytes.count) }
    mutating func flowDestroyed(_ flow: FlowView, reason: DestroyReason, time: Timestamp) { destroyed &+= 1 }
}

/// A bench failure, said as one sentence.
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
