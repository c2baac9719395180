/// Something wrong with a message's MIME structure that the parser worked around.
///
/// The parser never fails on a message: a part it cannot split is kept whole, as an opaque leaf,
/// and the defect says why.
public struct MIMEDefect: Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let rawValue: String
        /// A multipart with no `boundary` parameter (RFC 2046 §5.1.1): kept as an opaque leaf.
        public static let missingBoundary = Code(rawValue: "missingBoundary")
        /// A multipart body with no delimiter line for its boundary: kept as an opaque leaf.
        public static let missingStartDelimiter = Code(rawValue: "missingStartDelimiter")
        /// A multipart with no close delimiter: its last part runs to the end of the body.
        public static let missingCloseDelimiter = Code(rawValue: "missingCloseDelimiter")
        /// A multipart nested deeper than ``MIMELimits/maxNestingDepth``: kept as an opaque leaf.
        public static let nestingTooDeep = Code(rawValue: "nestingTooDeep")
        /// More parts than ``MIMELimits/maxParts``: the multipart is kept as an opaque leaf.
        public static let tooManyParts = Code(rawValue: "tooManyParts")
        /// More header fields than ``MIMELimits/maxHeaderFields``: the rest were not read.
        public static let tooManyHeaderFields = Code(rawValue: "tooManyHeaderFields")
        /// A header line that is not a field ended the header with no empty line (RFC 5322 §2.1).
        public static let missingHeaderBodySeparator = Code(rawValue: "missingHeaderBodySeparator")
        /// A `Content-Type` that does not parse; the default `text/plain` applies (RFC 2045 §5.2).
        public static let invalidContentType = Code(rawValue: "invalidContentType")
        public var description: String { rawValue }
    }

    public var code: Code
    /// Short human text about where and what.
    public var hint: String

    public init(_ code: Code, _ hint: String) {
        self.code = code
        self.hint = hint
    }

    public var description: String { "\(code): \(hint)" }
}
