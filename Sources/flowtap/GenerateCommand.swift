import ArgumentParser
import PacketCore
import TrafficGen

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a synthetic, protocol-correct capture (HTTP, TLS, DNS, SSH, other TCP/UDP, ICMP).",
        discussion: """
        TCP sessions have a full handshake, data segmented at a per-session MSS, ACKs and a FIN exchange.
        The same seed always gives the same bytes.

        Examples:
          flowtap generate -w sample.pcap --sessions 40 --seed 1
          flowtap generate -w big.pcap --sessions 30000 --rate 2000
          flowtap generate -w web.pcap --kinds http,tls --ipv6 0.5 --vlan 0
        """
    )

    @Option(name: [.customShort("w"), .customLong("write")], help: ArgumentHelp("Output pcap file.", valueName: "file"))
    var output: String

    @Option(help: "Number of sessions.")
    var sessions: Int = 100

    @Option(help: "Random seed.")
    var seed: UInt64 = 1

    @Option(help: "New sessions per second of capture time.")
    var rate: Double = 200

    @Option(help: "Session kinds, comma-separated: \(TrafficGenerator.Kind.allCases.map(\.rawValue).joined(separator: ",")).")
    var kinds: String = TrafficGenerator.Kind.allCases.map(\.rawValue).joined(separator: ",")

    @Option(help: "Fraction of sessions over IPv6 (0 to 1).")
    var ipv6: Double = 0.2

    @Option(help: "Fraction of sessions with an 802.1Q tag (0 to 1).")
    var vlan: Double = 0.1

    func validate() throws {
        if sessions < 0 { throw ValidationError("--sessions must be 0 or more") }
        if !(rate > 0) { throw ValidationError("--rate must be above 0") }
        if !(0 ... 1).contains(ipv6) || !(0 ... 1).contains(vlan) { throw ValidationError("--ipv6 and --vlan are fractions from 0 to 1") }
        for name in kinds.split(separator: ",") where TrafficGenerator.Kind(rawValue: String(name)) == nil {
            throw ValidationError("unknown session kind '\(name)'; choose from \(TrafficGenerator.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        var options = TrafficGenerator.Options()
        options.sessions = sessions
        options.seed = seed
        options.sessionsPerSecond = rate
        options.kinds = kinds.split(separator: ",").compactMap { TrafficGenerator.Kind(rawValue: String($0)) }
        options.ipv6Fraction = ipv6
        options.vlanFraction = vlan
        do {
            let summary = try TrafficGenerator(options: options).write(to: output)
            writeStandardError("\(output): \(summary.sessions) sessions, \(summary.packets) packets, \(summary.bytes) bytes\n")
        } catch {
            writeStandardError("flowtap generate: \(error)\n")
            throw ExitCode(1)
        }
    }
}
