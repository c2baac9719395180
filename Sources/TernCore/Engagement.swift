public import Foundation

/// An open, click or unsubscribe, as recorded from a tracking request.
public struct EngagementEvent: Sendable, Equatable {
    /// `.open`, `.click` or `.unsubscribe`.
    public var type: EventType
    public var messageID: MessageID
    public var recipientID: RecipientID
    public var at: Date
    public var details: EngagementDetails

    public init(type: EventType, messageID: MessageID, recipientID: RecipientID, at: Date, details: EngagementDetails = EngagementDetails()) {
        self.type = type
        self.messageID = messageID
        self.recipientID = recipientID
        self.at = at
        self.details = details
    }
}

/// What an open, click or unsubscribe says. Stored as a JSON object of strings under the
/// keys in `forEachField`, as every event's details are, so timelines and stats read them
/// alike.
///
/// Fields rather than a dictionary: the tracking endpoints record one of these per request,
/// and the store's writer encodes thousands per batch. A dictionary cost an allocation and
/// a hash per key on the event loop, and sorting and freeing on the writer.
public struct EngagementDetails: Sendable, Equatable {
    /// Opens and clicks: whether a machine made the request, and why it was judged so.
    public var machine: Bool?
    public var reason: String?
    /// Clicks: the link's original target and its index among the message's links.
    public var url: String?
    public var link: Int?
    /// `HEAD` for an open or click fetched with HEAD; `one-click` or `page` for an unsubscribe.
    public var method: String?
    /// The client's address and user agent.
    public var ip: String?
    public var userAgent: String?

    public init(
        machine: Bool? = nil, reason: String? = nil, url: String? = nil, link: Int? = nil, method: String? = nil, ip: String? = nil,
        userAgent: String? = nil
    ) {
        self.machine = machine
        self.reason = reason
        self.url = url
        self.link = link
        self.method = method
        self.ip = ip
        self.userAgent = userAgent
    }

    public var isEmpty: Bool { self == EngagementDetails() }

    /// Calls `body` with each field that is set, as its stored key and text, in the order of
    /// the keys (so an encoder that writes them as they come writes sorted keys).
    public func forEachField(_ body: (StaticString, String) throws -> Void) rethrows {
        if let ip { try body("ip", ip) }
        if let link { try body("link", String(link)) }
        if let machine { try body("machine", machine ? "true" : "false") }
        if let method { try body("method", method) }
        if let reason { try body("reason", reason) }
        if let url { try body("url", url) }
        if let userAgent { try body("user_agent", userAgent) }
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
    /// The tenant that sent the message: what comes back for this recipient is its.
    public var tenant: TenantID

    public init(id: RecipientID, messageID: MessageID, address: String, fromDomain: String, tenant: TenantID = .default) {
        self.tenant = tenant
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
