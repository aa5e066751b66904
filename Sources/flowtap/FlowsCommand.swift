import ArgumentParser
import Engine
import FlowCore
import FlowExport
import Outputs
import PacketCore

struct FlowsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flows",
        abstract: "Write one JSON record per flow (Suricata EVE flow shape, with Zeek's conn_state and history).",
        discussion: """
        Each flow is written when it leaves the flow table: at its idle timeout, after a closed TCP connection \
        lingered, when the table evicts it, or at the end of the input. The record has EVE's flow fields \
        (timestamp, flow_id, community_id, src/dest, proto, app_proto, flow.pkts_*/bytes_*/start/end/age/state/reason, \
        tcp flags) and Zeek's connection summary (flow.conn_state, flow.history, flow.missed_bytes, flow.duration, \
        payload and IP byte counts). src is the originator: the SYN sender, or the first sender mid-stream. \
        Bytes count whole frames, as Suricata does. community_id is Community ID v1. See docs/flows.md.

        Examples:
          flowtap flows -r capture.pcap
          flowtap flows -i eth0 --threads 2 -o flows.jsonl 'not port 22'
          flowtap flows -i eth0 -o flows.jsonl --http 127.0.0.1:9100   # metrics and dashboard
          flowtap flows -r capture.pcap -o flows.jsonl 'tcp'
          flowtap flows -r capture.pcap | jq -c 'select(.flow.conn_state=="REJ") | [.src_ip, .dest_ip, .dest_port]'
          flowtap flows -r capture.pcap | jq -s 'group_by(.app_proto) | map({app: .[0].app_proto, flows: length})'
          flowtap flows -r capture.pcap --export ipfix://127.0.0.1:4739
          flowtap flows -r long-capture.pcap --interval 60 --export netflow9://127.0.0.1:2055 -o flows.jsonl
          flowtap flows -r capture.pcap --export 'netflow9://collector.example:2055?domain=7' -o flows.jsonl

        --export sends every flow to a NetFlow/IPFIX collector over UDP, one record per direction \
        (settings after '?': domain, mtu, template-refresh, template-packets; see docs/flows.md). \
        With --export, JSON records are written only when -o is given ('-o -' for standard output).
        """
    )

    @OptionGroup(title: "Input")
    var input: LivePacketInputOptions

    @Option(help: ArgumentHelp("Flow shards (threads); each flow's record is the same whatever the count. Default 1.", valueName: "n"))
    var threads = 1

    @OptionGroup(title: "Outputs")
    var output: OutputOptions

    @Option(name: .customLong("export"), help: ArgumentHelp("Export flows to a collector: ipfix://HOST:PORT, netflow9://HOST:PORT or netflow5://HOST:PORT. Repeat for several.", valueName: "url"))
    var exports: [String] = []

    @Option(name: .customLong("interval"), help: ArgumentHelp("Also write a record for a flow every this many seconds it stays active (reason \"interval\", totals so far; exports carry what was sent since the last export, as NetFlow's active timeout).", valueName: "seconds"))
    var interval: Double?

    @Option(name: .customLong("community-id-seed"), help: "Community ID seed (every tool comparing IDs must use the same).")
    var communityIDSeed: UInt16 = 0

    @OptionGroup(title: "Flow engine")
    var engine: EngineOptions

    @OptionGroup(title: "Monitoring")
    var monitoring: HTTPOptions

    @Flag(help: "Never show the progress line, even on a terminal.")
    var quiet = false

    func run() throws {
        var session = FlowsSession(engineConfig: engine.applied(to: FlowEngineConfig()))
        session.input = try input.pipelineInput(quiet: quiet)
        session.communityIDSeed = communityIDSeed
        if let interval {
            guard interval > 0 else { throw ValidationError("--interval must be more than 0 seconds") }
            session.intervalSeconds = interval
        }
        session.exports = try parseExports(exports)
        session.writesRecords = exports.isEmpty || !output.outputs.isEmpty
        guard (1 ... 256).contains(threads) else { throw ValidationError("--threads must be between 1 and 256") }
        session.shards = threads
        let endpoint = try monitoring.start(command: "flows")
        defer { endpoint?.stop() }
        session.telemetry = endpoint?.hub
        if let interface = input.interface {
            try writeRecords("flows", to: output, inputs: []) { try session.run(interface: interface, filter: input.filter.text, output: $0) }
        } else {
            try writeRecords("flows", to: output, inputs: input.files) { try session.run(files: input.files, output: $0) }
        }
    }
}
