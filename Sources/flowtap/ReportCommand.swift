import ArgumentParser
import Engine
import Foundation
import PacketCore
import Reports

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Tell a capture's story in one self-contained HTML page: traffic over time, protocols, talkers, flows, TCP, DNS, HTTP and TLS.",
        discussion: """
        Reads the captures once through the flow engine, the analyzers (the records analyze writes) and \
        the flow records (those flows writes), and draws what they say as inline SVG: the page has no \
        script and loads nothing, so it opens offline and can be sent as it is.

        The timeline counts the packets the flow engine placed in flows; talkers and the largest flows \
        come from the flow records (bytes both ways); the TCP round-trip time is the handshake's \
        (SYN to the ACK that completes it); application names are those analyze decides by first bytes \
        and ports.

        Examples:
          flowtap report -r capture.pcap -o report.html
          flowtap report -r monday.pcap.gz -r tuesday.pcapng -o week.html
          flowtap report -r capture.pcap -o web.html 'tcp port 80 or tcp port 443'
        """
    )

    @OptionGroup(title: "Input")
    var input: PacketInputOptions

    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("The HTML file to write ('-' for standard output).", valueName: "file"))
    var output: String

    @Flag(help: "Never show the progress line, even on a terminal.")
    var quiet = false

    func validate() throws {
        if input.read.files.isEmpty { throw ValidationError("give the captures to report on with -r FILE (repeat for several)") }
        if input.read.files.contains(output) { throw ValidationError("-o \(output) is also an input; choose another output name") }
    }

    func run() throws {
        var session = ReportSession()
        session.input = try input.pipelineInput(quiet: quiet)
        StopSignal.install()
        let data: ReportData
        do {
            data = try session.run(files: input.read.files)
        } catch {
            throw fail("report", error)
        }
        let page = data.html(version: FlowTapVersion.current)
        if output == "-" {
            FileHandle.standardOutput.write(Data(page.utf8))
        } else {
            do {
                try Data(page.utf8).write(to: URL(fileURLWithPath: output))
            } catch {
                throw ValidationError("cannot write \(output): \(error.localizedDescription)")
            }
        }
        writeStandardError("report: \(data.capture.packets) packets, \(data.flowCount) flows, \(data.recordCount) records → \(output) (\(page.utf8.count / 1024) KiB)\n")
    }
}
