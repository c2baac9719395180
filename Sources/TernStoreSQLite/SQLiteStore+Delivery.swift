public import Foundation
import GRDB
import GRDBSQLite
public import TernCore

extension SQLiteStore {
    /// Claims exactly the shares asked for, each one index range read (migration v3), so a
    /// claim costs O(limit) however large the backlog of either kind.
    public func claimDueRecipients(now: Date, newLimit: Int, retryLimit: Int, node: String, leaseUntil: Date) async throws -> [DueRecipient] {
        guard newLimit > 0 || retryLimit > 0 else { return [] }
        let nowMS = now.millisecondsSince1970
        return try await writer.write { db in
            let newMail = try Self.due(.new, now: nowMS, limit: newLimit, in: db)
            let retries = try Self.due(.retry, now: nowMS, limit: retryLimit, in: db)
            return try Self.lease(newMail + retries, to: node, until: leaseUntil, in: db)
        }
    }

    private static func lease(_ rows: [Row], to node: String, until leaseUntil: Date, in db: Database) throws -> [DueRecipient] {
        let lease = try db.cachedStatement(sql: "UPDATE recipients SET lease_node = ?, lease_until = ? WHERE id = ?")
        return try rows.map { row in
            let id: Int64 = row["id"]
            try lease.execute(arguments: [node, leaseUntil.millisecondsSince1970, id])
            return DueRecipient(
                id: RecipientID(rawValue: id), messageID: MessageID(rawValue: row["message_id"]),
                address: row["address"], mailFrom: row["mail_from"], attempts: row["attempts"],
                queuedAt: Date(millisecondsSince1970: row["received_at"]),
                nextAttemptAt: Date(millisecondsSince1970: row["next_attempt_at"]),
                eightBitMIME: row["eight_bit_mime"], smtpUTF8: row["smtp_utf8"], size: row["size"],
                fromDomain: row["from_domain"], tenant: TenantID(rawValue: row["tenant_id"]))
        }
    }

    /// The two kinds of due recipient a claim takes, each through its own partial index.
    enum ClaimShare: Sendable, CaseIterable {
        /// Never attempted: Postfix's incoming queue.
        case new
        /// Attempted (or deferred) before: Postfix's deferred queue.
        case retry

        /// Unleased recipients of this kind due now, earliest first; arguments: now, now, limit.
        /// `INDEXED BY`, because without statistics SQLite may prefer another index and would
        /// read every due retry to find new mail; and a schema change that loses the index is
        /// then an error, not a silent scan of the whole queue.
        var sql: String {
            switch self {
            case .new: Self.newSQL
            case .retry: Self.retrySQL
            }
        }

        private static let newSQL = select(index: "recipients_new", attempts: "r.attempts = 0")
        private static let retrySQL = select(index: "recipients_retry", attempts: "r.attempts > 0")

        /// `attempts` must read as the index's WHERE clause does, or SQLite cannot use it.
        private static func select(index: String, attempts: String) -> String {
            """
            SELECT r.id, r.message_id, r.address, r.attempts, r.next_attempt_at,
                   m.mail_from, m.received_at, m.eight_bit_mime, m.smtp_utf8, m.size, m.from_domain, m.tenant_id
            FROM recipients r INDEXED BY \(index) JOIN messages m ON m.id = r.message_id
            WHERE r.state = 'queued' AND \(attempts) AND r.next_attempt_at <= ?
              AND (r.lease_until IS NULL OR r.lease_until <= ?)
            ORDER BY r.next_attempt_at
            LIMIT ?
            """
        }
    }

    private static func due(_ share: ClaimShare, now: Int64, limit: Int, in db: Database) throws -> [Row] {
        guard limit > 0 else { return [] }
        return try Row.fetchAll(db.cachedStatement(sql: share.sql), arguments: [now, now, limit])
    }

    public func renewLeases(_ recipients: [RecipientID], node: String, leaseUntil: Date) async throws {
        guard !recipients.isEmpty else { return }
        try await writer.write { db in
            let renew = try db.cachedStatement(
                sql: "UPDATE recipients SET lease_until = ? WHERE id = ? AND lease_node = ? AND state = 'queued'")
            for id in recipients {
                try renew.execute(arguments: [leaseUntil.millisecondsSince1970, id.rawValue, node])
            }
        }
    }

    public func releaseLeases(_ recipients: [RecipientID], node: String) async throws {
        guard !recipients.isEmpty else { return }
        try await writer.write { db in
            let release = try db.cachedStatement(
                sql: "UPDATE recipients SET lease_node = NULL, lease_until = NULL WHERE id = ? AND lease_node = ?")
            for id in recipients {
                try release.execute(arguments: [id.rawValue, node])
            }
        }
    }

