/// A command line sent by an SMTP client.
///
/// - SeeAlso: RFC 5321 §4.1.1, RFC 3030 (BDAT), RFC 3207 (STARTTLS), RFC 4954 (AUTH)
public enum SMTPCommand: Sendable, Hashable {
    /// `"HELO" SP Domain CRLF`
    case helo(domain: String)
    /// `"EHLO" SP ( Domain / address-literal ) CRLF`
    case ehlo(domain: String)
    /// `"MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF`
    case mail(reversePath: SMTPReversePath, parameters: SMTPMailParameters)
    /// `"RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path ) [SP Rcpt-parameters] CRLF`
    case rcpt(forwardPath: SMTPMailbox)
    /// `"DATA" CRLF`
    case data
    /// `"BDAT" SP chunk-size [ SP end-marker ] CRLF`
    case bdat(size: Int, last: Bool)
    /// `"RSET" CRLF`
    case rset
    /// `"NOOP" [ SP String ] CRLF`
    case noop(String?)
    /// `"QUIT" CRLF`
    case quit
    /// `"HELP" [ SP String ] CRLF`
    case help(String?)
    /// `"VRFY" SP String CRLF`
    case vrfy(String)
    /// `"EXPN" SP String CRLF`
    case expn(String)
    /// `"STARTTLS" CRLF`
    case startTLS
    /// `"AUTH" SP sasl-mech [SP initial-response] CRLF`
    case auth(mechanism: String, initialResponse: String?)

    /// The verb, upper-cased, for logs. Never includes arguments (an AUTH blob must not be logged).
    public var verb: String {
        switch self {
        case .helo: "HELO"
        case .ehlo: "EHLO"
        case .mail: "MAIL"
        case .rcpt: "RCPT"
        case .data: "DATA"
        case .bdat: "BDAT"
        case .rset: "RSET"
        case .noop: "NOOP"
        case .quit: "QUIT"
        case .help: "HELP"
        case .vrfy: "VRFY"
        case .expn: "EXPN"
        case .startTLS: "STARTTLS"
        case .auth: "AUTH"
        }
    }
}

/// A mailbox in a path: `Local-part "@" ( Domain / address-literal )`.
///
/// `domain` is nil only for the special recipient `<Postmaster>` (RFC 5321 §4.1.1.3).
/// - SeeAlso: RFC 5321 §4.1.2
public struct SMTPMailbox: Sendable, Hashable, CustomStringConvertible {
    /// The local part as written, including the quotes of a quoted string.
    public var localPart: String
    /// The domain or address literal (with its brackets) as written.
    public var domain: String?

    public init(localPart: String, domain: String?) {
        self.localPart = localPart
        self.domain = domain
    }

    /// The mailbox whose `description` this is, for a mailbox parsed once already and kept as
    /// text (in the queue): split at the last `@`, not parsed again. Exact, since neither a
    /// domain nor an address literal holds an `@`.
    public init(validated address: String) {
        guard let at = address.lastIndex(of: "@") else {
            self.init(localPart: address, domain: nil)
            return
        }
        self.init(localPart: String(address[..<at]), domain: String(address[address.index(after: at)...]))
    }

    /// `local@domain`, as used in envelopes.
    public var description: String {
        if let domain { "\(localPart)@\(domain)" } else { localPart }
    }

    /// Whether any octet is outside US-ASCII (needs SMTPUTF8, RFC 6531).
    public var isASCII: Bool {
        localPart.utf8.allSatisfy { $0 < 0x80 } && (domain?.utf8.allSatisfy { $0 < 0x80 } ?? true)
    }
}

/// `Reverse-path = Path / "<>"`
///
/// - SeeAlso: RFC 5321 §4.1.2
public enum SMTPReversePath: Sendable, Hashable, CustomStringConvertible {
    /// `<>`: no bounces (used by bounces themselves).
    case null
    case mailbox(SMTPMailbox)

    /// The reverse path whose `description` this is, parsed once already: the empty string
    /// is the null path, anything else `SMTPMailbox(validated:)`.
    public init(validated address: String) {
        self = address.isEmpty ? .null : .mailbox(SMTPMailbox(validated: address))
    }

    /// The address, or the empty string for the null path.
    public var description: String {
        switch self {
        case .null: ""
        case .mailbox(let mailbox): mailbox.description
        }
    }
}

/// The parameters of MAIL FROM that this server understands.
///
/// - SeeAlso: RFC 5321 §4.1.2 (`Mail-parameters`), RFC 1870 (SIZE), RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8)
public struct SMTPMailParameters: Sendable, Hashable {
    public enum Body: Sendable, Hashable {
        case sevenBit
        case eightBitMIME
    }

    /// `SIZE=` as declared by the client. Values too large for `Int` are clamped to `Int.max`.
    public var size: Int?
    public var body: Body?
    public var smtpUTF8: Bool
    /// `AUTH=` (RFC 4954 §5), xtext-decoded is not attempted; kept as written.
    public var auth: String?

    public init(size: Int? = nil, body: Body? = nil, smtpUTF8: Bool = false, auth: String? = nil) {
        self.size = size
        self.body = body
        self.smtpUTF8 = smtpUTF8
        self.auth = auth
    }
}
