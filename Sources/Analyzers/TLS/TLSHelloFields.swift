import Outputs
/// The parts of a record shared by the TLS and QUIC analyzers, so both describe endpoints, a
/// ClientHello and a ServerHello the same way (numbers as on the wire, GREASE removed).
extension JSONWriter {
    /// Starts an endpoint object: `"client":{"ip":…,"port":…`.
    mutating func beginEndpoint(_ key: StaticString, ip: String, port: UInt16) {
        beginObject(key)
        string("ip", ip)
        number("port", Int(port))
    }

    /// sni?, alpn[], versions[], legacy_version, ciphers[], extensions[], groups[], ja3, ja3_hash, ja4
    /// (JA4's protocol letter "q" when the hello came over QUIC; `ja4` when the caller has it already).
    mutating func clientHelloFields(_ hello: TLSClientHello, quic: Bool = false, ja4: String? = nil) {
        if let sni = hello.serverName { string("sni", sni) }
        beginArray("alpn")
        for name in hello.alpn { string(nil, name) }
        endArray()
        tlsNumbers("versions", hello.supportedVersions)
        number("legacy_version", Int(hello.legacyVersion))
        tlsNumbers("ciphers", hello.ciphers)
        tlsNumbers("extensions", hello.extensions)
        tlsNumbers("groups", hello.groups)
        let ja3 = TLSFingerprint.ja3(hello)
        string("ja3", ja3)
        string("ja3_hash", TLSFingerprint.md5(ja3))
        string("ja4", ja4 ?? TLSFingerprint.ja4(hello, quic: quic))
    }

    /// version, cipher, alpn?, extensions[], ja3s, ja3s_hash
    mutating func serverHelloFields(_ hello: TLSServerHello) {
        number("version", Int(hello.version))
        if let name = TLSNames.version(hello.version) { string("version_name", name) }
        number("cipher", Int(hello.cipher))
        if let name = TLSNames.cipherSuite(hello.cipher) { string("cipher_name", name) }
        if let alpn = hello.alpn { string("alpn", alpn) }
        tlsNumbers("extensions", hello.extensions)
        let ja3s = TLSFingerprint.ja3s(hello)
        string("ja3s", ja3s)
        string("ja3s_hash", TLSFingerprint.md5(ja3s))
    }

    /// A decimal array with GREASE values (RFC 8701) left out.
    mutating func tlsNumbers(_ key: StaticString, _ values: [UInt16]) {
        beginArray(key)
        for v in values where !TLSFingerprint.isGREASE(v) { number(nil, Int(v)) }
        endArray()
    }
}
