public import Foundation
import GRDB
public import TernCore

extension SQLiteStore {
    public func commitInbound(_ messages: [InboundMessage]) async throws {
        do {
            try await writer.write { db in
                for message in messages { try Self.insert(message, in: db) }
            }
        } catch {
            throw Self.storeError(error, path: path)
        }
    }

    private static func insert(_ message: InboundMessage, in db: Database) throws {
                let at = message.receivedAt.millisecondsSince1970
                let webhookDue = message.purpose == .inbound && message.webhookURL != nil
                try db.execute(
                    sql: """
                        INSERT INTO inbound_messages (id, received_at, client_ip, helo, mail_from, recipients, purpose, size,
                                                      content, kind, webhook_url, webhook_state, webhook_next_at, tenant_id)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        message.id.rawValue, at, message.clientIP, message.heloName, message.mailFrom,
                        message.recipients.joined(separator: "\n"), message.purpose.rawValue, message.content.count,
                        Data(message.content), message.purpose == .inbound ? "inbound" : nil,
                        message.purpose == .inbound ? message.webhookURL : nil,
                        webhookDue ? "pending" : "none", webhookDue ? at : nil, message.tenant?.rawValue,
                    ])
                if message.purpose == .inbound {
                    try db.execute(
                        sql: "INSERT INTO events (type, message_id, recipient_id, at, details, tenant_id) VALUES (?, NULL, NULL, ?, ?, ?)",
                        arguments: [
                            EventType.inbound.rawValue, at,
                            DetailsJSON.encode([
                                "inbound_id": message.id.description, "mail_from": message.mailFrom,
                                "recipients": message.recipients.joined(separator: ", "),
                            ]),
                            message.tenant?.rawValue,
                        ])
                }
    }

    public func pendingReports(limit: Int) async throws -> [InboundMessage] {
        try await writer.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM inbound_messages WHERE kind IS NULL ORDER BY id LIMIT ?", arguments: [limit]
            ).map(Self.inboundMessage)
        }
    }

    public func completeReport(_ id: InboundMessageID, outcome: ReportOutcome) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "UPDATE inbound_messages SET kind = ? WHERE id = ? AND kind IS NULL", arguments: [outcome.kind, id.rawValue])
            // Read once: a report handed over twice changes nothing the second time.
            guard db.changesCount > 0 else { return }
            // A report that matched a message belongs to that message's tenant.
            if let matched = outcome.events.lazy.compactMap(\.messageID).first {
                try db.execute(
                    sql: "UPDATE inbound_messages SET tenant_id = (SELECT tenant_id FROM messages WHERE id = ?) WHERE id = ?",
                    arguments: [matched.rawValue, id.rawValue])
            }
            let once: Set<EventType> = [.failed, .complaint, .unsubscribe]
            let exists = try db.cachedStatement(sql: "SELECT 1 FROM events WHERE recipient_id = ? AND type = ? LIMIT 1")
            // A matched report's events belong to the tenant of the message; an unmatched one's to none.
            let insert = try db.cachedStatement(
                sql: """
                    INSERT INTO events (type, message_id, recipient_id, at, details, tenant_id)
                    VALUES (?, ?, ?, ?, ?, (SELECT tenant_id FROM messages WHERE id = ?))
                    """)
            let unsubscribe = try db.cachedStatement(
                sql: """
                    INSERT INTO suppressions (tenant_id, address, domain, reason, created_at)
                    SELECT m.tenant_id, lower(r.address), m.from_domain, 'unsubscribed', ?
                    FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.id = ?
                    ON CONFLICT (address, tenant_id, domain) DO NOTHING
                    """)
            for event in outcome.events {
                if let recipient = event.recipientID, once.contains(event.type),
                    try Row.fetchOne(exists, arguments: [recipient.rawValue, event.type.rawValue]) != nil
                {
                    continue
                }
                let at = event.at.millisecondsSince1970
                try insert.execute(arguments: [
                    event.type.rawValue, event.messageID?.rawValue, event.recipientID?.rawValue, at,
                    event.details.isEmpty ? nil : DetailsJSON.encode(event.details), event.messageID?.rawValue,
                ])
                if event.type == .unsubscribe, let recipient = event.recipientID {
                    try unsubscribe.execute(arguments: [at, recipient.rawValue])
                }
            }
            let suppress = try db.cachedStatement(
                sql: """
                    INSERT INTO suppressions (tenant_id, address, domain, reason, created_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (address, tenant_id, domain) DO NOTHING
                    """)
            for suppression in outcome.suppressions {
                try suppress.execute(arguments: [
                    Self.suppressionTenant(suppression.tenant), suppression.address.lowercased(), suppression.domain.lowercased(), suppression.reason,
                    suppression.createdAt.millisecondsSince1970,
                ])
            }
        }
    }

    /// Read and leased in one write transaction: two claims (two nodes on one file) never
    /// take the same message while its lease lives.
    public func claimDueWebhooks(now: Date, limit: Int, leaseUntil: Date) async throws -> [InboundMessage] {
        guard limit > 0 else { return [] }
        return try await writer.write { db in
            let due = try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM inbound_messages WHERE webhook_state = 'pending' AND webhook_next_at <= ?
                    ORDER BY webhook_next_at, id LIMIT ?
                    """,
                arguments: [now.millisecondsSince1970, limit]
            ).map(Self.inboundMessage)
            let lease = try db.cachedStatement(sql: "UPDATE inbound_messages SET webhook_next_at = ? WHERE id = ?")
            for message in due {
                try lease.execute(arguments: [leaseUntil.millisecondsSince1970, message.id.rawValue])
            }
            return due
        }
    }

