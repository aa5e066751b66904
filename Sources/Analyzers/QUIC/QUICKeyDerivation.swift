import Crypto

/// HKDF (RFC 5869) for QUIC's Initial keys: HMAC-SHA256 (RFC 2104) over swift-crypto's `SHA256`,
/// with contiguous inputs and outputs of at most one hash length.
///
/// Why not swift-crypto's `HKDF<SHA256>`: its `expand` builds its `SecureBytes` and HMAC pads byte by
/// byte through generic code that is not specialised for the caller, 63,600 instructions per call
/// (callgrind, `analyze` on nDPI's test captures merged, 15,488 calls: 30% of the run). Initial keys
/// take one extract and eight expands per connection. Here a key's padded blocks are hashed once
/// (6,250 instructions a key) and each expand continues from copies of those states (8,500 an expand,
/// two SHA-256 blocks): `analyze` on that capture went from 3,356 M to 2,475 M instructions. The
/// RFC 9001 A.1 and RFC 9369 A.1 vectors, and a comparison with swift-crypto's `HMAC` and `HKDF` on
/// random inputs, test it (`QUICTests`).
enum QUICKeyDerivation {
    static let blockSize = 64

    /// An HMAC-SHA256 key with its inner and outer pads already hashed: each code under it hashes only
    /// the message and the inner digest. (`SHA256` is a value: a copy continues from the same state.)
    struct Key {
        private let inner: SHA256
        private let outer: SHA256

        init(_ key: [UInt8]) {
            // RFC 2104 §2: a key longer than the block is hashed first, then zero-padded to the block.
            var block = [UInt8](repeating: 0, count: QUICKeyDerivation.blockSize)
            if key.count > QUICKeyDerivation.blockSize {
                var hash = SHA256()
                key.withUnsafeBytes { hash.update(bufferPointer: $0) }
                let digest = hash.finalize().withUnsafeBytes { Array($0) }
                block.replaceSubrange(0 ..< digest.count, with: digest)
            } else {
                block.replaceSubrange(0 ..< key.count, with: key)
            }
            for i in 0 ..< block.count { block[i] ^= 0x36 }
            var inner = SHA256()
            block.withUnsafeBytes { inner.update(bufferPointer: $0) }
            // 0x36 ^ 0x5C: the outer pad from the inner one.
            for i in 0 ..< block.count { block[i] ^= 0x36 ^ 0x5C }
            var outer = SHA256()
            block.withUnsafeBytes { outer.update(bufferPointer: $0) }
            self.inner = inner
            self.outer = outer
        }

        /// HMAC-SHA256 of `message` (its parts, concatenated).
        func code(_ message: [UInt8]...) -> [UInt8] {
            var inner = self.inner
            for part in message { part.withUnsafeBytes { inner.update(bufferPointer: $0) } }
            let innerDigest = inner.finalize()
            var outer = self.outer
            innerDigest.withUnsafeBytes { outer.update(bufferPointer: $0) }
            return outer.finalize().withUnsafeBytes { Array($0) }
        }

        /// HKDF-Expand under this key as the pseudorandom key, for at most one hash length (32 bytes):
        /// T(1) = HMAC(PRK, info ‖ 0x01), cut to `length`.
        func expand(info: [UInt8], length: Int) -> [UInt8] {
            precondition(length <= 32, "one block of HKDF-Expand")
            return Array(code(info, [1]).prefix(length))
        }
    }

    /// HKDF-Extract: the pseudorandom key of `inputKeyMaterial` under `salt`.
    static func extract(salt: [UInt8], inputKeyMaterial: [UInt8]) -> [UInt8] {
        Key(salt).code(inputKeyMaterial)
    }
}
