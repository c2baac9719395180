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

    /// Events per INSERT statement and per transaction: what it costs to start and finish a
    /// statement is paid once for that many rows.
    static let engagementRowsPerInsert = 128
    /// The pause between two transactions of a batch, in microseconds (see `recordEngagement`).
    static let engagementPauseMicroseconds = 200
    /// A batch this large means the writer has fallen behind: it is written without pauses.
    static let engagementCatchUpEvents = 50_000

    /// Writes a batch of opens, clicks and unsubscribes one transaction of
    /// `engagementRowsPerInsert` events at a time, with a short pause between transactions.
    ///
    /// The writer is free between two transactions, so an intake commit (a client waiting for
    /// its 250) waits for one chunk at most, never for a whole batch of thousands of events.
    /// The pause, outside any transaction, gives the core to the event loops answering opens
    /// and clicks on a machine with few cores; a sleep, not `sched_yield()`, which Linux's
    /// scheduler punishes under load (`Benchmarks/RESULTS.md`).
    ///
    /// These transactions commit with `synchronous = NORMAL`: engagement events already wait in
    /// memory before they are written, and the next intake commit (FULL) syncs them with its own.
    public func recordEngagement(_ events: [EngagementEvent]) async throws {
        guard !events.isEmpty else { return }
        let rowsPerInsert = Self.engagementRowsPerInsert
        let pauses = events.count < Self.engagementCatchUpEvents
        var start = events.startIndex
        while start < events.endIndex {
            let chunk = events[start..<min(start + rowsPerInsert, events.endIndex)]
            start = chunk.endIndex
            try await writer.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                do {
                    try db.inTransaction {
                        try Self.insertEngagement(chunk, db)
                        return .commit
                    }
                } catch {
                    try db.execute(sql: "PRAGMA synchronous = FULL")
                    throw error
                }
                try db.execute(sql: "PRAGMA synchronous = FULL")
            }
            if pauses, start < events.endIndex {
                try await Task.sleep(for: .microseconds(Self.engagementPauseMicroseconds))
            }
        }
    }

    /// Inserts up to `engagementRowsPerInsert` events (of recipients that still exist) in one
    /// statement, and suppresses the addresses of unsubscribes.
    private static func insertEngagement(_ chunk: ArraySlice<EngagementEvent>, _ db: Database) throws {
        let suppress = try db.cachedStatement(
            sql: """
                INSERT INTO suppressions (tenant_id, address, domain, reason, created_at)
                SELECT m.tenant_id, lower(r.address), m.from_domain, 'unsubscribed', ?
                FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.id = ? AND r.message_id = ?
                ON CONFLICT (address, tenant_id, domain) DO NOTHING
                """)
        let known = try ofKnownRecipients(chunk, db)
        guard !known.isEmpty else { return }
        // Bound through SQLite's C interface: GRDB's arguments cost more per row than the insert does.
        let insert = try engagementInsert(rows: known.count, db)
        var details: [UInt8] = []
        for (offset, (event, tenant)) in known.enumerated() {
            let first = Int32(offset * 6 + 1)
            try insert.bind(first, event.type.rawValue)
            try insert.bind(first + 1, event.at.millisecondsSince1970)
            if event.details.isEmpty {
                try insert.bindNull(first + 2)
            } else {
                DetailsJSON.encode(event.details, into: &details)
                try details.withUnsafeBufferPointer { try insert.bind(first + 2, utf8: $0) }
            }
            try insert.bind(first + 3, event.recipientID.rawValue)
            try insert.bind(first + 4, event.messageID.rawValue)
            try insert.bind(first + 5, tenant.rawValue)
        }
        try insert.run()
        for (event, _) in known where event.type == .unsubscribe {
            try suppress.execute(arguments: [
                event.at.millisecondsSince1970, event.recipientID.rawValue, event.messageID.rawValue,
            ])
        }
    }

    /// The events whose recipient exists, in their order, each with its message's tenant: a
    /// token is verified, but its message may have been deleted since. Each recipient is
    /// looked up once per chunk, however many of its events the chunk holds.
    private static func ofKnownRecipients(
        _ events: ArraySlice<EngagementEvent>, _ db: Database
    ) throws -> [(EngagementEvent, TenantID)] {
        let lookup = try db.cachedStatement(
            sql: "SELECT m.tenant_id FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.id = ? AND r.message_id = ?")
        struct Recipient: Hashable {
            var id: RecipientID
            var message: MessageID
        }
        var known: [Recipient: TenantID?] = [:]
        var kept: [(EngagementEvent, TenantID)] = []
        kept.reserveCapacity(events.count)
        for event in events {
            let recipient = Recipient(id: event.recipientID, message: event.messageID)
            let tenant: TenantID?
            if let found = known[recipient] {
                tenant = found
            } else {
                tenant = try Int64.fetchOne(lookup, arguments: [recipient.id.rawValue, recipient.message.rawValue])
                    .map(TenantID.init(rawValue:))
                known[recipient] = tenant
            }
            if let tenant { kept.append((event, tenant)) }
        }
        return kept
    }

    /// Inserts `rows` events given as (type, at, details, recipient id, message id, tenant id),
    /// in that order, all of recipients that exist (`ofKnownRecipients`). A repeated
    /// unsubscribe is ignored. The full-size statement, used for every chunk but a batch's
    /// last, is prepared once per connection; a shorter one for each use.
    private static func engagementInsert(rows: Int, _ db: Database) throws -> RawStatement {
        if rows == engagementRowsPerInsert {
            return try RawStatement(cached: fullEngagementInsertSQL, db)
        }
        return try RawStatement(db, sql: engagementInsertSQL(rows: rows))
    }

    private static let fullEngagementInsertSQL = engagementInsertSQL(rows: engagementRowsPerInsert)

    private static func engagementInsertSQL(rows: Int) -> String {
        let values = repeatElement("(?, ?, ?, ?, ?, ?)", count: rows).joined(separator: ", ")
        return "INSERT OR IGNORE INTO events (type, at, details, recipient_id, message_id, tenant_id) VALUES \(values)"
    }

    public func recipientSummary(_ id: RecipientID) async throws -> RecipientSummary? {
        try await writer.read { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT r.id, r.message_id, r.address, m.from_domain, m.tenant_id
                    FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.id = ?
                    """,
                arguments: [id.rawValue]
            ).map { row in
                RecipientSummary(
                    id: RecipientID(rawValue: row["id"]), messageID: MessageID(rawValue: row["message_id"]),
                    address: row["address"], fromDomain: row["from_domain"], tenant: TenantID(rawValue: row["tenant_id"]))
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
