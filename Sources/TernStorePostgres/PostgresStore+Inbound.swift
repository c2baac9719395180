public import Foundation
import Logging
import NIOCore
import PostgresNIO
public import TernCore

/// `InboundStore`: what arrived, the reports read from it, the posting of inbound mail.
///
/// Several nodes: a report is marked read once (`kind IS NULL` in the update), so a report
/// two nodes read at once stores its events once; two reports about one recipient read at
/// once on two nodes take turns on that recipient (an advisory lock), so it still gets one
/// failure; a due webhook is claimed by one node with a lease (`FOR UPDATE SKIP LOCKED`), so
/// only a node that dies mid-post leaves it to be posted again (webhooks are at least once).
extension PostgresStore {
    public func commitInbound(_ messages: [InboundMessage]) async throws {
        guard !messages.isEmpty else { return }
        let logger = self.logger
        do {
            try await transaction { connection in
                for message in messages {
                    try await Self.insert(message, on: connection, logger: logger)
                }
            }
        } catch {
            throw Self.storeError(error)
        }
    }

    private static func insert(_ message: InboundMessage, on connection: PostgresConnection, logger: Logger) async throws {
        let at = message.receivedAt.millisecondsSince1970
        let isInbound = message.purpose == .inbound
        let webhookURL = isInbound ? message.webhookURL : nil
        let webhookDue = webhookURL != nil
        let kind: String? = isInbound ? "inbound" : nil
        let content = ByteBuffer(bytes: message.content)
        try await connection.query(
            """
            INSERT INTO inbound_messages (id, received_at, client_ip, helo, mail_from, recipients, purpose, size,
                                          content, kind, webhook_url, webhook_state, webhook_next_at, tenant_id)
            VALUES (\(message.id.rawValue), \(at), \(message.clientIP), \(message.heloName), \(message.mailFrom),
                    \(message.recipients), \(message.purpose.rawValue), \(Int64(message.content.count)), \(content),
                    \(kind), \(webhookURL), \(webhookDue ? "pending" : "none"), \(webhookDue ? at : nil),
                    \(message.tenant?.rawValue))
            """, logger: logger)
        guard isInbound else { return }
        let details = [
            "inbound_id": message.id.description, "mail_from": message.mailFrom,
            "recipients": message.recipients.joined(separator: ", "),
        ]
        let keys = Array(details.keys)
        let values = keys.map { details[$0] ?? "" }
        try await connection.query(
            """
            INSERT INTO events (type, message_id, recipient_id, at, details, tenant_id)
            VALUES (\(EventType.inbound.rawValue), NULL, NULL, \(at), jsonb_object(\(keys)::TEXT[], \(values)::TEXT[]),
                    \(message.tenant?.rawValue))
            """, logger: logger)
    }

    private static let inboundColumns = "id, received_at, client_ip, helo, mail_from, recipients, purpose, webhook_url, content, tenant_id"

    public func pendingReports(limit: Int) async throws -> [InboundMessage] {
        try await inboundMessages(
            """
            SELECT \(unescaped: Self.inboundColumns) FROM inbound_messages WHERE kind IS NULL
            ORDER BY id LIMIT \(Int64(limit))
            """)
    }

