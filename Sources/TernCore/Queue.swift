public import Foundation

/// A recipient claimed for a delivery attempt: what the delivery code needs to send
/// it, without the message content (read separately, once per message).
public struct DueRecipient: Sendable, Equatable {
    public var id: RecipientID
    public var messageID: MessageID
    public var address: String
    public var mailFrom: String
    /// Attempts made before this one.
    public var attempts: Int
    /// When the message was accepted: the start of its maximum age.
    public var queuedAt: Date
    public var nextAttemptAt: Date
    public var eightBitMIME: Bool
    public var smtpUTF8: Bool
    public var size: Int
    /// The domain of the message's `From` (lower-cased; empty when unknown): the sending
    /// domain a suppression can be limited to.
    public var fromDomain: String
    /// The tenant that sent the message: whose suppressions apply.
    public var tenant: TenantID

    public init(
        id: RecipientID, messageID: MessageID, address: String, mailFrom: String, attempts: Int,
        queuedAt: Date, nextAttemptAt: Date, eightBitMIME: Bool, smtpUTF8: Bool, size: Int, fromDomain: String = "",
        tenant: TenantID = .default
    ) {
        self.tenant = tenant
        self.fromDomain = fromDomain
        self.id = id
        self.messageID = messageID
        self.address = address
        self.mailFrom = mailFrom
        self.attempts = attempts
        self.queuedAt = queuedAt
        self.nextAttemptAt = nextAttemptAt
        self.eightBitMIME = eightBitMIME
        self.smtpUTF8 = smtpUTF8
        self.size = size
    }

    /// The part after the last `@`, lower-cased: the destination the scheduler keys on.
    public var domain: String {
        guard let at = address.lastIndex(of: "@") else { return "" }
        return address[address.index(after: at)...].lowercased()
    }
}

/// What happened to one recipient in one attempt (or by an operator), as stored:
/// an event row and, for final outcomes, the recipient's new state.
public struct RecipientOutcome: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The remote MX accepted it: final.
        case sent
        /// A permanent failure: final.
        case failed
        /// Not delivered on the suppression list: final, neither sent nor failed.
        case suppressed
        /// A temporary failure: try again at the given time.
        case deferred(nextAttemptAt: Date)
    }

    public var recipientID: RecipientID
    public var messageID: MessageID
    public var kind: Kind
    public var at: Date
    /// What the event says: remote host, reply code, enhanced code, text, TLS, bounce class, reason.
    public var details: [String: String]

    public init(recipientID: RecipientID, messageID: MessageID, kind: Kind, at: Date, details: [String: String] = [:]) {
        self.recipientID = recipientID
        self.messageID = messageID
        self.kind = kind
        self.at = at
        self.details = details
    }

    public var eventType: EventType {
        switch kind {
        case .sent: .sent
        case .failed: .failed
        case .suppressed: .suppressed
        case .deferred: .deferred
        }
    }
}

/// A line of `tern queue`: a recipient still waiting, and why.
public struct QueueEntry: Sendable, Equatable, Codable {
    public var recipientID: String
    public var messageID: String
    public var address: String
    public var mailFrom: String
    public var attempts: Int
    public var queuedAt: Date
    public var nextAttemptAt: Date
    /// The text of the last `deferred` event, if any.
    public var lastReason: String?
    /// Not part of the JSON: tools show the tenant's name.
    public var tenant: TenantID = .default

    public init(
        recipientID: String, messageID: String, address: String, mailFrom: String, attempts: Int,
        queuedAt: Date, nextAttemptAt: Date, lastReason: String?, tenant: TenantID = .default
    ) {
        self.tenant = tenant
        self.recipientID = recipientID
        self.messageID = messageID
        self.address = address
        self.mailFrom = mailFrom
        self.attempts = attempts
        self.queuedAt = queuedAt
        self.nextAttemptAt = nextAttemptAt
        self.lastReason = lastReason
    }

    enum CodingKeys: String, CodingKey {
        case recipientID = "recipient_id"
        case messageID = "message_id"
        case address
        case mailFrom = "mail_from"
        case attempts
        case queuedAt = "queued_at"
        case nextAttemptAt = "next_attempt_at"
        case lastReason = "last_reason"
    }
}

/// An address that must not be mailed, e.g. after a hard bounce, complaint or unsubscribe:
/// by one tenant (from one of its sending domains, after an unsubscribe, or from every one),
/// or by anyone (an installation-wide entry the operator adds).
public struct Suppression: Sendable, Equatable, Codable {
    /// Lower-cased address.
    public var address: String
    /// The tenant whose mail it stops; nil: every tenant's. Not part of the JSON: tools
    /// show the tenant's name.
    public var tenant: TenantID? = .default
    /// The lower-cased sending (`From`) domain it applies to; empty for every domain.
    public var domain: String
    public var reason: String
    public var createdAt: Date

