#if canImport(Glibc)
import Glibc
#endif
import CShims
import Capture
import Filters
import FlowCollect
import Forwarding
import Outputs
import PacketCore
import Telemetry
import Wire

/// `flowtap collect`: NetFlow/IPFIX/sFlow datagrams from capture files or UDP sockets through one
/// `FlowCollector`, one JSON record per line to `output`.
public struct CollectSession {
    public var input = PipelineInput()
    public var templateLifetimeSeconds = 1800
    public var maxTemplates = 65536
    /// The receive buffer each `--listen` socket asks for (the kernel caps it at `net.core.rmem_max`).
    public var receiveBufferBytes: Int32 = 16 << 20
    /// Where `--http` reads counters (nil: no endpoint).
    public var telemetry: TelemetryHub?
    /// Exporters the status page lists by name; the rest are added up as "others".
    static let exportersListed = 1024

    public init() {}

    public struct ListenError: Error, CustomStringConvertible {
        public var description: String
    }

    func makeCollector(_ output: RecordWriter) -> FlowCollector {
        FlowCollector(templates: TemplateCache(capacity: maxTemplates, lifetimeSeconds: templateLifetimeSeconds)) { output.write($0) }
    }

    /// Reads the UDP datagrams in `files` (any port; a fragmented datagram is counted and skipped).
    public func run(files: [String], output: RecordWriter) throws -> String {
        let collector = makeCollector(output)
        var decoder = PacketDecoder()
        var packet = DecodedPacket()
        var udp: UInt64 = 0, fragments: UInt64 = 0, truncated: UInt64 = 0
        let (packets, filtered) = try input.forEachRecord(in: files) { record in
            decoder.decode(record.bytes, originalLength: record.originalLength, linkType: record.linkType, into: &packet)
            guard packet.transport == .udp || (packet.isFragment && packet.ipProtocol == 17) else { return }
            if packet.isFragment { fragments &+= 1; return }
            udp &+= 1
            guard packet.payloadCapturedLength == packet.payloadLength else { truncated &+= 1; return }
            let payload = UnsafeRawBufferPointer(rebasing: record.bytes[packet.payloadOffset ..< packet.payloadOffset + packet.payloadCapturedLength])
            collector.collect(payload, exporter: packet.source, port: packet.sourcePort, time: record.timestamp)
        }
        collector.finish()
        output.flush()
        var report = "packets \(packets), UDP datagrams \(udp)"
        if fragments > 0 { report += ", IP fragments skipped \(fragments)" }
        if truncated > 0 { report += ", datagrams cut short by the capture's snap length \(truncated)" }
        if filtered > 0 { report += ", packets the filter rejected \(filtered)" }
        return report + "\n" + Self.summary(collector) + "\n"
    }

