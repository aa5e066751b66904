import Wire

/// Protocol-correct application messages for generated sessions.
enum ApplicationMessages {
    static func http(host: String, path: String, bodyLength: Int, rng: inout SplitMix64) -> (request: [UInt8], response: [UInt8]) {
        let request = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: flowtap-generate/1\r\nAccept: */*\r\n\r\n"
        let body = (0 ..< bodyLength).map { i in UInt8(ascii: "a") + UInt8(i % 26) }
        let response = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: \(bodyLength)\r\n\r\n"
        return (Array(request.utf8), Array(response.utf8) + body)
    }

    /// RFC 1035 §4: one question; the response carries one A record.
    static func dns(id: UInt16, name: String, answer: UInt32) -> (query: [UInt8], response: [UInt8]) {
        var qname: [UInt8] = []
        for label in name.split(separator: ".") {
            qname.append(UInt8(label.utf8.count))
            qname += Array(label.utf8)
        }
        qname.append(0)
        let question = qname + [0, 1, 0, 1] // type A, class IN
        let query = PacketBuilder.be16(id) + [0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0] + question
        let response = PacketBuilder.be16(id) + [0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0] + question
            + [0xC0, 0x0C, 0, 1, 0, 1] + PacketBuilder.be32(300) + [0, 4] + PacketBuilder.be32(answer)
        return (query, response)
    }

    /// A TLS 1.3-style ClientHello (RFC 8446 §4.1.2) with SNI, ALPN and supported_versions, in one record.
    static func tlsClientHello(serverName: String, rng: inout SplitMix64) -> [UInt8] {
        func vector16(_ b: [UInt8]) -> [UInt8] { PacketBuilder.be16(UInt16(b.count)) + b }
        let name = Array(serverName.utf8)
        let sni = vector16([0] + vector16(name))
        let alpn = vector16([2] + Array("h2".utf8) + [8] + Array("http/1.1".utf8))
        let versions: [UInt8] = [4, 0x03, 0x04, 0x03, 0x03]
        let groups = vector16([0x00, 0x1D, 0x00, 0x17])
        var extensions: [UInt8] = []
        extensions += [0x00, 0x00] + vector16(sni)
        extensions += [0x00, 0x10] + vector16(alpn)
        extensions += [0x00, 0x2B] + vector16(versions)
        extensions += [0x00, 0x0A] + vector16(groups)
        let ciphers: [UInt8] = [0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xC0, 0x2F, 0xC0, 0x2B]
        var body: [UInt8] = [0x03, 0x03] + rng.bytes(32) + [32] + rng.bytes(32)
        body += vector16(ciphers) + [1, 0] + vector16(extensions)
        let handshake = [1] + Array(PacketBuilder.be32(UInt32(body.count)).dropFirst()) + body
        return [0x16, 0x03, 0x01] + vector16(handshake)
    }

    /// ServerHello (TLS 1.3 negotiated through supported_versions), then opaque application data.
    static func tlsServerFlight(rng: inout SplitMix64, dataLength: Int) -> [UInt8] {
        func vector16(_ b: [UInt8]) -> [UInt8] { PacketBuilder.be16(UInt16(b.count)) + b }
        let extensions: [UInt8] = [0x00, 0x2B, 0x00, 0x02, 0x03, 0x04]
        let body: [UInt8] = [0x03, 0x03] + rng.bytes(32) + [32] + rng.bytes(32) + [0x13, 0x01, 0] + vector16(extensions)
        let handshake = [2] + Array(PacketBuilder.be32(UInt32(body.count)).dropFirst()) + body
        var out = [0x16, 0x03, 0x03] + vector16(handshake)
        out += [0x14, 0x03, 0x03, 0x00, 0x01, 0x01]
        var remaining = dataLength
        while remaining > 0 {
            let n = min(remaining, 16_384)
            out += [0x17, 0x03, 0x03] + vector16(rng.bytes(n))
            remaining -= n
        }
        return out
    }
}
