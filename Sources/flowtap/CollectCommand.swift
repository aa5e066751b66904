import ArgumentParser
import Engine
import Outputs
import PacketCore

struct CollectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collect",
        abstract: "Decode NetFlow v5/v9, IPFIX and sFlow v5 from exporters into JSON records.",
        discussion: """
        Listens on UDP sockets (--listen, repeatable), or reads the UDP datagrams out of capture files (-r). \
        Each datagram is recognised by its content, so any port works. NetFlow v9 and IPFIX templates are \
        kept per exporter session (address, port, observation domain); a data set that arrives before its \
        template is held (up to 4 MiB) and decoded when the template comes, otherwise counted. sFlow flow \
        samples are decoded with FlowTap's packet decoder. The summary on standard error counts every \
        datagram, record, template and what could not be decoded. See docs/collect.md.

        Examples:
          flowtap collect --listen 0.0.0.0:2055 --listen [::]:4739 -o flows.jsonl
          flowtap collect -r netflow.pcap 'udp port 2055'
          flowtap collect --listen 127.0.0.1:6343 | jq -c 'select(.type=="sflow" and .sample_type=="flow")'
          softflowd -r capture.pcap -v 10 -n 127.0.0.1:4739 & flowtap collect --listen 127.0.0.1:4739
        """
    )

    @OptionGroup(title: "Input")
    var read: ReadOptions

    @Option(name: .customLong("listen"), help: ArgumentHelp("Receive UDP datagrams on ADDRESS:PORT ([IPv6]:PORT for IPv6). Repeat for several.", valueName: "addr:port"))
    var listen: [String] = []

    @Option(name: [.customShort("c"), .customLong("count")], help: ArgumentHelp("With -r: stop after this many packets (that pass the filter).", valueName: "n"))
    var count: UInt64?

    @OptionGroup var filter: FilterOptions

    @OptionGroup(title: "Outputs")
    var output: OutputOptions

    @Option(name: .customLong("template-timeout"), help: ArgumentHelp("Forget a template not refreshed for this many seconds (of packet time with -r).", valueName: "seconds"))
    var templateTimeout = 1800

    @Option(name: .customLong("max-templates"), help: ArgumentHelp("Templates kept in all; past it the least recently refreshed is dropped.", valueName: "n"))
    var maxTemplates = 65536

    @Flag(help: "Never show the progress line, even on a terminal.")
    var quiet = false

    @OptionGroup(title: "Monitoring (with --listen)")
    var monitoring: HTTPOptions

    func validate() throws {
        if read.files.isEmpty == listen.isEmpty { throw ValidationError("give either capture files with -r FILE or sockets with --listen ADDR:PORT") }
        if !listen.isEmpty && (filter.text != nil || count != nil) { throw ValidationError("a filter and -c apply to -r only") }
        if templateTimeout < 1 { throw ValidationError("--template-timeout must be at least 1 second") }
        if maxTemplates < 1 { throw ValidationError("--max-templates must be at least 1") }
        if monitoring.http != nil && listen.isEmpty { throw ValidationError("--http serves --listen mode; -r ends with its files") }
    }

    func run() throws {
        var session = CollectSession()
        session.input.progress = quiet || !listen.isEmpty ? nil : ProgressReporter.forTerminal()
        session.input.filter = try filter.compiled()
        session.input.packetLimit = count
        session.templateLifetimeSeconds = templateTimeout
        session.maxTemplates = maxTemplates
        let endpoint = try monitoring.start(command: "collect")
        defer { endpoint?.stop() }
        session.telemetry = endpoint?.hub
        if listen.isEmpty {
            try writeRecords("collect", to: output, inputs: read.files) { try session.run(files: read.files, output: $0) }
        } else {
            try writeRecords("collect", to: output, inputs: []) { try session.run(listen: listen, output: $0) }
        }
    }
}