    public func recordWebhookAttempt(_ id: InboundMessageID, _ attempt: WebhookAttempt) async throws {
        let state = attempt.delivered ? "delivered" : attempt.nextAttemptAt == nil ? "gave_up" : "pending"
        try await writer.write { db in
            try db.execute(
                sql: """
                    UPDATE inbound_messages SET webhook_state = ?, webhook_attempts = webhook_attempts + 1,
                        webhook_next_at = ?, webhook_last_at = ?, webhook_last_status = ?, webhook_last_error = ?
                    WHERE id = ? AND webhook_state = 'pending'
                    """,
                arguments: [
                    state, attempt.delivered ? nil : attempt.nextAttemptAt?.millisecondsSince1970,
                    attempt.at.millisecondsSince1970, attempt.status, attempt.error, id.rawValue,
                ])
        }
    }

    public func inboundMessages(limit: Int, scope: TenantScope) async throws -> [InboundSummary] {
        try await writer.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT id, received_at, mail_from, recipients, purpose, size, kind, webhook_url, webhook_state,
                           webhook_attempts, webhook_next_at, webhook_last_at, webhook_last_status, webhook_last_error,
                           tenant_id
                    FROM inbound_messages WHERE ? IS NULL OR tenant_id = ? ORDER BY id DESC LIMIT ?
                    """,
                arguments: [scope.tenant?.rawValue, scope.tenant?.rawValue, limit]
            ).map { row in
                var webhook: InboundSummary.Webhook?
                if let url: String = row["webhook_url"] {
                    webhook = InboundSummary.Webhook(
                        url: url, state: row["webhook_state"], attempts: row["webhook_attempts"],
                        lastAttemptAt: (row["webhook_last_at"] as Int64?).map(Date.init(millisecondsSince1970:)),
                        lastStatus: row["webhook_last_status"], lastError: row["webhook_last_error"],
                        nextAttemptAt: (row["webhook_next_at"] as Int64?).map(Date.init(millisecondsSince1970:)))
                }
                let recipients: String = row["recipients"]
                return InboundSummary(
                    id: InboundMessageID(rawValue: row["id"]).description,
                    receivedAt: Date(millisecondsSince1970: row["received_at"]), mailFrom: row["mail_from"],
                    recipients: recipients.split(separator: "\n").map(String.init),
                    purpose: InboundPurpose(rawValue: row["purpose"]) ?? .inbound, size: row["size"], kind: row["kind"],
                    webhook: webhook, tenant: (row["tenant_id"] as Int64?).map(TenantID.init(rawValue:)))
            }
        }
    }

    public func recipients(messageIDHeader: String, limit: Int) async throws -> [RecipientSummary] {
        try await writer.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT r.id, r.message_id, r.address, m.from_domain, m.tenant_id
                    FROM messages m JOIN recipients r ON r.message_id = m.id
                    WHERE m.message_id_header = ? ORDER BY m.id DESC, r.position LIMIT ?
                    """,
                arguments: [messageIDHeader, limit]
            ).map { row in
                RecipientSummary(
                    id: RecipientID(rawValue: row["id"]), messageID: MessageID(rawValue: row["message_id"]),
                    address: row["address"], fromDomain: row["from_domain"], tenant: TenantID(rawValue: row["tenant_id"]))
            }
        }
    }

    private static func inboundMessage(_ row: Row) -> InboundMessage {
        let recipients: String = row["recipients"]
        let content: Data = row["content"]
        return InboundMessage(
            id: InboundMessageID(rawValue: row["id"]), receivedAt: Date(millisecondsSince1970: row["received_at"]),
            clientIP: row["client_ip"], heloName: row["helo"], mailFrom: row["mail_from"],
            recipients: recipients.split(separator: "\n").map(String.init),
            purpose: InboundPurpose(rawValue: row["purpose"]) ?? .inbound, webhookURL: row["webhook_url"],
            content: [UInt8](content), tenant: (row["tenant_id"] as Int64?).map(TenantID.init(rawValue:)))
    }
}
