/// The envelope of one outgoing message, and what its content needs from the server.
///
/// - SeeAlso: RFC 5321 §2.3.1, RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8)
public struct SMTPOutgoingEnvelope: Sendable, Hashable {
    public var reversePath: SMTPReversePath
    public var recipients: [SMTPMailbox]
    /// Octets of content before dot-stuffing; sent as `SIZE=` and checked against the server's SIZE.
    public var contentSize: Int
    /// The content has octets above 127 (sent with `BODY=8BITMIME` when offered).
    public var needsEightBitMIME: Bool
    /// The content or an address needs UTF-8 (RFC 6531); computed from the addresses too.
    public var needsSMTPUTF8: Bool

    public init(
        reversePath: SMTPReversePath,
        recipients: [SMTPMailbox],
        contentSize: Int,
        needsEightBitMIME: Bool = false,
        needsSMTPUTF8: Bool = false
    ) {
        self.reversePath = reversePath
        self.recipients = recipients
        self.contentSize = contentSize
        self.needsEightBitMIME = needsEightBitMIME
        var addressesNeedUTF8 = recipients.contains { !$0.isASCII }
        if case .mailbox(let sender) = reversePath, !sender.isASCII { addressesNeedUTF8 = true }
        self.needsSMTPUTF8 = needsSMTPUTF8 || addressesNeedUTF8
    }
}

/// What became of one recipient on one attempt.
///
/// `reply` holds the remote's own words when `isRemoteReply`; otherwise it is a reply this
/// client made up for a local decision (a timeout, a lost connection, the SIZE check, a missing
/// SMTPUTF8), with an enhanced status code chosen from RFC 3463.
public struct SMTPDeliveryOutcome: Sendable, Hashable, CustomStringConvertible {
    public enum Status: Sendable, Hashable {
        /// The server took responsibility: 2xx to the end of data.
        case sent
        /// A temporary failure (4xx, timeout, connection lost): try again later.
        case deferred
        /// A permanent failure (5xx): bounce.
        case failed
    }

    /// The command whose reply decided the outcome (for "in reply to RCPT TO" in a bounce).
    public enum Stage: Sendable, Hashable {
        case connection
        case mail
        case rcpt
        case data
        case endOfData
        /// Decided before any command for this message was sent.
        case beforeMail
    }

    public var recipient: SMTPMailbox
    public var status: Status
    public var reply: SMTPReply
    public var isRemoteReply: Bool
    public var stage: Stage
    /// The host the client talked to (the MX name, or the route's host).
    public var remoteHost: String
    public var tlsUsed: Bool

    public init(
        recipient: SMTPMailbox, status: Status, reply: SMTPReply, isRemoteReply: Bool,
        stage: Stage, remoteHost: String, tlsUsed: Bool
    ) {
        self.recipient = recipient
        self.status = status
        self.reply = reply
        self.isRemoteReply = isRemoteReply
        self.stage = stage
        self.remoteHost = remoteHost
        self.tlsUsed = tlsUsed
    }

    public var code: Int { reply.code }
    public var enhancedStatusCode: EnhancedStatusCode? { reply.enhancedStatusCode }
    public var text: String { reply.text }

    /// sent for 2xx, deferred for 4xx, failed for 5xx; anything else is a broken conversation: deferred.
    public static func status(for reply: SMTPReply) -> Status {
        switch reply.code {
        case 200..<300: .sent
        case 500..<600: .failed
        default: .deferred
        }
    }

    public var description: String {
        "\(recipient): \(status) (\(reply.code) \(reply.enhancedStatusCode.map { "\($0) " } ?? "")\(reply.text))"
    }
}

/// Why a session could not be set up or used.
///
/// `reply` is the remote's reply when `isRemoteReply`, otherwise a local one; its code tells
/// whether trying later (4xx) or never (5xx) makes sense.
public struct SMTPClientError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let rawValue: String
        /// The greeting was not 220 (RFC 5321 §3.1): try the next MX.
        public static let greetingRefused = Code(rawValue: "greetingRefused")
        /// Both EHLO and HELO were refused.
        public static let helloRefused = Code(rawValue: "helloRefused")
        /// The policy requires STARTTLS and the server did not offer it or refused it.
        public static let tlsRequired = Code(rawValue: "tlsRequired")
        /// The TLS handshake failed (or the certificate was not accepted).
        public static let tlsFailed = Code(rawValue: "tlsFailed")
        /// No reply within the time allowed (RFC 5321 §4.5.3.2).
        public static let timeout = Code(rawValue: "timeout")
        /// The connection was closed or could not be made.
        public static let connectionClosed = Code(rawValue: "connectionClosed")
        /// The server broke the grammar or the protocol.
        public static let protocolViolation = Code(rawValue: "protocolViolation")
        /// A message was handed to a session that is busy or not ready.
        public static let notReady = Code(rawValue: "notReady")
        public var description: String { rawValue }
    }

    public var code: Code
    public var reply: SMTPReply
    public var isRemoteReply: Bool

    public init(_ code: Code, reply: SMTPReply, isRemoteReply: Bool) {
        self.code = code
        self.reply = reply
        self.isRemoteReply = isRemoteReply
    }

    /// A 5xx reply: the destination will not take mail.
    public var isPermanent: Bool { reply.code >= 500 }

    public var description: String { "\(code): \(reply.code) \(reply.enhancedStatusCode.map { "\($0) " } ?? "")\(reply.text)" }
}
