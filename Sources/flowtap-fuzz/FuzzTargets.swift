import Abstraction
import Analyzers
import Capture
import Classify
import FlowCollect
import FlowCore
import FlowDispatch
import FlowRecords
import Forwarding
import Incubator
import PacketCore
import Reports
import SFTapCodec
import SFTapConfig
import Sharding
import Telemetry
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// Every parser FlowTap runs on untrusted bytes, as a function of one input. Each target splits its
/// input the way its parser is fed (chunks, directions, datagrams) from the input's own bytes, so a
/// fuzzer explores the splits too. A target must never trap, whatever the bytes.
enum FuzzTarget: String, CaseIterable {
    case decoder, capture, gzip, engine, flows, collect, http, dns, tls, quic, eventReader = "event-reader", loopback7, config, forward, incubate, report, telemetry
    case rulesCache = "rules-cache"
    case shard

    func run(_ input: UnsafeRawBufferPointer) {
        switch self {
        case .decoder: Self.decoder(input)
        case .capture: Self.capture(input)
        case .gzip: Self.gzip(input)
        case .engine: Self.engine(input)
        case .flows: Self.flows(input)
        case .collect: Self.collect(input)
        case .http: Self.http(input)
        case .dns: Self.dns(input)
        case .tls: Self.tls(input)
        case .quic: Self.quic(input)
        case .eventReader: Self.eventReader(input)
        case .loopback7: Self.loopback7(input)
        case .config: Self.config(input)
        case .forward: Self.forward(input)
        case .incubate: Self.incubate(input)
        case .report: Self.report(input)
        case .telemetry: Self.telemetry(input)
        case .rulesCache: fuzzRulesCacheFile(input)
        case .shard: Self.shard(input)
        }
    }

    /// Chunks of the input: each starts with a byte whose top bit is the direction and whose low bits
    /// are the chunk's length (0–127), so the fuzzer controls both.
    static func chunks(_ input: UnsafeRawBufferPointer, _ body: (Bool, UnsafeRawBufferPointer) -> Void) {
        var at = 0
        while at < input.count {
            let control = input[at]
            at += 1
            let n = min(Int(control & 0x7F), input.count - at)
            body(control & 0x80 != 0, UnsafeRawBufferPointer(rebasing: input[at ..< at + n]))
            at += n
        }
    }

    static let linkTypes: [LinkType] = [.ethernet, .raw, .ipv4, .ipv6, .linuxSLL, .linuxSLL2, .null, .loop, .ppp, .pppSerial,
                                        .ciscoHDLC, .frameRelay, .slip, .rawBSD12, .rawBSD14]

    /// One frame of any link type (the first byte picks it), tunnels opened, checksums verified.
    static func decoder(_ input: UnsafeRawBufferPointer) {
        guard let first = input.first else { return }
        var decoder = PacketDecoder(verifyChecksums: true)
        decoder.decapsulateTunnels = true
        var packet = DecodedPacket()
        let bytes = UnsafeRawBufferPointer(rebasing: input[1...])
        _ = decoder.decode(bytes, originalLength: bytes.count + Int(first & 0x0F), linkType: linkTypes[Int(first) % linkTypes.count], into: &packet)
    }

    /// The reading thread's shard pick straight off a frame (`ShardHash.quickShard`, no decoding): the
    /// first byte chooses the shard count (2–9) and whether the VLAN is in the key, the rest is an
    /// Ethernet frame. Wherever it answers for what the decoder takes for IP it must answer as the decoded
    /// packet does (`shard(of:)`), or a flow's packets would be split between two shards.
    static func shard(_ input: UnsafeRawBufferPointer) {
        guard let first = input.first else { return }
        let split = ShardHash.Split(shards: 2 + Int(first & 7)), vlanInKey = first & 8 != 0
        let frame = UnsafeRawBufferPointer(rebasing: input[1...])
        guard let quick = ShardHash.quickShard(frame, linkType: .ethernet, vlanInKey: vlanInKey, split: split) else { return }
        var decoder = PacketDecoder(verifyChecksums: false)
        decoder.decapsulateTunnels = true
        var packet = DecodedPacket()
        _ = decoder.decode(frame, originalLength: frame.count, linkType: .ethernet, into: &packet)
        // A frame the decoder does not take for IP joins no flow, whichever shard reads it.
        guard packet.isIP else { return }
        let decoded = ShardHash.shard(of: packet, vlanInKey: vlanInKey, split: split)
        if quick != decoded { fatalError("quickShard \(quick), decoded packet's shard \(decoded)") }
    }

