import ArgumentParser
import PacketCore
import TrafficGen

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a synthetic, protocol-correct capture (HTTP, TLS, DNS, SSH, other TCP/UDP, ICMP).",
        discussion: """
        TCP sessions have a full handshake, data segmented at a per-session MSS, ACKs and a FIN exchange. \
        The same seed always gives the same bytes.

        Impairments are seeded and off by default; each is a chance from 0 to 1.
          --reorder     a TCP data segment arrives behind 1-3 later ones
          --retransmit  a TCP data segment is sent again, an exact copy
          --overlap     a re-cut retransmission spans two neighbouring segments
          --fragment    a TCP segment or UDP datagram goes as 2-4 IP fragments
                        (half of them out of order)
          --midstream   a TCP session lacks its SYN, SYN and SYN-ACK, or the
                        whole handshake
          --reorder-midstream-start
                        a mid-stream session's first data segment may be
                        reordered too (off: it stays first)
          --rst         a TCP session ends with an RST instead of FINs
          --no-fin      a TCP session just stops (left to an idle timeout)
          --seq-wrap    TCP sequence numbers wrap past 2^32 inside the data
        --impaired turns on a mix (reorder 0.1, seq-wrap 0.2, the others 0.05); a flag given as well overrides \
        its share. Impairments never change the sessions or payloads a seed makes, only the packets that carry them.

        --manifest writes one JSON line per session: endpoints, VLAN, impairments, and per side the byte count \
        and SHA-256 of all it sent (TCP: the stream the peer reads; UDP, ICMP: the datagrams concatenated, \
        lengths in client_datagrams/server_datagrams). Every impairment keeps all data recoverable, so the \
        expected streams are always complete.

        Examples:
          flowtap generate -w sample.pcap --sessions 40 --seed 1
          flowtap generate -w big.pcap --sessions 30000 --rate 2000
          flowtap generate -w web.pcap --kinds http,tls --ipv6 0.5 --vlan 0
          flowtap generate -w hard.pcap --manifest hard.jsonl --impaired --fragment 0.2
        """
    )

    @Option(name: [.customShort("w"), .customLong("write")], help: ArgumentHelp("Output pcap file.", valueName: "file"))
    var output: String

    @Option(help: ArgumentHelp("Expected-streams manifest to write (JSON lines, one per session).", valueName: "file"))
    var manifest: String?

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

    @Flag(help: "Turn on a mix of every impairment.")
    var impaired = false

    @Option(help: "Chance a TCP data segment arrives after later ones.")
    var reorder: Double?

    @Option(help: "Chance a TCP data segment is retransmitted.")
    var retransmit: Double?

    @Option(help: "Chance of an overlapping re-cut retransmission per segment pair.")
    var overlap: Double?

    @Option(help: "Chance a TCP data segment or UDP datagram is IP-fragmented.")
    var fragment: Double?

    @Option(help: "Chance a TCP session is captured without (part of) its handshake.")
    var midstream: Double?

    @Flag(name: .customLong("reorder-midstream-start"), help: "Let a mid-stream session's first data segment be reordered too.")
    var reorderMidstreamStart = false

    @Option(name: .customLong("no-fin"), help: "Chance a TCP session ends without FIN or RST.")
    var noFIN: Double?

    @Option(help: "Chance a TCP session ends with an RST.")
    var rst: Double?

    @Option(name: .customLong("seq-wrap"), help: "Chance a TCP session's sequence numbers wrap inside its data.")
    var sequenceWrap: Double?

    func validate() throws {
        if sessions < 0 { throw ValidationError("--sessions must be 0 or more") }
        if !(rate > 0) { throw ValidationError("--rate must be above 0") }
        if !(0 ... 1).contains(ipv6) || !(0 ... 1).contains(vlan) { throw ValidationError("--ipv6 and --vlan are fractions from 0 to 1") }
        for name in kinds.split(separator: ",") where TrafficGenerator.Kind(rawValue: String(name)) == nil {
            throw ValidationError("unknown session kind '\(name)'; choose from \(TrafficGenerator.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let chances: [(String, Double?)] = [("--reorder", reorder), ("--retransmit", retransmit), ("--overlap", overlap),
                                            ("--fragment", fragment), ("--midstream", midstream), ("--no-fin", noFIN),
                                            ("--rst", rst), ("--seq-wrap", sequenceWrap)]
        for (flag, value) in chances {
            if let value, !(0 ... 1).contains(value) { throw ValidationError("\(flag) is a chance from 0 to 1, not \(value)") }
        }
        let impairments = self.impairments
        if impairments.rst + impairments.noFIN > 1 {
            throw ValidationError("--rst and --no-fin add up to more than 1; a session has one ending")
        }
    }

    /// `--impaired`'s mix, with any single flag overriding its share.
    var impairments: TrafficGenerator.Impairments {
        var i = impaired ? TrafficGenerator.Impairments.mix : .none
        if let reorder { i.reorder = reorder }
        if let retransmit { i.retransmit = retransmit }
        if let overlap { i.overlap = overlap }
        if let fragment { i.fragment = fragment }
        if let midstream { i.midstream = midstream }
        if let noFIN { i.noFIN = noFIN }
        if let rst { i.rst = rst }
        if let sequenceWrap { i.sequenceWrap = sequenceWrap }
        i.reorderMidstreamStart = reorderMidstreamStart
        return i
    }

    func run() throws {
        var options = TrafficGenerator.Options()
        options.sessions = sessions
        options.seed = seed
        options.sessionsPerSecond = rate
        options.kinds = kinds.split(separator: ",").compactMap { TrafficGenerator.Kind(rawValue: String($0)) }
        options.ipv6Fraction = ipv6
        options.vlanFraction = vlan
        options.impairments = impairments
        do {
            let summary = try TrafficGenerator(options: options).write(to: output, manifest: manifest)
            var line = "\(output): \(summary.sessions) sessions, \(summary.packets) packets, \(summary.bytes) bytes"
            if options.impairments.isEnabled {
                let c = summary.impairments
                line += "; impaired: \(c.lateSegments) late, \(c.duplicateSegments) duplicate and \(c.overlappingSegments) overlapping"
                line += " of \(c.dataSegments) data segments, \(c.fragmentedDatagrams) datagrams in \(c.fragments) fragments"
                line += " (\(c.shuffledDatagrams) shuffled); of \(c.tcpSessions) TCP sessions \(c.midstreamSessions) mid-stream,"
                line += " \(c.rstSessions) RST, \(c.noFINSessions) no FIN, \(c.wrappedSessions) sequence wrap"
            }
            if let manifest { line += "; manifest \(manifest)" }
            writeStandardError(line + "\n")
        } catch {
            writeStandardError("flowtap generate: \(error)\n")
            throw ExitCode(1)
        }
    }
}
