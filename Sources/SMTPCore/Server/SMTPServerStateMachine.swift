public import NIOCore

/// A SASL mechanism this server implements.
/// - SeeAlso: RFC 4616 (PLAIN), draft-murchison-sasl-login (LOGIN)
public enum SMTPAuthMechanism: String, Sendable, Hashable {
    case plain = "PLAIN"
    case login = "LOGIN"
}

/// A username and password from AUTH. `description` never shows the password.
public struct SMTPCredentials: Sendable, Hashable, CustomStringConvertible {
    public var username: String
    public var password: String
    public var mechanism: SMTPAuthMechanism

    public init(username: String, password: String, mechanism: SMTPAuthMechanism) {
        self.username = username
        self.password = password
        self.mechanism = mechanism
    }

    public var description: String { "SMTPCredentials(username: \(username), mechanism: \(mechanism.rawValue), password: <redacted>)" }
}

/// A message the session has fully received and checked, to be committed by the backend.
public struct SMTPIncomingMessage: Sendable {
    /// The name given in EHLO/HELO.
    public var heloName: String
    /// `SMTP`, `ESMTP`, `ESMTPS`, `ESMTPA` or `ESMTPSA` (RFC 3848).
    public var protocolName: String
    public var tls: Bool
    /// AUTH succeeded on this session (as opposed to an identity bound to the client's address).
    public var authenticated: Bool
    public var reversePath: SMTPReversePath
    public var recipients: [SMTPMailbox]
    public var parameters: SMTPMailParameters
    /// Dot-unstuffed content with CRLF line ends.
    public var content: ByteBuffer
}

/// The server side of one SMTP session, as a pure state machine.
///
/// The channel handler feeds it frames from `SMTPServerFramer` and other events, and performs
/// the `Action` each event returns. Before decoding the next frame the handler sets the framer's
/// mode to `framingMode`. While a backend call is in flight (`verifyCredentials`,
/// `commitMessage`) the handler feeds no frames.
/// - SeeAlso: RFC 5321 §4.1.4 (order of commands), RFC 2920 (pipelining), RFC 3030, RFC 3207, RFC 4954
public struct SMTPServerStateMachine {
    public struct Configuration: Sendable, Hashable {
        public var hostname: String
        public var limits: SMTPServerLimits
        /// A TLS context is configured, so STARTTLS can be offered.
        public var startTLSAvailable: Bool
        /// The session is already encrypted (implicit TLS listener, RFC 8314).
        public var isTLS: Bool
        public var offerAuth: Bool
        /// AUTH without TLS; honoured only if `clientIsLoopback`.
        public var allowInsecureAuth: Bool
        public var clientIsLoopback: Bool
        /// MAIL needs an identity (AUTH or bound to the client's address): submission.
        public var requireIdentity: Bool
        /// Each RCPT is put to the backend (`checkRecipient`) before it is accepted: an MX,
        /// which takes mail only for its own domains, or submission, where a tenant's limits apply.
        public var checkRecipients: Bool
        /// Each MAIL is put to the backend (`checkSender`) before it is accepted: submission,
        /// where a credential may send only for its own domains.
        public var checkSenders: Bool

        public init(
            hostname: String,
            limits: SMTPServerLimits = SMTPServerLimits(),
            startTLSAvailable: Bool = false,
            isTLS: Bool = false,
            offerAuth: Bool = true,
            allowInsecureAuth: Bool = false,
            clientIsLoopback: Bool = false,
            requireIdentity: Bool = true,
            checkRecipients: Bool = false,
            checkSenders: Bool = false
        ) {
            self.checkRecipients = checkRecipients
            self.checkSenders = checkSenders
            self.hostname = hostname
            self.limits = limits
            self.startTLSAvailable = startTLSAvailable
            self.isTLS = isTLS
            self.offerAuth = offerAuth
            self.allowInsecureAuth = allowInsecureAuth
            self.clientIsLoopback = clientIsLoopback
            self.requireIdentity = requireIdentity
        }
    }

