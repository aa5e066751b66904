import ArgumentParser
import Engine
import Incubator
import PacketCore

struct IncubateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incubate",
        abstract: "Split traffic over analysis cells by flow (SF-TAP's cell incubator).",
        discussion: """
        Every frame goes to the cell of its flow: a symmetric hash of both addresses, both ports, the IP \
        protocol and the VLAN IDs, so both directions of a flow meet on one cell; every fragment of a \
        datagram goes with its flow, whatever order the fragments come in. Tunnels are hashed by their \
        inner header, as the flow engine keys them. Frames that are not IP go to cell 0 (--drop-non-ip drops \
        them). --hash sftap reproduces the original incubator's ((sport ^ dport) >> 8) % N; --full-tap gives \
        every frame to every cell. The summary counts frames per cell and everything not delivered. See \
        docs/incubator.md.

        Cells, in order (the first is cell 0), each with an optional ,weight=N:
          file:PATH                  a pcap file (pcapng when PATH ends in .pcapng), timestamps kept
          vxlan:HOST[:PORT][,vni=N]  VXLAN over UDP to a remote cell (port 4789, VNI 1)
          sftap:PATH                 a local `flowtap abstract`'s pcap injection socket
          if:IFNAME[@MAC]            sent on an interface, the destination MAC rewritten when given

        Examples:
          flowtap incubate -r capture.pcap --cell file:c0.pcap --cell file:c1.pcap --cell file:c2.pcap
          flowtap incubate -i eth1 -C examples/incubator.yaml
          flowtap incubate -r capture.pcap --cell vxlan:10.0.0.11 --cell vxlan:10.0.0.12,weight=2
          flowtap incubate -i eth1 --cell if:veth-c0 --cell if:veth-c1@02:00:00:00:00:11 --stats-interval 10
          flowtap incubate --bridge eth1,eth2 --cell vxlan:10.0.0.11 --cell vxlan:10.0.0.12
          tcpdump -i eth0 -w - | flowtap incubate -r - --cell sftap:/tmp/sf-tap/pcap --cell file:rest.pcapng
        """
    )

    @OptionGroup(title: "Input")
    var read: ReadOptions

    @Option(name: [.customShort("i"), .customLong("interface")], help: ArgumentHelp("Tap mode: capture this interface live (until SIGINT/SIGTERM).", valueName: "iface"))
    var interface: String?

    @Option(name: .customLong("bridge"), help: ArgumentHelp("Inline mode: bridge two interfaces (every frame forwarded unchanged both ways) and hand a copy of each to its cell.", valueName: "if1,if2"))
    var bridge: String?

    @Option(name: .customLong("threads"), help: ArgumentHelp("With -i: this many capture rings in a PACKET_FANOUT group, each on its own thread.", valueName: "n"))
    var threads = 1

    @Option(name: .customLong("stats-interval"), help: ArgumentHelp("With -i: print the counters every this many seconds.", valueName: "seconds"))
    var statsInterval: Double?

    @Option(name: .customLong("cell"), help: ArgumentHelp("A cell: file:PATH, vxlan:HOST[:PORT], sftap:PATH or if:IFNAME[@MAC], with ,weight=N. Repeat, cell 0 first.", valueName: "spec"))
    var cells: [String] = []

    @Option(name: .customLong("hash"), help: ArgumentHelp("flow (the default: addresses, ports, protocol, VLANs) or sftap (the original's port hash).", valueName: "kind"))
    var hash = "flow"

    @Flag(name: .customLong("full-tap"), help: "Every frame to every cell (the original's qb-tap).")
    var fullTap = false

    @Flag(name: .customLong("drop-non-ip"), help: "Drop frames that are not IP (ARP, STP, LLDP) instead of sending them to cell 0.")
    var dropNonIP = false

    @Option(name: [.customShort("C"), .customLong("config")], help: ArgumentHelp("A YAML file with the cells (and hash, full_tap, drop_non_ip, fragments); --cell adds cells after its own.", valueName: "file"))
    var config: String?

    @Option(name: [.customShort("c"), .customLong("count")], help: ArgumentHelp("Stop after this many frames (that pass the filter).", valueName: "n"))
    var count: UInt64?

    @OptionGroup var filter: FilterOptions

    @OptionGroup(title: "Monitoring (tap and bridge modes)")
    var monitoring: HTTPOptions

    @Flag(help: "Never show the progress line, even on a terminal.")
    var quiet = false

    func validate() throws {
        let inputs = (read.files.isEmpty ? 0 : 1) + (interface == nil ? 0 : 1) + (bridge == nil ? 0 : 1)
        if inputs != 1 { throw ValidationError("give one input: capture files with -r FILE (-r - reads standard input), a tap with -i IFACE, or --bridge IF1,IF2") }
        if threads < 1 || threads > 64 { throw ValidationError("--threads must be 1–64") }
        if threads > 1 && interface == nil { throw ValidationError("--threads applies to tap mode (-i)") }
        if let bridge, bridge.split(separator: ",").count != 2 { throw ValidationError("--bridge takes two interfaces: --bridge eth1,eth2") }
        if cells.isEmpty && config == nil { throw ValidationError("give the cells with --cell SPEC, cell 0 first (e.g. --cell file:c0.pcap --cell file:c1.pcap), or a config with -C FILE") }
        if hash != "flow" && hash != "sftap" { throw ValidationError("--hash is flow or sftap") }
        if monitoring.http != nil && !read.files.isEmpty { throw ValidationError("--http serves tap (-i) and bridge modes; -r ends with its files") }
    }

    func run() throws {
        var settings = IncubatorConfig()
        if let config {
            do { settings = try IncubatorConfig.load(path: config) } catch { throw fail("incubate", error) }
        }
        do { settings.cells += try cells.map { text throws(CellSpec.ParseError) in try CellSpec(parsing: text) } } catch { throw ValidationError(error.description) }
        if settings.cells.isEmpty { throw ValidationError("\(config ?? "the config") names no cells") }
        var session = IncubateSession(cells: settings.cells)
        session.selection = fullTap ? .fullTap : hash == "sftap" ? .sftap : settings.selection
        session.dropNonIP = dropNonIP || settings.dropNonIP
        session.fragments = settings.fragments
        session.input.progress = quiet ? nil : ProgressReporter.forTerminal()
        if bridge != nil && filter.text != nil { throw ValidationError("a filter applies to -r and -i input; a bridge forwards every frame") }
        if interface == nil { session.input.filter = try filter.compiled() }
        session.input.packetLimit = count
        StopSignal.install()
        let endpoint = try monitoring.start(command: "incubate")
        defer { endpoint?.stop() }
        session.telemetry = endpoint?.hub
        do {
            if let bridge {
                let pair = bridge.split(separator: ",").map(String.init)
                writeStandardError(try session.run(bridge: pair[0], pair[1], statsInterval: statsInterval))
            } else if let interface {
                writeStandardError(try session.run(interface: interface, filter: filter.text, threads: threads, statsInterval: statsInterval))
            } else {
                writeStandardError(try session.run(files: read.files))
            }
        } catch {
            throw fail("incubate", error)
        }
    }
}
