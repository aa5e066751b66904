import PacketCore
import ArgumentParser

/// `flowtap-bench`: FlowTap's benchmarks, a separate executable so the product carries none of them.
@main
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowtap-bench",
        abstract: "Measure FlowTap against peers (libpcap, ndpiReader, tcpflow) on the same input in the same run.",
        discussion: """
        Examples:
          flowtap generate -w big.pcap --sessions 60000 --rate 2000 --seed 9
          flowtap-bench pipeline -r big.pcap --runs 7
          flowtap-bench read -r big.pcap
          flowtap-bench http
          flowtap-bench flood --flows 10000000 --fragments 0
        """,
        subcommands: [BenchReadCommand.self, BenchFloodCommand.self, BenchHTTPCommand.self, BenchPipelineCommand.self, BenchRecordsCommand.self, BenchCollectCommand.self, BenchForwardCommand.self, BenchIncubateCommand.self, BenchIncubateLiveCommand.self, BenchScrapeCommand.self]
    )
}
