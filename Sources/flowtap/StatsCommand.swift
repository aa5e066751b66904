import ArgumentParser
import Capture
import Engine
import PacketCore
#if canImport(Glibc)
import Glibc
#endif

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Summarise capture files: packets, bytes, duration, link types, protocols, top talkers, anomalies.",
        discussion: """
        Reads classic pcap (µs or ns, either byte order) and pcapng files, or standard input with '-r -'.
        Several files are summed in the order given.

        Examples:
          flowtap stats -r capture.pcap
          flowtap stats -r a.pcap -r b.pcapng --top 20
          flowtap stats -r capture.pcap --json | jq .packets
          tcpdump -w - -i eth0 | flowtap stats -r -
        """
    )

    @Option(name: [.customShort("r"), .customLong("read")], help: ArgumentHelp("Capture file to read ('-' for standard input); repeat for several.", valueName: "file"))
    var files: [String] = []

    @Argument(help: ArgumentHelp("More capture files.", valueName: "file"))
    var moreFiles: [String] = []

    @Option(help: "How many top talkers to list.")
    var top: Int = 10

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Flag(help: "Verify IPv4, TCP, UDP and ICMP checksums and count failures as anomalies.")
    var verifyChecksums = false

    @Flag(help: "Never show the progress line, even on a terminal.")
    var quiet = false

    func validate() throws {
        if files.isEmpty && moreFiles.isEmpty { throw ValidationError("give at least one capture file with -r FILE") }
        if top < 0 { throw ValidationError("--top must be 0 or more") }
    }

    func run() throws {
        var runner = StatsRunner()
        runner.verifyChecksums = verifyChecksums
        runner.progress = quiet ? nil : ProgressReporter.forTerminal()
        do {
            let result = try runner.run(files: files + moreFiles)
            print(json ? StatsReport.json(result, top: top) : StatsReport.text(result, top: top), terminator: "")
        } catch {
            writeStandardError("flowtap stats: \(error)\n")
            throw ExitCode(1)
        }
    }
}
