import Foundation
import TestSupport
import XCTest

/// TLS through proxies, captured from real clients on loopback: curl reaches `openssl s_server` through
/// an HTTP CONNECT proxy and through SOCKS4, SOCKS4a, SOCKS5 (address and hostname) and SOCKS5 with a
/// login; tcpdump captures the client–proxy side. `analyze` must read each connection's ClientHello
/// behind its handshake: one TLS record per connection, on that connection, with the name curl sent.
/// (As root, for the capture.)
final class TunnelRoutingTests: XCTestCase {
    struct Run {
        let name: String
        let arguments: [String]
    }

    func testTLSBehindConnectAndSOCKSIsAnalysed() throws {
        guard geteuid() == 0 else { throw OracleMissing.error("capturing on lo needs root") }
        guard let curl = Corpus.tool("curl"), let openssl = Corpus.tool("openssl"), let tcpdump = Corpus.tool("tcpdump"),
              let python = Corpus.tool("python3") else { throw OracleMissing.error("curl, openssl, tcpdump and python3 are needed") }
        let flowtap = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flowtap").path
        guard FileManager.default.isExecutableFile(atPath: flowtap) else { throw OracleMissing.error("flowtap executable not built") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-tunnels-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = dir.appendingPathComponent("key.pem").path, cert = dir.appendingPathComponent("cert.pem").path
        let (_, made) = try Corpus.run(openssl, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                                 "-subj", "/CN=tunnel.test", "-keyout", key, "-out", cert, "-days", "1"])
        XCTAssertEqual(made, 0)
        let tlsPort = 20_000 + Int(getpid()) % 20_000, proxyPort = tlsPort + 1

        let server = Process()
        server.executableURL = URL(fileURLWithPath: openssl)
        server.arguments = ["s_server", "-accept", "127.0.0.1:\(tlsPort)", "-cert", cert, "-key", key, "-www", "-quiet"]
        server.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        server.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try server.run()
        defer { server.terminate(); server.waitUntilExit() }

        let proxy = Process()
        proxy.executableURL = URL(fileURLWithPath: python)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Tunnels/tunnel-proxy.py").path
        proxy.arguments = [script, "\(proxyPort)"]
        let proxyOut = Pipe()
        proxy.standardOutput = proxyOut
        proxy.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try proxy.run()
        defer { proxy.terminate(); proxy.waitUntilExit() }
        XCTAssertNotNil(LiveLatencyTests.waitForLine(proxyOut.fileHandleForReading, containing: "ready", timeout: 10))

        let capture = dir.appendingPathComponent("tunnels.pcap").path
        let dump = Process()
        dump.executableURL = URL(fileURLWithPath: tcpdump)
        dump.arguments = ["-i", "lo", "-U", "--immediate-mode", "-n", "-w", capture, "tcp port \(proxyPort)"]
        let dumpErr = Pipe()
        dump.standardError = dumpErr
        dump.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try dump.run()
        XCTAssertNotNil(LiveLatencyTests.waitForLine(dumpErr.fileHandleForReading, containing: "listening on", timeout: 10))

        let proxy127 = "127.0.0.1:\(proxyPort)"
        let runs = [
            Run(name: "connect.tunnel.test", arguments: ["-x", "http://\(proxy127)"]),
            Run(name: "socks4.tunnel.test", arguments: ["--socks4", proxy127]),
            Run(name: "socks4a.tunnel.test", arguments: ["--socks4a", proxy127]),
            Run(name: "socks5.tunnel.test", arguments: ["--socks5", proxy127]),
            Run(name: "socks5h.tunnel.test", arguments: ["--socks5-hostname", proxy127]),
            Run(name: "login.tunnel.test", arguments: ["--socks5", proxy127, "--proxy-user", "user:secret"]),
        ]
        var clientPorts: [String: Int] = [:]
        for run in runs {
            // --resolve keeps every name on loopback for the SOCKS variants that resolve in the client.
            let (out, status) = try Corpus.run(curl, ["-sk", "--max-time", "10", "--resolve", "\(run.name):\(tlsPort):127.0.0.1",
                                                      "-o", "/dev/null", "-w", "%{local_port} %{http_code}"] + run.arguments + ["https://\(run.name):\(tlsPort)/"])
            let fields = out.split(separator: " ")
            XCTAssertEqual(status, 0, "\(run.name): curl exited \(status)")
            XCTAssertEqual(fields.last, "200", run.name)
            clientPorts[run.name] = fields.first.flatMap { Int($0) }
        }
        usleep(300_000)
        kill(dump.processIdentifier, SIGINT)
        dump.waitUntilExit()

        let (output, errors, status) = try Corpus.runCapturingErrors(flowtap, ["analyze", "-r", capture])
        XCTAssertEqual(status, 0, errors)
        var sniByPort: [Int: [String]] = [:]
        for line in output.split(separator: "\n") {
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], object["type"] as? String == "tls",
                  let client = object["client"] as? [String: Any], let port = client["port"] as? Int else { continue }
            let sni = (client["sni"] as? String) ?? (object["sni"] as? String) ?? Self.findSNI(object) ?? "?"
            sniByPort[port, default: []].append(sni)
        }
        print("tunnels: \(errors.split(separator: "\n").last ?? "")")
        for run in runs {
            guard let port = clientPorts[run.name] else { XCTFail("\(run.name): no client port"); continue }
            XCTAssertEqual(sniByPort[port], [run.name], "\(run.name) (client port \(port))")
        }
        XCTAssertTrue(errors.contains("tunnels: CONNECT 1, SOCKS 5 of 5 handshakes (0 refused or malformed)"), errors)
    }

    /// The server name wherever the TLS record keeps it.
    static func findSNI(_ value: Any) -> String? {
        if let object = value as? [String: Any] {
            for (key, inner) in object {
                if key == "sni" || key == "server_name", let name = inner as? String { return name }
                if let found = findSNI(inner) { return found }
            }
        } else if let array = value as? [Any] {
            for inner in array { if let found = findSNI(inner) { return found } }
        }
        return nil
    }
}
