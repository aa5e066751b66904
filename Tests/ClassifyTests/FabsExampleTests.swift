import Classify
import XCTest

/// The rules of SF-TAP's examples/fabs.yaml on typical first bytes.
final class FabsExampleTests: XCTestCase {
    var classifier: Classifier!

    override func setUpWithError() throws {
        classifier = try FabsExample.classifier()
    }

    func testEveryExampleRuleCompiles() throws {
        XCTAssertEqual(classifier.rules.count, 18)
        XCTAssertEqual(classifier.rules.map(\.name), try FabsExample.rules().map(\.name))
        // Without the defaults too: both tcp_default and udp_default absent.
        XCTAssertNoThrow(try FabsExample.classifier(defaults: false))
    }

    func testHTTPLabelsFollowTheClient() {
        let c = classifier!
        let forward = c.tcp(51000, 80, Payload.httpRequest, Payload.httpResponse)
        XCTAssertEqual(c.name(forward), "http")
        XCTAssertEqual(forward?.first, .up)
        XCTAssertEqual(forward?.second, .down)
        // Endpoint 1 is the server: same rule, labels swapped.
        let reverse = c.tcp(80, 51000, Payload.httpResponse, Payload.httpRequest)
        XCTAssertEqual(c.name(reverse), "http")
        XCTAssertEqual(reverse?.first, .down)
        XCTAssertEqual(reverse?.second, .up)
        // HTTP/1.0 request line without headers.
        XCTAssertEqual(c.name(c.tcp(1, 2, "GET / HTTP/1.0\r\n", "HTTP/1.0 404 Not Found\r\n")), "http")
        // Ports are not part of the http rule.
        XCTAssertEqual(c.name(c.tcp(8080, 40000, Payload.httpRequest, Payload.httpResponse)), "http")
    }

    func testLongLines() {
        let c = classifier!
        // A status line of 115 bytes and a 3 KiB request target: '.+'
        // spanning more than 64 bytes is what Vectorscan 5.4.9's AVX-512
        // routine missed (VectorscanRuntime.swift).
        let longReason = "HTTP/1.1 200 " + String(repeating: "x", count: 100) + "\r\n"
        XCTAssertEqual(c.name(c.tcp(51000, 80, Payload.httpRequest, longReason)), "http")
        let longTarget = "GET /" + String(repeating: "a", count: 3000) + " HTTP/1.1\r\nHost: example.com\r\n\r\n"
        XCTAssertEqual(c.name(c.tcp(51000, 80, longTarget, Payload.httpResponse)), "http")
        // A request line cut by the 4096-byte limit before its CRLF is not http.
        let tooLong = "GET /" + String(repeating: "a", count: 5000) + " HTTP/1.1\r\nHost: example.com\r\n\r\n"
        XCTAssertEqual(c.name(c.tcp(51000, 80, tooLong, Payload.httpResponse)), "tcp_default")
        let banner = "SSH-2.0-" + String(repeating: "v", count: 200) + "\r\n"
        XCTAssertEqual(c.name(c.tcp(51000, 22, banner, banner)), "ssh")
    }

    func testConnectGoesToTheProxyRuleAtNice90() {
        // http (nice 100) matches too; http_proxy (90) is tried first.
        let result = classifier.tcp(51000, 3128, Payload.connectRequest, Payload.connectResponse)
        XCTAssertEqual(classifier.name(result), "http_proxy")
        XCTAssertEqual(result?.first, .up)
        // A refused CONNECT is ordinary http.
        XCTAssertEqual(classifier.name(classifier.tcp(51000, 3128, Payload.connectRequest, "HTTP/1.1 403 Forbidden\r\n")), "http")
    }

    func testRequestWithoutHTTPReplyIsHTTPClient() {
        let c = classifier!
        let binary: [UInt8] = [0x00, 0x01, 0xFF, 0x7F, 0x0D]
        let result = c.tcp(51000, 80, Array(Payload.httpRequest.utf8), binary)
        XCTAssertEqual(c.name(result), "http_client")
        XCTAssertEqual(result?.first, .up)
        XCTAssertEqual(result?.second, .down)
        // down '.*' also takes an empty reply (a one-sided flow).
        XCTAssertEqual(c.name(c.tcp(51000, 80, Array(Payload.httpRequest.utf8), [])), "http_client")
        // And the reply direction as endpoint 1.
        let reverse = c.tcp(80, 51000, binary, Array(Payload.httpRequest.utf8))
        XCTAssertEqual(c.name(reverse), "http_client")
        XCTAssertEqual(reverse?.first, .down)
    }

