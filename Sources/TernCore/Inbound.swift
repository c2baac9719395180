public import Foundation

/// Why the MX took a message: a report about mail Tern sent (a bounce, complaint,
/// auto-reply or unsubscribe mail, addressed to a return-path or feedback address), or
/// mail for a customer's domain.
public enum InboundPurpose: String, Sendable, Codable {
    case report
    case inbound
}

/// A message as the MX accepted it, committed before the 250.
public struct InboundMessage: Sendable, Equatable {
    public var id: InboundMessageID
    public var receivedAt: Date
    public var clientIP: String?
    public var heloName: String
    /// The reverse path; empty for `<>` (as bounces are sent).
    public var mailFrom: String
    public var recipients: [String]
    public var purpose: InboundPurpose
    /// Where inbound mail is posted; nil for reports and store-only routes.
    public var webhookURL: String?
    public var content: [UInt8]
    /// The tenant whose route or domain inbound mail matched; nil for a report until it is
    /// read (then it belongs to the tenant of the message it is about, or stays nobody's).
    public var tenant: TenantID?

    public init(
        id: InboundMessageID, receivedAt: Date, clientIP: String?, heloName: String, mailFrom: String,
        recipients: [String], purpose: InboundPurpose, webhookURL: String?, content: [UInt8], tenant: TenantID? = nil
    ) {
        self.tenant = tenant
        self.id = id
        self.receivedAt = receivedAt
        self.clientIP = clientIP
        self.heloName = heloName
        self.mailFrom = mailFrom
        self.recipients = recipients
        self.purpose = purpose
        self.webhookURL = webhookURL
        self.content = content
    }
}

/// An event a report leads to. Events of recipients Tern knows carry their ids; an
/// unmatched report's event carries none.
public struct ReportEvent: Sendable, Equatable {
    /// `.failed` (with `async: "true"`), `.delayed`, `.complaint`, `.autoReply`,
    /// `.unsubscribe` or `.unmatchedReport`.
    public var type: EventType
    public var messageID: MessageID?
    public var recipientID: RecipientID?
    public var at: Date
    public var details: [String: String]

    public init(type: EventType, messageID: MessageID?, recipientID: RecipientID?, at: Date, details: [String: String]) {
        self.type = type
        self.messageID = messageID
        self.recipientID = recipientID
        self.at = at
        self.details = details
    }
}

/// What reading one report found, stored in one transaction with the report marked done.
public struct ReportOutcome: Sendable, Equatable {
    /// `bounce`, `delay`, `complaint`, `auto_reply`, `unsubscribe` or `unknown`.
    public var kind: String
    public var events: [ReportEvent]
    public var suppressions: [Suppression]

    public init(kind: String, events: [ReportEvent], suppressions: [Suppression]) {
        self.kind = kind
        self.events = events
        self.suppressions = suppressions
    }
}

/// One try at posting an inbound message to its route.
public struct WebhookAttempt: Sendable, Equatable {
    public var at: Date
    /// The HTTP status, when there was an answer.
    public var status: Int?
    /// Why it failed: a connection error, a timeout, or a non-2xx answer.
    public var error: String?
    /// When to try again; nil when no further try is made (delivered, or given up).
    public var nextAttemptAt: Date?

    public var delivered: Bool { error == nil }

    public init(at: Date, status: Int?, error: String?, nextAttemptAt: Date?) {
        self.at = at
        self.status = status
        self.error = error
        self.nextAttemptAt = nextAttemptAt
    }
}

/// A line of `tern inbound list` and `GET /api/v1/inbound`.
public struct InboundSummary: Sendable, Equatable, Codable {
    public var id: String
    public var receivedAt: Date
    public var mailFrom: String
    public var recipients: [String]
    public var purpose: InboundPurpose
    public var size: Int
    /// What the message turned out to be (`bounce`, `complaint`, …, `inbound`); nil until read.
    public var kind: String?
    public var webhook: Webhook?
    /// The tenant it belongs to (nil: a report not read yet or about nothing Tern sent, which
    /// only the operator sees); not part of the JSON, which names tenants rather than numbering them.
    public var tenant: TenantID?

    public struct Webhook: Sendable, Equatable, Codable {
        public var url: String
        /// `pending` (to be tried, or tried again), `delivered` or `gave_up`.
        public var state: String
        public var attempts: Int
        public var lastAttemptAt: Date?
        public var lastStatus: Int?
        public var lastError: String?
        public var nextAttemptAt: Date?

        public init(
            url: String, state: String, attempts: Int, lastAttemptAt: Date?, lastStatus: Int?, lastError: String?,
            nextAttemptAt: Date?
        ) {
            self.url = url
            self.state = state
            self.attempts = attempts
            self.lastAttemptAt = lastAttemptAt
            self.lastStatus = lastStatus
            self.lastError = lastError
            self.nextAttemptAt = nextAttemptAt
        }

        enum CodingKeys: String, CodingKey {
            case url, state, attempts
            case lastAttemptAt = "last_attempt_at"
            case lastStatus = "last_status"
            case lastError = "last_error"
            case nextAttemptAt = "next_attempt_at"
        }
    }

    public init(
        id: String, receivedAt: Date, mailFrom: String, recipients: [String], purpose: InboundPurpose, size: Int,
        kind: String?, webhook: Webhook?, tenant: TenantID? = nil
    ) {
        self.tenant = tenant
        self.id = id
        self.receivedAt = receivedAt
        self.mailFrom = mailFrom
        self.recipients = recipients
        self.purpose = purpose
        self.size = size
        self.kind = kind
        self.webhook = webhook
    }

    enum CodingKeys: String, CodingKey {
        case id
        case receivedAt = "received_at"
        case mailFrom = "mail_from"
        case recipients, purpose, size, kind, webhook
    }
}

/// The MX side of the store: messages that arrived, the reports read from them, and the
/// posting of inbound mail to its routes.
public protocol InboundStore: Sendable {
    /// Commits arrived messages durably in one transaction (before the MX answers 250): one
    /// transaction's mail, split by purpose and route. Inbound mail also gets its `inbound`
    /// event, and with a webhook URL is due for posting at once.
    func commitInbound(_ messages: [InboundMessage]) async throws

    /// Reports not read yet, oldest first.
    func pendingReports(limit: Int) async throws -> [InboundMessage]

    /// Stores what a report led to and marks it read, in one transaction. A recipient gets
    /// at most one `failed` and one `complaint` event however many reports repeat them;
    /// an `unsubscribe` also suppresses the address for the message's sending domain, once.
    func completeReport(_ id: InboundMessageID, outcome: ReportOutcome) async throws

    /// Claims inbound messages whose posting is due at `now`, oldest due first: each is
    /// not due again before `leaseUntil` (or the attempt recorded for it), so two nodes
    /// never post one message at once, and a node that dies mid-post leaves it due again
    /// once the lease ends.
    func claimDueWebhooks(now: Date, limit: Int, leaseUntil: Date) async throws -> [InboundMessage]

    /// Records one posting attempt: delivered, to be tried again at `nextAttemptAt`, or given up.
    func recordWebhookAttempt(_ id: InboundMessageID, _ attempt: WebhookAttempt) async throws

    /// The most recent arrivals of the tenants in `scope`, newest first (reports that matched
    /// nothing, which belong to no tenant, only in the operator's scope).
    func inboundMessages(limit: Int, scope: TenantScope) async throws -> [InboundSummary]

    /// The recipients (with their sending domain) of the messages that carry this
    /// `Message-ID` header, the newest first, for reports that lost their VERP address.
    func recipients(messageIDHeader: String, limit: Int) async throws -> [RecipientSummary]
}
