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

        SIGINT, SIGTERM or SIGHUP stop a bench cleanly: the command it is running is stopped (its whole \
        process group), its scratch directories (copies of the captures, event files) are removed, and it \
        exits with 128 + the signal.
        """,
        subcommands: [BenchReadCommand.self, BenchFloodCommand.self, BenchHTTPCommand.self, BenchPipelineCommand.self, BenchRecordsCommand.self, BenchCollectCommand.self, BenchForwardCommand.self, BenchIncubateCommand.self, BenchIncubateLiveCommand.self, BenchScrapeCommand.self]
    )

    /// Stop signals end a bench with its scratch directories removed and its children stopped.
    static func main() {
        Interruption.install()
        main(nil)
    }
}
