import ArgumentParser
import Engine
import FlowCore
import Outputs
import PacketCore

struct StreamsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streams",
        abstract: "Reassemble flows (defragmentation, TCP reassembly) and list or write their byte streams.",
        discussion: """
        Prints one JSON line per flow when it ends: endpoints in SF-TAP order (ip1 is the lower address, then \
        port), bytes from each endpoint, gap bytes, and why the flow ended. With -o DIR, each direction's bytes \
        go to DIR/<id>-<l4>-<sender>.<port>-<receiver>.<port> (the same bytes an analyzer would read).

        Examples:
          flowtap streams -r capture.pcap
          flowtap streams -r capture.pcap -o streams/ --require-syn
          flowtap streams -r frags.pcap --overlap-policy linux
          flowtap streams -r capture.pcap.gz 'host 10.0.0.1 and tcp'
        """
    )

    @OptionGroup(title: "Input")
    var input: PacketInputOptions

    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("Write each direction's bytes to a file in this directory.", valueName: "dir"))
    var output: String?

    @Option(name: .customLong("output-dir"), help: .hidden)
    var outputDirectory: String?

    @OptionGroup(title: "Flow engine")
    var engine: EngineOptions

    @Option(name: .customLong("community-id-seed"), help: "Community ID seed (every tool comparing IDs must use the same).")
    var communityIDSeed: UInt16 = 0

    @Flag(help: "Never show the progress line, even on a terminal.")
    var quiet = false

    func validate() throws {
        if output != nil && outputDirectory != nil { throw ValidationError("give the directory once, with -o DIR") }
    }

    func run() throws {
        var session = StreamsSession(engineConfig: engine.applied(to: FlowEngineConfig()), directory: output ?? outputDirectory)
        session.input = try input.pipelineInput(quiet: quiet)
        session.communityIDSeed = communityIDSeed
        StopSignal.install()
        do {
            let writer = try RecordWriter(path: nil)
            writeStandardError(try session.run(files: input.files, output: writer))
            try writer.finish()
        } catch {
            throw fail("streams", error)
        }
    }
}
