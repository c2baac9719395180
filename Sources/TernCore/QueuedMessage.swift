public import Foundation

/// A message ready to be committed by intake: the final content (with the headers
/// intake added), the envelope, and one row per recipient.
public struct QueuedMessage: Sendable {
    public var id: MessageID
    /// The tenant that sent it: of its credential.
    public var tenant: TenantID
    /// The `Message-ID` header's value, as found or as added by intake.
    public var messageIDHeader: String
    /// The reverse path; empty for `<>`.
    public var mailFrom: String
    public var recipients: [QueuedRecipient]
    /// The message bytes (CRLF line ends), as they will be delivered.
    public var content: [UInt8]
    /// The credential that submitted it.
    public var credential: String?
    public var clientIP: String?
    public var receivedAt: Date
    /// The content has octets above 127: BODY=8BITMIME was given, or intake found them.
    public var eightBitMIME: Bool
    public var smtpUTF8: Bool
    /// The domain of the `From` header (lower-cased; empty when there is none).
    public var fromDomain: String
    /// The original targets of the links that tracking rewrote, in link-index order: what
    /// a click on link `i` redirects to. Empty when clicks are not tracked.
    public var links: [String]

    public init(
        id: MessageID, messageIDHeader: String, mailFrom: String, recipients: [QueuedRecipient],
        content: [UInt8], credential: String?, clientIP: String?, receivedAt: Date,
        eightBitMIME: Bool, smtpUTF8: Bool, fromDomain: String = "", links: [String] = [], tenant: TenantID = .default
    ) {
        self.tenant = tenant
        self.fromDomain = fromDomain
        self.links = links
        self.id = id
        self.messageIDHeader = messageIDHeader
        self.mailFrom = mailFrom
        self.recipients = recipients
        self.content = content
        self.credential = credential
        self.clientIP = clientIP
        self.receivedAt = receivedAt
        self.eightBitMIME = eightBitMIME
        self.smtpUTF8 = smtpUTF8
    }
}

public struct QueuedRecipient: Sendable, Equatable {
    public var id: RecipientID
    public var address: String
    public init(id: RecipientID, address: String) {
        self.id = id
        self.address = address
    }
}

/// A recipient's delivery state as kept in the store.
public enum RecipientState: String, Sendable, Codable {
    case queued
    case sent
    case failed
    case suppressed
}

/// A stored message as read back from the store.
public struct StoredMessage: Sendable, Equatable {
    public var id: MessageID
    public var tenant: TenantID
    public var messageIDHeader: String
    public var mailFrom: String
    public var recipients: [StoredRecipient]
    public var content: [UInt8]
    public var credential: String?
    public var receivedAt: Date

    public init(
        id: MessageID, messageIDHeader: String, mailFrom: String, recipients: [StoredRecipient],
        content: [UInt8], credential: String?, receivedAt: Date, tenant: TenantID = .default
    ) {
        self.id = id
        self.tenant = tenant
        self.messageIDHeader = messageIDHeader
        self.mailFrom = mailFrom
        self.recipients = recipients
        self.content = content
        self.credential = credential
        self.receivedAt = receivedAt
    }
}

public struct StoredRecipient: Sendable, Equatable {
    public var id: RecipientID
    public var address: String
    public var state: RecipientState
    public init(id: RecipientID, address: String, state: RecipientState) {
        self.id = id
        self.address = address
        self.state = state
    }
}
