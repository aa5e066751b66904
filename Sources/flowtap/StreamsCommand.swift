import ArgumentParser
import Capture
import Defragment
import Engine
import Flows
import PacketCore
#if canImport(Glibc)
import Glibc
#endif

struct StreamsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streams",
        abstract: "Reassemble flows (defragmentation, TCP reassembly) and list or write their byte streams.",
        discussion: """
        Prints one JSON line per flow when it ends: endpoints in SF-TAP order (ip1 is the lower address,
        then port), bytes from each endpoint, gap bytes, and why the flow ended. With -o, each direction's
        bytes go to DIR/<id>-<l4>-<sender>.<port>-<receiver>.<port> (the same bytes an analyzer would read).

        Examples:
          flowtap streams -r capture.pcap
          flowtap streams -r capture.pcap -o streams/ --require-syn
          flowtap streams -r frags.pcap --overlap-policy linux
        """
    )

    @Option(name: [.customShort("r"), .customLong("read")], help: ArgumentHelp("Capture file to read; repeat for several.", valueName: "file"))
    var files: [String] = []

    @Option(name: [.customShort("o"), .customLong("output-dir")], help: ArgumentHelp("Write each direction's bytes to a file here.", valueName: "dir"))
    var outputDirectory: String?

    @Flag(help: "Only reassemble TCP connections whose SYN was captured (SF-TAP's behaviour).")
    var requireSyn = false

    @Flag(help: "Ignore VLAN IDs in flow identity (SF-TAP master's behaviour).")
    var ignoreVlan = false

    @Option(help: "Fragment overlap policy: \(OverlapPolicy.allCases.map(\.rawValue).joined(separator: ", ")).")
    var overlapPolicy: String = DefragmentConfig().policy.rawValue

    @Option(help: "Skip a TCP hole after this many seconds of packet time.")
    var gapTimeout: Double = 10

    @Option(help: "At most this many flows at once (the least recently active is ended when full).")
    var maxFlows: Int = 1_000_000

    @Flag(help: "Never show the progress line, even on a terminal.")
    var quiet = false

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one capture file with -r FILE") }
        if OverlapPolicy(rawValue: overlapPolicy) == nil {
            throw ValidationError("unknown --overlap-policy '\(overlapPolicy)'; choose from \(OverlapPolicy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if !(gapTimeout > 0) { throw ValidationError("--gap-timeout must be above 0") }
        if maxFlows < 1 { throw ValidationError("--max-flows must be at least 1") }
    }

    func run() throws {
        var config = FlowEngineConfig()
        config.tcp.requireSYN = requireSyn
        config.tcp.gapTimeoutNanoseconds = Int64(gapTimeout * 1e9)
        config.vlanInKey = !ignoreVlan
        config.table.maxFlows = maxFlows
        config.defragment.policy = OverlapPolicy(rawValue: overlapPolicy)!
        if let dir = outputDirectory, mkdir(dir, 0o755) != 0 && errno != EEXIST {
            writeStandardError("flowtap streams: cannot create \(dir): \(String(cString: strerror(errno)))\n")
            throw ExitCode(1)
        }
        let directory = outputDirectory
        var writeFailure: String?
        let sink = StreamCollector { flow in
            print(Self.summaryLine(flow))
            guard let directory, writeFailure == nil else { return }
            for d in 0 ..< 2 where !flow.streams[d].isEmpty {
                let path = directory + "/" + Self.fileName(flow, fromFirst: d == 0)
                if let failure = Self.write(flow.streams[d], to: path) { writeFailure = failure }
            }
        }
        var runner = FlowRunner(config: config)
        runner.progress = quiet ? nil : ProgressReporter.forTerminal()
        do {
            let engine = try runner.run(files: files, sink: sink)
            let c = engine.counters, t = engine.tcp.counters, f = engine.defragmenter.counters
            writeStandardError("""
                packets \(c.packets), flows \(c.flowsCreated) (normal \(c.destroyed[0]), reset \(c.destroyed[1]), timeout \(c.destroyed[2]), compromised \(c.destroyed[3])), \
                non-IP \(c.nonIP), fragments \(c.fragments) → datagrams \(c.reassembledDatagrams); \
                TCP: delivered \(t.deliveredBytes) B, retransmitted \(t.retransmittedBytes) B, overlap discarded \(t.overlapBytesDiscarded) B, \
                gaps \(t.gaps) (\(t.gapBytes) B), memcap drops \(t.memcapDrops), mid-stream pickups \(t.midstreamPickups), stray segments \(c.tcpWithoutFlow); \
                defragment: \(f)\n
                """)
        } catch {
            writeStandardError("flowtap streams: \(error)\n")
            throw ExitCode(1)
        }
        if let writeFailure {
            writeStandardError("flowtap streams: \(writeFailure)\n")
            throw ExitCode(1)
        }
    }

    static func l4Name(_ proto: UInt8) -> String {
        switch proto {
        case 6: "tcp"
        case 17: "udp"
        case 1: "icmp"
        case 58: "icmpv6"
        default: "proto\(proto)"
        }
    }

    static func summaryLine(_ flow: StreamCollector.Flow) -> String {
        let k = flow.view.key
        var line = "{\"id\":\(flow.view.id),\"l3\":\"\(k.isIPv6 ? "ipv6" : "ipv4")\",\"l4\":\"\(l4Name(k.ipProtocol))\""
        line += ",\"ip1\":\"\(k.address1)\",\"port1\":\(k.port1),\"ip2\":\"\(k.address2)\",\"port2\":\(k.port2)"
        line += ",\"vlan\":\(k.vlan == FlowKey.noVLAN ? "-1" : String(k.vlan))"
        line += ",\"bytes1\":\(flow.streams[0].count),\"bytes2\":\(flow.streams[1].count)"
        line += ",\"gap1\":\(flow.gapBytes[0]),\"gap2\":\(flow.gapBytes[1])"
        if k.ipProtocol != 6 { line += ",\"datagrams1\":\(flow.datagrams[0].count),\"datagrams2\":\(flow.datagrams[1].count)" }
        if flow.truncatedBytes[0] + flow.truncatedBytes[1] > 0 { line += ",\"truncated\":\(flow.truncatedBytes[0] + flow.truncatedBytes[1])" }
        line += ",\"reason\":\"\(flow.reason.name)\"}"
        return line
    }

    static func fileName(_ flow: StreamCollector.Flow, fromFirst: Bool) -> String {
        let k = flow.view.key
        let (a, ap, b, bp) = fromFirst ? (k.address1, k.port1, k.address2, k.port2) : (k.address2, k.port2, k.address1, k.port1)
        return "\(flow.view.id)-\(l4Name(k.ipProtocol))-\(a).\(ap)-\(b).\(bp)"
    }

    static func write(_ bytes: [UInt8], to path: String) -> String? {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return "cannot create \(path): \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        if let failure = bytes.withUnsafeBytes({ writeAll(fd, $0) }) { return "cannot write \(path): \(errorText(failure))" }
        return nil
    }
}
