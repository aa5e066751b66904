import ArgumentParser
import Engine
import PacketCore

struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Relay syslog, NetFlow, IPFIX and sFlow datagrams from exporters to collectors by rules.",
        discussion: """
        Receives UDP datagrams on --listen sockets (or, in tap mode, takes them from an interface's \
        traffic with -i) and sends each, unchanged, to the destinations of the \
        first rule that matches its exporter's address, its destination port and (YAML rules) its payload \
        kind. The rule file is gForwarder's ('SRC_IP DST_PORT NEW_DST_IP PRIORITY' lines: to NEW_DST_IP, \
        same port) or YAML (prefixes, port ranges, kinds, several destinations, 1-in-N sampling, a default \
        action); the two are told apart by content. With --keep-source the datagrams leave with the \
        exporter's source address and port (a raw socket: root or CAP_NET_RAW), which NetFlow v9 and IPFIX \
        collectors need to keep each exporter's templates apart. SIGHUP rereads the rules (a bad file keeps \
        the old ones); SIGINT/SIGTERM stop with a summary of every datagram: forwarded, sampled out, \
        refused, unmatched, dropped by the kernel. See docs/forward.md.

        Examples:
          flowtap forward --rules config.txt --listen 0.0.0.0:9996 --listen 0.0.0.0:514 --keep-source
          flowtap forward --rules examples/forward.yaml --listen 0.0.0.0:2055 --listen [::]:2055 --threads 2 --stats-interval 10
          flowtap forward --rules config.txt -i eth1 --keep-source        # tap mode, on a mirror port
          kill -HUP $(pidof flowtap)      # reload the rules
        """
    )

    @Option(name: .customLong("rules"), help: ArgumentHelp("The rule file: gForwarder lines or YAML (docs/forward.md).", valueName: "file"))
    var rules: String

    @Option(name: .customLong("listen"), help: ArgumentHelp("Receive on ADDRESS:PORT ([IPv6]:PORT; [::] is IPv6 only, add 0.0.0.0:PORT for IPv4). Repeat for several.", valueName: "addr:port"))
    var listen: [String] = []

    @Option(name: [.customShort("i"), .customLong("interface")], help: ArgumentHelp("Tap mode: take the exporters' datagrams from this interface's traffic (a mirror port or a copy) instead of sockets.", valueName: "iface"))
    var interface: String?

    @Option(name: [.customShort("f"), .customLong("filter")], help: ArgumentHelp("Tap mode: a tcpdump expression for the capture (default: udp).", valueName: "expr"))
    var filter: String?

    @Flag(name: .customLong("keep-source"), help: "Send with each exporter's source address and port (rules may say otherwise). Needs root or CAP_NET_RAW.")
    var keepSource = false

    @Option(name: .customLong("threads"), help: ArgumentHelp("Worker threads, each with its own socket per address (SO_REUSEPORT); one exporter stays on one thread.", valueName: "n"))
    var threads = 1

    @Option(name: .customLong("stats-interval"), help: ArgumentHelp("Print counters to standard error every this many seconds.", valueName: "seconds"))
    var statsInterval: Double?

    @Option(name: .customLong("receive-buffer"), help: ArgumentHelp("Receive buffer per socket in bytes (the kernel caps it at net.core.rmem_max).", valueName: "bytes"))
    var receiveBuffer: Int32 = 32 << 20

    @Flag(name: .customLong("check"), help: "Read the rule file, print what it says, and exit (0 when it is valid).")
    var check = false

    @OptionGroup(title: "Monitoring")
    var monitoring: HTTPOptions

    func validate() throws {
        if listen.isEmpty && interface == nil && !check {
            throw ValidationError("give at least one --listen ADDRESS:PORT (e.g. --listen 0.0.0.0:2055), or -i IFACE for tap mode")
        }
        if !listen.isEmpty && interface != nil { throw ValidationError("give either --listen sockets or a tap interface (-i), not both") }
        if filter != nil && interface == nil { throw ValidationError("-f filters tap mode's capture; it needs -i IFACE") }
        if threads < 1 || threads > 64 { throw ValidationError("--threads must be 1–64") }
        if let s = statsInterval, s <= 0 { throw ValidationError("--stats-interval must be positive") }
    }

    func run() throws {
        var session = ForwardSession(rulesPath: rules, listen: listen)
        session.keepSource = keepSource
        session.threads = threads
        session.statsInterval = statsInterval
        session.receiveBufferBytes = receiveBuffer
        session.tapInterface = interface
        session.tapFilter = filter
        if check {
            do {
                print(ForwardSession.explain(try session.loadRules()), terminator: "")
            } catch {
                throw fail("forward", error)
            }
            return
        }
        StopSignal.install()
        HangupSignal.install()
        let endpoint = try monitoring.start(command: "forward")
        defer { endpoint?.stop() }
        session.telemetry = endpoint?.hub
        do {
            writeStandardError(try session.run())
        } catch {
            throw fail("forward", error)
        }
    }
}
