import ArgumentParser
import PacketCore

@main
struct FlowTap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowtap",
        abstract: "A programmable network traffic analysis platform: packets in, flows and protocol records out.",
        discussion: """
        Examples:
          flowtap analyze -r capture.pcap
          flowtap analyze -r capture.pcap.gz -o records.jsonl 'tcp port 80 or udp port 53'
          flowtap flows -r capture.pcap -o flows.jsonl
          flowtap flows -r capture.pcap --export ipfix://127.0.0.1:4739
          flowtap collect --listen 0.0.0.0:2055 --listen 0.0.0.0:6343 -o collected.jsonl
          flowtap forward --rules examples/forward.yaml --listen 0.0.0.0:2055 --listen [::]:514 --keep-source
          flowtap incubate -r capture.pcap --cell file:c0.pcap --cell file:c1.pcap --cell vxlan:10.0.0.12
          flowtap abstract -c examples/flowtap.yaml -r capture.pcap -o out/
          flowtap abstract -c examples/flowtap.yaml        # serve /tmp/sf-tap sockets; inject with home/pcap
          flowtap analyzer http /tmp/sf-tap/tcp/http      # beside flowtap abstract, on its socket
          flowtap stats -r capture.pcap
          flowtap report -r capture.pcap -o report.html
          sudo flowtap flows -i eth0 -o flows.jsonl --http 127.0.0.1:9100   # metrics, status, dashboard
          flowtap filter -r capture.pcapng -w web.pcap 'tcp port 80 or tcp port 443'
          flowtap filter -i eth0 -w dns.pcap -c 100 'udp port 53'
          flowtap streams -r capture.pcap -o streams/
          flowtap generate -w sample.pcap --sessions 40

        Common options: -r reads captures (pcap, pcapng, gzip), -i captures live, -w writes packets, \
        -o writes records or streams, -c counts packets (except abstract -c, SF-TAP's config), -C/--config \
        names a config, and a tcpdump expression (-f, or the words after the options) filters packets. \
        Benchmarks are a separate program, flowtap-bench.
        """,
        version: FlowTapVersion.current,
        subcommands: [AnalyzeCommand.self, FlowsCommand.self, CollectCommand.self, ForwardCommand.self, IncubateCommand.self, AbstractCommand.self, AnalyzerCommand.self, StatsCommand.self, ReportCommand.self, FilterCommand.self, StreamsCommand.self, GenerateCommand.self]
    )
}