    public enum Action: Sendable {
        /// Nothing to send; decode the next frame.
        case none
        /// Send the reply; decode the next frame.
        case reply(SMTPReply)
        /// Send the replies, then close the connection.
        case replyAndClose([SMTPReply])
        /// Send the reply, drop any bytes already buffered, then start TLS (RFC 3207 §4.2, CVE-2011-0411).
        case replyAndStartTLS(SMTPReply)
        /// Ask the backend; then call `credentialsVerified(_:)` or `credentialsRefused(_:)`. Never log the password.
        case verifyCredentials(SMTPCredentials)
        /// Ask the backend; then call `messageCommitted`, `messageRefused` or `messageCommitFailed`.
        case commitMessage(SMTPIncomingMessage)
        /// Ask the backend at once (without waiting) whether it takes mail for this
        /// recipient (`accepted` recipients of the transaction are taken already), then call
        /// `recipientChecked(_:refusal:)` before the next event.
        case checkRecipient(SMTPMailbox, reversePath: SMTPReversePath, accepted: Int)
        /// Ask the backend at once whether this sender may send, then call
        /// `senderChecked(refusal:)` before the next event.
        case checkSender(SMTPReversePath)
    }

    enum AuthExchange: Hashable {
        case plain
        case loginUsername
        case loginPassword(username: String)
    }

    enum ChunkDisposition: Hashable {
        case accept(size: Int, last: Bool)
        case reject(SMTPReply)
    }

    enum State {
        case awaitingGreeting
        case awaitingCommand
        case awaitingAuthResponse(AuthExchange)
        case verifyingCredentials(SMTPAuthMechanism)
        case receivingData
        case receivingChunk(ChunkDisposition, remaining: Int)
        case committing
        case closed
    }

    struct Transaction {
        var reversePath: SMTPReversePath
        var parameters: SMTPMailParameters
        var recipients: [SMTPMailbox] = []
        var usedBDAT = false
        var content = ByteBuffer()
        var receivedOctets = 0
        var oversized = false
        var chunkScanner = LineEndingScanner()

        mutating func append(_ part: ByteBuffer, maxMessageSize: Int) {
            receivedOctets += part.readableBytes
            if receivedOctets > maxMessageSize {
                if !oversized { content = ByteBuffer() } // release what we held
                oversized = true
            } else {
                var part = part
                content.writeBuffer(&part)
            }
        }
    }

    struct Session {
        var heloName: String?
        var extended = false
        var tls: Bool
        var authenticated: SMTPAuthMechanism?
        var hasBoundIdentity = false
        var transaction: Transaction?
        /// A MAIL whose sender the backend is checking.
        var pendingMail: (reversePath: SMTPReversePath, parameters: SMTPMailParameters)?
        var errorCount = 0
        var shuttingDown = false
    }