    func testTrackerAndWebSocket() {
        let c = classifier!
        // torrent_tracker (90) before http (100).
        XCTAssertEqual(c.name(c.tcp(51000, 6969, Payload.trackerRequest, Payload.httpResponse)), "torrent_tracker")
        // A WebSocket upgrade.
        let upgrade = "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\r\n"
        XCTAssertEqual(c.name(c.tcp(51000, 80, upgrade, Payload.switchingProtocols)), "websocket")
        // A tracker request answered with 101 matches both torrent_tracker
        // and websocket at nice 90: the tie goes to the name first in byte
        // order, always (SF-TAP with lru: yes would depend on history).
        XCTAssertEqual(c.name(c.tcp(51000, 80, Payload.trackerRequest, Payload.switchingProtocols)), "torrent_tracker")
    }

    func testTLS() {
        let c = classifier!
        let result = c.tcp(51000, 443, Payload.clientHello, Payload.serverHello)
        XCTAssertEqual(c.name(result), "ssl")
        XCTAssertEqual(result?.first, .up)
        let reverse = c.tcp(443, 51000, Payload.serverHello, Payload.clientHello)
        XCTAssertEqual(c.name(reverse), "ssl")
        XCTAssertEqual(reverse?.first, .down)
        XCTAssertEqual(reverse?.second, .up)
        // SSLv2-compatible ClientHello (the second alternative) with a v3 ServerHello.
        let v2Hello: [UInt8] = [0x80, 0x2E, 0x01, 0x03, 0x01] + Array(repeating: 0, count: 20)
        XCTAssertEqual(c.name(c.tcp(51000, 443, v2Hello, Payload.serverHello)), "ssl")
    }

    func testSSHAndIRC() {
        let c = classifier!
        let ssh = c.tcp(51000, 22, Payload.sshClient, Payload.sshServer)
        XCTAssertEqual(c.name(ssh), "ssh")
        // up and down are the same pattern: (buf1 ~ up, buf2 ~ down) is tried first.
        XCTAssertEqual(ssh?.first, .up)
        XCTAssertEqual(ssh?.second, .down)
        // The IRC client's "USER …\r\n" also satisfies ftp's up and pop's
        // down, but neither's other side.
        XCTAssertEqual(c.name(c.tcp(51000, 6667, Payload.ircClient, Payload.ircServer)), "irc")
    }

    func testMailAndFTP() {
        let c = classifier!
        // "220 …" + EHLO: only smtp's up matches EHLO.
        let smtp = c.tcp(51000, 25, Payload.ehlo, Payload.smtpGreeting)
        XCTAssertEqual(c.name(smtp), "smtp")
        XCTAssertEqual(smtp?.first, .up)
        // "220 …" + USER: ftp and smtp share down '^220 .+\r\n' and both
        // are nice 100, but only ftp's up matches USER, so ftp wins on
        // pattern, not on order. pop's down '^USER' matches too, but its
        // up needs "+OK".
        let ftp = c.tcp(51000, 21, Payload.user, Payload.ftpGreeting)
        XCTAssertEqual(c.name(ftp), "ftp")
        XCTAssertEqual(ftp?.first, .up)
        XCTAssertEqual(c.name(c.tcp(21, 51000, Payload.ftpGreeting, Payload.user)), "ftp")
        // POP3: the example rule calls the *server's* greeting "up", so the
        // client's bytes are labelled down. Reproduced as written.
        let pop = c.tcp(51000, 110, Payload.user, Payload.popGreeting)
        XCTAssertEqual(c.name(pop), "pop")
        XCTAssertEqual(c.rules[pop!.ruleIndex].interface, "smtp")
        XCTAssertEqual(pop?.first, .down)
        XCTAssertEqual(pop?.second, .up)
    }

    func testSyslogTCPCatchesOneSidedFlowsOnPort514() {
        let c = classifier!
        let result = c.tcp(51000, 514, Array(Payload.syslog.utf8), [])
        XCTAssertEqual(c.name(result), "syslog_tcp")
        XCTAssertEqual(result?.first, .up)
        // RFC 6587 octet counting.
        XCTAssertEqual(c.name(c.tcp(514, 51000, [], Array(("87 " + Payload.syslog).utf8))), "syslog_tcp")
        // Another port: not syslog; falls through to tcp_default.
        XCTAssertEqual(c.name(c.tcp(51000, 1514, Array(Payload.syslog.utf8), [])), "tcp_default")
    }

