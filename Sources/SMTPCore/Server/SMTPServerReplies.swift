/// Every reply the server session sends, in one place.
///
/// Enhanced status codes (RFC 3463, RFC 2034) on every reply except the greeting, the replies
/// to EHLO/HELO and the intermediate 334/354 replies.
extension SMTPReply {
    static func esc(_ statusClass: Int, _ subject: Int, _ detail: Int) -> EnhancedStatusCode {
        EnhancedStatusCode(class: statusClass, subject: subject, detail: detail)
    }

    /// The reply for a line that did not parse.
    public init(_ error: SMTPSyntaxError) {
        switch error.code {
        case .unrecognizedCommand:
            self.init(code: 500, Self.esc(5, 5, 2), error.hint)
        case .unsupportedParameter:
            self.init(code: 555, Self.esc(5, 5, 4), error.hint)
        case .nonASCIIAddress:
            self.init(code: 553, Self.esc(5, 6, 7), error.hint)
        case .invalidAddress:
            self.init(code: 501, Self.esc(5, 1, 3), error.hint)
        default:
            self.init(code: 501, Self.esc(5, 5, 4), error.hint)
        }
    }

    public static func greeting(hostname: String) -> SMTPReply {
        SMTPReply(code: 220, nil, "\(hostname) ESMTP Tern")
    }

    public static let ok = SMTPReply(code: 250, esc(2, 0, 0), "Ok")
    public static let senderOk = SMTPReply(code: 250, esc(2, 1, 0), "Ok")
    public static let recipientOk = SMTPReply(code: 250, esc(2, 1, 5), "Ok")
    public static let startMailInput = SMTPReply(code: 354, nil, "End data with <CR><LF>.<CR><LF>")
    public static let bye = SMTPReply(code: 221, esc(2, 0, 0), "Bye")
    public static let help = SMTPReply(
        code: 214, esc(2, 0, 0),
        "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY STARTTLS AUTH; see RFC 5321"
    )
    public static let cannotVerify = SMTPReply(
        code: 252, esc(2, 5, 0), "Cannot VRFY user, but will accept message and attempt delivery"
    )
    public static let readyToStartTLS = SMTPReply(code: 220, esc(2, 0, 0), "Ready to start TLS")
    public static let authenticationSuccessful = SMTPReply(code: 235, esc(2, 7, 0), "Authentication successful")
    public static func queued(as queueID: String) -> SMTPReply {
        SMTPReply(code: 250, esc(2, 0, 0), "Ok: queued as \(queueID)")
    }
    public static func chunkReceived(octets: Int) -> SMTPReply {
        SMTPReply(code: 250, esc(2, 0, 0), "Ok: \(octets) octets received")
    }

    static let authPlainChallenge = SMTPReply(code: 334, nil, "")
    static let authLoginUsername = SMTPReply(code: 334, nil, "VXNlcm5hbWU6")
    static let authLoginPassword = SMTPReply(code: 334, nil, "UGFzc3dvcmQ6")

    public static let badSequenceSendHello = SMTPReply(code: 503, esc(5, 5, 1), "Send EHLO or HELO first")
    public static let badSequenceNestedMail = SMTPReply(code: 503, esc(5, 5, 1), "Nested MAIL command")
    public static let badSequenceNeedMail = SMTPReply(code: 503, esc(5, 5, 1), "Need MAIL command")
    public static let badSequenceDataAfterBDAT = SMTPReply(code: 503, esc(5, 5, 1), "DATA not allowed after BDAT")
    public static let badSequenceRcptAfterBDAT = SMTPReply(code: 503, esc(5, 5, 1), "RCPT not allowed after BDAT")
    public static let noValidRecipients = SMTPReply(code: 554, esc(5, 5, 1), "No valid recipients")
    public static let authenticationRequired = SMTPReply(code: 530, esc(5, 7, 0), "Authentication required")
    public static let messageTooBig = SMTPReply(code: 552, esc(5, 3, 4), "Message size exceeds fixed maximum message size")
    public static let tooManyRecipients = SMTPReply(code: 452, esc(4, 5, 3), "Too many recipients")
    public static let nonASCIIRecipient = SMTPReply(code: 553, esc(5, 6, 7), "Non-ASCII address requires SMTPUTF8")
    public static let bareLineEndingInMessage = SMTPReply(
        code: 550, esc(5, 6, 0), "Message contains bare CR or LF; lines must end with CRLF"
    )
    public static func lineTooLongInMessage(limit: Int) -> SMTPReply {
        SMTPReply(code: 550, esc(5, 6, 0), "Message contains a line longer than \(limit) octets")
    }
    public static let commandLineTooLong = SMTPReply(code: 500, esc(5, 5, 2), "Line too long")
    public static let bareLineEndingInCommand = SMTPReply(
        code: 500, esc(5, 5, 2), "Bare LF or CR in command line; lines must end with CRLF"
    )
    public static let expnNotSupported = SMTPReply(code: 502, esc(5, 5, 1), "EXPN not supported")
    public static let tlsNotAvailable = SMTPReply(code: 454, esc(4, 7, 0), "TLS not available")
    public static let alreadyTLS = SMTPReply(code: 503, esc(5, 5, 1), "TLS already active")
    public static let authNotAvailable = SMTPReply(code: 502, esc(5, 5, 1), "AUTH not available")
    public static let alreadyAuthenticated = SMTPReply(code: 503, esc(5, 5, 1), "Already authenticated")
    public static let authInTransaction = SMTPReply(code: 503, esc(5, 5, 1), "AUTH not allowed during a mail transaction")
    public static let encryptionRequired = SMTPReply(
        code: 538, esc(5, 7, 11), "Encryption required for requested authentication mechanism"
    )
    public static let unrecognizedAuthMechanism = SMTPReply(code: 504, esc(5, 5, 4), "Unrecognized authentication mechanism")
    public static let authCancelled = SMTPReply(code: 501, esc(5, 0, 0), "Authentication cancelled")
    public static let invalidBase64 = SMTPReply(code: 501, esc(5, 5, 2), "Invalid base64 data")
    public static let invalidAuthResponse = SMTPReply(code: 501, esc(5, 5, 2), "Invalid authentication response")
    public static let authenticationFailed = SMTPReply(code: 535, esc(5, 7, 8), "Authentication credentials invalid")
    /// RFC 4954 §6: the credentials could not be checked now.
    public static let temporaryAuthenticationFailure = SMTPReply(code: 454, esc(4, 7, 0), "Temporary authentication failure")
    /// RFC 4954 §6 `454 4.7.0`: attempts are refused unchecked after too many failures;
    /// `subject` says whose (`from 192.0.2.1`, `for this user`).
    public static func authenticationThrottled(_ subject: String, retryAfterSeconds: Int) -> SMTPReply {
        SMTPReply(
            code: 454, esc(4, 7, 0), "Too many failed authentication attempts \(subject); try again in \(retryAfterSeconds) s")
    }
    public static let localError = SMTPReply(code: 451, esc(4, 3, 0), "Local error in processing; message not accepted")

    public static let tooManyErrors = SMTPReply(code: 421, esc(4, 7, 0), "Too many errors, closing connection")
    public static let shuttingDown = SMTPReply(code: 421, esc(4, 3, 2), "Server shutting down")
    public static let tooManyConnections = SMTPReply(code: 421, esc(4, 7, 0), "Too many connections, try again later")
    public static func timeout(hostname: String) -> SMTPReply {
        SMTPReply(code: 421, esc(4, 4, 2), "\(hostname) Timeout, closing connection")
    }
}
