import Crypto
import Foundation
import _CryptoExtras

/// One direction's Initial packet protection: AEAD key and IV, header protection key (RFC 9001 §5.1).
public struct QUICPacketKeys {
    /// The direction's initial secret ("client in" / "server in").
    public let secret: [UInt8]
    public let key: [UInt8]
    public let iv: [UInt8]
    public let hp: [UInt8]
    let aeadKey: SymmetricKey
    let hpKey: SymmetricKey

    init(secret: [UInt8], version: QUICVersion) {
        self.secret = secret
        let prk = QUICKeyDerivation.Key(secret)
        key = QUICInitialProtection.expandLabel(prk, label: version.keyLabel, length: 16)
        iv = QUICInitialProtection.expandLabel(prk, label: version.ivLabel, length: 12)
        hp = QUICInitialProtection.expandLabel(prk, label: version.hpLabel, length: 16)
        aeadKey = SymmetricKey(data: key)
        hpKey = SymmetricKey(data: hp)
    }
}

/// Initial keys (RFC 9001 §5.2, RFC 9369 §3.3) and packet unprotection (RFC 9001 §5.3–5.4).
///
/// Keys derive from the client's first Destination Connection ID:
/// `initial_secret = HKDF-Extract(salt, dcid)`, then HKDF-Expand-Label (RFC 8446 §7.1) with
/// "client in" / "server in", then the version's key/iv/hp labels. Initial packets use
/// AEAD_AES_128_GCM and AES-128 header protection.
public enum QUICInitialProtection {
    /// The client's and the server's Initial keys for a client Destination Connection ID.
    public static func keys(version: QUICVersion, dcid: [UInt8]) -> (client: QUICPacketKeys, server: QUICPacketKeys) {
        let initial = QUICKeyDerivation.Key(QUICKeyDerivation.extract(salt: version.salt, inputKeyMaterial: dcid))
        let client = expandLabel(initial, label: Array("client in".utf8), length: 32)
        let server = expandLabel(initial, label: Array("server in".utf8), length: 32)
        return (QUICPacketKeys(secret: client, version: version), QUICPacketKeys(secret: server, version: version))
    }

    /// HKDF-Expand-Label with an empty context (RFC 8446 §7.1): info is
    /// length(2) ‖ len("tls13 " + label)(1) ‖ "tls13 " + label ‖ 0.
    static func expandLabel(_ secret: QUICKeyDerivation.Key, label: [UInt8], length: Int) -> [UInt8] {
        var info: [UInt8] = [UInt8(length >> 8), UInt8(length & 0xFF), UInt8(6 + label.count)]
        info += Array("tls13 ".utf8) + label
        info.append(0)
        return secret.expand(info: info, length: length)
    }

    /// RFC 9001 §5.3: the nonce is the IV XOR the packet number, left-padded to the IV's 12 bytes.
    static func nonce(_ iv: [UInt8], packetNumber: UInt64) -> [UInt8] {
        var nonce = iv
        for i in 0 ..< 8 { nonce[4 &+ i] ^= UInt8(truncatingIfNeeded: packetNumber >> (56 &- 8 &* UInt64(i))) }
        return nonce
    }

    /// An unprotected packet: its full packet number and plaintext payload (frames).
    public struct Opened {
        public var packetNumber: Int64
        public var payload: Data
    }

    /// Removes header protection and decrypts one long-header packet.
    ///
    /// `packet` runs from the first byte to the end given by the Length field; `pnOffset` is where the
    /// protected packet number starts. `header` is scratch for the unprotected header (the AEAD's
    /// associated data), reused across calls.
    public static func open(packet: UnsafeRawBufferPointer, pnOffset: Int, keys: QUICPacketKeys, largest: Int64,
                            header: inout [UInt8]) -> Result<Opened, QUICError> {
        // RFC 9001 §5.4.2: the sample starts 4 bytes after the packet number's start.
        guard pnOffset >= 0, packet.count >= pnOffset &+ 4 &+ 16 else { return .failure(.badLength) }
        var mask = (UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &mask) { m in
            m.copyMemory(from: packet.slice(pnOffset &+ 4, 16))
            // A 16-byte block and a 16-byte key: permute cannot fail here.
            var block = UnsafeMutableRawBufferPointer(m)
            try? AES.permute(&block, key: keys.hpKey)
        }
        header.removeAll(keepingCapacity: true)
        header.append(contentsOf: packet.slice(0, pnOffset &+ 4))
        let pnLength = withUnsafeBytes(of: &mask) { m -> Int in
            // RFC 9001 §5.4.1: long headers protect the low 4 bits of the first byte.
            header[0] ^= m[0] & 0x0F
            let n = Int(header[0] & 0x03) &+ 1
            for i in 0 ..< n { header[pnOffset &+ i] ^= m[1 &+ i] }
            return n
        }
        header.removeLast(4 &- pnLength)
        guard packet.count >= pnOffset &+ pnLength &+ 16 else { return .failure(.badLength) }
        var truncated: UInt64 = 0
        for i in 0 ..< pnLength { truncated = truncated << 8 | UInt64(header[pnOffset &+ i]) }
        let number = decodePacketNumber(largest: largest, truncated: truncated, bits: pnLength &* 8)

        let nonce = Self.nonce(keys.iv, packetNumber: UInt64(bitPattern: number))
        let bodyStart = pnOffset &+ pnLength
        let tagStart = packet.count &- 16
        guard let aeadNonce = try? AES.GCM.Nonce(data: nonce),
              let box = try? AES.GCM.SealedBox(nonce: aeadNonce, ciphertext: packet.slice(bodyStart, tagStart &- bodyStart),
                                               tag: packet.slice(tagStart, 16)),
              let plain = try? AES.GCM.open(box, using: keys.aeadKey, authenticating: header)
        else { return .failure(.decryptFailed) }
        return .success(Opened(packetNumber: number, payload: plain))
    }

    /// Protects a packet, the inverse of `open`: `header` is the unprotected header ending with the
    /// packet number (`pnLength` bytes, its length already in the first byte's low bits), `payload`
    /// the frames. For building Initial packets (tests, generators); not used on captured traffic.
    public static func seal(header: [UInt8], pnLength: Int, packetNumber: UInt64, payload: [UInt8],
                            keys: QUICPacketKeys) -> [UInt8]? {
        let nonce = Self.nonce(keys.iv, packetNumber: packetNumber)
        guard header.count >= pnLength, let aeadNonce = try? AES.GCM.Nonce(data: nonce),
              let box = try? AES.GCM.seal(payload, using: keys.aeadKey, nonce: aeadNonce, authenticating: header)
        else { return nil }
        var packet = header + Array(box.ciphertext) + Array(box.tag)
        let pnOffset = header.count &- pnLength
        guard packet.count >= pnOffset &+ 4 &+ 16 else { return nil }
        var mask = Array(packet[pnOffset &+ 4 ..< pnOffset &+ 20])
        guard (try? AES.permute(&mask, key: keys.hpKey)) != nil else { return nil }
        packet[0] ^= mask[0] & (packet[0] & 0x80 != 0 ? 0x0F : 0x1F)
        for i in 0 ..< pnLength { packet[pnOffset &+ i] ^= mask[1 &+ i] }
        return packet
    }
}
