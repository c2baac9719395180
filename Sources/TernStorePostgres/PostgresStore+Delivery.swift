public import Foundation
import Logging
import NIOCore
import PostgresNIO
public import TernCore

/// `DeliveryStore`, the queue shared by every node: due recipients are claimed with `FOR UPDATE SKIP LOCKED`
/// into a lease (node + expiry), so two nodes never claim the same recipient while its lease
/// lives, and a dead node's work is claimable again once its leases expire.
///
/// Leases are compared with the `now` each node passes in, so the nodes' clocks must agree
/// (NTP) to well within a lease's length: a node whose clock runs ahead takes over leases early.
/// - SeeAlso: PostgreSQL documentation, SELECT, "The Locking Clause" (`SKIP LOCKED`)
extension PostgresStore {
    /// Claims each share with one statement: the due rows are locked (rows another node is
    /// claiming at this moment are skipped, not waited for) and leased in the same statement.
    public func claimDueRecipients(now: Date, newLimit: Int, retryLimit: Int, node: String, leaseUntil: Date) async throws -> [DueRecipient] {
        guard newLimit > 0 || retryLimit > 0 else { return [] }
        let newMail = try await claim(.new, now: now, limit: newLimit, node: node, leaseUntil: leaseUntil)
        let retries = try await claim(.retry, now: now, limit: retryLimit, node: node, leaseUntil: leaseUntil)
        return newMail + retries
    }

    /// The two kinds of due recipient a claim takes, each through its own partial index
    /// (`recipients_new`, `recipients_retry`): the condition on `attempts` reads as the
    /// index's WHERE clause does, so the planner can use it.
    enum ClaimShare: Sendable {
        /// Never attempted: Postfix's incoming queue.
        case new
        /// Attempted (or deferred) before: Postfix's deferred queue.
        case retry
    }

    private func claim(_ share: ClaimShare, now: Date, limit: Int, node: String, leaseUntil: Date) async throws -> [DueRecipient] {
        guard limit > 0 else { return [] }
        let nowMS = now.millisecondsSince1970
        let untilMS = leaseUntil.millisecondsSince1970
        let limit = Int64(limit)
        // The share's condition is in the SQL text, not a parameter, so that the planner
        // can use the share's partial index.
        let attempts = share == .new ? "attempts = 0" : "attempts > 0"
        let query: PostgresQuery = """
            WITH due AS (
                SELECT id FROM recipients
                WHERE state = 'queued' AND \(unescaped: attempts) AND next_attempt_at <= \(nowMS)
                  AND (lease_until IS NULL OR lease_until <= \(nowMS))
                ORDER BY next_attempt_at
                LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
            )
            UPDATE recipients r SET lease_node = \(node), lease_until = \(untilMS)
            FROM due, messages m
            WHERE r.id = due.id AND m.id = r.message_id
            RETURNING r.id, r.message_id, r.address, r.attempts, r.next_attempt_at,
                      m.mail_from, m.received_at, m.eight_bit_mime, m.smtp_utf8, m.size, m.from_domain, m.tenant_id
            """
        let rows = try await client.query(query, logger: logger)
        var claimed: [DueRecipient] = []
        for try await (id, messageID, address, attempts, nextAttemptAt, mailFrom, receivedAt, eightBit, utf8, size, fromDomain, tenant)
            in rows.decode((Int64, Int64, String, Int32, Int64, String, Int64, Bool, Bool, Int64, String, Int64).self)
        {
            claimed.append(
                DueRecipient(
                    id: RecipientID(rawValue: id), messageID: MessageID(rawValue: messageID), address: address,
                    mailFrom: mailFrom, attempts: Int(attempts), queuedAt: Date(millisecondsSince1970: receivedAt),
                    nextAttemptAt: Date(millisecondsSince1970: nextAttemptAt), eightBitMIME: eightBit, smtpUTF8: utf8,
                    size: Int(size), fromDomain: fromDomain, tenant: TenantID(rawValue: tenant)))
        }
        // RETURNING has no order: earliest due first, as the claim chose them.
        claimed.sort { ($0.nextAttemptAt, $0.id) < ($1.nextAttemptAt, $1.id) }
        return claimed
    }

