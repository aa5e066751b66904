import PacketCore

/// Why a TLS direction stopped being analysed. Counted per code.
public enum TLSError: UInt8, CaseIterable, Sendable, Error {
    /// A record header that is not TLS (content type outside 20…24, major version not 3),
    /// including SSLv2-style hellos.
    case notTLS
    /// The first handshake message of the direction was not the expected hello,
    /// or a non-handshake record came before it.
    case unexpectedMessage
    /// A record or handshake message larger than the buffering limits.
    case tooLarge
    /// A hello whose vectors do not fit their lengths.
    case malformedHello

    public var name: String {
        switch self {
        case .notTLS: "not_tls"
        case .unexpectedMessage: "unexpected_message"
        case .tooLarge: "too_large"
        case .malformedHello: "malformed_hello"
        }
    }
}

/// The ClientHello fields the record and the fingerprints need (RFC 8446 §4.1.2,
/// RFC 5246 §7.4.1.2). Lists keep wire order and GREASE values.
public struct TLSClientHello: Sendable, Equatable {
    public var legacyVersion: UInt16 = 0
    public var ciphers: [UInt16] = []
    /// Extension types in wire order.
    public var extensions: [UInt16] = []
    /// server_name host_name (RFC 6066 §3), raw bytes.
    public var serverName: [UInt8]? = nil
    /// ALPN protocol names (RFC 7301 §3.1), raw bytes.
    public var alpn: [[UInt8]] = []
    /// supported_versions (RFC 8446 §4.2.1).
    public var supportedVersions: [UInt16] = []
    /// supported_groups (RFC 8446 §4.2.7; "elliptic curves" in JA3).
    public var groups: [UInt16] = []
    /// ec_point_formats (RFC 8422 §5.1.2).
    public var pointFormats: [UInt8] = []
    /// signature_algorithms (RFC 8446 §4.2.3).
    public var signatureAlgorithms: [UInt16] = []

    public init() {}

    /// Parses a ClientHello body (after the 4-byte handshake header).
    public static func parse(_ body: UnsafeRawBufferPointer) -> TLSClientHello? {
        var r = ByteCursor(body)
        var hello = TLSClientHello()
        guard let version = r.u16(), r.skip(32), // legacy_version, random
              let session = r.vector(lengthBytes: 1), session.count <= 32,
              let suites = r.vector(lengthBytes: 2), suites.count % 2 == 0,
              r.vector(lengthBytes: 1) != nil // legacy_compression_methods
        else { return nil }
        hello.legacyVersion = version
        hello.ciphers = u16List(suites)
        let parsed = forEachExtension(&r) { type, d in
            hello.extensions.append(type)
            switch type {
            case 0: // server_name, RFC 6066 §3
                guard let list = d.vector(lengthBytes: 2) else { return false }
                var l = ByteCursor(list)
                while !l.atEnd {
                    guard let nameType = l.u8(), let name = l.vector(lengthBytes: 2) else { return false }
                    if nameType == 0 && hello.serverName == nil { hello.serverName = Array(name) }
                }
            case 16: // ALPN, RFC 7301 §3.1
                guard let list = d.vector(lengthBytes: 2) else { return false }
                var l = ByteCursor(list)
                while !l.atEnd {
                    guard let name = l.vector(lengthBytes: 1) else { return false }
                    hello.alpn.append(Array(name))
                }
            case 43: // supported_versions, RFC 8446 §4.2.1 (ClientHello form)
                guard let list = d.vector(lengthBytes: 1), list.count % 2 == 0 else { return false }
                hello.supportedVersions = u16List(list)
            case 10: // supported_groups
                guard let list = d.vector(lengthBytes: 2), list.count % 2 == 0 else { return false }
                hello.groups = u16List(list)
            case 11: // ec_point_formats
                guard let list = d.vector(lengthBytes: 1) else { return false }
                hello.pointFormats = Array(list)
            case 13: // signature_algorithms
                guard let list = d.vector(lengthBytes: 2), list.count % 2 == 0 else { return false }
                hello.signatureAlgorithms = u16List(list)
            default:
                break
            }
            return true
        }
        return parsed ? hello : nil
    }
}

/// The ServerHello fields (RFC 8446 §4.1.3, RFC 5246 §7.4.1.3).
public struct TLSServerHello: Sendable, Equatable {
    public var legacyVersion: UInt16 = 0
    public var cipher: UInt16 = 0
    public var extensions: [UInt16] = []
    /// selected_version from supported_versions (RFC 8446 §4.2.1), if sent.
    public var selectedVersion: UInt16? = nil
    /// The one ALPN protocol the server chose (RFC 7301 §3.1).
    public var alpn: [UInt8]? = nil

    public init() {}

    /// The negotiated version: supported_versions wins over legacy_version.
    public var version: UInt16 { selectedVersion ?? legacyVersion }

    public static func parse(_ body: UnsafeRawBufferPointer) -> TLSServerHello? {
        var r = ByteCursor(body)
        var hello = TLSServerHello()
        guard let version = r.u16(), r.skip(32) else { return nil }
        // TLS 1.3 drafts before 22 (0x7f00 | draft) sent no session id or compression method.
        let early = version >> 8 == 0x7F && version & 0xFF < 22
        if !early {
            guard let session = r.vector(lengthBytes: 1), session.count <= 32 else { return nil }
        }
        guard let cipher = r.u16(), early || r.u8() != nil // legacy_compression_method
        else { return nil }
        hello.legacyVersion = version
        hello.cipher = cipher
        let parsed = forEachExtension(&r) { type, d in
            hello.extensions.append(type)
            switch type {
            case 43: // ServerHello form: one selected_version
                guard let selected = d.u16() else { return false }
                hello.selectedVersion = selected
            case 16:
                guard let list = d.vector(lengthBytes: 2) else { return false }
                var l = ByteCursor(list)
                guard let name = l.vector(lengthBytes: 1) else { return false }
                hello.alpn = Array(name)
            default:
                break
            }
            return true
        }
        return parsed ? hello : nil
    }
}

/// Walks the extensions block that ends a hello (RFC 8446 §4.2), calling
/// `each(type, data)` per extension. Extensions are optional before TLS 1.3
/// (RFC 5246 §7.4.1.2), so a hello ending here is fine. False when the block
/// is malformed, bytes follow it, or `each` refuses an extension.
private func forEachExtension(_ r: inout ByteCursor, _ each: (UInt16, inout ByteCursor) -> Bool) -> Bool {
    guard !r.atEnd else { return true }
    guard let extensions = r.vector(lengthBytes: 2), r.atEnd else { return false }
    var e = ByteCursor(extensions)
    while !e.atEnd {
        guard let type = e.u16(), let data = e.vector(lengthBytes: 2) else { return false }
        var d = ByteCursor(data)
        guard each(type, &d) else { return false }
    }
    return true
}

private func u16List(_ raw: UnsafeRawBufferPointer) -> [UInt16] {
    var out: [UInt16] = []
    out.reserveCapacity(raw.count / 2)
    var at = 0
    while at + 1 < raw.count {
        out.append(raw.beUInt16(at: at))
        at += 2
    }
    return out
}
