public import Foundation

/// An open, click or unsubscribe, as recorded from a tracking request.
public struct EngagementEvent: Sendable, Equatable {
    /// `.open`, `.click` or `.unsubscribe`.
    public var type: EventType
    public var messageID: MessageID
    public var recipientID: RecipientID
    public var at: Date
    /// What the event says: `machine` ("true"/"false") and `reason` for opens and clicks,
    /// `url` and `link` for clicks, `method` for unsubscribes, the client's `ip` and `user_agent`.
    public var details: [String: String]

    public init(type: EventType, messageID: MessageID, recipientID: RecipientID, at: Date, details: [String: String] = [:]) {
        self.type = type
        self.messageID = messageID
        self.recipientID = recipientID
        self.at = at
        self.details = details
    }
}

/// One line of a message's timeline.
public struct TimelineEvent: Sendable, Equatable {
    public var type: EventType
    /// The recipient it concerns (every event of a message so far has one).
    public var recipientID: RecipientID?
    public var at: Date
    public var details: [String: String]

    public init(type: EventType, recipientID: RecipientID?, at: Date, details: [String: String]) {
        self.type = type
        self.recipientID = recipientID
        self.at = at
        self.details = details
    }
}

/// Who a recipient is, for the unsubscribe page.
public struct RecipientSummary: Sendable, Equatable {
    public var id: RecipientID
    public var messageID: MessageID
    public var address: String
    /// The message's sending (`From`) domain, lower-cased; empty when unknown.
    public var fromDomain: String

    public init(id: RecipientID, messageID: MessageID, address: String, fromDomain: String) {
        self.id = id
        self.messageID = messageID
        self.address = address
        self.fromDomain = fromDomain
    }
}

/// The tracking side of the store: link targets, engagement events, timelines.
public protocol EngagementStore: Sendable {
    /// The original targets of a message's tracked links, in link-index order.
    func links(of message: MessageID) async throws -> [String]

    /// Stores engagement events in one transaction. An unsubscribe also puts the recipient's
    /// address on the suppression list for the message's sending domain, and is stored once
    /// per recipient however often it is repeated. Events of recipients that do not exist
    /// (a deleted message) are dropped.
    func recordEngagement(_ events: [EngagementEvent]) async throws

    /// The recipient's address and sending domain; nil when unknown.
    func recipientSummary(_ id: RecipientID) async throws -> RecipientSummary?

    /// Every event of the message, oldest first.
    func timeline(of message: MessageID) async throws -> [TimelineEvent]
}