    public func renewLeases(_ recipients: [RecipientID], node: String, leaseUntil: Date) async throws {
        guard !recipients.isEmpty else { return }
        let ids = recipients.map(\.rawValue)
        try await client.query(
            """
            UPDATE recipients SET lease_until = \(leaseUntil.millisecondsSince1970)
            WHERE id = ANY(\(ids)::BIGINT[]) AND lease_node = \(node) AND state = 'queued'
            """, logger: logger)
    }

    public func releaseLeases(_ recipients: [RecipientID], node: String) async throws {
        guard !recipients.isEmpty else { return }
        let ids = recipients.map(\.rawValue)
        try await client.query(
            """
            UPDATE recipients SET lease_node = NULL, lease_until = NULL
            WHERE id = ANY(\(ids)::BIGINT[]) AND lease_node = \(node)
            """, logger: logger)
    }

    public func releaseLeases(heldBy node: String) async throws {
        try await client.query(
            "UPDATE recipients SET lease_node = NULL, lease_until = NULL WHERE lease_node = \(node)", logger: logger)
    }

    public func record(_ outcomes: [RecipientOutcome]) async throws {
        guard !outcomes.isEmpty else { return }
        let logger = self.logger
        try await transaction { connection in
            try await Self.record(outcomes, on: connection, logger: logger)
        }
    }

    /// Applies outcomes to recipients that are still queued, each with its event; an outcome
    /// for a recipient that already has a final one (or does not exist) is ignored, so each
    /// recipient ends with exactly one final event. Outcomes for distinct recipients (the
    /// usual batch) go in as one statement over `unnest(…)`; a batch that names a recipient
    /// twice is applied one outcome after the other, in order, as SQLite does.
    static func record(_ outcomes: [RecipientOutcome], on connection: PostgresConnection, logger: Logger) async throws {
        guard !outcomes.isEmpty else { return }
        if Set(outcomes.map(\.recipientID)).count == outcomes.count {
            try await recordBatch(outcomes, on: connection, logger: logger)
        } else {
            for outcome in outcomes {
                try await recordBatch([outcome], on: connection, logger: logger)
            }
        }
    }

    /// One statement: the recipients' new state and, for each row it changed, the event.
    /// Recipient ids must be distinct.
    private static func recordBatch(_ outcomes: [RecipientOutcome], on connection: PostgresConnection, logger: Logger) async throws {
        var ids: [Int64] = []
        var messageIDs: [Int64] = []
        var states: [String] = []
        var increments: [Int32] = []
        var nextAttempts: [Int64] = []
        var types: [String] = []
        var times: [Int64] = []
        var details: [String] = []
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        for outcome in outcomes {
            let state: RecipientState
            let increment: Int32
            var next: Int64 = 0
            switch outcome.kind {
            case .sent: (state, increment) = (.sent, 1)
            case .failed: (state, increment) = (.failed, 1)
            case .suppressed: (state, increment) = (.suppressed, 0)
            case .deferred(let nextAttemptAt):
                (state, increment) = (.queued, 1)
                next = nextAttemptAt.millisecondsSince1970
            }
            ids.append(outcome.recipientID.rawValue)
            messageIDs.append(outcome.messageID.rawValue)
            states.append(state.rawValue)
            increments.append(increment)
            nextAttempts.append(next)
            types.append(outcome.eventType.rawValue)
            times.append(outcome.at.millisecondsSince1970)
            // '' stands for no details (NULL), as the arrays carry no NULLs.
            details.append(outcome.details.isEmpty ? "" : String(decoding: try encoder.encode(outcome.details), as: UTF8.self))
        }
        try await connection.query(
            """
            WITH o AS (
                SELECT * FROM unnest(\(ids)::BIGINT[], \(messageIDs)::BIGINT[], \(states)::TEXT[], \(increments)::INTEGER[],
                                     \(nextAttempts)::BIGINT[], \(types)::TEXT[], \(times)::BIGINT[], \(details)::TEXT[])
                    WITH ORDINALITY AS o (id, message_id, state, increment, next_attempt_at, type, at, details, position)
            ), updated AS (
                UPDATE recipients r
                SET state = o.state, attempts = r.attempts + o.increment,
                    next_attempt_at = CASE WHEN o.state = 'queued' THEN o.next_attempt_at ELSE r.next_attempt_at END,
                    lease_node = NULL, lease_until = NULL
                FROM o
                WHERE r.id = o.id AND r.state = 'queued'
                RETURNING r.id
            )
            INSERT INTO events (type, message_id, recipient_id, at, details, tenant_id)
            SELECT o.type, o.message_id, o.id, o.at, NULLIF(o.details, '')::JSONB, m.tenant_id
            FROM o JOIN updated u ON u.id = o.id JOIN messages m ON m.id = o.message_id
            ORDER BY o.position
            """, logger: logger)
    }

