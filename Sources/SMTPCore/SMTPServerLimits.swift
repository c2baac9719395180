/// The limits an SMTP server session enforces. Every limit is a named default.
///
/// - SeeAlso: RFC 5321 §4.5.3 (size limits), §4.5.3.2 (timeouts)
public struct SMTPServerLimits: Sendable, Hashable {
    /// Longest command line, including CRLF (RFC 5321 §4.5.3.1.4 gives 512).
    public static let defaultMaxCommandLineLength = 512
    /// Longest AUTH command or AUTH continuation line, including CRLF (RFC 4954 §4).
    public static let defaultMaxAuthLineLength = 12_288
    /// Longest text line in DATA, including CRLF (RFC 5321 §4.5.3.1.6).
    public static let defaultMaxTextLineLength = 1000
    /// Largest message accepted, in octets; advertised in `SIZE` (RFC 1870).
    public static let defaultMaxMessageSize = 26_214_400
    /// Most recipients in one transaction (RFC 5321 §4.5.3.1.8 asks for at least 100).
    public static let defaultMaxRecipients = 100
    /// Error replies after which the session is closed with 421.
    public static let defaultMaxErrors = 10
    /// Time allowed for each whole command line, from the end of the one before or the last
    /// reply (RFC 5321 §4.5.3.2.7: 5 minutes). A deadline per line, as Postfix's
    /// `smtpd_per_record_deadline`, so a client trickling octets cannot hold a session.
    public static let defaultCommandTimeout = Duration.seconds(300)
    /// Time allowed for each whole line of DATA content, or each `SMTPServerFramer.maxPartSize`
    /// octets of a BDAT chunk (RFC 5321 §4.5.3.2.5 asks for 3 minutes at least): a deadline per
    /// line as well.
    public static let defaultDataTimeout = Duration.seconds(300)
    /// Sessions open at once on one server.
    public static let defaultMaxConnections = 1000
    /// Sessions open at once from one client IP address.
    public static let defaultMaxConnectionsPerClient = 50

    public var maxCommandLineLength: Int
    public var maxAuthLineLength: Int
    public var maxTextLineLength: Int
    public var maxMessageSize: Int
    public var maxRecipients: Int
    public var maxErrors: Int
    public var commandTimeout: Duration
    public var dataTimeout: Duration
    public var maxConnections: Int
    public var maxConnectionsPerClient: Int

    public init(
        maxCommandLineLength: Int = Self.defaultMaxCommandLineLength,
        maxAuthLineLength: Int = Self.defaultMaxAuthLineLength,
        maxTextLineLength: Int = Self.defaultMaxTextLineLength,
        maxMessageSize: Int = Self.defaultMaxMessageSize,
        maxRecipients: Int = Self.defaultMaxRecipients,
        maxErrors: Int = Self.defaultMaxErrors,
        commandTimeout: Duration = Self.defaultCommandTimeout,
        dataTimeout: Duration = Self.defaultDataTimeout,
        maxConnections: Int = Self.defaultMaxConnections,
        maxConnectionsPerClient: Int = Self.defaultMaxConnectionsPerClient
    ) {
        self.maxCommandLineLength = maxCommandLineLength
        self.maxAuthLineLength = maxAuthLineLength
        self.maxTextLineLength = maxTextLineLength
        self.maxMessageSize = maxMessageSize
        self.maxRecipients = maxRecipients
        self.maxErrors = maxErrors
        self.commandTimeout = commandTimeout
        self.dataTimeout = dataTimeout
        self.maxConnections = maxConnections
        self.maxConnectionsPerClient = maxConnectionsPerClient
    }
}
