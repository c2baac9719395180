/// A client line that does not follow the grammar. Mapped to a reply in one place,
/// `SMTPReply.init(_: SMTPSyntaxError)`.
public struct SMTPSyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let rawValue: String
        /// No such verb: 500 5.5.2.
        public static let unrecognizedCommand = Code(rawValue: "unrecognizedCommand")
        /// Wrong arguments: 501 5.5.4.
        public static let invalidArguments = Code(rawValue: "invalidArguments")
        /// A MAIL/RCPT parameter we do not support: 555 5.5.4.
        public static let unsupportedParameter = Code(rawValue: "unsupportedParameter")
        /// A non-ASCII address without SMTPUTF8: 553 5.6.7.
        public static let nonASCIIAddress = Code(rawValue: "nonASCIIAddress")
        /// A malformed mailbox in a path: 501 5.1.3 (RFC 3463: bad destination mailbox address syntax).
        public static let invalidAddress = Code(rawValue: "invalidAddress")
        public var description: String { rawValue }
    }

    public var code: Code
    /// Short human text, safe to send back to the client (never contains client secrets).
    public var hint: String

    public init(_ code: Code, _ hint: String) {
        self.code = code
        self.hint = hint
    }

    public var description: String { "\(code): \(hint)" }
}