    public func content(of message: MessageID) async throws -> [UInt8]? {
        let rows = try await client.query("SELECT content FROM messages WHERE id = \(message.rawValue)", logger: logger)
        var content: [UInt8]?
        for try await buffer in rows.decode(ByteBuffer.self) { content = Array(buffer.readableBytesView) }
        return content
    }

    /// Reads only the piece asked for: `content` is stored uncompressed out of line (see the
    /// migration), so `substring` fetches only the chunks that hold it.
    public func readContent(of message: MessageID, offset: Int, maxLength: Int) async throws -> [UInt8] {
        precondition(offset >= 0 && maxLength > 0, "a content read needs a non-negative offset and a positive length")
        // SQL substring counts from 1 and takes INTEGER positions (a BYTEA is at most 1 GB).
        let from = Int32(clamping: offset + 1)
        let length = Int32(clamping: maxLength)
        let rows = try await client.query(
            "SELECT substring(content FROM \(from) FOR \(length)) FROM messages WHERE id = \(message.rawValue)",
            logger: logger)
        var piece: [UInt8]?
        for try await buffer in rows.decode(ByteBuffer.self) { piece = Array(buffer.readableBytesView) }
        guard let piece else { throw StoreError(.notFound, "message \(message) has no content in the store") }
        return piece
    }

    public func queueEntries(limit: Int, scope: TenantScope) async throws -> [QueueEntry] {
        let tenant = scope.tenant?.rawValue
        let rows = try await client.query(
            """
            SELECT r.id, r.message_id, r.address, r.attempts, r.next_attempt_at, m.mail_from, m.received_at, m.tenant_id,
                   (SELECT COALESCE(e.details ->> 'text', e.details ->> 'reason') FROM events e
                    WHERE e.recipient_id = r.id AND e.type = 'deferred'
                    ORDER BY e.id DESC LIMIT 1)
            FROM recipients r JOIN messages m ON m.id = r.message_id
            WHERE r.state = 'queued' AND (\(tenant)::BIGINT IS NULL OR m.tenant_id = \(tenant))
            ORDER BY m.received_at, r.message_id, r.position
            LIMIT \(Int64(limit))
            """, logger: logger)
        var entries: [QueueEntry] = []
        for try await (id, messageID, address, attempts, nextAttemptAt, mailFrom, receivedAt, owner, reason) in rows.decode(
            (Int64, Int64, String, Int32, Int64, String, Int64, Int64, String?).self)
        {
            entries.append(
                QueueEntry(
                    recipientID: RecipientID(rawValue: id).description, messageID: MessageID(rawValue: messageID).description,
                    address: address, mailFrom: mailFrom, attempts: Int(attempts),
                    queuedAt: Date(millisecondsSince1970: receivedAt),
                    nextAttemptAt: Date(millisecondsSince1970: nextAttemptAt), lastReason: reason,
                    tenant: TenantID(rawValue: owner)))
        }
        return entries
    }

    public func retryNow(_ id: Int64, now: Date) async throws -> Int {
        try await count(
            """
            WITH changed AS (
                UPDATE recipients SET next_attempt_at = \(now.millisecondsSince1970)
                WHERE state = 'queued' AND (id = \(id) OR message_id = \(id))
                RETURNING 1
            )
            SELECT COUNT(*) FROM changed
            """)
    }

