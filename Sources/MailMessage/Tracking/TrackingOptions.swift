/// What ``TrackingRewriter`` does to a message.
///
/// Each feature is on when its value is set: ``clickTracking`` rewrites links, ``openPixelURL``
/// inserts the open pixel, ``unsubscribeURL`` fills the unsubscribe placeholder.
public struct TrackingOptions: Sendable {
    /// Gives the tracked URL for a link: the link's original URL (character references decoded,
    /// whitespace trimmed) and its index among the rewritten links of the message, from 0.
    public typealias LinkRewrite = @Sendable (_ originalURL: String, _ index: Int) -> String

    /// The placeholder senders put where the unsubscribe URL goes.
    public static let defaultUnsubscribePlaceholder = "{{unsubscribe_url}}"

    /// Rewrites the `href` of `<a>` and `<area>` tags that go to `http`/`https` URLs, in HTML parts.
    /// Nil leaves links alone.
    public var clickTracking: LinkRewrite?
    /// Inserts `<img src="…">` of this URL once in every HTML part. Nil inserts none.
    public var openPixelURL: String?
    /// Replaces ``unsubscribePlaceholder`` with this URL in HTML and plain text parts.
    /// Must be printable ASCII with no spaces. Nil leaves placeholders alone.
    public var unsubscribeURL: String?
    /// Printable ASCII, not empty.
    public var unsubscribePlaceholder: String
    /// Message header fields to remove, every occurrence, by name (any case), such as `X-Tern-Track`.
    /// `Content-Type`, `Content-Transfer-Encoding` and `MIME-Version` cannot be removed.
    public var removedHeaderFields: [String]
    /// Message header fields to add at the end of the header when no field of that name is
    /// present once ``removedHeaderFields`` are gone (so removing and adding one name replaces it).
    public var addedHeaderFields: [AddedHeaderField]
    /// Limits for parsing the message.
    public var limits: MIMELimits

    public init(
        clickTracking: LinkRewrite? = nil,
        openPixelURL: String? = nil,
        unsubscribeURL: String? = nil,
        unsubscribePlaceholder: String = Self.defaultUnsubscribePlaceholder,
        removedHeaderFields: [String] = [],
        addedHeaderFields: [AddedHeaderField] = [],
        limits: MIMELimits = MIMELimits()
    ) {
        self.clickTracking = clickTracking
        self.openPixelURL = openPixelURL
        self.unsubscribeURL = unsubscribeURL
        self.unsubscribePlaceholder = unsubscribePlaceholder
        self.removedHeaderFields = removedHeaderFields
        self.addedHeaderFields = addedHeaderFields
        self.limits = limits
    }
}

/// A header field to add, such as `List-Unsubscribe` (RFC 2369 §3.2) or
/// `List-Unsubscribe-Post` (RFC 8058 §3.1). Tern folds a long value at its spaces.
public struct AddedHeaderField: Sendable, Hashable {
    /// 1*ftext: printable ASCII except `:` (RFC 5322 §3.6.8).
    public var name: String
    /// Printable ASCII, spaces and tabs; no line breaks (encode anything else per RFC 2047 first).
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// The rewritten message.
public struct TrackedMessage: Sendable {
    /// The message: CRLF line ends in everything Tern wrote, every other byte as it was.
    public var bytes: [UInt8]
    /// The original URL of every rewritten link; a link's index into this list is the index
    /// given to ``TrackingOptions/clickTracking``.
    public var originalLinks: [String]
    /// Open pixels inserted: one per HTML part rewritten.
    public var openPixelCount: Int
    /// Unsubscribe placeholders replaced.
    public var unsubscribePlaceholderCount: Int
    /// Parts whose body was rewritten.
    public var rewrittenPartCount: Int
}

/// Options that cannot be applied.
public struct TrackingRewriteError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let rawValue: String
        /// An added header field with a bad name or value.
        public static let invalidHeaderField = Code(rawValue: "invalidHeaderField")
        /// A request to remove a field that describes the MIME structure.
        public static let protectedHeaderField = Code(rawValue: "protectedHeaderField")
        /// An open pixel or unsubscribe URL that is not printable ASCII without spaces.
        public static let invalidURL = Code(rawValue: "invalidURL")
        /// An empty or non-printable unsubscribe placeholder.
        public static let invalidPlaceholder = Code(rawValue: "invalidPlaceholder")
        public var description: String { rawValue }
    }

    public var code: Code
    public var hint: String

    public init(_ code: Code, _ hint: String) {
        self.code = code
        self.hint = hint
    }

    public var description: String { "\(code): \(hint)" }
}