    public init(address: String, domain: String = "", tenant: TenantID? = .default, reason: String, createdAt: Date) {
        self.address = address
        self.tenant = tenant
        self.domain = domain
        self.reason = reason
        self.createdAt = createdAt
    }

    /// Whether it stops mail from `sendingDomain` (lower-cased) sent by `tenant`.
    public func applies(to sendingDomain: String, of tenant: TenantID) -> Bool {
        (self.tenant == nil || self.tenant == tenant) && (domain.isEmpty || domain == sendingDomain)
    }

    enum CodingKeys: String, CodingKey {
        case address
        case domain
        case reason
        case createdAt = "created_at"
    }
}

/// The delivery side of the store: claims with leases, outcomes, the operator's queue
/// commands and the suppression list.
public protocol DeliveryStore: Sendable {
    /// Claims up to `newLimit` new recipients (never attempted) and up to `retryLimit` retries
    /// due at `now` that no live lease holds, oldest due first within each kind, leasing them
    /// to `node` until `leaseUntil`. A lease that expired (its node died) makes the recipient
    /// claimable again.
    func claimDueRecipients(now: Date, newLimit: Int, retryLimit: Int, node: String, leaseUntil: Date) async throws -> [DueRecipient]

    /// Extends the leases `node` holds on these recipients (while their delivery runs).
    func renewLeases(_ recipients: [RecipientID], node: String, leaseUntil: Date) async throws
    /// Gives up claims without an outcome: the recipients are claimable again at once.
    func releaseLeases(_ recipients: [RecipientID], node: String) async throws
    /// Gives up every claim `node` holds: at start-up, what a crashed run of the same node left.
    func releaseLeases(heldBy node: String) async throws

    /// Stores outcomes in one transaction: an event each, and the recipient's new state
    /// (final, or queued again with its next attempt time); releases their leases.
    func record(_ outcomes: [RecipientOutcome]) async throws

    /// The message content, whole (tests and tools; delivery reads it in pieces).
    func content(of message: MessageID) async throws -> [UInt8]?

    /// Up to `maxLength` octets of the message content from `offset`, for streaming it to a
    /// remote server without holding it whole: `[]` past the end. Throws
    /// `StoreError(.notFound)` when the message is gone.
    func readContent(of message: MessageID, offset: Int, maxLength: Int) async throws -> [UInt8]

    /// Recipients still queued (not final) of the tenants in `scope`, oldest first.
    func queueEntries(limit: Int, scope: TenantScope) async throws -> [QueueEntry]
    /// Makes the recipient (or every queued recipient of the message) due now; returns how many.
    func retryNow(_ id: Int64, now: Date) async throws -> Int
    /// Removes the recipient (or every queued recipient of the message) from the queue with a
    /// `failed` event ("dropped by operator"); returns how many.
    func drop(_ id: Int64, now: Date) async throws -> Int

    /// Adds (or updates the reason of) an entry; the address and domain are lower-cased.
    func addSuppression(_ suppression: Suppression) async throws
    /// Removes the address's entry of `tenant` (nil: the installation-wide one) for `domain`,
    /// or every such entry of the address when `domain` is nil; returns how many were removed.
    func removeSuppression(address: String, domain: String?, tenant: TenantID?) async throws -> Int
    /// The entries that stop the mail of the tenants in `scope`: a tenant's own and the
    /// installation-wide ones; every entry for the operator.
    func suppressions(scope: TenantScope) async throws -> [Suppression]
    /// The recipients that must not be mailed: their address (compared lower-cased) is
    /// suppressed, installation-wide or by their message's tenant, for every domain or for
    /// their message's sending domain.
    func suppressed(_ recipients: [DueRecipient]) async throws -> Set<RecipientID>
}

extension DeliveryStore {
    /// Claims up to `limit` due recipients as two shares: up to half each for new mail (which
    /// gets the odd one) and retries, and what one kind cannot fill goes to the other. So
    /// however many retries are due, new mail is claimed too. (The delivery loop asks for
    /// its own shares; this form is for tools and tests.)
    public func claimDueRecipients(now: Date, limit: Int, node: String, leaseUntil: Date) async throws -> [DueRecipient] {
        guard limit > 0 else { return [] }
        let newShare = limit - limit / 2
        let claimed = try await claimDueRecipients(
            now: now, newLimit: newShare, retryLimit: limit - newShare, node: node, leaseUntil: leaseUntil)
        let newCount = claimed.count { $0.attempts == 0 }
        let room = limit - claimed.count
        guard room > 0 else { return claimed }
        if newCount == newShare {
            return claimed + (try await claimDueRecipients(now: now, newLimit: room, retryLimit: 0, node: node, leaseUntil: leaseUntil))
        }
        if claimed.count - newCount == limit - newShare {
            return claimed + (try await claimDueRecipients(now: now, newLimit: 0, retryLimit: room, node: node, leaseUntil: leaseUntil))
        }
        return claimed
    }
}
