import Foundation
import GRDB
public import TernCore

extension SQLiteStore {
    public func links(of message: MessageID) async throws -> [String] {
        try await writer.read { db in
            try String.fetchAll(
                db, sql: "SELECT url FROM links WHERE message_id = ? ORDER BY position", arguments: [message.rawValue])
        }
    }

    public func recordEngagement(_ events: [EngagementEvent]) async throws {
        guard !events.isEmpty else { return }
        try await writer.write { db in
            // Only for recipients of that message that exist: a token is verified, but its
            // message may have been deleted since.
            let insert = try db.cachedStatement(
                sql: """
                    INSERT OR IGNORE INTO events (type, message_id, recipient_id, at, details)
                    SELECT ?, r.message_id, r.id, ?, ? FROM recipients r WHERE r.id = ? AND r.message_id = ?
                    """)
            let suppress = try db.cachedStatement(
                sql: """
                    INSERT INTO suppressions (address, domain, reason, created_at)
                    SELECT lower(r.address), m.from_domain, 'unsubscribed', ?
                    FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.id = ? AND r.message_id = ?
                    ON CONFLICT (address, domain) DO NOTHING
                    """)
            for event in events {
                let details = event.details.isEmpty ? nil : DetailsJSON.encode(event.details)
                let at = event.at.millisecondsSince1970
                try insert.execute(arguments: [
                    event.type.rawValue, at, details, event.recipientID.rawValue, event.messageID.rawValue,
                ])
                if event.type == .unsubscribe {
                    try suppress.execute(arguments: [at, event.recipientID.rawValue, event.messageID.rawValue])
                }
            }
        }
    }

    public func recipientSummary(_ id: RecipientID) async throws -> RecipientSummary? {
        try await writer.read { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT r.id, r.message_id, r.address, m.from_domain
                    FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.id = ?
                    """,
                arguments: [id.rawValue]
            ).map { row in
                RecipientSummary(
                    id: RecipientID(rawValue: row["id"]), messageID: MessageID(rawValue: row["message_id"]),
                    address: row["address"], fromDomain: row["from_domain"])
            }
        }
    }

    public func timeline(of message: MessageID) async throws -> [TimelineEvent] {
        try await writer.read { db in
            let decoder = JSONDecoder()
            return try Row.fetchAll(
                db,
                // Through the recipients, so that the events are found by index.
                sql: """
                    SELECT e.type, e.recipient_id, e.at, e.details
                    FROM recipients r JOIN events e ON e.recipient_id = r.id
                    WHERE r.message_id = ? ORDER BY e.at, e.id
                    """,
                arguments: [message.rawValue]
            ).compactMap { row in
                guard let type = EventType(rawValue: row["type"]) else { return nil }
                let details: String? = row["details"]
                let recipient: Int64? = row["recipient_id"]
                return TimelineEvent(
                    type: type, recipientID: recipient.map(RecipientID.init(rawValue:)),
                    at: Date(millisecondsSince1970: row["at"]),
                    details: details.flatMap { try? decoder.decode([String: String].self, from: Data($0.utf8)) } ?? [:])
            }
        }
    }
}
