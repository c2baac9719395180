public import NIOCore
public import SMTPCore

/// Who a session is acting for, once known: an authenticated SMTP credential or
/// a credential bound to the client's network (RFC 4954, Postfix `mynetworks`).
public struct SMTPIdentity: Sendable, Hashable {
    /// The credential's name (what `tern credential add NAME` was given).
    public var credentialName: String
    /// How the identity was established.
    public var method: Method

    public enum Method: Sendable, Hashable {
        case authPlain
        case authLogin
        case clientNetwork
    }

    public init(credentialName: String, method: Method) {
        self.credentialName = credentialName
        self.method = method
    }
}

/// What the client handed over for one transaction, after end of DATA or BDAT LAST.
public struct SMTPReceivedMessage: Sendable {
    /// The client's address as seen on the socket.
    public var clientAddress: SocketAddress?
    /// The name given in EHLO/HELO.
    public var heloName: String
    /// `ESMTP`, `ESMTPS`, `ESMTPA`, `ESMTPSA` as in RFC 3848, for the `Received` header.
    public var protocolName: String
    /// TLS in use on the session when the message was received.
    public var tls: Bool
    public var identity: SMTPIdentity?
    /// The reverse path; empty for the null reverse path `<>`.
    public var mailFrom: String
    /// Forward paths in the order they were accepted.
    public var recipients: [String]
    /// `BODY=8BITMIME` was given (or BDAT `BODY=BINARYMIME`, which we do not advertise).
    public var eightBitMIME: Bool
    /// `SMTPUTF8` was given on MAIL FROM.
    public var smtpUTF8: Bool
    /// The message exactly as received (headers and body, CRLF line ends, dot-unstuffed).
    public var content: ByteBuffer

    public init(
        clientAddress: SocketAddress?, heloName: String, protocolName: String, tls: Bool,
        identity: SMTPIdentity?, mailFrom: String, recipients: [String],
        eightBitMIME: Bool, smtpUTF8: Bool, content: ByteBuffer
    ) {
        self.clientAddress = clientAddress
        self.heloName = heloName
        self.protocolName = protocolName
        self.tls = tls
        self.identity = identity
        self.mailFrom = mailFrom
        self.recipients = recipients
        self.eightBitMIME = eightBitMIME
        self.smtpUTF8 = smtpUTF8
        self.content = content
    }
}

/// A refusal from the backend, turned into an SMTP reply by the server.
public struct SMTPBackendRefusal: Error, Sendable {
    public var reply: SMTPReply
    public init(_ reply: SMTPReply) { self.reply = reply }
}

/// What the SMTP server needs from the rest of Tern. Implemented by `TernEngine`'s Intake.
///
/// Every method may be slow (password hashing, a store commit); the server never
/// calls them on the event loop synchronously, and keeps serving other sessions meanwhile.
public protocol SMTPServerBackend: Sendable {
    /// The identity bound to a client address (an IP-based credential), if any.
    /// Called once per connection, before the greeting.
    func identity(forClientAddress address: SocketAddress?) async -> SMTPIdentity?

    /// Checks an AUTH username and password. `nil` means "535 5.7.8".
    func authenticate(username: String, password: String, clientAddress: SocketAddress?) async -> SMTPIdentity?

    /// Commits the message durably. Returns the queue id to put into the 250 reply.
    /// Throws `SMTPBackendRefusal` to refuse with a specific reply; any other error
    /// becomes `451 4.3.0`.
    func commit(_ message: SMTPReceivedMessage) async throws -> String
}
