import ArgumentParser

@main
struct FlowTap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowtap",
        abstract: "A programmable network traffic analysis platform: packets in, flows and protocol records out.",
        discussion: """
        Examples:
          flowtap abstract -c examples/flowtap.yaml -r capture.pcap --out-dir out/
          flowtap abstract -c examples/flowtap.yaml        # serve /tmp/sf-tap sockets; inject with home/pcap
          flowtap analyze -r capture.pcap
          flowtap analyzer http /tmp/sf-tap/tcp/http      # beside flowtap abstract, on its socket
          flowtap stats -r capture.pcap
          flowtap filter -r capture.pcapng -w web.pcap 'tcp port 80 or tcp port 443'
          flowtap filter -i eth0 -w dns.pcap -c 100 'udp port 53'
          flowtap streams -r capture.pcap -o streams/
          flowtap generate -w sample.pcap --sessions 40
          flowtap bench read -r big.pcap
        """,
        version: "0.1.0",
        subcommands: [AnalyzeCommand.self, AbstractCommand.self, AnalyzerCommand.self, StatsCommand.self, FilterCommand.self, StreamsCommand.self, GenerateCommand.self, BenchCommand.self]
    )
}
