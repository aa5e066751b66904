import ArgumentParser
import Engine
import FlowDispatch
import Outputs
import PacketCore
#if canImport(Glibc)
import Glibc
#endif

struct AnalyzerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyzer",
        abstract: "Run one built-in analyzer (http, dns, tls, quic) on an SF-TAP interface socket or a recorded event stream.",
        discussion: """
        Reads the events `flowtap abstract` (or the original SF-TAP) serves on one interface socket, text or \
        binary (detected from the first bytes, or --format), and writes the records `flowtap analyze` writes for \
        those flows, one JSON object per line. Stops at the end of the stream or on SIGINT/SIGTERM and prints one \
        summary line on standard error. Bad headers are reported with their byte offset and skipped (text) or \
        stop the reading (binary). The interface needs `body: yes` (the default).

        Examples:
          # beside `flowtap abstract -c examples/flowtap.yaml`, which serves
          # /tmp/sf-tap/tcp/http, tcp/tls, tcp/dns (binary), udp/dns …
          flowtap analyzer http /tmp/sf-tap/tcp/http -o http.jsonl
          flowtap analyzer tls /tmp/sf-tap/tcp/tls | jq .client.sni
          flowtap analyzer dns /tmp/sf-tap/udp/dns
          flowtap analyzer dns /tmp/sf-tap/tcp/dns

          # balance: 4 on the http rule: tcp/http0 … http3, one analyzer each
          for i in 0 1 2 3; do
            flowtap analyzer http /tmp/sf-tap/tcp/http$i -o http$i.jsonl &
          done

          # what `abstract -o DIR` recorded is the same stream
          flowtap abstract -c examples/flowtap.yaml -r capture.pcap -o out
          flowtap analyzer http -r out/tcp/http
          cat out/udp/dns | flowtap analyzer dns -
        """
    )

    @Argument(help: ArgumentHelp("The analyzer: http, dns, tls or quic.", valueName: "analyzer"))
    var kind: String

    @Argument(help: ArgumentHelp("The interface socket, e.g. /tmp/sf-tap/tcp/http; - reads standard input.", valueName: "socket"))
    var socket: String?

    @Option(name: [.customShort("r"), .customLong("read")], help: ArgumentHelp("Read a recorded event stream from this file (- for standard input) instead of a socket.", valueName: "file"))
    var file: String?

    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("Write records to this file instead of standard output.", valueName: "file"))
    var output: String?

    @Option(name: [.customShort("w"), .customLong("write")], help: .hidden)
    var packetsOutput: String?

    @Flag(help: "Include HTTP bodies (base64).")
    var bodies = false

    @Option(help: ArgumentHelp("The stream's format, text or binary (default: detected from its first bytes).", valueName: "format"))
    var format: String?

    @Option(help: ArgumentHelp("Seconds to wait for the socket to appear (0: fail at once).", valueName: "seconds"))
    var wait: Double = 30

    func validate() throws {
        guard SFTapStreamAnalyzer.Kind(rawValue: kind) != nil else {
            throw ValidationError("unknown analyzer '\(kind)': choose one of \(SFTapStreamAnalyzer.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let packetsOutput {
            throw ValidationError("-w writes packets in every flowtap command; records go to -o \(packetsOutput) (renamed, see CHANGELOG.md)")
        }
        if socket == nil && file == nil { throw ValidationError("give the interface socket (e.g. /tmp/sf-tap/tcp/\(kind)), - for standard input, or -r FILE") }
        if socket != nil && file != nil { throw ValidationError("give either a socket or -r FILE, not both") }
        if let format, format != "text" && format != "binary" { throw ValidationError("--format must be text or binary, not '\(format)'") }
        if !(wait >= 0) { throw ValidationError("--wait must be 0 or more seconds") }
    }

    func run() throws {
        let name = "analyzer \(kind)"
        let inputs = [file, socket].compactMap { $0 }
        let writer: RecordWriter
        do {
            writer = try RecordWriter(path: output, inputs: inputs)
        } catch {
            throw fail(name, error)
        }
        let session: StreamAnalyzerSession
        do {
            session = try StreamAnalyzerSession(kind: SFTapStreamAnalyzer.Kind(rawValue: kind) ?? .http, bodies: bodies,
                                                format: format.map { $0 == "binary" ? .binary : .text }, output: writer)
        } catch {
            writeStandardError("flowtap \(name): \(error)\n")
            throw ExitCode(2)
        }
        do {
            try session.run(file.map { .file($0) } ?? .socket(socket ?? "-", wait: wait))
        } catch {
            throw fail(name, error)
        }
        if session.analyzer.stopped != nil { throw ExitCode(1) }
    }
}