    public func releaseLeases(heldBy node: String) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "UPDATE recipients SET lease_node = NULL, lease_until = NULL WHERE lease_node = ?", arguments: [node])
        }
    }

    public func record(_ outcomes: [RecipientOutcome]) async throws {
        guard !outcomes.isEmpty else { return }
        try await writer.write { db in try Self.record(outcomes, in: db) }
    }

    /// Applies outcomes to recipients that are still queued; an outcome for a recipient
    /// that already has a final one (or does not exist) is ignored, so each recipient
    /// ends with exactly one final event.
    static func record(_ outcomes: [RecipientOutcome], in db: Database) throws {
        let final = try db.cachedStatement(
            sql: """
                UPDATE recipients SET state = ?, attempts = attempts + ?, lease_node = NULL, lease_until = NULL
                WHERE id = ? AND state = 'queued'
                """)
        let again = try db.cachedStatement(
            sql: """
                UPDATE recipients SET next_attempt_at = ?, attempts = attempts + 1, lease_node = NULL, lease_until = NULL
                WHERE id = ? AND state = 'queued'
                """)
        // The event belongs to the message's tenant.
        let event = try db.cachedStatement(
            sql: """
                INSERT INTO events (type, message_id, recipient_id, at, details, tenant_id)
                VALUES (?, ?, ?, ?, ?, (SELECT tenant_id FROM messages WHERE id = ?))
                """)
        for outcome in outcomes {
            switch outcome.kind {
            case .sent:
                try final.execute(arguments: [RecipientState.sent.rawValue, 1, outcome.recipientID.rawValue])
            case .failed:
                try final.execute(arguments: [RecipientState.failed.rawValue, 1, outcome.recipientID.rawValue])
            case .suppressed:
                try final.execute(arguments: [RecipientState.suppressed.rawValue, 0, outcome.recipientID.rawValue])
            case .deferred(let next):
                try again.execute(arguments: [next.millisecondsSince1970, outcome.recipientID.rawValue])
            }
            guard db.changesCount > 0 else { continue }
            let details = outcome.details.isEmpty ? nil : DetailsJSON.encode(outcome.details)
            try event.execute(arguments: [
                outcome.eventType.rawValue, outcome.messageID.rawValue, outcome.recipientID.rawValue,
                outcome.at.millisecondsSince1970, details, outcome.messageID.rawValue,
            ])
        }
    }

    public func content(of message: MessageID) async throws -> [UInt8]? {
        try await writer.read { db in
            try Data.fetchOne(db, sql: "SELECT content FROM messages WHERE id = ?", arguments: [message.rawValue])
                .map { [UInt8]($0) }
        }
    }

    /// Reads through SQLite's incremental blob I/O, on the calling thread (`ContentReader`).
    public func readContent(of message: MessageID, offset: Int, maxLength: Int) async throws -> [UInt8] {
        precondition(offset >= 0 && maxLength > 0, "a content read needs a non-negative offset and a positive length")
        return try contentReader.read(message, offset: offset, maxLength: maxLength)
    }

    public func queueEntries(limit: Int, scope: TenantScope) async throws -> [QueueEntry] {
        try await writer.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT r.id, r.message_id, r.address, r.attempts, r.next_attempt_at, m.mail_from, m.received_at,
                           m.tenant_id,
                           (SELECT details FROM events e WHERE e.recipient_id = r.id AND e.type = 'deferred'
                            ORDER BY e.id DESC LIMIT 1) AS last_details
                    FROM (\(Self.queuedRecipients)) r JOIN messages m ON m.id = r.message_id
                    WHERE ? IS NULL OR m.tenant_id = ?
                    ORDER BY m.received_at, r.position
                    LIMIT ?
                    """,
                arguments: [scope.tenant?.rawValue, scope.tenant?.rawValue, limit]
            ).map { row in
                let details: String? = row["last_details"]
                let reason = details.flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) }
                return QueueEntry(
                    recipientID: RecipientID(rawValue: row["id"]).description,
                    messageID: MessageID(rawValue: row["message_id"]).description,
                    address: row["address"], mailFrom: row["mail_from"], attempts: row["attempts"],
                    queuedAt: Date(millisecondsSince1970: row["received_at"]),
                    nextAttemptAt: Date(millisecondsSince1970: row["next_attempt_at"]),
                    lastReason: reason?["text"] ?? reason?["reason"], tenant: TenantID(rawValue: row["tenant_id"]))
            }
        }
    }

    /// The queued recipients, read through the claim indexes (which hold only queued rows)
    /// rather than by scanning every recipient ever sent.
    static let queuedRecipients = """
        SELECT id, message_id, address, attempts, next_attempt_at, position
        FROM recipients INDEXED BY recipients_new WHERE state = 'queued' AND attempts = 0
        UNION ALL
        SELECT id, message_id, address, attempts, next_attempt_at, position
        FROM recipients INDEXED BY recipients_retry WHERE state = 'queued' AND attempts > 0
        """

    public func retryNow(_ id: Int64, now: Date) async throws -> Int {
        try await writer.write { db in
            try db.execute(
                sql: "UPDATE recipients SET next_attempt_at = ? WHERE state = 'queued' AND (id = ? OR message_id = ?)",
                arguments: [now.millisecondsSince1970, id, id])
            return db.changesCount
        }
    }

    public func drop(_ id: Int64, now: Date) async throws -> Int {
        try await writer.write { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT id, message_id FROM recipients WHERE state = 'queued' AND (id = ? OR message_id = ?)",
                arguments: [id, id])
            try Self.record(
                rows.map { row in
                    RecipientOutcome(
                        recipientID: RecipientID(rawValue: row["id"]), messageID: MessageID(rawValue: row["message_id"]),
                        kind: .failed, at: now, details: ["reason": "dropped by operator"])
                }, in: db)
            return rows.count
        }
    }

    public func addSuppression(_ suppression: Suppression) async throws {
        try await writer.write { db in
            try Self.addSuppression(suppression, in: db)
        }
    }

    /// The stored form of a suppression's tenant: 0 for an installation-wide entry (a key
    /// column cannot hold NULL and stay unique).
    static func suppressionTenant(_ tenant: TenantID?) -> Int64 { tenant?.rawValue ?? 0 }

    static func addSuppression(_ suppression: Suppression, in db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO suppressions (tenant_id, address, domain, reason, created_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (address, tenant_id, domain) DO UPDATE SET reason = excluded.reason
                """
        ).execute(arguments: [
            suppressionTenant(suppression.tenant), suppression.address.lowercased(), suppression.domain.lowercased(),
            suppression.reason, suppression.createdAt.millisecondsSince1970,
        ])
    }

    public func removeSuppression(address: String, domain: String?, tenant: TenantID?) async throws -> Int {
        try await writer.write { db in
            try db.execute(
                sql: "DELETE FROM suppressions WHERE address = ? AND tenant_id = ? AND (? IS NULL OR domain = ?)",
                arguments: [address.lowercased(), Self.suppressionTenant(tenant), domain?.lowercased(), domain?.lowercased()])
            return db.changesCount
        }
    }

    public func suppressions(scope: TenantScope) async throws -> [Suppression] {
        try await writer.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT tenant_id, address, domain, reason, created_at FROM suppressions
                    WHERE ? IS NULL OR tenant_id IN (0, ?) ORDER BY address, tenant_id, domain
                    """,
                arguments: [scope.tenant?.rawValue, scope.tenant?.rawValue]
            ).map { row in
                let tenant: Int64 = row["tenant_id"]
                return Suppression(
                    address: row["address"], domain: row["domain"], tenant: tenant == 0 ? nil : TenantID(rawValue: tenant),
                    reason: row["reason"], createdAt: Date(millisecondsSince1970: row["created_at"]))
            }
        }
    }

    public func suppressed(_ recipients: [DueRecipient]) async throws -> Set<RecipientID> {
        guard !recipients.isEmpty else { return [] }
        let lowered = Array(Set(recipients.map { $0.address.lowercased() }))
        let entries = try await writer.read { db in
            var found: [String: [Suppression]] = [:]
            for start in stride(from: 0, to: lowered.count, by: 500) {
                let chunk = Array(lowered[start..<min(start + 500, lowered.count)])
                let placeholders = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                let rows = try Row.fetchAll(
                    db, sql: "SELECT address, domain, tenant_id FROM suppressions WHERE address IN (\(placeholders))",
                    arguments: StatementArguments(chunk))
                for row in rows {
                    let tenant: Int64 = row["tenant_id"]
                    found[row["address"], default: []].append(
                        Suppression(
                            address: row["address"], domain: row["domain"], tenant: tenant == 0 ? nil : TenantID(rawValue: tenant),
                            reason: "", createdAt: Date(timeIntervalSince1970: 0)))
                }
            }
            return found
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
}