    /// The report is marked read first: a report handed over twice (or read by two nodes)
    /// changes nothing the second time.
    public func completeReport(_ id: InboundMessageID, outcome: ReportOutcome) async throws {
        let logger = self.logger
        try await transaction { connection in
            let marked = try await connection.query(
                "UPDATE inbound_messages SET kind = \(outcome.kind) WHERE id = \(id.rawValue) AND kind IS NULL RETURNING id",
                logger: logger)
            var changed = false
            for try await _ in marked.decode(Int64.self) { changed = true }
            guard changed else { return }
            // A report that matched a message belongs to that message's tenant.
            if let matched = outcome.events.lazy.compactMap(\.messageID).first {
                try await connection.query(
                    """
                    UPDATE inbound_messages SET tenant_id = (SELECT tenant_id FROM messages WHERE id = \(matched.rawValue))
                    WHERE id = \(id.rawValue)
                    """, logger: logger)
            }
            let once: Set<EventType> = [.failed, .complaint, .unsubscribe]
            // Another node may be storing another report about the same recipient: under READ
            // COMMITTED neither would see the other's event in NOT EXISTS. Each recipient's lock
            // is held until commit, taken in one order (no deadlock between two reports), and
            // the INSERTs after it read a snapshot that holds the other node's events.
            let recipients = Set(outcome.events.compactMap { once.contains($0.type) ? $0.recipientID : nil })
            for key in Set(recipients.map(Self.recipientLockKey)).sorted() {
                try await connection.query(
                    "SELECT pg_advisory_xact_lock(\(Self.reportLockSpace), \(key))", logger: logger)
            }
            for event in outcome.events {
                let at = event.at.millisecondsSince1970
                let keys = event.details.isEmpty ? nil : Array(event.details.keys)
                let values = keys.map { $0.map { event.details[$0] ?? "" } }
                let onlyOnce = event.recipientID != nil && once.contains(event.type)
                // At most one failed, complaint and unsubscribe event per recipient.
                try await connection.query(
                    """
                    INSERT INTO events (type, message_id, recipient_id, at, details, tenant_id)
                    SELECT \(event.type.rawValue), \(event.messageID?.rawValue), \(event.recipientID?.rawValue), \(at),
                           jsonb_object(\(keys)::TEXT[], \(values)::TEXT[]),
                           (SELECT tenant_id FROM messages WHERE id = \(event.messageID?.rawValue))
                    WHERE NOT \(onlyOnce) OR NOT EXISTS (
                        SELECT 1 FROM events WHERE recipient_id = \(event.recipientID?.rawValue) AND type = \(event.type.rawValue))
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
                if event.type == .unsubscribe, let recipient = event.recipientID {
                    try await connection.query(
                        """
                        INSERT INTO suppressions (tenant_id, address, domain, reason, created_at)
                        SELECT m.tenant_id, lower(r.address), m.from_domain, 'unsubscribed', \(at)
                        FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.id = \(recipient.rawValue)
                        ON CONFLICT (address, tenant_id, domain) DO NOTHING
                        """, logger: logger)
                }
            }
            for suppression in outcome.suppressions {
                try await connection.query(
                    """
                    INSERT INTO suppressions (tenant_id, address, domain, reason, created_at)
                    VALUES (\(Self.suppressionTenant(suppression.tenant)), \(suppression.address.lowercased()),
                            \(suppression.domain.lowercased()), \(suppression.reason), \(suppression.createdAt.millisecondsSince1970))
                    ON CONFLICT (address, tenant_id, domain) DO NOTHING
                    """, logger: logger)
            }
        }
    }

    /// The first key of the advisory locks `completeReport` takes per recipient ("once" in
    /// ASCII). Two-key locks never meet the one-key migration lock (`migrationLockKey`).
    /// - SeeAlso: PostgreSQL documentation §9.27.10 (advisory lock functions)
    static let reportLockSpace: Int32 = 0x6F6E_6365

    /// The second key: the recipient id folded to 32 bits. Two recipients whose ids fold alike
    /// only make their reports wait for each other.
    static func recipientLockKey(_ recipient: RecipientID) -> Int32 {
        Int32(truncatingIfNeeded: recipient.rawValue ^ (recipient.rawValue >> 32))
    }

    /// One statement: the due rows are locked (rows another node is claiming at this moment
    /// are skipped, not waited for) and leased.
    public func claimDueWebhooks(now: Date, limit: Int, leaseUntil: Date) async throws -> [InboundMessage] {
        guard limit > 0 else { return [] }
        let rows = try await client.query(
            """
            WITH due AS (
                SELECT id, webhook_next_at FROM inbound_messages
                WHERE webhook_state = 'pending' AND webhook_next_at <= \(now.millisecondsSince1970)
                ORDER BY webhook_next_at, id
                LIMIT \(Int64(limit))
                FOR UPDATE SKIP LOCKED
            )
            UPDATE inbound_messages m SET webhook_next_at = \(leaseUntil.millisecondsSince1970)
            FROM due
            WHERE m.id = due.id
            RETURNING due.webhook_next_at, m.id, m.received_at, m.client_ip, m.helo, m.mail_from, m.recipients, m.purpose,
                      m.webhook_url, m.content, m.tenant_id
            """, logger: logger)
        var claimed: [(due: Int64, message: InboundMessage)] = []
        for try await (due, id, receivedAt, clientIP, helo, mailFrom, recipients, purpose, webhookURL, content, tenant)
            in rows.decode((Int64, Int64, Int64, String?, String, String, [String], String, String?, ByteBuffer, Int64?).self)
        {
            claimed.append(
                (
                    due,
                    InboundMessage(
                        id: InboundMessageID(rawValue: id), receivedAt: Date(millisecondsSince1970: receivedAt),
                        clientIP: clientIP, heloName: helo, mailFrom: mailFrom, recipients: recipients,
                        purpose: InboundPurpose(rawValue: purpose) ?? .inbound, webhookURL: webhookURL,
                        content: Array(content.readableBytesView), tenant: tenant.map(TenantID.init(rawValue:)))
                ))
        }
        // RETURNING has no order: oldest due first, as the claim chose them.
        claimed.sort { ($0.due, $0.message.id.rawValue) < ($1.due, $1.message.id.rawValue) }
        return claimed.map(\.message)
    }

    public func recordWebhookAttempt(_ id: InboundMessageID, _ attempt: WebhookAttempt) async throws {
        let state = attempt.delivered ? "delivered" : attempt.nextAttemptAt == nil ? "gave_up" : "pending"
        let next = attempt.delivered ? nil : attempt.nextAttemptAt?.millisecondsSince1970
        let status = attempt.status.map(Int32.init(clamping:))
        try await client.query(
            """
            UPDATE inbound_messages SET webhook_state = \(state), webhook_attempts = webhook_attempts + 1,
                webhook_next_at = \(next), webhook_last_at = \(attempt.at.millisecondsSince1970),
                webhook_last_status = \(status), webhook_last_error = \(attempt.error)
            WHERE id = \(id.rawValue) AND webhook_state = 'pending'
            """, logger: logger)
    }

    public func inboundMessages(limit: Int, scope: TenantScope) async throws -> [InboundSummary] {
        let tenant = scope.tenant?.rawValue
        let rows = try await client.query(
            """
            SELECT id, received_at, mail_from, recipients, purpose, size, kind, webhook_url, webhook_state,
                   webhook_attempts, webhook_next_at, webhook_last_at, webhook_last_status, webhook_last_error, tenant_id
            FROM inbound_messages WHERE \(tenant)::BIGINT IS NULL OR tenant_id = \(tenant)
            ORDER BY id DESC LIMIT \(Int64(limit))
            """, logger: logger)
        var summaries: [InboundSummary] = []
        for try await (
            id, receivedAt, mailFrom, recipients, purpose, size, kind, url, state, attempts, nextAt, lastAt, lastStatus,
            lastError, owner
        ) in rows.decode(
            (Int64, Int64, String, [String], String, Int64, String?, String?, String, Int32, Int64?, Int64?, Int32?, String?, Int64?)
                .self)
        {
            let webhook = url.map { url in
                InboundSummary.Webhook(
                    url: url, state: state, attempts: Int(attempts),
                    lastAttemptAt: lastAt.map(Date.init(millisecondsSince1970:)), lastStatus: lastStatus.map(Int.init),
                    lastError: lastError, nextAttemptAt: nextAt.map(Date.init(millisecondsSince1970:)))
            }
            summaries.append(
                InboundSummary(
                    id: InboundMessageID(rawValue: id).description, receivedAt: Date(millisecondsSince1970: receivedAt),
                    mailFrom: mailFrom, recipients: recipients, purpose: InboundPurpose(rawValue: purpose) ?? .inbound,
                    size: Int(size), kind: kind, webhook: webhook, tenant: owner.map(TenantID.init(rawValue:))))
        }
        return summaries
    }

    public func recipients(messageIDHeader: String, limit: Int) async throws -> [RecipientSummary] {
        let rows = try await client.query(
            """
            SELECT r.id, r.message_id, r.address, m.from_domain, m.tenant_id
            FROM messages m JOIN recipients r ON r.message_id = m.id
            WHERE m.message_id_header = \(messageIDHeader) ORDER BY m.id DESC, r.position LIMIT \(Int64(limit))
            """, logger: logger)
        var summaries: [RecipientSummary] = []
        for try await (id, messageID, address, fromDomain, tenant) in rows.decode((Int64, Int64, String, String, Int64).self) {
            summaries.append(
                RecipientSummary(
                    id: RecipientID(rawValue: id), messageID: MessageID(rawValue: messageID), address: address,
                    fromDomain: fromDomain, tenant: TenantID(rawValue: tenant)))
        }
        return summaries
    }

    private func inboundMessages(_ query: PostgresQuery) async throws -> [InboundMessage] {
        let rows = try await client.query(query, logger: logger)
        var messages: [InboundMessage] = []
        for try await (id, receivedAt, clientIP, helo, mailFrom, recipients, purpose, webhookURL, content, tenant) in rows.decode(
            (Int64, Int64, String?, String, String, [String], String, String?, ByteBuffer, Int64?).self)
        {
            messages.append(
                InboundMessage(
                    id: InboundMessageID(rawValue: id), receivedAt: Date(millisecondsSince1970: receivedAt),
                    clientIP: clientIP, heloName: helo, mailFrom: mailFrom, recipients: recipients,
                    purpose: InboundPurpose(rawValue: purpose) ?? .inbound, webhookURL: webhookURL,
                    content: Array(content.readableBytesView), tenant: tenant.map(TenantID.init(rawValue:))))
        }
        return messages
    }
}
