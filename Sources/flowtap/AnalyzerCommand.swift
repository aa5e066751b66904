import ArgumentParser
import Engine
import Interfaces
import PacketCore
#if canImport(Glibc)
import Glibc
#endif

struct AnalyzerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyzer",
        abstract: "Run one built-in analyzer (http, dns, tls, quic) on an SF-TAP interface socket or a recorded event stream.",
        discussion: """
        Reads the events `flowtap abstract` (or the original SF-TAP) serves on
        one interface socket, text or binary (detected from the first bytes, or
        --format), and writes the records `flowtap analyze` writes for those
        flows, one JSON object per line. Stops at the end of the stream or on
        SIGINT/SIGTERM and prints one summary line on standard error. Bad
        headers are reported with their byte offset and skipped (text) or stop
        the reading (binary). The interface needs `body: yes` (the default).

        Examples:
          # beside `flowtap abstract -c examples/flowtap.yaml`, which serves
          # /tmp/sf-tap/tcp/http, tcp/tls, tcp/dns (binary), udp/dns …
          flowtap analyzer http /tmp/sf-tap/tcp/http -w http.jsonl
          flowtap analyzer tls /tmp/sf-tap/tcp/tls | jq .client.sni
          flowtap analyzer dns /tmp/sf-tap/udp/dns
          flowtap analyzer dns /tmp/sf-tap/tcp/dns

          # balance: 4 on the http rule: tcp/http0 … http3, one analyzer each
          for i in 0 1 2 3; do
            flowtap analyzer http /tmp/sf-tap/tcp/http$i -w http$i.jsonl &
          done

          # what `abstract --out-dir` recorded is the same stream
          flowtap abstract -c examples/flowtap.yaml -r capture.pcap --out-dir out
          flowtap analyzer http --read out/tcp/http
          cat out/udp/dns | flowtap analyzer dns -
        """
    )

    @Argument(help: ArgumentHelp("The analyzer: http, dns, tls or quic.", valueName: "analyzer"))
    var kind: String

    @Argument(help: ArgumentHelp("The interface socket, e.g. /tmp/sf-tap/tcp/http; - reads standard input.", valueName: "socket"))
    var socket: String?

    @Option(name: [.customLong("read")], help: ArgumentHelp("Read a recorded event stream from this file (- for standard input) instead of a socket.", valueName: "file"))
    var file: String?

    @Option(name: [.customShort("w"), .customLong("write")], help: ArgumentHelp("Write records here instead of standard output.", valueName: "file"))
    var output: String?

    @Flag(help: "Include HTTP bodies (base64).")
    var bodies = false

    @Option(help: ArgumentHelp("The stream's format, text or binary (default: detected from its first bytes).", valueName: "format"))
    var format: String?

    @Option(help: ArgumentHelp("Seconds to wait for the socket to appear (0: fail at once).", valueName: "seconds"))
    var wait: Double = 30

    /// Stream defects printed one by one; later ones are only counted.
    static let errorLines = 20

    func validate() throws {
        guard SFTapStreamAnalyzer.Kind(rawValue: kind) != nil else {
            throw ValidationError("unknown analyzer '\(kind)': choose one of \(SFTapStreamAnalyzer.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if socket == nil && file == nil { throw ValidationError("give the interface socket (e.g. /tmp/sf-tap/tcp/\(kind)), - for standard input, or --read FILE") }
        if socket != nil && file != nil { throw ValidationError("give either a socket or --read FILE, not both") }
        if let format, format != "text" && format != "binary" { throw ValidationError("--format must be text or binary, not '\(format)'") }
        if !(wait >= 0) { throw ValidationError("--wait must be 0 or more seconds") }
    }

    func run() throws {
        let name = "flowtap analyzer \(kind)"
        let source = file ?? socket ?? "-"
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 20)
        let analyzer: SFTapStreamAnalyzer
        do {
            analyzer = try SFTapStreamAnalyzer(kind: SFTapStreamAnalyzer.Kind(rawValue: kind) ?? .http, bodies: bodies,
                                               format: format.map { $0 == "binary" ? .binary : .text }) { line in
                buffer.append(contentsOf: line.utf8)
            }
        } catch {
            writeStandardError("\(name): \(error)\n")
            throw ExitCode(2)
        }
        var reported = 0
        analyzer.onStreamError = { error in
            reported += 1
            if reported <= Self.errorLines {
                writeStandardError("\(name): \(source): \(error)\n")
            } else if reported == Self.errorLines + 1 {
                writeStandardError("\(name): \(source): more stream errors; counted in the summary\n")
            }
        }

        let out: Int32 = output.map { open($0, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) } ?? 1
        guard out >= 0 else {
            writeStandardError("\(name): cannot create \(output ?? ""): \(errorText(errno))\n")
            throw ExitCode(1)
        }
        defer { if out > 1 { close(out) } }
        var writeError: Int32?
        func flush() {
            guard !buffer.isEmpty else { return }
            if let failure = buffer.withUnsafeBytes({ writeAll(out, $0) }), writeError == nil { writeError = failure }
            buffer.removeAll(keepingCapacity: true)
        }

        StopSignal.install()
        let input = try openInput(name: name)
        defer { if input > 0 { close(input) } }
        var readError: Int32?
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)
        defer { chunk.deallocate() }
        while !StopSignal.requested && analyzer.stopped == nil && writeError == nil {
            var ready = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
            let polled = poll(&ready, 1, 200)
            if polled == 0 { continue }
            if polled < 0 {
                if errno == EINTR { continue }
                readError = errno
                break
            }
            let n = read(input, chunk.baseAddress, chunk.count)
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                readError = errno
                break
            }
            analyzer.feed(UnsafeRawBufferPointer(rebasing: chunk[0 ..< n]))
            flush()
        }
        analyzer.finish()
        flush()
        let ending = StopSignal.requested ? "stopped by a signal" : analyzer.stopped != nil ? "stopped at a bad binary header" : "end of stream"
        writeStandardError("\(name): \(source): \(ending); \(analyzer.summary)\n")
        if let readError {
            writeStandardError("\(name): cannot read \(source): \(errorText(readError))\n")
            throw ExitCode(1)
        }
        if let writeError {
            writeStandardError("\(name): cannot write \(output ?? "standard output"): \(errorText(writeError))\n")
            throw ExitCode(1)
        }
        if analyzer.stopped != nil { throw ExitCode(1) }
    }

    /// Standard input, the file, or the socket (waiting up to --wait seconds for it to be served).
    func openInput(name: String) throws -> Int32 {
        if let file {
            if file == "-" { return 0 }
            let fd = open(file, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                writeStandardError("\(name): cannot open \(file): \(errorText(errno)); give a file `flowtap abstract --out-dir` wrote, e.g. out/tcp/http\n")
                throw ExitCode(1)
            }
            return fd
        }
        let path = socket ?? "-"
        if path == "-" { return 0 }
        let deadline = monotonicSeconds() + wait
        var announced = false
        while true {
            do {
                return try SocketClient.connect(path)
            } catch {
                guard SocketClient.isNotServedYet(error), monotonicSeconds() < deadline, !StopSignal.requested else {
                    writeStandardError("\(name): \(error)\n")
                    throw ExitCode(1)
                }
                if !announced {
                    writeStandardError("\(name): waiting up to \(wait) s for \(path) to be served (start flowtap abstract with this home)\n")
                    announced = true
                }
                usleep(100_000)
            }
        }
    }

    func monotonicSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
    }
}
