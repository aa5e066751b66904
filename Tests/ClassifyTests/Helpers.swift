import Classify

extension Classifier {
    func tcp(_ port1: UInt16, _ port2: UInt16, _ buffer1: [UInt8], _ buffer2: [UInt8]) -> Classification? {
        buffer1.withUnsafeBytes { b1 in
            buffer2.withUnsafeBytes { b2 in
                classifyTCP(port1: port1, port2: port2, buffer1: b1, buffer2: b2)
            }
        }
    }

    func tcp(_ port1: UInt16, _ port2: UInt16, _ text1: String, _ text2: String) -> Classification? {
        tcp(port1, port2, Array(text1.utf8), Array(text2.utf8))
    }

    func udp(_ port1: UInt16, _ port2: UInt16, _ payload: [UInt8]) -> DatagramClassification? {
        payload.withUnsafeBytes { classifyUDP(port1: port1, port2: port2, payload: $0) }
    }

    func udp(_ port1: UInt16, _ port2: UInt16, _ text: String) -> DatagramClassification? {
        udp(port1, port2, Array(text.utf8))
    }

    /// The matched rule's section name, or nil.
    func name(_ result: Classification?) -> String? {
        result.map { rules[$0.ruleIndex].name }
    }

    func name(_ result: DatagramClassification?) -> String? {
        result.map { rules[$0.ruleIndex].name }
    }
}

/// Typical first bytes of common protocols.
enum Payload {
    static let httpRequest = "GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"
    static let httpResponse = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello"
    static let connectRequest = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    static let connectResponse = "HTTP/1.1 200 Connection established\r\n\r\n"
    static let trackerRequest = "GET /announce?info_hash=%124Vx%9A&peer_id=-qB4250-abcdefghijkl&port=6881 HTTP/1.1\r\nHost: tracker.example.org\r\n\r\n"
    static let switchingProtocols = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    static let sshClient = "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n"
    static let sshServer = "SSH-2.0-OpenSSH_8.9p1\r\n"
    static let smtpGreeting = "220 mail.example.com ESMTP Postfix\r\n"
    static let ehlo = "EHLO client.example.org\r\n"
    static let ftpGreeting = "220 (vsFTPd 3.0.5)\r\n"
    static let user = "USER anonymous\r\n"
    static let popGreeting = "+OK POP3 server ready\r\n"
    static let ircClient = "USER bob 0 * :Bob\r\nNICK bob\r\n"
    static let ircServer = ":irc.example.net 001 bob :Welcome to the network bob\r\n"
    static let syslog = "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"

    /// TLS 1.2 record with a ClientHello (RFC 8446 §4.1.2 layout); the
    /// record length 0x020a holds a newline byte, which '.' must match.
    static let clientHello: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x0A, 0x01, 0x00, 0x02, 0x06, 0x03, 0x03] + Array(repeating: 0x5A, count: 32)
    static let serverHello: [UInt8] = [0x16, 0x03, 0x03, 0x00, 0x5A, 0x02, 0x00, 0x00, 0x56, 0x03, 0x03] + Array(repeating: 0x11, count: 32)

    /// DNS query for example.com A (RFC 1035 §4.1), id 0x1234.
    static let dnsQuery: [UInt8] = [
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x07, 0x65, 0x78, 0x61, 0x6D, 0x70, 0x6C, 0x65, 0x03, 0x63, 0x6F, 0x6D, 0x00,
        0x00, 0x01, 0x00, 0x01,
    ]
    static let dnsResponse: [UInt8] = [0x12, 0x34, 0x81, 0x80, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00] + Array(dnsQuery[12...])
        + [0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0E, 0x10, 0x00, 0x04, 93, 184, 216, 34]
    /// DNS over TCP: a two-byte length prefix (RFC 1035 §4.2.2).
    static let dnsQueryTCP: [UInt8] = [0x00, UInt8(dnsQuery.count)] + dnsQuery
    static let dnsResponseTCP: [UInt8] = [0x00, UInt8(dnsResponse.count)] + dnsResponse

    /// BitTorrent DHT ping query (BEP 5), bencoded.
    static let dhtPing = "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"
}
