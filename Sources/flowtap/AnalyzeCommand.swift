import ArgumentParser
import Engine
import FlowExport
import FlowCore
import Outputs
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
        Without --config, flows are routed by their first bytes (the built-in default): HTTP request lines (any RFC 9110 \
        method token, e.g. CCM_POST or m-search, followed by a target and "HTTP/") or response lines, TLS handshake \
        records, DNS on port 53 (TCP, length-prefixed), DNS/mDNS/LLMNR datagrams (UDP 53, 5353, 5355), and QUIC: \
        UDP port 443 or a datagram that starts with a QUIC v1/v2 long header. A request whose first bytes arrive in \
        pieces is held until it decides (at most 4 KiB).

        With -C/--config CONFIG, each flow is classified by the SF-TAP config's rules exactly as `flowtap abstract -c CONFIG` \
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
          flowtap analyze -r capture.pcap.gz -o records.jsonl --bodies
          flowtap analyze -r capture.pcap -C examples/flowtap.yaml
          flowtap analyze -r capture.pcap 'tcp port 80 or udp port 53'
          flowtap analyze -r capture.pcap -c 100000 --require-syn
          flowtap analyze -i eth0 --threads 2 -o records.jsonl 'tcp port 80 or udp port 53'
          flowtap analyze -i eth0 -o records.jsonl --http 127.0.0.1:9100   # metrics and dashboard
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

    @OptionGroup(title: "Input")
    var input: LivePacketInputOptions

    @Option(help: ArgumentHelp("Flow shards (threads); each flow's records are the same whatever the count. Default 1.", valueName: "n"))
    var threads = 1

    @Option(name: [.customShort("C"), .customLong("config")],
            help: ArgumentHelp("SF-TAP YAML configuration: route flows by its rules' interfaces, as abstract classifies them.", valueName: "file"))
    var config: String?

    @OptionGroup(title: "Outputs")
    var output: OutputOptions

    @Option(name: [.customShort("w")], help: .hidden)
    var packetsOutput: String?

    @Option(name: .customLong("export"), help: ArgumentHelp("Also export every flow to a NetFlow/IPFIX collector: ipfix://HOST:PORT, netflow9://HOST:PORT or netflow5://HOST:PORT (see flowtap flows --help). Repeat for several.", valueName: "url"))
    var exports: [String] = []

    @Flag(help: "Include HTTP bodies (base64).")
    var bodies = false

    @Option(name: .customLong("community-id-seed"), help: "Community ID seed (every tool comparing IDs must use the same).")
    var communityIDSeed: UInt16 = 0

    @OptionGroup(title: "Flow engine (each overrides the default, or the config's global value)")
    var engine: EngineOptions

    @Flag(help: "Ignore unknown config keys with a warning, as SF-TAP does (by default they are errors naming the nearest known key).")
    var lenient = false

    @OptionGroup(title: "Monitoring")
    var monitoring: HTTPOptions

    @Flag(help: "Never show the progress line, even on a terminal.")
    var quiet = false

    func validate() throws {
        if let packetsOutput {
            throw ValidationError("-w writes packets in every flowtap command; records go to -o \(packetsOutput) (renamed, see CHANGELOG.md)")
        }
    }

    func run() throws {
        let settings = try config.map { try SFTapSettings.load(path: $0, command: "analyze", lenient: lenient) }
        var session = AnalyzeSession(settings: settings, engineConfig: engine.applied(to: settings.map { FlowEngineConfig(abstracting: $0) } ?? FlowEngineConfig()))
        session.configName = config
        session.bodies = bodies
        session.communityIDSeed = communityIDSeed
        session.input = try input.pipelineInput(quiet: quiet)
        session.exports = try parseExports(exports)
        guard (1 ... 256).contains(threads) else { throw ValidationError("--threads must be between 1 and 256") }
        session.shards = threads
        let endpoint = try monitoring.start(command: "analyze")
        defer { endpoint?.stop() }
        session.telemetry = endpoint?.hub
        if let interface = input.interface {
            try writeRecords("analyze", to: output, inputs: []) { try session.run(interface: interface, filter: input.filter.text, output: $0) }
        } else {
            try writeRecords("analyze", to: output, inputs: input.files) { try session.run(files: input.files, output: $0) }
        }
    }
}
