import Foundation
public import Hummingbird
public import TernCore

/// A message as `GET /api/v1/messages/ID` and `tern message ID` show it: the envelope, and
/// each recipient's state with the timeline of its events.
public struct MessageView: ResponseEncodable, Decodable, Equatable, Sendable {
    public struct Recipient: Codable, Equatable, Sendable {
        public var id: String
        public var address: String
        public var state: String
        public var events: [Event]
    }

    public struct Event: Codable, Equatable, Sendable {
        public var type: String
        public var at: String
        public var details: [String: String]
    }

    public var id: String
    public var messageIDHeader: String
    public var mailFrom: String
    public var receivedAt: String
    public var recipients: [Recipient]
    /// Whose message it is; not in the JSON (tools show the tenant's name).
    public var tenant: TenantID?

    enum CodingKeys: String, CodingKey {
        case id
        case messageIDHeader = "message_id_header"
        case mailFrom = "mail_from"
        case receivedAt = "received_at"
        case recipients
    }

    public init(message: StoredMessage, timeline: [TimelineEvent]) {
        id = message.id.description
        messageIDHeader = message.messageIDHeader
        mailFrom = message.mailFrom
        receivedAt = ISO8601.format(message.receivedAt, fractionalSeconds: true)
        tenant = message.tenant
        var events: [RecipientID: [Event]] = [:]
        for event in timeline {
            guard let recipient = event.recipientID else { continue }
            events[recipient, default: []].append(
                Event(type: event.type.rawValue, at: ISO8601.format(event.at, fractionalSeconds: true), details: event.details))
        }
        recipients = message.recipients.map { recipient in
            Recipient(
                id: recipient.id.description, address: recipient.address, state: recipient.state.rawValue,
                events: events[recipient.id] ?? [])
        }
    }

    /// Reads the message and its timeline; nil when there is no such message in `scope`.
    public static func load(_ id: MessageID, from store: any Store, scope: TenantScope) async throws -> MessageView? {
        guard let message = try await store.message(id, scope: scope) else { return nil }
        return MessageView(message: message, timeline: try await store.timeline(of: id))
    }
}
