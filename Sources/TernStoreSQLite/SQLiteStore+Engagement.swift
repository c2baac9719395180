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

    /// Events per INSERT statement: what it costs to start and finish a statement is paid once
    /// for that many rows.
    static let engagementRowsPerInsert = 128
    /// The writer's pause after each INSERT of a batch, in microseconds (see `recordEngagement`).
    /// Against 64 rows and 100 µs, the same share of the time, in alternating 15-second runs of
    /// `tracking-http.sh`: a lower p99 in 9 of 10 pairs (4.4 against 5.1 ms on average), the
    /// writer keeping up in both; 256 rows and 400 µs did no better.
    static let engagementPauseMicroseconds: UInt32 = 200
    /// A batch this large means the writer has fallen behind: it is written without pauses.
    static let engagementCatchUpEvents = 50_000

    public func recordEngagement(_ events: [EngagementEvent]) async throws {
        guard !events.isEmpty else { return }
        try await writer.write { db in
            let suppress = try db.cachedStatement(
                sql: """
                    INSERT INTO suppressions (address, domain, reason, created_at)
                    SELECT lower(r.address), m.from_domain, 'unsubscribed', ?
                    FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.id = ? AND r.message_id = ?
                    ON CONFLICT (address, domain) DO NOTHING
                    """)
            let events = try Self.ofKnownRecipients(events, db)
            // Bound through SQLite's C interface: a batch is every open and click of the last
            // flush interval, and GRDB's arguments cost more per row than the insert does.
            let rowsPerInsert = Self.engagementRowsPerInsert
            let fullInsert = events.count >= rowsPerInsert ? try Self.engagementInsert(rows: rowsPerInsert, db) : nil
            var details: [UInt8] = []
            var start = events.startIndex
            while start < events.endIndex {
                let chunk = events[start..<min(start + rowsPerInsert, events.endIndex)]
                start = chunk.endIndex
                let partial = chunk.count == rowsPerInsert ? nil : try Self.engagementInsert(rows: chunk.count, db)
                guard let insert = partial ?? fullInsert else { continue }
                for (offset, event) in chunk.enumerated() {
                    let first = Int32(offset * 5 + 1)
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
                }
                try insert.run()
                for event in chunk where event.type == .unsubscribe {
                    try suppress.execute(arguments: [
                        event.at.millisecondsSince1970, event.recipientID.rawValue, event.messageID.rawValue,
                    ])
                }
                // A short sleep gives the core to whoever waits for it: the event loops answering
                // opens and clicks, on a machine with few cores. A batch is thousands of rows under
                // load (tens of milliseconds), and a request behind all of it would wait that
                // long. Not `sched_yield()`: Linux's scheduler (EEVDF) pushes a yielding thread's
                // deadline back a whole slice at each call, so under full load the writer ran
                // last and fell seconds behind (batches of 70,000 events, then dropped ones). A
                // sleep costs no such place: the writer keeps up, and the requests still find a
                // free core between its statements. Measured on 2 cores under wrk (64 rows, 100
                // µs): p99 of the tracking endpoints 5.0-6.5 ms with the pause, 7.3-8.0 ms without
                // any, batches under 30,000 events. (The transaction stays open meanwhile, so a
                // commit of intake queued behind it waits those pauses too.)
                if start < events.endIndex, events.count < Self.engagementCatchUpEvents {
                    usleep(Self.engagementPauseMicroseconds)
                }
            }
        }
    }

    /// The events whose recipient exists, in their order: a token is verified, but its
    /// message may have been deleted since. Each recipient is looked up once per batch, however
    /// many of its events the batch holds.
    private static func ofKnownRecipients(_ events: [EngagementEvent], _ db: Database) throws -> [EngagementEvent] {
        let lookup = try db.cachedStatement(sql: "SELECT 1 FROM recipients WHERE id = ? AND message_id = ?")
        struct Recipient: Hashable {
            var id: RecipientID
            var message: MessageID
        }
        var known: [Recipient: Bool] = [:]
        var kept: [EngagementEvent] = []
        kept.reserveCapacity(events.count)
        for event in events {
            let recipient = Recipient(id: event.recipientID, message: event.messageID)
            let exists: Bool
            if let found = known[recipient] {
                exists = found
            } else {
                exists = try Bool.fetchOne(lookup, arguments: [recipient.id.rawValue, recipient.message.rawValue]) ?? false
                known[recipient] = exists
            }
            if exists { kept.append(event) }
        }
        return kept
    }

    /// Inserts `rows` events given as (type, at, details, recipient id, message id), in that
    /// order, all of recipients that exist (`ofKnownRecipients`). A repeated unsubscribe is
    /// ignored.
    private static func engagementInsert(rows: Int, _ db: Database) throws -> RawStatement {
        let values = repeatElement("(?, ?, ?, ?, ?)", count: rows).joined(separator: ", ")
        return try RawStatement(
            db,
            sql: """
                INSERT OR IGNORE INTO events (type, at, details, recipient_id, message_id) VALUES \(values)
                """)
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
