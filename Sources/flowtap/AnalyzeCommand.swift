import ArgumentParser
import Capture
import Engine
import PacketCore
#if canImport(Glibc)
import Glibc
#endif

struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Reassemble flows and run the built-in HTTP, DNS, TLS and QUIC analyzers; write one JSON record per line.",
        discussion: """
        Flows are routed by their first bytes: HTTP request or response lines, TLS handshake records, DNS on
        port 53 (TCP, length-prefixed), DNS/mDNS/LLMNR datagrams (UDP 53, 5353, 5355), and QUIC: UDP port 443 or
        a datagram that starts with a QUIC v1/v2 long header. QUIC Initial packets are decrypted (RFC 9001, RFC 9369)
        to read the ClientHello and ServerHello inside. Records keep SF-TAP's analyzer shapes:
        {"type":"http","client":{…},"server":{…}}, {"type":"dns",…}, {"type":"tls",…}, {"type":"quic",…}.

        Examples:
          flowtap analyze -r capture.pcap
          flowtap analyze -r capture.pcap -w records.jsonl --bodies
          flowtap analyze -r capture.pcap | jq 'select(.type=="tls") | .client.sni'
          flowtap analyze -r capture.pcap | jq 'select(.type=="quic") | [.version, .client.sni, .client.ja4]'
        """
    )

    @Option(name: [.customShort("r"), .customLong("read")], help: ArgumentHelp("Capture file to read; repeat for several.", valueName: "file"))
    var files: [String] = []

    @Option(name: [.customShort("w"), .customLong("write")], help: ArgumentHelp("Write records here instead of standard output.", valueName: "file"))
    var output: String?

    @Flag(help: "Include HTTP bodies (base64).")
    var bodies = false

    @Flag(help: "Never show the progress line, even on a terminal.")
    var quiet = false

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one capture file with -r FILE") }
    }

    func run() throws {
        let fd: Int32 = output.map { open($0, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) } ?? 1
        guard fd >= 0 else {
            writeStandardError("flowtap analyze: cannot create \(output!): \(errorText(errno))\n")
            throw ExitCode(1)
        }
        defer { if fd > 1 { close(fd) } }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 20)
        var writeError: Int32?
        func flush() {
            if let failure = buffer.withUnsafeBytes({ writeAll(fd, $0) }), writeError == nil { writeError = failure }
            buffer.removeAll(keepingCapacity: true)
        }
        let sink = AnalyzeSink(bodies: bodies) { line in
            buffer.append(contentsOf: line.utf8)
            if buffer.count >= 1 << 20 { flush() }
        }
        var runner = FlowRunner()
        runner.progress = quiet ? nil : ProgressReporter.forTerminal()
        do {
            let engine = try runner.run(files: files, sink: sink)
            sink.http.closeAll(time: 0)
            flush()
            let c = sink.counters
            writeStandardError("packets \(engine.counters.packets), flows \(engine.counters.flowsCreated); HTTP flows \(c.httpFlows) (\(sink.http.counters.transactions) transactions, \(sink.http.counters.parseErrors) errors), TLS flows \(c.tlsFlows), DNS: \(c.dnsDatagrams) datagrams, \(c.dnsTCPFlows) TCP flows (\(sink.dns.counters.messages) messages, \(sink.dns.counters.errors) errors), QUIC flows \(c.quicFlows) (\(sink.quic.counters.records) records, \(sink.quic.counters.decrypted) Initial packets decrypted, \(sink.quic.counters.errors) errors)\n")
        } catch {
            writeStandardError("flowtap analyze: \(error)\n")
            throw ExitCode(1)
        }
        if let writeError {
            writeStandardError("flowtap analyze: cannot write \(output ?? "standard output"): \(errorText(writeError))\n")
            throw ExitCode(1)
        }
    }
}