    public func drop(_ id: Int64, now: Date) async throws -> Int {
        let logger = self.logger
        return try await transaction { connection in
            let rows = try await connection.query(
                """
                SELECT id, message_id FROM recipients
                WHERE state = 'queued' AND (id = \(id) OR message_id = \(id))
                FOR UPDATE
                """, logger: logger)
            var outcomes: [RecipientOutcome] = []
            for try await (recipientID, messageID) in rows.decode((Int64, Int64).self) {
                outcomes.append(
                    RecipientOutcome(
                        recipientID: RecipientID(rawValue: recipientID), messageID: MessageID(rawValue: messageID),
                        kind: .failed, at: now, details: ["reason": "dropped by operator"]))
            }
            try await Self.record(outcomes, on: connection, logger: logger)
            return outcomes.count
        }
    }

    /// The stored form of a suppression's tenant: 0 for an installation-wide entry (a key
    /// column cannot hold NULL).
    static func suppressionTenant(_ tenant: TenantID?) -> Int64 { tenant?.rawValue ?? 0 }

    public func addSuppression(_ suppression: Suppression) async throws {
        try await client.query(
            """
            INSERT INTO suppressions (tenant_id, address, domain, reason, created_at)
            VALUES (\(Self.suppressionTenant(suppression.tenant)), \(suppression.address.lowercased()),
                    \(suppression.domain.lowercased()), \(suppression.reason), \(suppression.createdAt.millisecondsSince1970))
            ON CONFLICT (address, tenant_id, domain) DO UPDATE SET reason = excluded.reason
            """, logger: logger)
    }

    public func removeSuppression(address: String, domain: String?, tenant: TenantID?) async throws -> Int {
        let domain = domain?.lowercased()
        return try await count(
            """
            WITH removed AS (
                DELETE FROM suppressions
                WHERE address = \(address.lowercased()) AND tenant_id = \(Self.suppressionTenant(tenant))
                  AND (\(domain)::TEXT IS NULL OR domain = \(domain))
                RETURNING 1
            )
            SELECT COUNT(*) FROM removed
            """)
    }

    public func suppressions(scope: TenantScope) async throws -> [Suppression] {
        let tenant = scope.tenant?.rawValue
        let rows = try await client.query(
            """
            SELECT tenant_id, address, domain, reason, created_at FROM suppressions
            WHERE \(tenant)::BIGINT IS NULL OR tenant_id IN (0, \(tenant))
            ORDER BY address, tenant_id, domain
            """, logger: logger)
        var entries: [Suppression] = []
        for try await (owner, address, domain, reason, createdAt) in rows.decode((Int64, String, String, String, Int64).self) {
            entries.append(
                Suppression(
                    address: address, domain: domain, tenant: owner == 0 ? nil : TenantID(rawValue: owner), reason: reason,
                    createdAt: Date(millisecondsSince1970: createdAt)))
        }
        return entries
    }

    public func suppressed(_ recipients: [DueRecipient]) async throws -> Set<RecipientID> {
        guard !recipients.isEmpty else { return [] }
        let lowered = Array(Set(recipients.map { $0.address.lowercased() }))
        let rows = try await client.query(
            "SELECT address, domain, tenant_id FROM suppressions WHERE address = ANY(\(lowered)::TEXT[])", logger: logger)
        var entries: [String: [Suppression]] = [:]
        for try await (address, domain, owner) in rows.decode((String, String, Int64).self) {
            entries[address, default: []].append(
                Suppression(
                    address: address, domain: domain, tenant: owner == 0 ? nil : TenantID(rawValue: owner), reason: "",
                    createdAt: Date(timeIntervalSince1970: 0)))
        }
        guard !entries.isEmpty else { return [] }
        var suppressed: Set<RecipientID> = []
        for recipient in recipients {
            let sendingDomain = recipient.fromDomain.lowercased()
            if entries[recipient.address.lowercased(), default: []].contains(where: { $0.applies(to: sendingDomain, of: recipient.tenant) }) {
                suppressed.insert(recipient.id)
            }
        }
        return suppressed
    }

    /// Runs a statement that answers one `COUNT(*)`.
    func count(_ query: PostgresQuery) async throws -> Int {
        let rows = try await client.query(query, logger: logger)
        var count: Int64 = 0
        for try await value in rows.decode(Int64.self) { count = value }
        return Int(count)
    }
}
