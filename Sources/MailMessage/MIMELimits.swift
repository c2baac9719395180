/// The limits the MIME parser enforces while building a part tree. Every limit is a named default.
///
/// Past a limit the parser does not fail: the part that would exceed it is kept as an opaque leaf
/// with a ``MIMEDefect`` (RFC 2046 §5.1 leaves nesting depth to implementations).
public struct MIMELimits: Sendable, Hashable {
    /// Deepest nesting of multiparts; the root is at depth 0.
    public static let defaultMaxNestingDepth = 32
    /// Most parts (containers and leaves, the root included) in one message.
    public static let defaultMaxParts = 10_000
    /// Most header fields read in one part's header; the rest of the header is ignored.
    public static let defaultMaxHeaderFields = 1_000

    public var maxNestingDepth: Int
    public var maxParts: Int
    public var maxHeaderFields: Int

    public init(
        maxNestingDepth: Int = Self.defaultMaxNestingDepth,
        maxParts: Int = Self.defaultMaxParts,
        maxHeaderFields: Int = Self.defaultMaxHeaderFields
    ) {
        self.maxNestingDepth = maxNestingDepth
        self.maxParts = maxParts
        self.maxHeaderFields = maxHeaderFields
    }
}

/// Octet limits from the message format that hold for every line Tern writes.
public enum MessageLineLimits {
    /// Longest line, CRLF excluded (RFC 5322 §2.1.1).
    public static let maxLineLength = 998
    /// Longest encoded line for quoted-printable and base64 bodies, CRLF excluded (RFC 2045 §6.7, §6.8).
    public static let maxEncodedLineLength = 76
}