    public let configuration: Configuration
    private(set) var state: State
    private(set) var session: Session

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.state = .awaitingGreeting
        self.session = Session(tls: configuration.isTLS)
    }

    private var limits: SMTPServerLimits { configuration.limits }

    // MARK: Queries

    /// The framer mode for the next frame.
    public var framingMode: SMTPServerFramer.Mode {
        switch state {
        case .receivingData:
            return .data
        case .receivingChunk(_, let remaining):
            return .chunk(remaining)
        case .awaitingAuthResponse:
            return .command(maxLineLength: limits.maxAuthLineLength)
        case .awaitingCommand where authAllowedNow && session.authenticated == nil:
            // AUTH with an initial response may be longer than other commands (RFC 4954 §4);
            // other commands are held to `maxCommandLineLength` after framing.
            return .command(maxLineLength: max(limits.maxAuthLineLength, limits.maxCommandLineLength))
        default:
            return .command(maxLineLength: limits.maxCommandLineLength)
        }
    }

    /// Between commands (as opposed to inside DATA/BDAT or waiting for the backend).
    public var isAwaitingCommand: Bool {
        if case .awaitingCommand = state { return true }
        if case .awaitingAuthResponse = state { return true }
        return false
    }

    /// Receiving message content (DATA after 354, or a BDAT chunk).
    public var isReceivingContent: Bool {
        switch state {
        case .receivingData, .receivingChunk: true
        default: false
        }
    }

    public var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// TLS is active, or was negotiated via STARTTLS.
    public var isTLS: Bool { session.tls }

    /// AUTH is advertised and may be used right now.
    public var authAllowedNow: Bool {
        configuration.offerAuth
            && (session.tls || (configuration.allowInsecureAuth && configuration.clientIsLoopback))
    }

    /// The EHLO reply for this session's current state.
    public var ehloReply: SMTPReply {
        var lines = [
            configuration.hostname,
            "PIPELINING",
            "SIZE \(limits.maxMessageSize)",
            "8BITMIME",
            "SMTPUTF8",
            "ENHANCEDSTATUSCODES",
            "CHUNKING",
        ]
        if configuration.startTLSAvailable && !session.tls { lines.append("STARTTLS") }
        if authAllowedNow && session.authenticated == nil { lines.append("AUTH PLAIN LOGIN") }
        return SMTPReply(code: 250, nil, lines: lines)
    }

    // MARK: Connection events

    /// The connection is open and the handler knows whether the client address carries an identity.
    public mutating func connectionEstablished(hasBoundIdentity: Bool) -> Action {
        switch state {
        case .awaitingGreeting:
            session.hasBoundIdentity = hasBoundIdentity
            if session.shuttingDown {
                state = .closed
                return .replyAndClose([.shuttingDown])
            }
            state = .awaitingCommand
            return .reply(.greeting(hostname: configuration.hostname))
        case .closed:
            return .none
        default:
            preconditionFailure("connectionEstablished in \(state)")
        }
    }

    /// A command or data timeout fired.
    public mutating func timedOut() -> Action {
        if case .closed = state { return .none }
        state = .closed
        session.transaction = nil
        return .replyAndClose([.timeout(hostname: configuration.hostname)])
    }

    /// The server is draining. Idle sessions close now; a message in progress is finished first.
    public mutating func shutdownRequested() -> Action {
        session.shuttingDown = true
        switch state {
        case .awaitingGreeting:
            return .none // `connectionEstablished` will close
        case .awaitingCommand:
            if session.transaction?.usedBDAT == true { return .none }
            state = .closed
            return .replyAndClose([.shuttingDown])
        case .awaitingAuthResponse:
            state = .closed
            return .replyAndClose([.shuttingDown])
        case .verifyingCredentials, .receivingData, .receivingChunk, .committing, .closed:
            return .none
        }
    }

    /// The channel closed.
    public mutating func connectionClosed() {
        state = .closed
        session.transaction = nil
    }

    // MARK: Frames

    public mutating func frameReceived(_ frame: SMTPServerFramer.Frame) -> Action {
        switch frame {
        case .line(let line): return lineReceived(line)
        case .lineTooLong: return commandLineRejected(.commandLineTooLong)
        case .bareLineEnding: return commandLineRejected(.bareLineEndingInCommand)
        case .dataPart(let part): return dataPartReceived(part)
        case .dataEnd(let end): return dataEnded(end)
        case .chunkPart(let part): return chunkPartReceived(part)
        case .chunkEnd: return chunkEnded()
        }
    }

    mutating func commandLineRejected(_ reply: SMTPReply) -> Action {
        switch state {
        case .awaitingCommand:
            return error(reply)
        case .awaitingAuthResponse:
            state = .awaitingCommand
            return error(reply)
        case .closed:
            return .none
        default:
            preconditionFailure("command line frame in \(state)")
        }
    }

    mutating func lineReceived(_ line: ByteBuffer) -> Action {
        switch state {
        case .awaitingCommand:
            let command: SMTPCommand
            do {
                command = try SMTPCommandParser.parseCommand(line)
            } catch {
                return self.error(SMTPReply(error))
            }
            if line.readableBytes + 2 > limits.maxCommandLineLength {
                guard case .auth = command else { return error(.commandLineTooLong) }
            }
            return commandReceived(command)
        case .awaitingAuthResponse(let exchange):
            return authResponseReceived(line, exchange: exchange)
        case .closed:
            return .none
        default:
            preconditionFailure("command line in \(state)")
        }
    }

    // MARK: Commands

    mutating func commandReceived(_ command: SMTPCommand) -> Action {
        switch command {
        case .ehlo(let domain):
            session.heloName = domain
            session.extended = true
            session.transaction = nil
            return finish(ehloReply)
        case .helo(let domain):
            session.heloName = domain
            session.extended = false
            session.transaction = nil
            return finish(SMTPReply(code: 250, nil, configuration.hostname))
        case .mail(let reversePath, let parameters):
            return mail(reversePath: reversePath, parameters: parameters)
        case .rcpt(let forwardPath):
            return rcpt(forwardPath)
        case .data:
            guard let transaction = session.transaction else { return error(.badSequenceNeedMail) }
            guard !transaction.usedBDAT else { return error(.badSequenceDataAfterBDAT) }
            guard !transaction.recipients.isEmpty else { return error(.noValidRecipients) }
            state = .receivingData
            return .reply(.startMailInput)
        case .bdat(let size, let last):
            let disposition: ChunkDisposition
            if session.transaction == nil {
                disposition = .reject(.badSequenceNeedMail)
            } else if session.transaction?.recipients.isEmpty != false {
                disposition = .reject(.noValidRecipients)
            } else {
                session.transaction?.usedBDAT = true
                disposition = .accept(size: size, last: last)
            }
            state = .receivingChunk(disposition, remaining: size)
            return .none
        case .rset:
            session.transaction = nil
            return finish(.ok)
        case .noop:
            return finish(.ok)
        case .quit:
            state = .closed
            session.transaction = nil
            return .replyAndClose([.bye])
        case .help:
            return finish(.help)
        case .vrfy:
            return finish(.cannotVerify)
        case .expn:
            return error(.expnNotSupported)
        case .startTLS:
            guard configuration.startTLSAvailable else { return error(.tlsNotAvailable) }
            guard !session.tls else { return error(.alreadyTLS) }
            // RFC 3207 §4.2: discard all knowledge obtained from the client.
            session.heloName = nil
            session.extended = false
            session.transaction = nil
            session.authenticated = nil
            session.tls = true
            return .replyAndStartTLS(.readyToStartTLS)
        case .auth(let mechanism, let initialResponse):
            return auth(mechanism: mechanism, initialResponse: initialResponse)
        }
    }

    mutating func mail(reversePath: SMTPReversePath, parameters: SMTPMailParameters) -> Action {
        guard session.heloName != nil else { return error(.badSequenceSendHello) }
        guard session.transaction == nil else { return error(.badSequenceNestedMail) }
        if configuration.requireIdentity && session.authenticated == nil && !session.hasBoundIdentity {
            return error(.authenticationRequired)
        }
        if let size = parameters.size, size > limits.maxMessageSize {
            return error(.messageTooBig)
        }
        if configuration.checkSenders {
            session.pendingMail = (reversePath, parameters)
            return .checkSender(reversePath)
        }
        session.transaction = Transaction(reversePath: reversePath, parameters: parameters)
        return finish(.senderOk)
    }

    /// The backend's answer to `checkSender`: nil starts the transaction, a reply refuses it.
    public mutating func senderChecked(refusal: SMTPReply?) -> Action {
        guard case .awaitingCommand = state, let pending = session.pendingMail else {
            preconditionFailure("senderChecked without a MAIL being checked: \(state)")
        }
        session.pendingMail = nil
        if let refusal { return error(refusal) }
        session.transaction = Transaction(reversePath: pending.reversePath, parameters: pending.parameters)
        return finish(.senderOk)
    }

    mutating func rcpt(_ forwardPath: SMTPMailbox) -> Action {
        guard let transaction = session.transaction else { return error(.badSequenceNeedMail) }
        guard !transaction.usedBDAT else { return error(.badSequenceRcptAfterBDAT) }
        guard forwardPath.isASCII || transaction.parameters.smtpUTF8 else { return error(.nonASCIIRecipient) }
        guard transaction.recipients.count < limits.maxRecipients else {
            // Not counted as an error: clients must retry the rest in a new transaction (RFC 5321 §4.5.3.1.10).
            return finish(.tooManyRecipients)
        }
        if configuration.checkRecipients {
            return .checkRecipient(forwardPath, reversePath: transaction.reversePath, accepted: transaction.recipients.count)
        }
        session.transaction?.recipients.append(forwardPath)
        return finish(.recipientOk)
    }

    /// The backend's answer to `checkRecipient`: nil takes the recipient, a reply refuses it.
    public mutating func recipientChecked(_ forwardPath: SMTPMailbox, refusal: SMTPReply?) -> Action {
        guard case .awaitingCommand = state, session.transaction != nil else {
            preconditionFailure("recipientChecked without a RCPT being checked: \(state)")
        }
        if let refusal { return error(refusal) }
        session.transaction?.recipients.append(forwardPath)
        return finish(.recipientOk)
    }

    // MARK: AUTH

    mutating func auth(mechanism: String, initialResponse: String?) -> Action {
        guard configuration.offerAuth else { return error(.authNotAvailable) }
        guard session.heloName != nil else { return error(.badSequenceSendHello) }
        guard session.authenticated == nil else { return error(.alreadyAuthenticated) }
        guard session.transaction == nil else { return error(.authInTransaction) }
        guard authAllowedNow else { return error(.encryptionRequired) }
        switch SMTPAuthMechanism(rawValue: mechanism) {
        case .plain:
            guard let initialResponse else {
                state = .awaitingAuthResponse(.plain)
                return .reply(.authPlainChallenge)
            }
            return authResponseReceived(ByteBuffer(string: initialResponse), exchange: .plain)
        case .login:
            guard let initialResponse else {
                state = .awaitingAuthResponse(.loginUsername)
                return .reply(.authLoginUsername)
            }
            return authResponseReceived(ByteBuffer(string: initialResponse), exchange: .loginUsername)
        case nil:
            return error(.unrecognizedAuthMechanism)
        }
    }

    // initial-response / continuation = base64 / "=" ; cancel-response = "*"
    mutating func authResponseReceived(_ line: ByteBuffer, exchange: AuthExchange) -> Action {
        state = .awaitingCommand
        var bytes = Array(line.readableBytesView)
        while let last = bytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { bytes.removeLast() }
        if bytes == [UInt8(ascii: "*")] { return error(.authCancelled) }
        let decoded: [UInt8]
        if bytes == [UInt8(ascii: "=")] {
            decoded = []
        } else {
            guard let value = Base64.decode(bytes) else { return error(.invalidBase64) }
            decoded = value
        }
        switch exchange {
        case .plain:
            // message = [authzid] UTF8NUL authcid UTF8NUL passwd   (RFC 4616 §2)
            let parts = decoded.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3,
                  let authzid = String(validating: parts[0], as: UTF8.self),
                  let username = String(validating: parts[1], as: UTF8.self),
                  let password = String(validating: parts[2], as: UTF8.self),
                  !username.isEmpty else {
                return error(.invalidAuthResponse)
            }
            guard authzid.isEmpty || authzid == username else {
                return error(.authenticationFailed) // acting as someone else is not supported
            }
            state = .verifyingCredentials(.plain)
            return .verifyCredentials(SMTPCredentials(username: username, password: password, mechanism: .plain))
        case .loginUsername:
            guard let username = String(validating: decoded, as: UTF8.self), !username.isEmpty else {
                return error(.invalidAuthResponse)
            }
            state = .awaitingAuthResponse(.loginPassword(username: username))
            return .reply(.authLoginPassword)
        case .loginPassword(let username):
            guard let password = String(validating: decoded, as: UTF8.self) else {
                return error(.invalidAuthResponse)
            }
            state = .verifyingCredentials(.login)
            return .verifyCredentials(SMTPCredentials(username: username, password: password, mechanism: .login))
        }
    }

    /// The backend answered a `verifyCredentials` action.
    public mutating func credentialsVerified(_ success: Bool) -> Action {
        switch state {
        case .verifyingCredentials(let mechanism):
            state = .awaitingCommand
            guard success else { return error(.authenticationFailed) }
            session.authenticated = mechanism
            return finish(.authenticationSuccessful)
        case .closed:
            return .none
        default:
            preconditionFailure("credentialsVerified in \(state)")
        }
    }

    /// The backend refused to check the credentials (`454 4.7.0`: throttled, or unavailable).
    public mutating func credentialsRefused(_ reply: SMTPReply) -> Action {
        switch state {
        case .verifyingCredentials:
            state = .awaitingCommand
            return error(reply)
        case .closed:
            return .none
        default:
            preconditionFailure("credentialsRefused in \(state)")
        }
    }

    // MARK: DATA

    mutating func dataPartReceived(_ part: ByteBuffer) -> Action {
        switch state {
        case .receivingData:
            let maxMessageSize = limits.maxMessageSize
            session.transaction?.append(part, maxMessageSize: maxMessageSize)
            return .none
        case .closed:
            return .none
        default:
            preconditionFailure("DATA content in \(state)")
        }
    }

    mutating func dataEnded(_ end: SMTPServerFramer.DataEnd) -> Action {
        switch state {
        case .receivingData:
            state = .awaitingCommand
            return messageComplete(sawBareLineEnding: end.sawBareLineEnding, sawLongLine: end.sawLongLine)
        case .closed:
            return .none
        default:
            preconditionFailure("end of DATA in \(state)")
        }
    }

    mutating func chunkPartReceived(_ part: ByteBuffer) -> Action {
        switch state {
        case .receivingChunk(let disposition, let remaining):
            state = .receivingChunk(disposition, remaining: max(remaining - part.readableBytes, 0))
            if case .accept = disposition {
                let (maxTextLineLength, maxMessageSize) = (limits.maxTextLineLength, limits.maxMessageSize)
                session.transaction?.chunkScanner.scan(part, maxTextLineLength: maxTextLineLength)
                session.transaction?.append(part, maxMessageSize: maxMessageSize)
            }
            return .none
        case .closed:
            return .none
        default:
            preconditionFailure("BDAT content in \(state)")
        }
    }

    mutating func chunkEnded() -> Action {
        switch state {
        case .receivingChunk(.reject(let reply), _):
            state = .awaitingCommand
            return error(reply)
        case .receivingChunk(.accept(let size, let last), _):
            state = .awaitingCommand
            if session.transaction?.oversized == true {
                session.transaction = nil
                return error(.messageTooBig)
            }
            guard last else { return finish(.chunkReceived(octets: size)) }
            let scanner = session.transaction?.chunkScanner ?? LineEndingScanner()
            return messageComplete(sawBareLineEnding: scanner.sawBareLineEndingAtEnd, sawLongLine: scanner.sawLongLine)
        case .closed:
            return .none
        default:
            preconditionFailure("end of BDAT chunk in \(state)")
        }
    }

    /// End of DATA or BDAT LAST: check the message and hand it to the backend.
    mutating func messageComplete(sawBareLineEnding: Bool, sawLongLine: Bool) -> Action {
        guard let transaction = session.transaction else {
            preconditionFailure("message complete without a transaction in \(state)")
        }
        let heloName = session.heloName ?? ""
        session.transaction = nil
        if transaction.oversized { return error(.messageTooBig) }
        if sawBareLineEnding { return error(.bareLineEndingInMessage) }
        if sawLongLine { return error(.lineTooLongInMessage(limit: limits.maxTextLineLength)) }
        state = .committing
        return .commitMessage(SMTPIncomingMessage(
            heloName: heloName,
            protocolName: protocolName,
            tls: session.tls,
            authenticated: session.authenticated != nil,
            reversePath: transaction.reversePath,
            recipients: transaction.recipients,
            parameters: transaction.parameters,
            content: transaction.content
        ))
    }

    /// `ESMTP` with `S` for TLS and `A` for AUTH (RFC 3848); `SMTP` after HELO.
    public var protocolName: String {
        guard session.extended else { return "SMTP" }
        return "ESMTP" + (session.tls ? "S" : "") + (session.authenticated != nil ? "A" : "")
    }

    /// The backend stored the message.
    public mutating func messageCommitted(queueID: String) -> Action {
        commitFinished(.queued(as: queueID))
    }

    /// The backend refused the message with its own reply.
    public mutating func messageRefused(_ reply: SMTPReply) -> Action {
        commitFinished(reply)
    }

    /// The backend failed (store error): 451, the client may retry.
    public mutating func messageCommitFailed() -> Action {
        commitFinished(.localError)
    }

    mutating func commitFinished(_ reply: SMTPReply) -> Action {
        switch state {
        case .committing:
            state = .awaitingCommand
            return reply.isError ? error(reply) : finish(reply)
        case .closed:
            return .none
        default:
            preconditionFailure("commit result in \(state)")
        }
    }

    // MARK: Replies

    /// An error reply: counts towards `maxErrors`.
    mutating func error(_ reply: SMTPReply) -> Action {
        session.errorCount += 1
        if session.errorCount >= limits.maxErrors {
            state = .closed
            session.transaction = nil
            return .replyAndClose([reply, .tooManyErrors])
        }
        return finish(reply)
    }

    /// A reply after which the session waits for a command, unless it is draining.
    mutating func finish(_ reply: SMTPReply) -> Action {
        if session.shuttingDown, case .awaitingCommand = state, session.transaction?.usedBDAT != true {
            state = .closed
            session.transaction = nil
            return .replyAndClose([reply, .shuttingDown])
        }
        return .reply(reply)
    }
}

/// Watches streamed content for bare CR, bare LF and over-long lines (used for BDAT chunks,
/// whose CRLFs may be split between chunks).
struct LineEndingScanner: Hashable {
    var pendingCR = false
    var lineLength = 0
    var sawBareCR = false
    var sawBareLF = false
    var sawLongLine = false

    mutating func scan(_ part: ByteBuffer, maxTextLineLength: Int) {
        for byte in part.readableBytesView {
            if pendingCR {
                pendingCR = false
                if byte == UInt8(ascii: "\n") {
                    lineLength += 2
                    if lineLength > maxTextLineLength { sawLongLine = true }
                    lineLength = 0
                    continue
                }
                sawBareCR = true
                lineLength += 1
            }
            if byte == UInt8(ascii: "\r") {
                pendingCR = true
            } else {
                if byte == UInt8(ascii: "\n") { sawBareLF = true }
                lineLength += 1
            }
        }
        if lineLength > maxTextLineLength { sawLongLine = true }
    }

    /// At the end of the message a trailing CR is bare too.
    var sawBareLineEndingAtEnd: Bool { sawBareCR || sawBareLF || pendingCR }
}
