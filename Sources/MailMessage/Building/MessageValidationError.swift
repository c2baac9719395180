/// Why an ``OutgoingMessage`` cannot be built: one issue per offending field, all of them at once.
///
/// Fields are named as the JSON API names them (`to[2]`, `reply_to[0]`, `headers.X-Foo`,
/// `attachments[0].content_type`), so each issue maps to one entry of an RFC 9457 problem.
public struct MessageValidationError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Issue: Sendable, Hashable, CustomStringConvertible {
        /// The field's path in the request (`to[2]`).
        public var field: String
        public var code: Code
        /// Short human text (`not an email address`).
        public var detail: String

        public init(field: String, code: Code, detail: String) {
            self.field = field
            self.code = code
            self.detail = detail
        }

        public var description: String { "\(field): \(detail)" }
    }

    /// A stable, machine-readable reason.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// Not an RFC 5322 addr-spec that Tern can send to (dot-atom local part, hostname domain).
        public static let invalidAddress = Code(rawValue: "invalid_address")
        /// An address with non-ASCII characters: SMTPUTF8 (RFC 6531) and IDNA U-labels are not supported.
        public static let nonASCIIAddress = Code(rawValue: "non_ascii_address")
        /// A CR or LF in a value that must be one line (header injection).
        public static let lineBreak = Code(rawValue: "line_break")
        /// Another control character (NUL, ESC, DEL…) in a header value or name.
        public static let controlCharacter = Code(rawValue: "control_character")
        /// A header field name that is not 1*ftext (RFC 5322 §3.6.8) or is too long.
        public static let invalidHeaderName = Code(rawValue: "invalid_header_name")
        /// A header field Tern writes itself.
        public static let reservedHeader = Code(rawValue: "reserved_header")
        /// Neither a text nor an HTML body.
        public static let missingBody = Code(rawValue: "missing_body")
        /// No recipient in to, cc or bcc.
        public static let missingRecipient = Code(rawValue: "missing_recipient")
        /// An empty value where one is needed (an attachment's content or file name).
        public static let empty = Code(rawValue: "empty")
        /// A content type that is not `type/subtype` with token parameters, or one Tern cannot attach.
        public static let invalidContentType = Code(rawValue: "invalid_content_type")
        /// A content id that is not `id-left@id-right`-like text (RFC 2392), or one used twice.
        public static let invalidContentID = Code(rawValue: "invalid_content_id")
        /// More of something than the builder's limits allow.
        public static let tooMany = Code(rawValue: "too_many")
        /// A Message-ID domain that is not a hostname (a caller error, not a client's).
        public static let invalidMessageIDDomain = Code(rawValue: "invalid_message_id_domain")

        public var description: String { rawValue }
    }

    public var issues: [Issue]

    public init(issues: [Issue]) {
        self.issues = issues
    }

    public var description: String {
        "invalid message: " + issues.map(\.description).joined(separator: "; ")
    }
}
