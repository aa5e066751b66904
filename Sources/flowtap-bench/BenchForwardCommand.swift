import ArgumentParser
import Capture
import PacketCore
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// `flowtap forward` beside socat, nfcapd's repeater and pmacct's nfacctd tee plugin, each relaying
/// NetFlow v5 datagrams from 20 exporters across the namespace topology of scripts/forward-netns.sh.
/// For each, offered rates climb until the collector side sees a datagram missing; reported: the highest
/// rate relayed without loss, and CPU seconds (the forwarder's process tree) per million datagrams.
struct BenchForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Lossless relay rate and CPU per datagram: flowtap forward against socat, nfcapd -R and nfacctd's tee.",
        discussion: """
        Needs root (namespaces, raw sockets), ip, tcpreplay and the peers (socat, nfdump, pmacct). tcpreplay \
        sends from the exporters' namespace at each --rates value (packets/s); every frame that reaches the \
        collectors' interface counts as delivered (a bound socket there never reads, so no ICMP comes back). \
        A forwarder passes a rate when every datagram arrives. Peers run as Debian ships them, with receive \
        buffers as large as FlowTap's (32 MiB).

        Examples:
          sudo flowtap-bench forward
          sudo flowtap-bench forward --sizes 1416 --rates 20000,50000,100000 --only flowtap,socat
        """
    )

    @Option(help: ArgumentHelp("Offered rates to try, lowest first (packets per second).", valueName: "pps,…"))
    var rates = "10000,25000,50000,75000,100000,150000,200000,300000"

    @Option(help: ArgumentHelp("Datagram sizes in bytes (NetFlow v5: 24 + 48 per record).", valueName: "bytes,…"))
    var sizes = "120,1416"

    @Option(help: ArgumentHelp("Seconds of traffic per rate.", valueName: "seconds"))
    var seconds = 2.0

    @Option(help: ArgumentHelp("Forwarders to measure: flowtap, flowtap2 (2 threads), flowtap-keep (keep-source), socat, nfcapd, nfacctd.", valueName: "names"))
    var only = "flowtap,flowtap2,flowtap-keep,socat,nfcapd,nfacctd"

    @Option(help: ArgumentHelp("The topology script.", valueName: "path"))
    var topology = "scripts/forward-netns.sh"

    @Option(help: ArgumentHelp("The flowtap executable to measure (default: the one beside flowtap-bench).", valueName: "path"))
    var flowtap: String?

    struct Trial {
        var offered: Int
        var achieved: Double
        var sent: Int
        var delivered: Int
        var cpu: Double
    }

    func run() throws {
        guard getuid() == 0 else { throw BenchError("forward benchmarks need root (network namespaces, raw sockets)") }
        guard let ip = Subprocess.which("ip"), let tcpreplay = Subprocess.which("tcpreplay") else { throw BenchError("ip and tcpreplay are needed") }
        let rateList = rates.split(separator: ",").compactMap { Int($0) }
        let sizeList = sizes.split(separator: ",").compactMap { Int($0) }
        guard !rateList.isEmpty, !sizeList.isEmpty, sizeList.allSatisfy({ $0 >= 72 && ($0 - 24) % 48 == 0 && $0 <= 1464 }) else {
            throw BenchError("--sizes: NetFlow v5 sizes are 24 + 48 × records (72 … 1464), e.g. 120,1416")
        }
        let executable = flowtap ?? Subprocess.sibling("flowtap")
        let name = "fb\(getpid() % 100_000)"
        _ = try Subprocess.run(topology, ["down", name])
        guard try Subprocess.run(topology, ["up", name]).status == 0 else { throw BenchError("\(topology) up \(name) failed") }
        defer { _ = try? Subprocess.run(topology, ["down", name]) }
        _ = try Subprocess.run(ip, ["netns", "exec", "\(name)-c", "sysctl", "-qw", "net.ipv6.conf.\(name)c0.disable_ipv6=1"])
        _ = try Subprocess.run(ip, ["netns", "exec", "\(name)-f", "sysctl", "-qw", "net.ipv6.conf.\(name)f1.disable_ipv6=1"])
        _ = try Subprocess.run("sysctl", ["-q", "-w", "net.core.rmem_max=33554432", "net.core.wmem_max=33554432"])
        let scratch = try Subprocess.temporaryDirectory("flowtap-bench-forward")
        defer { Subprocess.removeTree(scratch) }
        // The collector's port has a socket that never reads: no ICMP port unreachable goes back.
        let sink = try BackgroundProcess(ip, ["netns", "exec", "\(name)-c", "python3", "-c",
                                              "import socket,time\nfor a in ('10.2.0.2',):\n s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind((a,2055))\ntime.sleep(1e9)"])
        defer { sink.stop() }
        let rules = scratch + "/rules.yaml", keepRules = scratch + "/keep.yaml"
        try writeFile(rules, "rules:\n  - port: 2055\n    to: 10.2.0.2:2055\n")
        try writeFile(keepRules, "rules:\n  - from: 10.1.0.0/24\n    port: 2055\n    to: 10.2.0.2:2055\n    keep_source: true\n")
        let nfacctdConfig = scratch + "/nfacctd.conf", receivers = scratch + "/receivers.lst"
        try writeFile(receivers, "id=1\tip=10.2.0.2:2055\n")
        try writeFile(nfacctdConfig, """
        nfacctd_ip: 10.1.0.254
        nfacctd_port: 2055
        nfacctd_pipe_size: 33554432
        plugins: tee[relay]
        tee_receivers[relay]: \(receivers)
        tee_transparent[relay]: true

        """)
        try FileManager_createDirectory(scratch + "/nfcapd")
        let forwarders: [(String, [String])] = [
            ("flowtap", [executable, "forward", "--rules", rules, "--listen", "10.1.0.254:2055"]),
            ("flowtap2", [executable, "forward", "--rules", rules, "--listen", "10.1.0.254:2055", "--threads", "2"]),
            ("flowtap-keep", [executable, "forward", "--rules", keepRules, "--listen", "10.1.0.254:2055"]),
            ("socat", ["socat", "-u", "UDP-RECV:2055,bind=10.1.0.254,rcvbuf=33554432", "UDP-SENDTO:10.2.0.2:2055"]),
            ("nfcapd", ["nfcapd", "-b", "10.1.0.254", "-p", "2055", "-B", "33554432", "-R", "10.2.0.2/2055", "-w", scratch + "/nfcapd"]),
            ("nfacctd", ["nfacctd", "-f", nfacctdConfig]),
        ].filter { only.split(separator: ",").contains(Substring($0.0)) }
        print("forward: NetFlow v5 from 20 exporters, \(seconds) s per rate; delivered = frames reaching the collectors' interface")
        print("peers: " + peerVersions())
        print(row(["forwarder", "bytes", "offered pps", "achieved pps", "sent", "lost", "CPU s/M dgrams"]))
        for size in sizeList {
            let capture = scratch + "/exporters-\(size).pcap"
            try writeCapture(capture, size: size, count: 20_000)
            for (label, command) in forwarders {
                let forwarder = try BackgroundProcess(ip, ["netns", "exec", "\(name)-f"] + command, standardError: scratch + "/\(label).err")
                usleep(1_500_000) // nfacctd starts its plugin processes

                var best: Trial?
                for rate in rateList {
                    let trial = try measure(rate: rate, capture: capture, count: 20_000, forwarder: forwarder, ip: ip, tcpreplay: tcpreplay, name: name)
                    let lost = trial.sent - trial.delivered
                    print(row([label, "\(size)", "\(rate)", "\(Int(trial.achieved))", "\(trial.sent)", "\(lost)", fixed(trial.cpu / Double(max(trial.delivered, 1)) * 1e6)]))
                    if lost > 0 { break }
                    best = trial
                }
                forwarder.stop(signal: SIGINT)
                let errors = Subprocess.readText(scratch + "/\(label).err").split(separator: "\n").filter { $0.contains("ERROR") }
                if !errors.isEmpty { print("   \(label) said: \(errors.prefix(3).joined(separator: " | "))") }
                if let best {
                    print("=> \(label) at \(size) bytes: lossless up to \(Int(best.achieved)) pps (\(fixed(best.cpu / Double(best.delivered) * 1e6)) CPU s per million datagrams there)")
                } else {
                    print("=> \(label) at \(size) bytes: lost datagrams at the lowest rate")
                }
            }
        }
    }

    func measure(rate: Int, capture: String, count: Int, forwarder: BackgroundProcess, ip: String, tcpreplay: String, name: String) throws -> Trial {
        let loops = max(1, Int((Double(rate) * seconds / Double(count)).rounded(.up)))
        let before = rxPackets(ip: ip, name: name)
        let cpuBefore = forwarder.treeCPUSeconds()
        let output = "/tmp/flowtap-bench-tcpreplay-\(getpid()).txt"
        defer { unlink(output) }
        _ = try Subprocess.run(ip, ["netns", "exec", "\(name)-e", tcpreplay, "-i", "\(name)e0", "--preload-pcap", "--pps", String(rate), "--loop", String(loops), capture],
                               standardOutput: output)
        usleep(600_000)
        let cpu = forwarder.treeCPUSeconds() - cpuBefore
        let delivered = rxPackets(ip: ip, name: name) - before
        let text = Subprocess.readText(output)
        var sent = count * loops, achieved = Double(rate)
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ")
            if line.contains("Actual:"), let i = words.firstIndex(of: "Actual:"), i + 1 < words.count, let n = Int(words[i + 1]) { sent = n }
            if line.contains("Rated:"), let i = words.firstIndex(of: "Bps,"), i + 3 < words.count, let pps = Double(words[i + 3]) { achieved = pps }
        }
        return Trial(offered: rate, achieved: achieved, sent: sent, delivered: delivered, cpu: cpu)
    }

    /// Frames received on the collectors' interface: with IPv6 off on both ends of that link and static
    /// neighbours, the relayed datagrams are its only traffic. (A UDP counter would not do: the kernel
    /// counts InDatagrams when a datagram is read, and the sink never reads.)
    func rxPackets(ip: String, name: String) -> Int {
        let path = "/tmp/flowtap-bench-rx-\(getpid()).txt"
        defer { unlink(path) }
        _ = try? Subprocess.run(ip, ["netns", "exec", "\(name)-c", "cat", "/sys/class/net/\(name)c0/statistics/rx_packets"], standardOutput: path)
        return Int(Subprocess.readText(path).split(separator: "\n").first ?? "") ?? 0
    }

    /// `count` NetFlow v5 datagrams of `size` bytes from exporters 10.1.0.11–30 to the forwarder, round robin.
    func writeCapture(_ path: String, size: Int, count: Int) throws {
        let writer = try PcapWriter(path: path, linkType: .ethernet)
        let link = PacketBuilder.Link.ethernet(source: [2, 0, 0, 1, 0, 1], destination: [2, 0, 0, 1, 0, 0xFE])
        let records = (size - 24) / 48
        var sequence = [UInt32](repeating: 0, count: 20)
        for i in 0 ..< count {
            let e = i % 20
            var payload = PacketBuilder.be16(5) + PacketBuilder.be16(UInt16(records)) + PacketBuilder.be32(100_000) + PacketBuilder.be32(1_790_000_000)
            payload += PacketBuilder.be32(0) + PacketBuilder.be32(sequence[e]) + [0, 0, 0, 0]
            sequence[e] &+= UInt32(records)
            for r in 0 ..< records {
                var record = PacketBuilder.be32(0xC0A8_0000 | UInt32(e) << 8 | UInt32(r)) + PacketBuilder.be32(0xAC10_0001) + PacketBuilder.be32(0)
                record += PacketBuilder.be16(1) + PacketBuilder.be16(2) + PacketBuilder.be32(UInt32(1 + i % 100)) + PacketBuilder.be32(UInt32(100 + i % 1000))
                record += PacketBuilder.be32(90_000) + PacketBuilder.be32(99_000) + PacketBuilder.be16(UInt16(10000 + r)) + PacketBuilder.be16(443)
                record += [0, 0x18, 6, 0] + PacketBuilder.be16(0) + PacketBuilder.be16(0) + [24, 24, 0, 0]
                payload += record
            }
            let frame = PacketBuilder.frame(link: link, network: .ipv4(.init(source: IPAddress(ipv4: 0x0A01_000B + UInt32(e)), destination: IPAddress("10.1.0.254")!)),
                                            transport: .udp(sourcePort: UInt16(40000 + e), destinationPort: 2055), payload: payload)
            try writer.write(timestamp: Timestamp(seconds: 1_790_000_000, microseconds: Int64(i)), bytes: frame)
        }
        try writer.flush()
    }

    func peerVersions() -> String {
        var out: [String] = []
        for (tool, arguments) in [("socat", ["-V"]), ("nfcapd", ["-V"]), ("nfacctd", ["-V"]), ("tcpreplay", ["-V"])] {
            let path = "/tmp/flowtap-bench-version-\(getpid())"
            defer { unlink(path) }
            guard (try? Subprocess.run(tool, arguments, standardOutput: path, standardError: path)) != nil else { continue }
            let line = Subprocess.readText(path).split(separator: "\n").first { $0.lowercased().contains("version") || $0.contains("nfacctd") } ?? ""
            out.append("\(tool): \(line.trimmingSpaces())")
        }
        return out.joined(separator: "; ")
    }

    func writeFile(_ path: String, _ text: String) throws {
        guard let file = fopen(path, "w") else { throw BenchError("cannot write \(path)") }
        fputs(text, file)
        fclose(file)
    }
}

/// A table row: the first column left-aligned in 13, the rest right-aligned in 13.
private func row(_ cells: [String]) -> String {
    cells.enumerated().map { i, c in
        let pad = String(repeating: " ", count: max(0, 13 - c.count))
        return i == 0 ? c + pad : pad + c
    }.joined(separator: " ")
}

/// Two decimals without Foundation.
private func fixed(_ v: Double) -> String {
    let hundredths = Int((v * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}

private func FileManager_createDirectory(_ path: String) throws {
    if mkdir(path, 0o755) != 0 && errno != EEXIST { throw BenchError("cannot create \(path)") }
}

private extension Substring {
    func trimmingSpaces() -> String { String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
}
