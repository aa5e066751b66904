@testable import Analyzers
import Crypto
import Foundation
import TestSupport
import XCTest

private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

/// A QUIC variable-length integer (RFC 9000 §16) in its shortest form.
private func varint(_ v: UInt64) -> [UInt8] {
    switch v {
    case ..<0x40: [UInt8(v)]
    case ..<0x4000: [UInt8(0x40 | v >> 8), UInt8(v & 0xFF)]
    case ..<0x4000_0000: [UInt8(0x80 | v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    default: (0 ..< 8).map { i in UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64(i))) | (i == 0 ? 0xC0 : 0) }
    }
}

private func cryptoFrame(offset: Int, _ data: ArraySlice<UInt8>) -> [UInt8] {
    [0x06] + varint(UInt64(offset)) + varint(UInt64(data.count)) + Array(data)
}

/// RFC 9001 A.2's CRYPTO frame payload: the ClientHello (241 bytes) for "example.com", ALPN "alpn".
private let rfcClientHelloFrame = hexBytes(
    "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868"
        + "04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578"
        + "616d706c652e636f6dff01000100000a00080006001d00170018001000070005"
        + "04616c706e000500050100000000003300260024001d00209370b2c9caa47fba"
        + "baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400"
        + "0d0010000e0403050306030203080408050806002d00020101001c0002400100"
        + "3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000"
        + "75300901100f088394c8f03e51570806048000ffff")
/// The ClientHello handshake message inside it (after type 0x06, offset 0x00, length 0x40f1).
private let rfcClientHello = Array(rfcClientHelloFrame[4...])

/// RFC 9001 A.3 / RFC 9369 A.3: the server Initial's payload, an ACK frame then a CRYPTO frame with the ServerHello.
private let rfcServerPayload = hexBytes(
    "02000000000600405a020000560303eefce7f7b37ba1d1632e96677825ddf739"
        + "88cfc79825df566dc5430b9a045a1200130100002e00330024001d00209d3c94"
        + "0d89690b84d08a60993c144eca684d1081287c834d5311bcf32bb9da1a002b00"
        + "020304")
private let rfcServerHello = Array(rfcServerPayload[9...])

private let v1ServerInitial = hexBytes(
    "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a"
        + "5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3"
        + "dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84"
        + "022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4"
        + "2158407dd074ee")
private let v2ServerInitial = hexBytes(
    "dc6b3343cf0008f067a5502a4262b5004075d92faaf16f05d8a4398c47089698"
        + "baeea26b91eb761d9b89237bbf87263017915358230035f7fd3945d88965cf17"
        + "f9af6e16886c61bfc703106fbaf3cb4cfa52382dd16a393e42757507698075b2"
        + "c984c707f0a0812d8cd5a6881eaf21ceda98f4bd23f6fe1a3e2c43edd9ce7ca8"
        + "4bed8521e2e140")
private let rfcDCID = hexBytes("8394c8f03e515708")
private let rfcServerSCID = hexBytes("f067a5502a4262b5")