    /// A pcap or pcapng stream, whole and then in the input's own chunks.
    static func capture(_ input: UnsafeRawBufferPointer) {
        var parser = CaptureFormatParser()
        var offset = 0
        var general: [(Int64, Int, UnsafeRawPointer?, Int)] = []
        parse: while true {
            switch parser.next(input, offset: &offset) {
            case .packet(let r): general.append((r.timestamp.nanoseconds, r.originalLength, r.bytes.baseAddress, r.bytes.count))
            case .needMore, .failure: break parse
            }
        }
        // The inline pcap path first, as CaptureFileReader reads: the same records in the same order.
        var quick = CaptureFormatParser()
        var quickOffset = 0, index = 0
        quickParse: while true {
            let record: PacketRecord
            if let r = quick.nextPcapRecordQuickly(input.baseAddress, count: input.count, offset: &quickOffset) {
                record = r
            } else if case .packet(let r) = quick.next(input, offset: &quickOffset) {
                record = r
            } else {
                break quickParse
            }
            precondition(index < general.count && general[index] == (record.timestamp.nanoseconds, record.originalLength, record.bytes.baseAddress, record.bytes.count),
                         "the inline pcap path disagrees with the general parser at record \(index)")
            index += 1
        }
        precondition(index == general.count, "the inline pcap path stopped early")
        var pieces = CaptureFormatParser()
        var pending: [UInt8] = []
        chunks(input) { _, chunk in
            pending += chunk
            var used = 0
            pending.withUnsafeBytes { buffer in
                loop: while true {
                    switch pieces.next(buffer, offset: &used) {
                    case .packet: continue
                    case .needMore, .failure: break loop
                    }
                }
            }
            pending.removeFirst(min(used, pending.count))
        }
    }