    /// Receives on every `addresses` (`ADDR:PORT`, `[IPv6]:PORT`) until SIGINT/SIGTERM or `stop()` says so.
    public func run(listen addresses: [String], output: RecordWriter, stop: () -> Bool = { false }) throws -> String {
        let collector = makeCollector(output)
        var sockets: [Int32] = []
        defer { for fd in sockets { close(fd) } }
        for address in addresses { sockets.append(try Self.bind(address, receiveBuffer: receiveBufferBytes)) }
        var fds = sockets.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var storage = sockaddr_storage()
        var received: UInt64 = 0
        // Each socket's kernel drop counter (SO_RXQ_OVFL), as the last datagram carried it.
        var drops = [UInt32](repeating: 0, count: sockets.count)
        var receivedBytes: UInt64 = 0
        // Per exporter, in the table the flow views use (no String per datagram; names only for the rows shown).
        var exporters = HostSums()
        var others = HostSums.Sum()
        var clock = telemetry?.makeClock()
        func publish() {
            guard let hub = telemetry else { return }
            var dropped: UInt64 = 0
            for (i, fd) in sockets.enumerated() { dropped += max(UInt64(drops[i]), ForwardSockets.kernelDrops(fd) ?? 0) }
            var s = Self.snapshot(collector, received: received, bytes: receivedBytes, kernelDrops: dropped, input: addresses.joined(separator: ","))
            var top = TopList<(IPAddress, HostSums.Sum)>(limit: 10) { $0.1.bytes }
            exporters.forEach { top.offer(($0, $1)) }
            s.talkers = top.sorted.map { TrafficShare(name: $0.0.description, packets: $0.1.packets, bytes: $0.1.bytes, flows: 0) }
            if others.packets > 0 { s.talkers.append(TrafficShare(name: "others", packets: others.packets, bytes: others.bytes, flows: 0)) }
            s.add(outputs: output.statistics)
            hub.publish(s)
        }
        while !StopSignal.requested && !stop() {
            if clock?.isDue() == true { publish() }
            let ready = poll(&fds, nfds_t(fds.count), 100)
            if ready <= 0 { output.flush(); continue }
            for i in fds.indices where fds[i].revents & Int16(POLLIN) != 0 {
                // Drain what is queued, without blocking.
                while true {
                    var length = UInt32(MemoryLayout<sockaddr_storage>.size)
                    let got = buffer.withUnsafeMutableBytes { b in
                        flowtap_recv_counting_drops(fds[i].fd, b.baseAddress, b.count, Int32(MSG_DONTWAIT), &storage, &length, &drops[i])
                    }
                    if got < 0 { break }
                    let n = Int(got)
                    received &+= 1
                    receivedBytes &+= UInt64(n)
                    let (exporter, port) = Self.address(storage)
                    if telemetry != nil {
                        if exporters.count < Self.exportersListed || exporters.contains(exporter) {
                            exporters.add(exporter, packets: 1, bytes: UInt64(n))
                        } else {
                            others.add(packets: 1, bytes: UInt64(n))
                        }
                    }
                    buffer.withUnsafeBytes { collector.collect(UnsafeRawBufferPointer(rebasing: $0[0 ..< n]), exporter: exporter, port: port, time: .wallClock()) }
                }
            }
        }
        collector.finish()
        output.flush()
        publish()
        // The counter rides on received datagrams, so drops after the last one are read from the kernel's table.
        var dropped: UInt64 = 0
        for (i, fd) in sockets.enumerated() { dropped += max(UInt64(drops[i]), ForwardSockets.kernelDrops(fd) ?? 0) }
        return "datagrams received \(received), dropped by the kernel (socket receive buffer full) \(dropped)\n" + Self.summary(collector) + "\n"
    }

    static func address(_ storage: sockaddr_storage) -> (IPAddress, UInt16) {
        var s = storage
        return withUnsafeBytes(of: &s) { raw in
            if storage.ss_family == sa_family_t(AF_INET6) {
                return (IPAddress.ipv6(raw, at: 8), raw.beUInt16(at: 2))
            }
            return (IPAddress.ipv4(raw, at: 4), raw.beUInt16(at: 2))
        }
    }

