import Foundation
import Logging
import PostgresNIO
public import TernCore

/// `EngagementStore`: link targets, engagement events (written by whichever node served the request),
/// timelines.
extension PostgresStore {
    public func links(of message: MessageID) async throws -> [String] {
        let rows = try await client.query(
            "SELECT url FROM links WHERE message_id = \(message.rawValue) ORDER BY position", logger: logger)
        var links: [String] = []
        for try await url in rows.decode(String.self) { links.append(url) }
        return links
    }

    /// Each event only for a recipient of that message that exists (a token is verified, but
    /// its message may have been deleted since); a second unsubscribe of a recipient is
    /// dropped by the unique index `events_unsubscribe_once`, on whichever node it arrives.
    public func recordEngagement(_ events: [EngagementEvent]) async throws {
        guard !events.isEmpty else { return }
        let logger = self.logger
        try await transaction { connection in
            for event in events {
                let at = event.at.millisecondsSince1970
                var fields: (keys: [String], values: [String]) = ([], [])
                event.details.forEachField { key, value in
                    fields.keys.append(key.description)
                    fields.values.append(value)
                }
                // No fields: NULL details, as for the events of other kinds.
                let (keys, values) = fields.keys.isEmpty ? (nil, nil) : (fields.keys, fields.values)
                try await connection.query(
                    """
                    INSERT INTO events (type, message_id, recipient_id, at, details, tenant_id)
                    SELECT \(event.type.rawValue), r.message_id, r.id, \(at), jsonb_object(\(keys)::TEXT[], \(values)::TEXT[]),
                           m.tenant_id
                    FROM recipients r JOIN messages m ON m.id = r.message_id
                    WHERE r.id = \(event.recipientID.rawValue) AND r.message_id = \(event.messageID.rawValue)
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
                if event.type == .unsubscribe {
                    try await connection.query(
                        """
                        INSERT INTO suppressions (tenant_id, address, domain, reason, created_at)
                        SELECT m.tenant_id, lower(r.address), m.from_domain, 'unsubscribed', \(at)
                        FROM recipients r JOIN messages m ON m.id = r.message_id
                        WHERE r.id = \(event.recipientID.rawValue) AND r.message_id = \(event.messageID.rawValue)
                        ON CONFLICT (address, tenant_id, domain) DO NOTHING
                        """, logger: logger)
                }
            }
        }
    }

    public func recipientSummary(_ id: RecipientID) async throws -> RecipientSummary? {
        let rows = try await client.query(
            """
            SELECT r.message_id, r.address, m.from_domain, m.tenant_id
            FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.id = \(id.rawValue)
            """, logger: logger)
        var summary: RecipientSummary?
        for try await (messageID, address, fromDomain, tenant) in rows.decode((Int64, String, String, Int64).self) {
            summary = RecipientSummary(
                id: id, messageID: MessageID(rawValue: messageID), address: address, fromDomain: fromDomain,
                tenant: TenantID(rawValue: tenant))
        }
        return summary
    }

    /// Through the recipients, so that the events are found by `events_recipient`.
    public func timeline(of message: MessageID) async throws -> [TimelineEvent] {
        let rows = try await client.query(
            """
            SELECT e.type, e.recipient_id, e.at, e.details::TEXT
            FROM recipients r JOIN events e ON e.recipient_id = r.id
            WHERE r.message_id = \(message.rawValue) ORDER BY e.at, e.id
            """, logger: logger)
        let decoder = JSONDecoder()
        var timeline: [TimelineEvent] = []
        for try await (name, recipientID, at, details) in rows.decode((String, Int64?, Int64, String?).self) {
            guard let type = EventType(rawValue: name) else { continue }
            timeline.append(
                TimelineEvent(
                    type: type, recipientID: recipientID.map(RecipientID.init(rawValue:)),
                    at: Date(millisecondsSince1970: at),
                    details: details.flatMap { try? decoder.decode([String: String].self, from: Data($0.utf8)) } ?? [:]))
        }
        return timeline
    }
}
