public import Foundation
public import TernCore

/// Where a delivery goes, as far as concurrency and fairness are concerned: the set of
/// hosts that take the recipient domain's mail (its route or MX host names, see
/// `DestinationKeyTable`), or the domain itself (lowercased) until that is known.
/// The scheduler only compares and hashes it.
public struct DestinationKey: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }

    /// The key for a recipient domain.
    public static func domain(_ domain: String) -> DestinationKey { DestinationKey(domain.lowercased()) }

    public var description: String { rawValue }
}

/// A queued recipient handed to the scheduler by the store: due now, or soon.
public struct ScheduledRecipient: Sendable, Equatable {
    public var id: RecipientID
    public var messageID: MessageID
    public var destination: DestinationKey
    /// When the message was queued: the start of the maximum age.
    public var firstQueuedAt: Date
    /// Delivery attempts made so far.
    public var attempts: Int
    /// Not before this time. A time in the future is held in the active set until then.
    public var nextAttemptAt: Date
    /// Never attempted: goes in the new-mail queue, not the retry queue.
    public var isNew: Bool
    /// The reason of the last deferral, reported if the recipient expires.
    public var lastReason: String?

    public init(
        id: RecipientID, messageID: MessageID, destination: DestinationKey, firstQueuedAt: Date,
        attempts: Int = 0, nextAttemptAt: Date, isNew: Bool? = nil, lastReason: String? = nil
    ) {
        self.id = id
        self.messageID = messageID
        self.destination = destination
        self.firstQueuedAt = firstQueuedAt
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.isNew = isNew ?? (attempts == 0)
        self.lastReason = lastReason
    }

    /// A recipient claimed from the store, keyed by its domain unless `destination` is given.
    /// The store's row does not carry the last deferral reason; pass it if known.
    public init(_ due: DueRecipient, destination: DestinationKey? = nil, lastReason: String? = nil) {
        self.init(
            id: due.id, messageID: due.messageID, destination: destination ?? .domain(due.domain),
            firstQueuedAt: due.queuedAt, attempts: due.attempts, nextAttemptAt: due.nextAttemptAt,
            lastReason: lastReason)
    }

    /// A recipient keyed by its domain.
    public init(
        id: RecipientID, messageID: MessageID, domain: String, firstQueuedAt: Date,
        attempts: Int = 0, nextAttemptAt: Date, isNew: Bool? = nil, lastReason: String? = nil
    ) {
        self.init(
            id: id, messageID: messageID, destination: .domain(domain), firstQueuedAt: firstQueuedAt,
            attempts: attempts, nextAttemptAt: nextAttemptAt, isNew: isNew, lastReason: lastReason)
    }
}

/// One delivery to start: one message and its recipients for one destination, over one
/// SMTP session (Postfix's per-destination message grouping). Holds one of the
/// destination's concurrency slots until every recipient in it has an outcome.
public struct DeliveryJob: Sendable, Equatable, Identifiable {
    public struct ID: Hashable, Sendable, CustomStringConvertible {
        public var rawValue: UInt64
        public init(rawValue: UInt64) { self.rawValue = rawValue }
        public var description: String { "job-\(rawValue)" }
    }

    public var id: ID
    public var messageID: MessageID
    public var destination: DestinationKey
    public var recipients: [RecipientID]
    /// Taken from the new-mail queue (true) or the retry queue.
    public var isNew: Bool

    public init(id: ID, messageID: MessageID, destination: DestinationKey, recipients: [RecipientID], isNew: Bool) {
        self.id = id
        self.messageID = messageID
        self.destination = destination
        self.recipients = recipients
        self.isNew = isNew
    }
}

/// Why a recipient was deferred, as far as the scheduler cares.
public enum DeferralKind: Sendable, Equatable {
    /// The remote answered 4xx to this recipient's RCPT or to DATA: the destination
    /// itself is fine, so concurrency is not reduced.
    case recipient
    /// The destination is in trouble: 421, connection refused or timed out, TLS failure,
    /// 4xx greeting, no DNS answer. Reduces the destination's concurrency and can mark
    /// it dead.
    case destination
}

/// How one recipient's delivery attempt ended.
public enum DeliveryAttemptOutcome: Sendable, Equatable {
    /// Accepted by the remote (2xx).
    case sent
    /// Permanently refused (5xx, null MX, …).
    case failed
    /// Try again later; `reason` is kept for the store and for the final failure if the
    /// recipient expires.
    case deferred(reason: String, kind: DeferralKind)
}

/// One recipient's outcome, reported by the delivery loop.
public struct DeliveryAttemptResult: Sendable, Equatable {
    public var recipient: RecipientID
    public var outcome: DeliveryAttemptOutcome
    public init(recipient: RecipientID, outcome: DeliveryAttemptOutcome) {
        self.recipient = recipient
        self.outcome = outcome
    }
}

/// A recipient to write back to the store as deferred; it has left the active set.
public struct RecipientDeferral: Sendable, Equatable {
    public var recipient: RecipientID
    public var messageID: MessageID
    public var nextAttemptAt: Date
    /// The attempt count to store: one more than before if `attempted`.
    public var attempts: Int
    public var reason: String
    /// False when it was deferred without an attempt (its destination is dead).
    public var attempted: Bool

    public init(
        recipient: RecipientID, messageID: MessageID, nextAttemptAt: Date, attempts: Int, reason: String,
        attempted: Bool
    ) {
        self.recipient = recipient
        self.messageID = messageID
        self.nextAttemptAt = nextAttemptAt
        self.attempts = attempts
        self.reason = reason
        self.attempted = attempted
    }
}

/// A recipient to mark failed because it reached the maximum age; it has left the active set.
public struct RecipientExpiry: Sendable, Equatable {
    public var recipient: RecipientID
    public var messageID: MessageID
    /// The last deferral's reason.
    public var reason: String
    /// The attempt count to store.
    public var attempts: Int

    public init(recipient: RecipientID, messageID: MessageID, reason: String, attempts: Int) {
        self.recipient = recipient
        self.messageID = messageID
        self.reason = reason
        self.attempts = attempts
    }
}

/// A request to load due recipients from the store (claimed for this node), answered
/// with ``DeliveryScheduler/loaded(_:storeNextRetryAt:now:)``.
///
/// A store that can claim new and deferred recipients separately should claim up to each
/// limit; that keeps new mail from waiting behind a backlog even at load time. A store
/// that cannot may claim up to ``total`` of any kind, due-time order.
public struct LoadRequest: Sendable, Equatable {
    /// New recipients (never attempted), oldest first, at most this many.
    public var newLimit: Int
    /// Deferred recipients whose next attempt time has come, earliest first, at most this many.
    public var retryLimit: Int
    /// Recipients of either kind at most.
    public var total: Int { newLimit + retryLimit }
    public init(newLimit: Int, retryLimit: Int) {
        self.newLimit = newLimit
        self.retryLimit = retryLimit
    }
}
