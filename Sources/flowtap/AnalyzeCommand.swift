import ArgumentParser
import Capture
import Engine
import PacketCore
import SFTapConfig
#if canImport(Glibc)
import Glibc
#endif

struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Reassemble flows and run the built-in HTTP, DNS, TLS and QUIC analyzers; write one JSON record per line.",
        discussion: """
        Without -c, flows are routed by their first bytes (the built-in default): HTTP request lines (any RFC 9110 \
        method token, e.g. CCM_POST or m-search, followed by a target and "HTTP/") or response lines, TLS handshake \
        records, DNS on port 53 (TCP, length-prefixed), DNS/mDNS/LLMNR datagrams (UDP 53, 5353, 5355), and QUIC: \
        UDP port 443 or a datagram that starts with a QUIC v1/v2 long header. A request whose first bytes arrive in \
        pieces is held until it decides (at most 4 KiB).

        With -c CONFIG, each flow is classified by the SF-TAP config's rules exactly as `flowtap abstract -c CONFIG` \
        classifies it (TCP held until both directions have data, 4 KiB examined per direction; UDP per datagram), \
        and the matched rule's interface name picks the analyzer: http, http_proxy and other http*, websocket, \
        torrent_tracker → HTTP; tls*, ssl*, https → TLS; dns* → DNS (TCP and UDP); quic* → QUIC. Flows of other \
        interfaces are not analyzed; the summary counts them per interface. So a rule can send HTTP on any port, \
        or with any first bytes, to the HTTP analyzer. The config's global limits (timeout, midstream, \
        max_flows, reassembly memcap, overlap policy) apply as in abstract.

        QUIC Initial packets are decrypted (RFC 9001, RFC 9369) to read the ClientHello and ServerHello inside. \
        Records keep SF-TAP's analyzer shapes: {"type":"http","client":{…},"server":{…}}, {"type":"dns",…}, \
        {"type":"tls",…}, and {"type":"quic","version","dcid","scid","sni","alpn":[…],"ja4","client":{…},"server":{…}}. \
        See docs/analyzers.md.

        Examples:
          flowtap analyze -r capture.pcap
          flowtap analyze -r capture.pcap -w records.jsonl --bodies
          flowtap analyze -r capture.pcap -c examples/flowtap.yaml
          flowtap analyze -r capture.pcap | jq 'select(.type=="tls") | .client.sni'
          flowtap analyze -r capture.pcap | jq 'select(.type=="quic") | [.sni, .ja4]'

        A config that sends TCP port 8080 to the HTTP analyzer, whatever its first bytes:
          web:
            proto: TCP
            if:    http
            port:  8080
            nice:  50
        """
    )

    @Option(name: [.customShort("r"), .customLong("read")], help: ArgumentHelp("Capture file to read; repeat for several.", valueName: "file"))
    var files: [String] = []

    @Option(name: [.customShort("c"), .customLong("config")],
            help: ArgumentHelp("SF-TAP YAML configuration: route flows by its rules' interfaces, as abstract classifies them.", valueName: "file"))
    var config: String?

    @Option(name: [.customShort("w"), .customLong("write")], help: ArgumentHelp("Write records here instead of standard output.", valueName: "file"))
    var output: String?

    @Flag(help: "Include HTTP bodies (base64).")
    var bodies = false

    @Flag(help: "Never show the progress line, even on a terminal.")
    var quiet = false

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one capture file with -r FILE") }
    }

    func run() throws {
        let settings = try config.map { try SFTapSettings.load(path: $0, command: "analyze") }
        let fd: Int32 = output.map { open($0, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) } ?? 1
        guard fd >= 0 else {
            writeStandardError("flowtap analyze: cannot create \(output!): \(errorText(errno))\n")
            throw ExitCode(1)
        }
        defer { if fd > 1 { close(fd) } }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 20)
        var writeError: Int32?
        func flush() {
            if let failure = buffer.withUnsafeBytes({ writeAll(fd, $0) }), writeError == nil { writeError = failure }
            buffer.removeAll(keepingCapacity: true)
        }
        let emit: (String) -> Void = { line in
            buffer.append(contentsOf: line.utf8)
            if buffer.count >= 1 << 20 { flush() }
        }
        let sink: AnalyzeSink
        do {
            sink = try settings.map { try AnalyzeSink(bodies: bodies, settings: $0, emit: emit) } ?? AnalyzeSink(bodies: bodies, emit: emit)
        } catch {
            writeStandardError("flowtap analyze: \(config ?? ""): \(error)\n")
            throw ExitCode(1)
        }
        var runner = FlowRunner(config: settings.map { FlowEngineConfig(abstracting: $0) } ?? FlowEngineConfig())
        runner.progress = quiet ? nil : ProgressReporter.forTerminal()
        do {
            let engine = try runner.run(files: files, sink: sink)
            sink.http.closeAll(time: 0)
            flush()
            let c = sink.counters
            var report = "packets \(engine.counters.packets), flows \(engine.counters.flowsCreated); HTTP flows \(c.httpFlows) (\(sink.http.counters.transactions) transactions, \(sink.http.counters.parseErrors) errors), TLS flows \(c.tlsFlows), DNS: \(c.dnsDatagrams) datagrams, \(c.dnsTCPFlows) TCP flows (\(sink.dns.counters.messages) messages, \(sink.dns.counters.errors) errors), QUIC flows \(c.quicFlows) (\(sink.quic.counters.records) records, \(sink.quic.counters.decrypted) Initial packets decrypted, \(sink.quic.counters.errors) errors)"
            if let config {
                report += "\n  by \(config): TCP flows unclassified \(c.unclassifiedTCPFlows), given up \(c.givenUpTCPFlows); UDP datagrams without a rule \(c.unclassifiedDatagrams)"
                for (interface, flows, datagrams) in sink.unanalyzed {
                    report += "\n  \(interface) (no analyzer): \(flows) TCP flows, \(datagrams) UDP datagrams"
                }
            } else {
                report += "; TCP flows not routed \(c.unroutedFlows), undecided \(c.undecidedFlows)"
            }
            writeStandardError(report + "\n")
        } catch {
            writeStandardError("flowtap analyze: \(error)\n")
            throw ExitCode(1)
        }
        if let writeError {
            writeStandardError("flowtap analyze: cannot write \(output ?? "standard output"): \(errorText(writeError))\n")
            throw ExitCode(1)
        }
    }
}