    /// A UDP socket bound to `ADDR:PORT` with a large receive buffer.
    static func bind(_ text: String, receiveBuffer: Int32) throws(ListenError) -> Int32 {
        var host = text, portText = ""
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex) ..< close])
            portText = String(text[text.index(after: close)...].dropFirst())
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = String(text[text.index(after: colon)...])
        }
        guard let port = UInt16(portText), !host.isEmpty else {
            throw ListenError(description: "--listen \(text): write ADDRESS:PORT, e.g. 0.0.0.0:2055, [::]:4739 or 127.0.0.1:6343")
        }
        guard let address = IPAddress(host) else { throw ListenError(description: "--listen \(text): '\(host)' is not an IP address") }
        let fd = socket(address.isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw ListenError(description: "--listen \(text): socket: \(String(cString: strerror(errno)))") }
        var size = receiveBuffer
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        // The kernel then counts datagrams it drops for a full buffer, and says so with each datagram.
        var on: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, socklen_t(MemoryLayout<Int32>.size))
        let status: Int32
        if address.isIPv6 {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &a.sin6_addr) { raw in
                for i in 0 ..< 8 {
                    raw[i] = UInt8(truncatingIfNeeded: address.high >> UInt64(56 - 8 * i))
                    raw[8 + i] = UInt8(truncatingIfNeeded: address.low >> UInt64(56 - 8 * i))
                }
            }
            status = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = port.bigEndian
            a.sin_addr.s_addr = address.ipv4Value.bigEndian
            status = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        guard status == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ListenError(description: "--listen \(text): bind: \(reason)")
        }
        return fd
    }

    /// The `--http` snapshot: datagrams by protocol, records, templates and every loss.
    static func snapshot(_ collector: FlowCollector, received: UInt64, bytes: UInt64, kernelDrops: UInt64, input: String) -> TelemetrySnapshot {
        var s = TelemetrySnapshot()
        let n = collector.counters, t = collector.templates.counters
        s.packets = received
        s.bytes = bytes
        s.counter("flowtap_packets_total", "Packets the command took in: frames captured or injected, datagrams received.", received, ["input": input])
        s.counter("flowtap_bytes_total", "Bytes of the packets the command took in (frame lengths on the wire, or datagram payloads).", bytes, ["input": input])
        s.counter("flowtap_collect_dropped_total", "Datagrams or sets lost, by reason.", kernelDrops, ["reason": "kernel"])
        s.counter("flowtap_collect_dropped_total", "Datagrams or sets lost, by reason.", n.malformed, ["reason": "malformed"])
        s.counter("flowtap_collect_dropped_total", "Datagrams or sets lost, by reason.", n.setsWithoutTemplate, ["reason": "no_template"])
        s.counter("flowtap_collect_dropped_total", "Datagrams or sets lost, by reason.", n.notFlowExport, ["reason": "not_flow_export"])
        let kinds: [(String, UInt64)] = [("netflow5", n.netflow5), ("netflow9", n.netflow9), ("ipfix", n.ipfix), ("sflow", n.sflow)]
        for (kind, value) in kinds {
            s.counter("flowtap_collect_datagrams_total", "Flow export datagrams, by protocol.", value, labels: [MetricLabel(name: "protocol", value: kind)])
        }
        s.protocols = kinds.filter { $0.1 > 0 }.map { TrafficShare(name: $0.0, packets: $0.1, bytes: 0, flows: 0) }
        s.counter("flowtap_collect_records_total", "Flow records decoded (sFlow samples included).", n.records)
        s.counter("flowtap_collect_template_records_total", "Template records received.", n.templateRecords)
        s.gauge("flowtap_collect_templates", "Templates kept.", Double(collector.templates.count))
        s.counter("flowtap_collect_templates_evicted_total", "Templates evicted with the cache full, or expired.", t.evicted &+ t.expired)
        return s
    }

    static func summary(_ c: FlowCollector) -> String {
        let n = c.counters, t = c.templates.counters
        var s = "datagrams \(n.datagrams): NetFlow v5 \(n.netflow5), v9 \(n.netflow9), IPFIX \(n.ipfix), sFlow \(n.sflow), not flow export \(n.notFlowExport); "
            + "records \(n.records) (sFlow flow samples \(n.sflowFlowSamples), counter samples \(n.sflowCounterSamples)), options records \(n.optionsRecords), "
            + "template records \(n.templateRecords) (templates kept \(c.templates.count), changed \(t.changed), withdrawn \(t.withdrawn), expired \(t.expired), evicted \(t.evicted))"
        if n.heldSets > 0 { s += "; data sets held for their template \(n.heldSets), decoded later \(n.heldSetsDecoded)" }
        if n.setsWithoutTemplate > 0 { s += "; data sets never decoded (no template) \(n.setsWithoutTemplate)" }
        if n.malformed > 0 { s += "; malformed datagrams or sets \(n.malformed)" }
        if n.truncatedRecords > 0 { s += "; records cut short by their set \(n.truncatedRecords)" }
        if n.sflowSkipped > 0 { s += "; sFlow samples or records of other formats skipped \(n.sflowSkipped)" }
        return s
    }
}
