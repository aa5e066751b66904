import ArgumentParser
import Capture
import CaptureTools
import Engine
import Filters
import PacketCore
#if canImport(Glibc)
import Glibc
#endif

struct FilterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "filter",
        abstract: "Keep the packets a tcpdump filter expression matches.",
        discussion: """
        The expression is compiled by libpcap, so its syntax is exactly tcpdump's (see pcap-filter(7)). Files \
        are filtered with libpcap's BPF interpreter; on a live interface the program is attached in the kernel, \
        so rejected packets never reach FlowTap. The output is pcap, or pcapng when its name ends in .pcapng \
        (needed when the inputs mix link types).

        Examples:
          flowtap filter -r capture.pcap -w web.pcap 'tcp port 80'
          flowtap filter -r a.pcapng -r b.pcap -w out.pcapng 'vlan and udp'
          flowtap filter -r capture.pcap.gz -w - 'icmp' | tcpdump -r -
          flowtap filter -i eth0 -w dns.pcap -c 1000 'udp port 53'
        """
    )

    @Option(name: [.customShort("r"), .customLong("read")], help: ArgumentHelp("Capture file to read: pcap or pcapng, gzip-compressed or not, '-' for standard input. Repeat for several.", valueName: "file"))
    var files: [String] = []

    @Option(name: [.customShort("i"), .customLong("interface")], help: ArgumentHelp("Capture live from this interface instead.", valueName: "iface"))
    var interface: String?

    @Option(name: [.customShort("w"), .customLong("write")], help: ArgumentHelp("Output file ('-' for standard output).", valueName: "file"))
    var output: String

    @Option(name: [.customShort("c"), .customLong("count")], help: "Stop after keeping this many packets.")
    var count: UInt64?

    @Option(name: [.customShort("s"), .customLong("snaplen")], help: "Bytes kept per packet in live capture.")
    var snapLength: Int = 262_144

    @Flag(help: "Never show the progress line, even on a terminal.")
    var quiet = false

    @Argument(parsing: .remaining, help: ArgumentHelp("tcpdump filter expression (several words are joined with spaces).", valueName: "expression"))
    var expression: [String] = []

    func validate() throws {
        if files.isEmpty == (interface == nil) { throw ValidationError("give either -r FILE (one or more) or -i IFACE") }
        if expression.isEmpty { throw ValidationError("give a filter expression, e.g. 'tcp port 80'") }
        if let count, count == 0 { throw ValidationError("--count must be at least 1") }
    }

    func run() throws {
        let text = expression.joined(separator: " ")
        if let interface {
            try runLive(interface: interface, expression: text)
            return
        }
        var runner = FilterRunner(expression: text, output: output)
        runner.progress = quiet || output == "-" ? nil : ProgressReporter.forTerminal()
        runner.limit = count
        do {
            let summary = try runner.run(files: files)
            writeStandardError("\(summary.kept) of \(summary.read) packets kept\n")
            for (file, bytes) in summary.truncatedFiles {
                writeStandardError("warning: \(file) ends inside a record (\(bytes) bytes left over)\n")
            }
        } catch {
            writeStandardError("flowtap filter: \(error)\n")
            throw ExitCode(1)
        }
    }

    private func runLive(interface: String, expression: String) throws {
        var runner = FilterRunner(expression: expression, output: output)
        runner.limit = count
        StopSignal.install()
        do {
            writeStandardError(try runner.runLive(interface: interface, snapLength: snapLength, shouldStop: { StopSignal.requested }) + "\n")
        } catch {
            throw fail("filter", error)
        }
    }
}