    func testDNSOverTCPIsPortOnlyAndLast() {
        let c = classifier!
        let dns = c.tcp(51000, 53, Payload.dnsQueryTCP, Payload.dnsResponseTCP)
        XCTAssertEqual(c.name(dns), "dns_tcp")
        XCTAssertEqual(dns?.first, .unmatched)
        XCTAssertEqual(dns?.second, .unmatched)
        XCTAssertEqual(c.name(c.tcp(53, 51000, Payload.dnsResponseTCP, Payload.dnsQueryTCP)), "dns_tcp")
        // A regex rule at the same nice (http_client, 200) is tried before
        // the port-only dns_tcp, though "dns_tcp" sorts first.
        XCTAssertEqual(c.name(c.tcp(51000, 53, Array(Payload.httpRequest.utf8), Payload.dnsResponseTCP)), "http_client")
        // And a lower nice beats it outright.
        XCTAssertEqual(c.name(c.tcp(51000, 53, Payload.sshClient, Payload.sshServer)), "ssh")
        // Off port 53 the DNS bytes match nothing.
        XCTAssertEqual(c.name(c.tcp(51000, 54, Payload.dnsQueryTCP, Payload.dnsResponseTCP)), "tcp_default")
    }

    func testUnknownTCP() throws {
        let unknown: [UInt8] = [0xDE, 0xAD, 0xBE, 0xEF]
        let result = classifier.tcp(51000, 9999, unknown, unknown)
        XCTAssertEqual(classifier.name(result), "tcp_default")
        XCTAssertEqual(result?.first, .unmatched)
        XCTAssertEqual(result?.second, .unmatched)
        let bare = try FabsExample.classifier(defaults: false)
        XCTAssertNil(bare.tcp(51000, 9999, unknown, unknown))
        XCTAssertNil(bare.tcp(51000, 9999, [], []))
        // Both sides empty on an example port still finds the port-only rule.
        XCTAssertEqual(bare.name(bare.tcp(51000, 53, [], [])), "dns_tcp")
    }

    func testUDP() throws {
        let c = classifier!
        let syslog = c.udp(40000, 514, Payload.syslog)
        XCTAssertEqual(c.name(syslog), "syslog_udp")
        XCTAssertEqual(syslog?.matched, .up)
        // Either port may be 514.
        XCTAssertEqual(c.name(c.udp(514, 40000, Payload.syslog)), "syslog_udp")
        // Priority 192 is out of range (0…191).
        XCTAssertEqual(c.name(c.udp(40000, 514, "<192>x")), "udp_default")
        XCTAssertEqual(c.name(c.udp(40000, 5514, Payload.syslog)), "udp_default")

        for port: UInt16 in [53, 5353, 5355] {
            let dns = c.udp(40000, port, Payload.dnsQuery)
            XCTAssertEqual(c.name(dns), "dns_udp", "port \(port)")
            XCTAssertEqual(dns?.matched, .unmatched)
        }
        XCTAssertEqual(c.name(c.udp(53, 40000, Payload.dnsResponse)), "dns_udp")
        XCTAssertEqual(c.name(c.udp(40000, 5354, Payload.dnsQuery)), "udp_default")

        let dht = c.udp(6881, 40000, Payload.dhtPing)
        XCTAssertEqual(c.name(dht), "torrent_dht")
        XCTAssertEqual(dht?.matched, .up)
        // A DHT datagram to port 53: torrent_dht is nice 100, dns_udp 200.
        XCTAssertEqual(c.name(c.udp(40000, 53, Payload.dhtPing)), "torrent_dht")

        let unknown: [UInt8] = [0xDE, 0xAD, 0xBE, 0xEF]
        let fallback = c.udp(40000, 9999, unknown)
        XCTAssertEqual(c.name(fallback), "udp_default")
        XCTAssertEqual(fallback?.matched, .unmatched)
        // An empty datagram is classified too.
        XCTAssertEqual(c.name(c.udp(40000, 9999, [])), "udp_default")
        XCTAssertEqual(c.name(c.udp(40000, 53, [])), "dns_udp")

        let bare = try FabsExample.classifier(defaults: false)
        XCTAssertNil(bare.udp(40000, 9999, unknown))
        XCTAssertNil(bare.udp(40000, 9999, []))
        XCTAssertEqual(bare.name(bare.udp(40000, 514, Payload.syslog)), "syslog_udp")
    }

    func testTCPAndUDPRulesStaySeparate() {
        let c = classifier!
        // A syslog message over TCP on 514 is syslog_tcp, never syslog_udp;
        // UDP DNS rules never classify TCP and vice versa.
        XCTAssertEqual(c.name(c.tcp(51000, 5353, Payload.dnsQueryTCP, [])), "tcp_default")
        XCTAssertEqual(c.name(c.udp(40000, 80, Payload.httpRequest)), "udp_default")
    }
}