    /// A gzip-compressed capture read through `CaptureFileReader` (zlib inflating into its window): a fixed
    /// gzip header, then the input as the deflate stream and trailer, from a file as `-r` reads one.
    static func gzip(_ input: UnsafeRawBufferPointer) {
        let header: [UInt8] = [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03]
        let fd = open(gzipPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        _ = header.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if input.count > 0 { _ = write(fd, input.baseAddress, input.count) }
        close(fd)
        guard let reader = try? CaptureFileReader(path: gzipPath) else { return }
        while (try? reader.next()) != nil {}
    }

    nonisolated(unsafe) static let gzipPath = "/tmp/flowtap-fuzz-gzip-\(getpid())"

    /// Small limits, so limits are hit and one input costs little to set up.
    static var smallEngine: FlowEngineConfig {
        var config = FlowEngineConfig()
        config.table.maxFlows = 64
        config.tcp.maxBufferedBytesTotal = 1 << 20
        config.tcp.maxBufferedBytesPerDirection = 64 << 10
        config.defragment.maxDatagrams = 16
        config.defragment.maxTotalBytes = 1 << 20
        return config
    }

    /// Ethernet frames (2-byte length, then the frame) through the whole flow engine into the analyzers.
    static func engine(_ input: UnsafeRawBufferPointer) {
        let engine = FlowEngine(config: smallEngine, sink: AnalyzeSink(emit: { _ in }))
        feed(engine, input)
        engine.sink.http.closeAll(time: 0)
    }

    /// The same frames into flow records (every TCP packet may start a flow).
    static func flows(_ input: UnsafeRawBufferPointer) {
        var config = smallEngine
        config.tcpFlowsFromAnyPacket = true
        feed(FlowEngine(config: config, sink: FlowRecordSink(emit: { _ in })), input)
    }

    /// NetFlow/IPFIX/sFlow datagrams, each a 1-byte exporter (its port: four sessions share templates'
    /// IDs), a 2-byte length and the datagram, into a collector with small bounds.
    static func collect(_ input: UnsafeRawBufferPointer) {
        let collector = FlowCollector(templates: TemplateCache(capacity: 16, lifetimeSeconds: 60), maxHeldBytes: 16 << 10) { _ in }
        var at = 0
        var time: Int64 = 1_700_000_000_000_000_000
        while at + 3 <= input.count {
            let port = UInt16(input[at] & 3)
            let n = min(Int(input[at + 1]) << 8 | Int(input[at + 2]), input.count - at - 3)
            at += 3
            time += 1_000_000_000
            collector.collect(UnsafeRawBufferPointer(rebasing: input[at ..< at + n]), exporter: IPAddress(ipv4: 0xC000_0201), port: port,
                              time: Timestamp(nanoseconds: time))
            at += n
        }
        collector.finish()
    }

    /// Ethernet frames, each a 2-byte length and the frame, then the end of input.
    static func feed<Sink: FlowEventSink>(_ engine: FlowEngine<Sink>, _ input: UnsafeRawBufferPointer) {
        var at = 0
        var time: Int64 = 1_700_000_000_000_000_000
        while at + 2 <= input.count {
            let n = min(Int(input[at]) << 8 | Int(input[at + 1]), input.count - at - 2)
            at += 2
            let frame = UnsafeRawBufferPointer(rebasing: input[at ..< at + n])
            at += n
            time += Int64(n) * 7_000_003
            engine.process(PacketRecord(timestamp: Timestamp(nanoseconds: time), originalLength: n, linkType: .ethernet, interfaceID: 0, bytes: frame))
        }
        engine.finish()
    }

    static func http(_ input: UnsafeRawBufferPointer) {
        let analyzer = HTTPAnalyzer(options: .init(bodies: true), lines: { _ in })
        analyzer.open(flow: 1, client: HTTPEndpoint(ip: "10.0.0.1", port: 40000), server: HTTPEndpoint(ip: "10.0.0.2", port: 80), vlan: nil, time: 0)
        var time = 0.0
        chunks(input) { fromClient, chunk in
            time += 1
            if chunk.count == 1 && chunk[0] == 0 {
                analyzer.gap(flow: 1, fromClient: fromClient, length: 10)
            } else {
                analyzer.data(flow: 1, fromClient: fromClient, bytes: chunk, time: time)
            }
        }
        analyzer.close(flow: 1, time: time + 1)
    }

    static func dns(_ input: UnsafeRawBufferPointer) {
        let analyzer = DNSAnalyzer(lines: { _ in })
        analyzer.datagram(source: ("10.0.0.1", 5353), destination: ("10.0.0.2", 53), vlan: nil, bytes: input, time: 1)
        analyzer.open(flow: 1, client: ("10.0.0.1", 40000), server: ("10.0.0.2", 53), vlan: nil, time: 0)
        chunks(input) { fromClient, chunk in analyzer.data(flow: 1, fromClient: fromClient, bytes: chunk, time: 2) }
        analyzer.close(flow: 1)
    }

    static func tls(_ input: UnsafeRawBufferPointer) {
        let analyzer = TLSAnalyzer(lines: { _ in })
        analyzer.open(flow: 1, client: ("10.0.0.1", 40000), server: ("10.0.0.2", 443), vlan: nil, time: 0)
        chunks(input) { fromClient, chunk in analyzer.data(flow: 1, fromClient: fromClient, bytes: chunk, time: 1) }
        analyzer.close(flow: 1)
    }

    static func quic(_ input: UnsafeRawBufferPointer) {
        let analyzer = QUICAnalyzer(lines: { _ in })
        analyzer.open(flow: 1, client: ("10.0.0.1", 40000), server: ("10.0.0.2", 443), vlan: nil, time: 0)
        analyzer.datagram(flow: 1, fromClient: true, bytes: input, time: 1)
        chunks(input) { fromClient, chunk in analyzer.datagram(flow: 1, fromClient: fromClient, bytes: chunk, time: 2) }
        analyzer.close(flow: 1)
    }

    /// An SF-TAP event stream (format detected), whole and in the input's own chunks.
    static func eventReader(_ input: UnsafeRawBufferPointer) {
        var whole = SFTapEventReader(maxBody: 1 << 16)
        whole.feed(input, event: { _, _ in }, error: { _ in })
        whole.finish { _ in }
        var split = SFTapEventReader(maxBody: 1 << 16)
        chunks(input) { _, chunk in split.feed(chunk, event: { _, _ in }, error: { _ in }) }
        split.finish { _ in }
    }

    /// What an analyzer writes back into home/loopback7, text or binary (the first byte picks), in chunks
    /// over two connections.
    static func loopback7(_ input: UnsafeRawBufferPointer) {
        guard let first = input.first, let settings = loopbackSettings else { return }
        guard let abstractor = try? Abstractor<DiscardingOutputs>(settings: settings, outputs: DiscardingOutputs(), compiled: compiledRules) else { return }
        let injector = Loopback7Injector(abstractor: abstractor, binary: first & 1 == 1, hopLimit: 4, maxFlows: 32,
                                         now: { Timestamp(nanoseconds: 1_700_000_000_000_000_000) })
        var closed: Set<Int> = []
        chunks(UnsafeRawBufferPointer(rebasing: input[1...])) { second, chunk in
            let connection = second ? 2 : 1
            guard !closed.contains(connection) else { return }
            if case .close = injector.receive(connection: connection, chunk) {
                injector.closed(connection: connection)
                closed.insert(connection)
            }
        }
        for connection in [1, 2] where !closed.contains(connection) { injector.closed(connection: connection) }
    }

    /// A config file's text through the YAML reader and the typed settings, strict and lenient.
    static func config(_ input: UnsafeRawBufferPointer) {
        guard let parsed = try? SFTapConfig.parse(String(decoding: input, as: UTF8.self), file: "fuzz.yaml") else { return }
        _ = try? SFTapSettings(parsed, currentDirectory: "/", lenient: false)
        _ = try? SFTapSettings(parsed, currentDirectory: "/", lenient: true)
    }

    /// A forwarder rule file (either format) read, indexed and looked up; the same bytes as a datagram
    /// classified and given a kept-source header.
    static func forward(_ input: UnsafeRawBufferPointer) {
        _ = PayloadKind.of(input)
        var header = SpoofedHeader()
        _ = header.build(source: IPAddress(ipv4: 0x0A01_0001), sourcePort: 2055, destination: IPAddress(ipv4: 0x0A02_0002), destinationPort: 2055, payload: input)
        guard let rules = try? ForwardRuleSet.parse(String(decoding: input, as: UTF8.self), file: "fuzz", keepSourceByDefault: input.count % 2 == 0) else { return }
        let index = RuleIndex(rules.rules)
        for rule in rules.rules.prefix(64) {
            for prefix in rule.sources.prefix(4) {
                let expected = rules.firstMatch(source: prefix.network, port: rule.ports.lowerBound, kind: .netflow9)
                if index.firstMatch(source: prefix.network, port: rule.ports.lowerBound, kind: .netflow9) != expected { fatalError("rule index disagrees with the scan") }
            }
        }
    }

    /// The input as frames (split as `engine` splits it) through the incubator into three cells, with a
    /// small fragment table so its bounds are reached; the same bytes as a cell spec and as a config.
    static func incubate(_ input: UnsafeRawBufferPointer) {
        _ = try? CellSpec(parsing: String(decoding: input, as: UTF8.self))
        _ = try? IncubatorConfig.parse(String(decoding: input, as: UTF8.self), file: "fuzz.yaml")
        guard let outputs = try? CellOutputs((0 ..< 3).compactMap { _ in try? CellSpec(parsing: "file:/dev/null") }) else { return }
        let incubator = Incubator(outputs: outputs, fragments: FragmentCells(capacity: 16, maxHeldBytes: 4096, maxHeldPerDatagram: 4, holdSeconds: 0.001))
        var time: Int64 = 1_700_000_000_000_000_000
        chunks(input) { _, frame in
            time += 100_000
            incubator.process(PacketRecord(timestamp: Timestamp(nanoseconds: time), originalLength: frame.count, linkType: .ethernet, interfaceID: 0, bytes: frame))
        }
        incubator.finish()
    }

    /// The input's lines as records (`flowtap report` reads JSON records), then the page; the same
    /// bytes as times for the timeline.
    static func report(_ input: UnsafeRawBufferPointer) {
        let data = ReportData()
        var start = 0
        for i in 0 ... input.count where i == input.count || input[i] == UInt8(ascii: "\n") {
            data.add(record: UnsafeRawBufferPointer(rebasing: input[start ..< i]))
            start = i + 1
        }
        var i = 0
        while i + 8 <= input.count {
            data.timeline.add(nanoseconds: Int64(bitPattern: input.loadUnaligned(fromByteOffset: i, as: UInt64.self)), bytes: Int(input[i]))
            i += 8
        }
        _ = data.html(version: "fuzz")
    }

    /// The input as an HTTP request to the --http endpoint (SwiftNIO's parser, then FlowTap's
    /// routing and pages), and as an --http address.
    static func telemetry(_ input: UnsafeRawBufferPointer) {
        _ = try? TelemetryServer.parse(address: String(decoding: input, as: UTF8.self))
        _ = TelemetryServer.respond(to: input, hub: telemetryHub)
    }

    nonisolated(unsafe) static let telemetryHub: TelemetryHub = {
        let hub = TelemetryHub(command: "fuzz")
        var s = TelemetrySnapshot()
        s.counter("flowtap_packets_total", "Packets the command took in: frames captured or injected, datagrams received.", 10, ["input": "fuzz"])
        s.talkers = [TrafficShare(name: "10.0.0.1", packets: 1, bytes: 2, flows: 1)]
        hub.publish(s)
        return hub
    }()

    /// A small config whose rules cover text and binary, body on and off, balance, TCP, UDP and ICMP.
    nonisolated(unsafe) static let loopbackSettings: SFTapSettings? = {
        let yaml = """
        global:
          home: /nonexistent
        http:
          proto: TCP
          if: http
          up: '^[A-Z]+ [^ ]+ HTTP/1\\.[01]'
          down: '^HTTP/1\\.[01] [0-9]{3}'
          balance: 3
        dns:
          proto: UDP
          if: dns
          port: 53
          format: binary
        tcp_default:
          if: default
          body: no
        """
        return try? SFTapSettings(SFTapConfig.parse(yaml, file: "fuzz.yaml"), currentDirectory: "/")
    }()

    nonisolated(unsafe) static let compiledRules: CompiledRules? = {
        guard let settings = loopbackSettings else { return nil }
        return try? Abstractor<DiscardingOutputs>(settings: settings, outputs: DiscardingOutputs()).compiledRules
    }()
}

/// Interface outputs that count and drop events.
final class DiscardingOutputs: InterfaceOutputs {
    var events = 0
    func output(_ relativePath: String) throws -> Int { 0 }
    func publish(_ output: Int, header: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) throws { events += 1 }
}
