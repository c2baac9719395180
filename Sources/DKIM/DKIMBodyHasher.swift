import Crypto

/// The body hash (`bh=`): SHA-256 over the canonical body, fed in chunks of any size.
///
/// Chunks may be split anywhere, even inside a CRLF or a run of whitespace; the hash is the same
/// as for the whole body at once. Memory stays constant: the SHA-256 state, a few flags and a
/// count of the empty lines not yet known to be trailing. The whole body is always hashed (`l=`
/// is never used, RFC 6376 §8.2).
///
/// ```swift
/// var hasher = signer.makeBodyHasher()
/// for chunk in body { hasher.update(chunk) }
/// let field = try signer.signatureField(header: header, bodyHash: hasher.finalize(), timestamp: now)
/// ```
///
/// - SeeAlso: RFC 6376 §3.4.3, §3.4.4 (canonical body), §3.7 (the body hash)
public struct DKIMBodyHasher: Sendable {
    public let canonicalization: DKIMCanonicalization
    private var canonicalizer: BodyCanonicalizer
    private var sink = HashSink()

    public init(canonicalization: DKIMCanonicalization = .relaxed) {
        self.canonicalization = canonicalization
        self.canonicalizer = BodyCanonicalizer(canonicalization)
    }

    /// Feeds the next bytes of the body.
    public mutating func update(_ chunk: UnsafeRawBufferPointer) {
        canonicalizer.update(chunk, into: &sink)
    }

    /// Feeds the next bytes of the body.
    public mutating func update(_ chunk: [UInt8]) {
        chunk.withUnsafeBytes { update($0) }
    }

    /// Feeds the next bytes of the body.
    public mutating func update(_ chunk: ArraySlice<UInt8>) {
        chunk.withUnsafeBytes { update($0) }
    }

    /// How many canonical bytes have been hashed so far (what `l=` would count).
    public var canonicalLength: Int { canonicalizer.canonicalLength }

    /// The 32-byte SHA-256 of the canonical body, as `bh=` carries it (in base64).
    /// The hasher itself is left as it was: more bytes may follow for another reading.
    public func finalize() -> [UInt8] {
        var canonicalizer = self.canonicalizer
        var sink = self.sink
        canonicalizer.finish(into: &sink)
        return Array(sink.hash.finalize())
    }

    /// The body hash of a body held whole.
    public static func hash(_ body: [UInt8], canonicalization: DKIMCanonicalization = .relaxed) -> [UInt8] {
        var hasher = DKIMBodyHasher(canonicalization: canonicalization)
        hasher.update(body)
        return hasher.finalize()
    }
}

struct HashSink: CanonicalBodySink, Sendable {
    var hash = SHA256()

    mutating func write(_ bytes: UnsafeRawBufferPointer) {
        hash.update(bufferPointer: bytes)
    }
}
