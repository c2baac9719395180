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
        return Array(sink.finalize())
    }

    /// The body hash of a body held whole.
    public static func hash(_ body: [UInt8], canonicalization: DKIMCanonicalization = .relaxed) -> [UInt8] {
        var hasher = DKIMBodyHasher(canonicalization: canonicalization)
        hasher.update(body)
        return hasher.finalize()
    }
}

/// Feeds SHA-256, gathering the small pieces relaxed canonicalisation cuts text into (a word, one
/// SP, a CRLF) so that the hash is updated in blocks of a few kilobytes rather than per piece.
struct HashSink: CanonicalBodySink, Sendable {
    static let stagingCapacity = 8192
    var hash = SHA256()
    private var staging: [UInt8] = []

    mutating func write(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count >= 1024 {
            flush()
            hash.update(bufferPointer: bytes)
            return
        }
        if staging.capacity == 0 { staging.reserveCapacity(Self.stagingCapacity) }
        if staging.count + bytes.count > Self.stagingCapacity { flush() }
        staging.append(contentsOf: bytes)
    }

    mutating func flush() {
        guard !staging.isEmpty else { return }
        staging.withUnsafeBytes { hash.update(bufferPointer: $0) }
        staging.removeAll(keepingCapacity: true)
    }

    /// The digest of everything written.
    func finalize() -> SHA256.Digest {
        var copy = self
        copy.flush()
        return copy.hash.finalize()
    }
}
