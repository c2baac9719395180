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
    /// The reverse path, as parsed from MAIL FROM.
    public var reversePath: SMTPReversePath
    /// Forward paths in the order they were accepted, as parsed from RCPT TO.
    public var recipients: [SMTPMailbox]
    /// `BODY=8BITMIME` was given (or BDAT `BODY=BINARYMIME`, which we do not advertise).
    public var eightBitMIME: Bool
    /// `SMTPUTF8` was given on MAIL FROM.
    public var smtpUTF8: Bool
    /// The message exactly as received (headers and body, CRLF line ends, dot-unstuffed).
    public var content: ByteBuffer

    public init(
        clientAddress: SocketAddress?, heloName: String, protocolName: String, tls: Bool,
        identity: SMTPIdentity?, reversePath: SMTPReversePath, recipients: [SMTPMailbox],
        eightBitMIME: Bool, smtpUTF8: Bool, content: ByteBuffer
    ) {
        self.clientAddress = clientAddress
        self.heloName = heloName
        self.protocolName = protocolName
        self.tls = tls
        self.identity = identity
        self.reversePath = reversePath
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

/// The answer to "who is this client address?" when it can be given without waiting.
public enum SMTPIdentityLookup: Sendable, Hashable {
    /// Known now (from a fresh cache): this identity, or none.
    case known(SMTPIdentity?)
    /// Not known without waiting: the server calls `identity(forClientAddress:)`.
    case needsLookup
}

/// What the SMTP server needs from the rest of Tern. Implemented by `TernEngine`'s Intake.
///
/// The async methods may be slow (password hashing), and so may `commit`'s completion (a
/// store commit); the server keeps serving other sessions meanwhile. Every synchronous
/// method, `commit` included, is called on the event loop and must return at once.
public protocol SMTPServerBackend: Sendable {
    /// The identity bound to a client address, if it is known without waiting.
    /// Called once per connection, on the event loop; the default always asks for a lookup.
    func cachedIdentity(forClientAddress address: SocketAddress?) -> SMTPIdentityLookup

    /// The identity bound to a client address (an IP-based credential), if any.
    /// Called once per connection before the greeting, when `cachedIdentity` did not know.
    func identity(forClientAddress address: SocketAddress?) async -> SMTPIdentity?

    /// Checks an AUTH username and password. `nil` means "535 5.7.8"; a thrown
    /// `SMTPBackendRefusal` answers with its reply (e.g. `454 4.7.0` while failures are
    /// throttled), any other error with `454 4.7.0` (RFC 4954 §6).
    func authenticate(username: String, password: String, clientAddress: SocketAddress?) async throws -> SMTPIdentity?

    /// Commits the message durably, then calls `completion` once, on any thread, with the
    /// queue id to put into the 250 reply. A failure with `SMTPBackendRefusal` refuses with
    /// that reply; any other error becomes `451 4.3.0`.
    ///
    /// A completion rather than `async`: the session runs on its event loop, and intake can
    /// commit and answer without a task or an executor hop per message.
    func commit(_ message: SMTPReceivedMessage, completion: @escaping @Sendable (Result<String, any Error>) -> Void)

    /// Whether mail for `recipient` is taken, `accepted` recipients of the transaction being
    /// taken already: nil takes it, a reply (e.g. `550 5.7.1`) refuses it. Asked only when the
    /// server's configuration checks recipients (an MX; submission, for a tenant's limits);
    /// runs on the event loop and must return at once. The default takes every recipient.
    func checkRecipient(
        _ recipient: SMTPMailbox, reversePath: SMTPReversePath, accepted: Int, identity: SMTPIdentity?, clientAddress: SocketAddress?
    ) -> SMTPReply?

    /// Whether `identity` may send as `reversePath`: nil takes the MAIL, a reply refuses it.
    /// Asked only when the server's configuration checks senders; runs on the event loop
    /// and must return at once. The default takes every sender.
    func checkSender(_ reversePath: SMTPReversePath, identity: SMTPIdentity?, clientAddress: SocketAddress?) -> SMTPReply?
}

extension SMTPServerBackend {
    public func checkRecipient(
        _ recipient: SMTPMailbox, reversePath: SMTPReversePath, accepted: Int, identity: SMTPIdentity?, clientAddress: SocketAddress?
    ) -> SMTPReply? {
        nil
    }

    public func checkSender(_ reversePath: SMTPReversePath, identity: SMTPIdentity?, clientAddress: SocketAddress?) -> SMTPReply? {
        nil
    }

    public func cachedIdentity(forClientAddress address: SocketAddress?) -> SMTPIdentityLookup {
        .needsLookup
    }
}
