/// When to use STARTTLS.
///
/// - SeeAlso: RFC 3207, RFC 7435 (opportunistic security)
public enum SMTPClientTLSPolicy: Sendable, Hashable {
    /// Never send STARTTLS.
    case disabled
    /// Use STARTTLS when offered; continue in clear when not offered or refused.
    case opportunistic
    /// Fail with a temporary 4.7.4 when STARTTLS is not offered or refused.
    case required
}

/// How long the client waits for each reply.
///
/// - SeeAlso: RFC 5321 §4.5.3.2
public struct SMTPClientTimeouts: Sendable, Hashable {
    /// §4.5.3.2.1: 5 minutes.
    public static let defaultGreeting = Duration.seconds(300)
    /// EHLO, HELO, STARTTLS, RSET, QUIT: no figure in the RFC; Postfix uses 300 s.
    public static let defaultCommand = Duration.seconds(300)
    /// §4.5.3.2.2: 5 minutes.
    public static let defaultMail = Duration.seconds(300)
    /// §4.5.3.2.3: 5 minutes.
    public static let defaultRcpt = Duration.seconds(300)
    /// §4.5.3.2.4: 2 minutes.
    public static let defaultDataInitiation = Duration.seconds(120)
    /// §4.5.3.2.5: 3 minutes for each write of content.
    public static let defaultDataBlock = Duration.seconds(180)
    /// §4.5.3.2.6: 10 minutes.
    public static let defaultDataTermination = Duration.seconds(600)
    /// An open connection with no message to send is closed (QUIT) after this.
    public static let defaultIdle = Duration.seconds(10)

    public var greeting: Duration
    public var command: Duration
    public var mail: Duration
    public var rcpt: Duration
    public var dataInitiation: Duration
    public var dataBlock: Duration
    public var dataTermination: Duration
    public var idle: Duration

    public init(
        greeting: Duration = Self.defaultGreeting,
        command: Duration = Self.defaultCommand,
        mail: Duration = Self.defaultMail,
        rcpt: Duration = Self.defaultRcpt,
        dataInitiation: Duration = Self.defaultDataInitiation,
        dataBlock: Duration = Self.defaultDataBlock,
        dataTermination: Duration = Self.defaultDataTermination,
        idle: Duration = Self.defaultIdle
    ) {
        self.greeting = greeting
        self.command = command
        self.mail = mail
        self.rcpt = rcpt
        self.dataInitiation = dataInitiation
        self.dataBlock = dataBlock
        self.dataTermination = dataTermination
        self.idle = idle
    }
}

/// How a client session behaves. Every limit is a named default.
public struct SMTPClientConfiguration: Sendable, Hashable {
    /// The name sent in EHLO/HELO: this host's fully qualified name (RFC 5321 §4.1.1.1).
    public var localHostname: String
    public var tlsPolicy: SMTPClientTLSPolicy
    public var timeouts: SMTPClientTimeouts
    /// Send MAIL, RCPT and DATA in one batch when the server offers PIPELINING (RFC 2920).
    public var usePipelining: Bool
    /// Longest reply line accepted, including CRLF (RFC 5321 §4.5.3.1.5).
    public var maxReplyLineLength: Int
    /// Most lines in one reply.
    public var maxReplyLines: Int

    public init(
        localHostname: String,
        tlsPolicy: SMTPClientTLSPolicy = .opportunistic,
        timeouts: SMTPClientTimeouts = SMTPClientTimeouts(),
        usePipelining: Bool = true,
        maxReplyLineLength: Int = SMTPReplyParser.defaultMaxLineLength,
        maxReplyLines: Int = SMTPReplyParser.defaultMaxLines
    ) {
        self.localHostname = localHostname
        self.tlsPolicy = tlsPolicy
        self.timeouts = timeouts
        self.usePipelining = usePipelining
        self.maxReplyLineLength = maxReplyLineLength
        self.maxReplyLines = maxReplyLines
    }
}
