import ArgumentParser
import CaptureTools
import PacketCore
#if canImport(Glibc)
import Glibc
#endif

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Summarise capture files: packets, bytes, duration, link types, protocols, top talkers, anomalies.",
        discussion: """
        Reads classic pcap (µs or ns, either byte order) and pcapng files, gzip-compressed or not, or standard \
        input with '-r -'. Several files are summed in the order given. A tcpdump expression (-f, or the words \
        after the options) keeps only the packets it matches.

        Examples:
          flowtap stats -r capture.pcap
          flowtap stats -r a.pcap -r b.pcapng --top 20
          flowtap stats -r capture.pcap --json | jq .packets
          flowtap stats -r capture.pcap.gz 'tcp port 443'
          tcpdump -w - -i eth0 | flowtap stats -r -
        """
    )

    @OptionGroup(title: "Input")
    var input: PacketInputOptions

    @Option(help: "How many top talkers to list.")
    var top: Int = 10

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Flag(help: "Verify IPv4, TCP, UDP and ICMP checksums and count failures as anomalies.")
    var verifyChecksums = false

    @Flag(help: "Never show the progress line, even on a terminal.")
    var quiet = false

    func validate() throws {
        if top < 0 { throw ValidationError("--top must be 0 or more") }
    }

    func run() throws {
        var runner = StatsRunner()
        runner.verifyChecksums = verifyChecksums
        runner.progress = quiet ? nil : ProgressReporter.forTerminal()
        runner.filter = try input.filter.compiled()
        runner.limit = input.count
        do {
            let result = try runner.run(files: input.files)
            print(json ? StatsReport.json(result, top: top) : StatsReport.text(result, top: top), terminator: "")
        } catch {
            writeStandardError("flowtap stats: \(error)\n")
            throw ExitCode(1)
        }
    }
}
