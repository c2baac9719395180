import Crypto
import Foundation

/// HMAC-SHA256 (RFC 2104) with both padded keys hashed once, ahead of time, and any fixed
/// prefix of the message too.
///
/// swift-crypto's `HMAC` keeps the inner hash primed but hashes the outer padded key again at
/// every `finalize`: one SHA-256 block of the three that a short token costs. Verifying
/// tokens is the tracking endpoints' main cryptographic work, so both are kept here.
struct PrimedHMACSHA256: Sendable {
    private var inner = SHA256()
    private var outer = SHA256()

    /// - Precondition: `key` is at most one SHA-256 block (64 bytes); tracking keys are 32.
    init(key: SymmetricKey) {
        var block = [UInt8](repeating: 0, count: SHA256.blockByteCount)
        key.withUnsafeBytes { bytes in
            precondition(bytes.count <= block.count, "an HMAC key longer than a block is hashed first; not supported here")
            for index in bytes.indices { block[index] = bytes[index] }
        }
        inner.update(data: block.map { $0 ^ 0x36 })
        outer.update(data: block.map { $0 ^ 0x5C })
    }

    /// Adds a fixed part of every message (e.g. a label) to the primed state.
    mutating func update(data: some DataProtocol) {
        inner.update(data: data)
    }

    /// The authentication code of the primed prefix followed by `bytes`.
    func authenticationCode(over bytes: UnsafeRawBufferPointer) -> SHA256.Digest {
        var inner = self.inner
        inner.update(bufferPointer: bytes)
        var outer = self.outer
        inner.finalize().withUnsafeBytes { outer.update(bufferPointer: $0) }
        return outer.finalize()
    }
}