/// Opens one packet with the analyzer's own header parser and unprotection.
private func openPacket(_ packet: [UInt8], keys: QUICPacketKeys, file: StaticString = #filePath, line: UInt = #line) throws
    -> QUICInitialProtection.Opened {
    var scratch: [UInt8] = []
    return try packet.withUnsafeBytes { raw in
        let header = try QUICLongHeader.parse(raw, at: 0).get()
        XCTAssertEqual(header.type, .initial, file: file, line: line)
        XCTAssertEqual(header.end, packet.count, file: file, line: line)
        return try QUICInitialProtection.open(packet: raw, pnOffset: header.pnOffset, keys: keys, largest: -1, header: &scratch).get()
    }
}

/// Builds a protected Initial packet with a 2-byte packet number, padded so the sample fits.
private func initialPacket(_ version: QUICVersion, dcid: [UInt8], scid: [UInt8], keyDCID: [UInt8]? = nil, client: Bool = true,
                           pn: UInt64, frames: [UInt8], token: [UInt8] = []) -> [UInt8] {
    let keys = QUICInitialProtection.keys(version: version, dcid: keyDCID ?? dcid)
    let payload = frames + [UInt8](repeating: 0, count: max(0, 20 - frames.count))
    var header: [UInt8] = [0xC1 | version.initialType << 4]
    header += withUnsafeBytes(of: version.wire.bigEndian) { Array($0) }
    header += [UInt8(dcid.count)] + dcid + [UInt8(scid.count)] + scid + varint(UInt64(token.count)) + token
    header += [0x40 | UInt8((2 + payload.count + 16) >> 8), UInt8((2 + payload.count + 16) & 0xFF)]
    header += [UInt8(pn >> 8 & 0xFF), UInt8(pn & 0xFF)]
    return QUICInitialProtection.seal(header: header, pnLength: 2, packetNumber: pn, payload: payload,
                                      keys: client ? keys.client : keys.server)!
}

/// A Retry packet (RFC 9000 §17.2.5) from the server; its integrity tag is not checked by the analyzer.
private func retryPacket(_ version: QUICVersion, dcid: [UInt8], scid: [UInt8]) -> [UInt8] {
    let type: UInt8 = (3 &+ version.initialType) & 0x03
    var p: [UInt8] = [0xC0 | type << 4]
    p += withUnsafeBytes(of: version.wire.bigEndian) { Array($0) }
    p += [UInt8(dcid.count)] + dcid + [UInt8(scid.count)] + scid
    return p + Array("token".utf8) + [UInt8](repeating: 0xAB, count: 16)
}

private final class Records {
    var lines: [String] = []
    func objects() throws -> [[String: Any]] {
        try lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }
}

private func analyzer(_ records: Records) -> QUICAnalyzer {
    let a = QUICAnalyzer { records.lines.append($0) }
    a.open(flow: 1, client: (ip: "192.0.2.1", port: 50000), server: (ip: "198.51.100.1", port: 443), vlan: nil, time: 0)
    return a
}

private func feed(_ a: QUICAnalyzer, _ datagram: [UInt8], fromClient: Bool, time: Double = 1) {
    datagram.withUnsafeBytes { a.datagram(flow: 1, fromClient: fromClient, bytes: $0, time: time) }
}

/// The record without its time, for comparing records made in different ways.
private func timeless(_ record: [String: Any]) -> NSDictionary {
    var r = record
    r["time"] = nil
    return r as NSDictionary
}

final class QUICTests: XCTestCase {
    // MARK: - RFC test vectors

    func testV1InitialKeysRFC9001A1() {
        let keys = QUICInitialProtection.keys(version: .v1, dcid: rfcDCID)
        XCTAssertEqual(hex(keys.client.secret), "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea")
        XCTAssertEqual(hex(keys.client.key), "1f369613dd76d5467730efcbe3b1a22d")
        XCTAssertEqual(hex(keys.client.iv), "fa044b2f42a3fd3b46fb255c")
        XCTAssertEqual(hex(keys.client.hp), "9f50449e04a0e810283a1e9933adedd2")
        XCTAssertEqual(hex(keys.server.secret), "3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b")
        XCTAssertEqual(hex(keys.server.key), "cf3a5331653c364c88f0f379b6067e37")
        XCTAssertEqual(hex(keys.server.iv), "0ac1493ca1905853b0bba03e")
        XCTAssertEqual(hex(keys.server.hp), "c206b8d9b9f0f37644430b490eeaa314")
    }

    /// The HMAC and HKDF the Initial keys use, against swift-crypto's on random keys (shorter than, equal
    /// to and longer than the 64-byte block), messages and output lengths.
    func testKeyDerivationAgreesWithSwiftCrypto() {
        var random = SeededRandom(seed: 9001)
        for n in 0 ..< 500 {
            let key = (0 ..< [0, 1, 20, 32, 63, 64, 65, 100, 200][n % 9]).map { _ in UInt8.random(in: 0 ... 255, using: &random) }
            let message = (0 ..< Int.random(in: 0 ... 300, using: &random)).map { _ in UInt8.random(in: 0 ... 255, using: &random) }
            let split = Int.random(in: 0 ... message.count, using: &random)
            let expected = Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
            XCTAssertEqual(QUICKeyDerivation.Key(key).code(Array(message[..<split]), Array(message[split...])), expected, "key \(key.count), message \(message.count)")
            XCTAssertEqual(QUICKeyDerivation.extract(salt: key, inputKeyMaterial: message),
                           Array(HKDF<SHA256>.extract(inputKeyMaterial: SymmetricKey(data: message), salt: key)))
            let length = Int.random(in: 1 ... 32, using: &random)
            let expanded = HKDF<SHA256>.expand(pseudoRandomKey: SymmetricKey(data: key), info: message, outputByteCount: length)
            XCTAssertEqual(QUICKeyDerivation.Key(key).expand(info: message, length: length), expanded.withUnsafeBytes { Array($0) })
        }
    }

    func testV2InitialKeysRFC9369A1() {
        let keys = QUICInitialProtection.keys(version: .v2, dcid: rfcDCID)
        XCTAssertEqual(hex(keys.client.secret), "14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b")
        XCTAssertEqual(hex(keys.client.key), "8b1a0bc121284290a29e0971b5cd045d")
        XCTAssertEqual(hex(keys.client.iv), "91f73e2351d8fa91660e909f")
        XCTAssertEqual(hex(keys.client.hp), "45b95e15235d6f45a6b19cbcb0294ba9")
        XCTAssertEqual(hex(keys.server.secret), "0263db1782731bf4588e7e4d93b7463907cb8cd8200b5da55a8bd488eafc37c1")
        XCTAssertEqual(hex(keys.server.key), "82db637861d55e1d011f19ea71d5d2a7")
        XCTAssertEqual(hex(keys.server.iv), "dd13c276499c0249d3310652")
        XCTAssertEqual(hex(keys.server.hp), "edf6d05c83121201b436e16877593c3a")
    }

    /// RFC 9001 A.2 / RFC 9369 A.2: the protected client Initial decrypts to packet number 2 and a payload of
    /// the CRYPTO frame with the ClientHello, then PADDING to 1162 bytes.
    func testClientInitialVectorsDecrypt() throws {
        for (version, packet) in [(QUICVersion.v1, QUICVectors.v1ClientInitial), (.v2, QUICVectors.v2ClientInitial)] {
            XCTAssertEqual(packet.count, 1200)
            let opened = try openPacket(packet, keys: QUICInitialProtection.keys(version: version, dcid: rfcDCID).client)
            XCTAssertEqual(opened.packetNumber, 2)
            let payload = Array(opened.payload)
            XCTAssertEqual(payload.count, 1162)
            XCTAssertEqual(Array(payload.prefix(rfcClientHelloFrame.count)), rfcClientHelloFrame)
            XCTAssertTrue(payload[rfcClientHelloFrame.count...].allSatisfy { $0 == 0 })

            var summary = QUICFrames.Summary()
            var crypto: [(UInt64, [UInt8])] = []
            let error = payload.withUnsafeBytes { QUICFrames.walk($0, summary: &summary) { crypto.append(($0, Array($1))) } }
            XCTAssertNil(error)
            XCTAssertEqual(crypto.count, 1)
            XCTAssertEqual(crypto.first?.0, 0)
            XCTAssertEqual(crypto.first?.1, rfcClientHello)
            let hello = try XCTUnwrap(rfcClientHello.withUnsafeBytes { TLSClientHello.parse($0.slice(4, $0.count - 4)) })
            XCTAssertEqual(hello.serverName, Array("example.com".utf8))
            XCTAssertEqual(hello.alpn, [Array("alpn".utf8)])
            XCTAssertEqual(hello.ciphers, [0x1301, 0x1302])
            XCTAssertEqual(hello.supportedVersions, [0x0304])

            // Sealing the plaintext again gives the RFC's protected bytes exactly.
            let header = version == .v1 ? hexBytes("c300000001088394c8f03e5157080000449e00000002")
                : hexBytes("d36b3343cf088394c8f03e5157080000449e00000002")
            let sealed = QUICInitialProtection.seal(header: header, pnLength: 4, packetNumber: 2, payload: payload,
                                                    keys: QUICInitialProtection.keys(version: version, dcid: rfcDCID).client)
            XCTAssertEqual(sealed, packet)
        }
    }

    /// RFC 9001 A.3 / RFC 9369 A.3: the server Initial (ACK + CRYPTO with the ServerHello), packet number 1.
    func testServerInitialVectorsDecrypt() throws {
        for (version, packet) in [(QUICVersion.v1, v1ServerInitial), (.v2, v2ServerInitial)] {
            let opened = try openPacket(packet, keys: QUICInitialProtection.keys(version: version, dcid: rfcDCID).server)
            XCTAssertEqual(opened.packetNumber, 1)
            XCTAssertEqual(Array(opened.payload), rfcServerPayload)
            var summary = QUICFrames.Summary()
            var crypto: [[UInt8]] = []
            XCTAssertNil(rfcServerPayload.withUnsafeBytes { QUICFrames.walk($0, summary: &summary) { crypto.append(Array($1)) } })
            XCTAssertEqual(summary.ackFrames, 1)
            XCTAssertEqual(crypto, [rfcServerHello])
            let hello = try XCTUnwrap(rfcServerHello.withUnsafeBytes { TLSServerHello.parse($0.slice(4, $0.count - 4)) })
            XCTAssertEqual(hello.cipher, 0x1301)
            XCTAssertEqual(hello.version, 0x0304)
        }
    }

    func testWrongKeysOrVersionFailToDecrypt() throws {
        var otherDCID = rfcDCID
        otherDCID[0] ^= 1
        XCTAssertThrowsError(try openPacket(QUICVectors.v1ClientInitial, keys: QUICInitialProtection.keys(version: .v1, dcid: otherDCID).client))
        XCTAssertThrowsError(try openPacket(QUICVectors.v1ClientInitial, keys: QUICInitialProtection.keys(version: .v2, dcid: rfcDCID).client))
        XCTAssertThrowsError(try openPacket(QUICVectors.v1ClientInitial, keys: QUICInitialProtection.keys(version: .v1, dcid: rfcDCID).server))
    }

    func testPacketTypesPerVersion() {
        // RFC 9000 §17.2 Table 5 and RFC 9369 §3.2.
        XCTAssertEqual(QUICVersion.v1.packetType(0xC0), .initial)
        XCTAssertEqual(QUICVersion.v1.packetType(0xD0), .zeroRTT)
        XCTAssertEqual(QUICVersion.v1.packetType(0xE0), .handshake)
        XCTAssertEqual(QUICVersion.v1.packetType(0xF0), .retry)
        XCTAssertEqual(QUICVersion.v2.packetType(0xD0), .initial)
        XCTAssertEqual(QUICVersion.v2.packetType(0xE0), .zeroRTT)
        XCTAssertEqual(QUICVersion.v2.packetType(0xF0), .handshake)
        XCTAssertEqual(QUICVersion.v2.packetType(0xC0), .retry)
        XCTAssertEqual(QUICVersion.name(0x0000_0001), "1")
        XCTAssertEqual(QUICVersion.name(0x6B33_43CF), "2")
        XCTAssertEqual(QUICVersion.name(0xFF00_001D), "ff00001d")
        for wire: UInt32 in [0, 1, 2, 0x6B33_43CF, 0xFF00_0016, 0xFF00_0017, 0xFF00_001D, 0xFF00_0022, 0xFF00_0023, 0x5130_3436] {
            XCTAssertEqual(QUICVersion.isKnown(wire), QUICVersion.known(wire) != nil, "\(wire)")
        }
    }

    /// RFC 9000 A.3's example: largest 0xa82f30ea, truncated 0x9b32 in 16 bits → 0xa82f9b32.
    func testPacketNumberDecoding() {
        XCTAssertEqual(decodePacketNumber(largest: 0xA82F_30EA, truncated: 0x9B32, bits: 16), 0xA82F_9B32)
        XCTAssertEqual(decodePacketNumber(largest: -1, truncated: 2, bits: 32), 2)
        XCTAssertEqual(decodePacketNumber(largest: 0xFF, truncated: 0x01, bits: 8), 0x101)
        XCTAssertEqual(decodePacketNumber(largest: 0x101, truncated: 0xFF, bits: 8), 0xFF)
    }

    // MARK: - Analyzer records

    /// The RFC's client and server Initials through the analyzer: one record with both hellos.
    func testRecordFromRFCPackets() throws {
        for (version, client, server) in [("1", QUICVectors.v1ClientInitial, v1ServerInitial), ("2", QUICVectors.v2ClientInitial, v2ServerInitial)] {
            let records = Records()
            let a = analyzer(records)
            feed(a, client, fromClient: true)
            XCTAssertTrue(records.lines.isEmpty, "no record before the ServerHello")
            feed(a, server, fromClient: false, time: 2)
            a.close(flow: 1)
            let r = try XCTUnwrap(records.objects().first)
            XCTAssertEqual(records.lines.count, 1)
            XCTAssertEqual(r["type"] as? String, "quic")
            XCTAssertEqual(r["time"] as? Double, 2)
            XCTAssertEqual(r["version"] as? String, version)
            XCTAssertEqual(r["dcid"] as? String, "8394c8f03e515708")
            XCTAssertNil(r["retry"])
            let c = try XCTUnwrap(r["client"] as? [String: Any]), s = try XCTUnwrap(r["server"] as? [String: Any])
            XCTAssertEqual(c["ip"] as? String, "192.0.2.1")
            XCTAssertEqual(c["scid"] as? String, "")
            XCTAssertEqual(c["sni"] as? String, "example.com")
            XCTAssertEqual(c["alpn"] as? [String], ["alpn"])
            XCTAssertEqual(c["ciphers"] as? [Int], [4865, 4866])
            // JA4 part a by hand: q, TLS 1.3, SNI present, 2 ciphers, 11 extensions, ALPN "alpn" → "an".
            XCTAssertEqual((c["ja4"] as? String)?.prefix(10), "q13d0211an")
            XCTAssertEqual(s["scid"] as? String, "f067a5502a4262b5")
            // The specified top-level keys: the client's SCID and its hello's SNI, ALPN and JA4, equal to the nested ones.
            XCTAssertEqual(r["scid"] as? String, "")
            XCTAssertEqual(r["sni"] as? String, "example.com")
            XCTAssertEqual(r["alpn"] as? [String], ["alpn"])
            XCTAssertEqual((r["ja4"] as? String)?.prefix(10), "q13d0211an")
            XCTAssertEqual(r["ja4"] as? String, c["ja4"] as? String)
            XCTAssertEqual(s["cipher"] as? Int, 0x1301)
            XCTAssertEqual(s["version"] as? Int, 0x0304)
            XCTAssertEqual(a.counters.decrypted, 2)
            XCTAssertEqual(a.counters.errors, 0)
            XCTAssertEqual(a.counters[.initial], 2)
        }
    }

    /// JA4 over QUIC only changes the protocol letter (JA4 spec: "q" for QUIC).
    func testJA4ProtocolLetter() throws {
        let hello = try XCTUnwrap(rfcClientHello.withUnsafeBytes { TLSClientHello.parse($0.slice(4, $0.count - 4)) })
        let tcp = TLSFingerprint.ja4(hello), quic = TLSFingerprint.ja4(hello, quic: true)
        XCTAssertEqual(tcp.first, "t")
        XCTAssertEqual(quic.first, "q")
        XCTAssertEqual(tcp.dropFirst(), quic.dropFirst())
    }

    /// The ClientHello cut into CRYPTO frames across packets: every delivery order of the packets, and the
    /// frames of one packet in reverse, give the same record as the whole hello in one packet.
    func testCryptoFramesInEveryOrderGiveTheSameRecord() throws {
        let dcid = hexBytes("0011223344556677"), scid = hexBytes("a1a2a3a4")
        let server = initialPacket(.v1, dcid: scid, scid: hexBytes("b1b2b3b4b5"), keyDCID: dcid, client: false, pn: 0,
                                   frames: [0x06, 0x00] + varint(UInt64(rfcServerHello.count)) + rfcServerHello)
        func record(_ datagrams: [[UInt8]]) throws -> NSDictionary {
            let records = Records()
            let a = analyzer(records)
            for d in datagrams { feed(a, d, fromClient: true) }
            feed(a, server, fromClient: false)
            a.close(flow: 1)
            XCTAssertEqual(records.lines.count, 1)
            XCTAssertEqual(a.counters.errors, 0)
            return try timeless(XCTUnwrap(records.objects().first))
        }
        let whole = try record([initialPacket(.v1, dcid: dcid, scid: scid, pn: 0, frames: cryptoFrame(offset: 0, rfcClientHello[...]))])
        XCTAssertEqual((whole["client"] as? [String: Any])?["sni"] as? String, "example.com")

        let cuts = [0, 3, 50, 51, 160, rfcClientHello.count]
        let pieces = (0 ..< cuts.count - 1).map { cryptoFrame(offset: cuts[$0], rfcClientHello[cuts[$0] ..< cuts[$0 + 1]]) }
        func permutations(_ items: [Int]) -> [[Int]] {
            items.count <= 1 ? [items] : items.indices.flatMap { i in
                permutations(Array(items[..<i] + items[(i + 1)...])).map { [items[i]] + $0 }
            }
        }
        var orders = 0
        for order in permutations(Array(pieces.indices)) {
            // Packet numbers follow sending order; the frames go in the order the permutation picked.
            let datagrams = order.enumerated().map { n, piece in
                initialPacket(.v1, dcid: dcid, scid: scid, pn: UInt64(n), frames: pieces[piece])
            }
            XCTAssertEqual(try record(datagrams), whole, "order \(order)")
            orders += 1
        }
        XCTAssertEqual(orders, 120)
        // All pieces in one packet, last first; and overlapping repeats of the first piece.
        XCTAssertEqual(try record([initialPacket(.v1, dcid: dcid, scid: scid, pn: 0, frames: pieces.reversed().flatMap { $0 })]), whole)
        XCTAssertEqual(try record([initialPacket(.v1, dcid: dcid, scid: scid, pn: 0, frames: cryptoFrame(offset: 0, rfcClientHello[0 ..< 60])),
                                   initialPacket(.v1, dcid: dcid, scid: scid, pn: 1, frames: cryptoFrame(offset: 10, rfcClientHello[10...]))]), whole)
    }

    /// A greased version (0x?a?a?a?a, RFC 9000 §15) protects its Initials as v1: decrypted, as Wireshark does.
    func testReservedVersionsDecryptWithV1Keys() throws {
        let dcid = hexBytes("0011223344556677"), scid = hexBytes("a1a2a3a4")
        for wire: UInt32 in [0x0A0A_0A0A, 0x1A2A_3A4A, 0xFAFA_FAFA] {
            XCTAssertTrue(QUICVersion.isKnown(wire))
            let greased = try XCTUnwrap(QUICVersion.known(wire))
            let client = initialPacket(greased, dcid: dcid, scid: scid, pn: 0, frames: cryptoFrame(offset: 0, rfcClientHello[...]))
            let server = initialPacket(greased, dcid: scid, scid: hexBytes("b1b2b3b4b5"), keyDCID: dcid, client: false, pn: 0,
                                       frames: [0x06, 0x00] + varint(UInt64(rfcServerHello.count)) + rfcServerHello)
            let records = Records()
            let a = analyzer(records)
            feed(a, client, fromClient: true)
            feed(a, server, fromClient: false)
            a.close(flow: 1)
            let r = try XCTUnwrap(records.objects().first, "version \(String(wire, radix: 16))")
            XCTAssertEqual(r["sni"] as? String, "example.com")
            XCTAssertEqual(a.counters.decrypted, 2)
            XCTAssertEqual(a.counters.unknownVersion, 0)
        }
        // Not reserved: 0x0a0a0a0b, 0x1a2a3a4b stay unknown.
        XCTAssertNil(QUICVersion.known(0x0A0A_0A0B))
        XCTAssertNil(QUICVersion.known(0x1A2A_3A4B))
    }

    /// Several Initial packets coalesced in one datagram with a Handshake packet after them (RFC 9000 §12.2);
    /// short headers and other packet types are counted.
    func testCoalescedPacketsAndCounts() throws {
        let dcid = hexBytes("0102030405060708"), scid = hexBytes("0a0b")
        let half = rfcClientHello.count / 2
        var datagram = initialPacket(.v2, dcid: dcid, scid: scid, pn: 0, frames: cryptoFrame(offset: 0, rfcClientHello[..<half]))
        datagram += initialPacket(.v2, dcid: dcid, scid: scid, pn: 1, frames: [0x01] + cryptoFrame(offset: half, rfcClientHello[half...]))
        // A Handshake packet (v2 type 3) with a 20-byte body; it is skipped by its Length.
        datagram += [0xF1, 0x6B, 0x33, 0x43, 0xCF, 0x04, 1, 2, 3, 4, 0x00, 0x14] + [UInt8](repeating: 0x55, count: 20)
        let records = Records()
        let a = analyzer(records)
        feed(a, datagram, fromClient: true)
        feed(a, [0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9], fromClient: false) // a short header
        a.close(flow: 1, time: 5)
        XCTAssertEqual(a.counters[.initial], 2)
        XCTAssertEqual(a.counters[.handshake], 1)
        XCTAssertEqual(a.counters.shortHeader, 1)
        XCTAssertEqual(a.counters.decrypted, 2)
        XCTAssertEqual(a.counters.clientHellos, 1)
        let r = try XCTUnwrap(records.objects().first)
        XCTAssertEqual(r["version"] as? String, "2")
        XCTAssertEqual((r["client"] as? [String: Any])?["sni"] as? String, "example.com")
        XCTAssertEqual((r["client"] as? [String: Any])?["scid"] as? String, "0a0b")
        XCTAssertEqual(r["scid"] as? String, "0a0b")
        XCTAssertEqual(r["sni"] as? String, "example.com")
        XCTAssertEqual(r["ja4"] as? String, (r["client"] as? [String: Any])?["ja4"] as? String)
        XCTAssertNil((r["server"] as? [String: Any])?["cipher"], "no ServerHello seen")
    }

    /// A Retry makes the client start over with new keys: two records, the second for the Retry's connection ID.
    func testRetryStartsANewAttempt() throws {
        let first = hexBytes("1111111111111111"), retried = hexBytes("22222222"), scid = hexBytes("c0c0")
        let records = Records()
        let a = analyzer(records)
        feed(a, initialPacket(.v1, dcid: first, scid: scid, pn: 0, frames: cryptoFrame(offset: 0, rfcClientHello[...])), fromClient: true)
        feed(a, retryPacket(.v1, dcid: scid, scid: retried), fromClient: false)
        feed(a, initialPacket(.v1, dcid: retried, scid: scid, pn: 1, frames: cryptoFrame(offset: 0, rfcClientHello[...]), token: Array("token".utf8)),
             fromClient: true)
        feed(a, initialPacket(.v1, dcid: scid, scid: hexBytes("5e5e"), keyDCID: retried, client: false, pn: 0,
                              frames: [0x06, 0x00] + varint(UInt64(rfcServerHello.count)) + rfcServerHello), fromClient: false)
        a.close(flow: 1)
        let r = try records.objects()
        XCTAssertEqual(r.count, 2)
        XCTAssertEqual(r.first?["dcid"] as? String, "1111111111111111")
        XCTAssertNil(r.first?["retry"])
        XCTAssertEqual(r.last?["dcid"] as? String, "22222222")
        XCTAssertEqual(r.last?["retry"] as? Bool, true)
        XCTAssertEqual((r.last?["server"] as? [String: Any])?["scid"] as? String, "5e5e")
        // Each attempt's top-level SCID is the client's, never the server's.
        XCTAssertEqual(r.first?["scid"] as? String, "c0c0")
        XCTAssertEqual(r.last?["scid"] as? String, "c0c0")
        XCTAssertEqual((r.last?["server"] as? [String: Any])?["cipher"] as? Int, 0x1301)
        XCTAssertEqual(a.counters[.retry], 1)
        XCTAssertEqual(a.counters.rekeys, 1)
        XCTAssertEqual(a.counters.errors, 0)
    }

    /// A capture that starts after the client's first Initial: the client already talks to the server's
    /// connection ID, and the keys come from the packet's own DCID only when nothing decrypted yet.
    func testKeysFromALaterDCIDWhenTheFirstDoesNotDecrypt() throws {
        let records = Records()
        let a = analyzer(records)
        // Keyed from a DCID the packet does not carry: nothing decrypts with the first guess.
        feed(a, initialPacket(.v1, dcid: hexBytes("abab"), scid: [], keyDCID: hexBytes("cdcdcdcdcdcdcdcd"), pn: 0, frames: [0x01]), fromClient: true)
        XCTAssertEqual(a.counters[.decryptFailed], 1)
        feed(a, initialPacket(.v1, dcid: hexBytes("cdcdcdcdcdcdcdcd"), scid: [], pn: 1, frames: cryptoFrame(offset: 0, rfcClientHello[...])), fromClient: true)
        a.close(flow: 1)
        XCTAssertEqual(a.counters.rekeys, 1)
        XCTAssertEqual(try records.objects().first?["dcid"] as? String, "cdcdcdcdcdcdcdcd")
    }

    func testFrameErrorsAndLimits() throws {
        let dcid = hexBytes("0102030405060708")
        var a = analyzer(Records())
        // An unknown frame type (0x08 STREAM is not allowed in Initial packets) after a PING.
        feed(a, initialPacket(.v1, dcid: dcid, scid: [], pn: 0, frames: [0x01, 0x08, 0x00, 0x00]), fromClient: true)
        XCTAssertEqual(a.counters[.unknownFrame], 1)
        // A CRYPTO frame whose length runs past the payload.
        a = analyzer(Records())
        feed(a, initialPacket(.v1, dcid: dcid, scid: [], pn: 0, frames: [0x06, 0x00, 0x44, 0x00, 0x01]), fromClient: true)
        XCTAssertEqual(a.counters[.malformedFrame], 1)
        // ACK with ECN and ranges, CONNECTION_CLOSE: no errors.
        a = analyzer(Records())
        feed(a, initialPacket(.v1, dcid: dcid, scid: [], pn: 0, frames: [0x03, 0x05, 0x00, 0x01, 0x00, 0x00, 0x01, 0x01, 0x02, 0x03]
                + [0x1C, 0x0A, 0x06, 0x02, 0x68, 0x69]), fromClient: true)
        XCTAssertEqual(a.counters.errors, 0)
        XCTAssertEqual(a.counters.decrypted, 1)
        // CRYPTO bytes past 64 KiB are dropped and counted; a hello announcing more than the limit fails.
        a = analyzer(Records())
        feed(a, initialPacket(.v1, dcid: dcid, scid: [], pn: 0, frames: cryptoFrame(offset: QUICCryptoStream.limit - 2, [1, 2, 3, 4, 5][...])), fromClient: true)
        XCTAssertEqual(a.counters.cryptoBytesDropped, 3)
        feed(a, initialPacket(.v1, dcid: dcid, scid: [], pn: 1, frames: cryptoFrame(offset: 0, [1, 0x01, 0x00, 0x00][...])), fromClient: true)
        XCTAssertEqual(a.counters[.cryptoLimit], 1)
        // A first message that is not a ClientHello.
        a = analyzer(Records())
        feed(a, initialPacket(.v1, dcid: dcid, scid: [], pn: 0, frames: cryptoFrame(offset: 0, [2, 0, 0, 1, 0][...])), fromClient: true)
        XCTAssertEqual(a.counters[.unexpectedMessage], 1)
        // A server Initial before any client Initial has no keys.
        a = analyzer(Records())
        feed(a, v1ServerInitial, fromClient: false)
        XCTAssertEqual(a.counters[.noKeys], 1)
    }

    func testCryptoStreamRangesAreBounded() {
        var stream = QUICCryptoStream()
        let byte: [UInt8] = [7]
        // Every other byte: disjoint ranges until the limit, then dropped.
        for i in 0 ..< QUICCryptoStream.maxRanges + 5 {
            byte.withUnsafeBytes { stream.insert(offset: UInt64(10 + 2 * i), $0) }
        }
        XCTAssertEqual(stream.droppedBytes, 5)
        XCTAssertEqual(stream.contiguous, 0)
        // Filling the gaps merges them; the front then completes.
        let fill = [UInt8](repeating: 7, count: 10 + 2 * QUICCryptoStream.maxRanges)
        fill.withUnsafeBytes { stream.insert(offset: 0, $0) }
        XCTAssertEqual(stream.contiguous, fill.count)
    }

    // MARK: - Robustness

    /// Every prefix of the RFC Initials, and of a datagram of two coalesced packets, never traps and
    /// never makes a hello out of a cut packet.
    func testEveryTruncationIsSafe() throws {
        let two = initialPacket(.v1, dcid: rfcDCID, scid: [], pn: 0, frames: cryptoFrame(offset: 0, rfcClientHello[..<100]))
            + initialPacket(.v1, dcid: rfcDCID, scid: [], pn: 1, frames: cryptoFrame(offset: 100, rfcClientHello[100...]))
        for packet in [QUICVectors.v1ClientInitial, QUICVectors.v2ClientInitial, two] {
            for n in 0 ..< packet.count {
                let records = Records()
                let a = analyzer(records)
                feed(a, Array(packet[..<n]), fromClient: true)
                a.close(flow: 1)
                XCTAssertEqual(a.counters.clientHellos, 0, "prefix \(n)")
            }
        }
    }

    /// 20,000 seeded mutations: half flip bytes of the protected packets (headers, lengths, ciphertext),
    /// half alter the plaintext and seal it again, so the frame and hello parsers see the damage.
    func testRandomMutationsNeverTrap() throws {
        var random = SeededRandom(seed: 9001)
        let dcid = hexBytes("0807060504030201")
        let frames = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01] + cryptoFrame(offset: 0, rfcClientHello[...]) + [0x00, 0x00]
        let header: [UInt8] = [0xC1, 0, 0, 0, 1, 8] + dcid + [0, 0]
        let keys = QUICInitialProtection.keys(version: .v1, dcid: dcid)
        let sources = [QUICVectors.v1ClientInitial, QUICVectors.v2ClientInitial, v1ServerInitial, v2ServerInitial]
        var decrypted = 0
        for round in 0 ..< 20000 {
            var datagram: [UInt8]
            if round % 2 == 0 {
                datagram = sources[Int(random.next() % UInt64(sources.count))]
                for _ in 0 ..< 1 + Int(random.next() % 4) {
                    datagram[Int(random.next() % UInt64(datagram.count))] = UInt8(truncatingIfNeeded: random.next())
                }
                if random.next() % 4 == 0 { datagram = Array(datagram.prefix(Int(random.next() % UInt64(datagram.count)))) }
            } else {
                var plain = frames
                for _ in 0 ..< 1 + Int(random.next() % 3) {
                    plain[Int(random.next() % UInt64(plain.count))] = UInt8(truncatingIfNeeded: random.next())
                }
                let length = 2 + plain.count + 16
                let h = header + [0x40 | UInt8(length >> 8), UInt8(length & 0xFF), 0x00, UInt8(round & 0xFF)]
                datagram = QUICInitialProtection.seal(header: h, pnLength: 2, packetNumber: UInt64(round & 0xFF), payload: plain, keys: keys.client)!
            }
            let a = QUICAnalyzer(lines: { _ in })
            a.open(flow: 1, client: (ip: "a", port: 1), server: (ip: "b", port: 443), vlan: nil, time: 0)
            datagram.withUnsafeBytes {
                a.datagram(flow: 1, fromClient: round % 3 != 0, bytes: $0, time: 0)
                a.datagram(flow: 1, fromClient: true, bytes: $0, time: 0)
            }
            a.close(flow: 1)
            decrypted += a.counters.decrypted
        }
        // The re-sealed half decrypts: the mutations reach the frame and hello parsers.
        XCTAssertGreaterThan(decrypted, 5000)
    }
}
