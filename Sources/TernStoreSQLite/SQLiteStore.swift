import Foundation
import GRDB
public import TernCore

/// The embedded store: SQLite through GRDB, WAL journal, `synchronous = FULL`,
/// so a commit that returned is on disk.
public final class SQLiteStore: Store {
    private let pool: DatabasePool
    private let checkpointer: WALCheckpointer
    /// Delivery's reads of message content.
    let contentReader: ContentReader
    public let path: String

    /// WAL pages after which the committing connection checkpoints by itself: only a safety
    /// valve, for when the background checkpointer falls behind.
    static let walAutocheckpointPages = 16_384

    /// The writer's page cache, in KiB (SQLite's default is 2,000). Engagement events go into
    /// the index by recipient at places all over it, and a page that fell out of the cache is
    /// read again from the file at each visit: about 10% less CPU per event, for about 50 MiB
    /// more RSS on a busy server (`Benchmarks/RESULTS.md`). Only the writer: readers come and go.
    static let writerCacheKiB = 32_768

    /// The database, for the store's extensions in other files.
    var writer: DatabasePool { pool }

    /// Opens (creating if needed) the database at `path` and applies migrations.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // Checkpoints run in the background (`WALCheckpointer`), not inside a commit that
            // sessions are waiting on for their 250.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(Self.walAutocheckpointPages)")
        }
        self.path = path
        self.pool = try DatabasePool(path: path, configuration: configuration)
        // After opening: GRDB sets `synchronous = NORMAL` on the writer when it turns on WAL,
        // after `prepareDatabase` has run. NORMAL does not sync the log at each commit, so a
        // 250 could be lost in a power failure or an OS crash; FULL syncs it before the
        // commit returns.
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA cache_size = -\(Self.writerCacheKiB)")
        }
        try SQLiteStore.migrator.migrate(pool)
        self.checkpointer = try WALCheckpointer(path: path)
        self.contentReader = try ContentReader(path: path)
    }

    /// Writes on the database's own writer queue and answers from there: no task and no
    /// executor hop per commit, which matters on intake's path to the 250.
    public func commit(_ messages: [QueuedMessage], completion: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        guard !messages.isEmpty else {
            completion(.success(()))
            return
        }
        let path = self.path
        pool.asyncWrite({ db in try Self.insert(messages, in: db) }) { _, result in
            completion(result.mapError { Self.storeError($0, path: path) })
        }
    }

    /// A full disk is `insufficientStorage` (the SMTP server answers 452); anything else as is.
    static func storeError(_ error: any Error, path: String) -> any Error {
        guard let error = error as? DatabaseError, error.resultCode == .SQLITE_FULL else { return error }
        return StoreError(.insufficientStorage, "cannot write to \(path): \(error.message ?? "\(error.resultCode)")")
    }

    private static func insert(_ messages: [QueuedMessage], in db: Database) throws {
        let insertMessage = try db.cachedStatement(
            sql: """
                INSERT INTO messages (id, message_id_header, mail_from, size, content, credential, client_ip,
                                      received_at, eight_bit_mime, smtp_utf8, from_domain, tenant_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
        let insertLink = try db.cachedStatement(sql: "INSERT INTO links (message_id, position, url) VALUES (?, ?, ?)")
        let insertRecipient = try db.cachedStatement(
            sql: """
                INSERT INTO recipients (id, message_id, position, address, state, next_attempt_at)
                VALUES (?, ?, ?, ?, 'queued', ?)
                """)
        let insertEvent = try db.cachedStatement(
            sql: "INSERT INTO events (type, message_id, recipient_id, at, details, tenant_id) VALUES (?, ?, ?, ?, NULL, ?)")
        var usage: [UsageKey: Int] = [:]
        for message in messages {
            usage[UsageKey(tenant: message.tenant.rawValue, hour: TenantUsage.hourMilliseconds(of: message.receivedAt)), default: 0] +=
                message.recipients.count
            let at = message.receivedAt.millisecondsSince1970
            try insertMessage.execute(arguments: [
                message.id.rawValue, message.messageIDHeader, message.mailFrom, message.content.count,
                Data(message.content), message.credential, message.clientIP, at,
                message.eightBitMIME, message.smtpUTF8, message.fromDomain, message.tenant.rawValue,
            ])
            for (position, url) in message.links.enumerated() {
                try insertLink.execute(arguments: [message.id.rawValue, position, url])
            }
            for (position, recipient) in message.recipients.enumerated() {
                try insertRecipient.execute(arguments: [
                    recipient.id.rawValue, message.id.rawValue, position, recipient.address, at,
                ])
                try insertEvent.execute(arguments: [
                    EventType.outbound.rawValue, message.id.rawValue, recipient.id.rawValue, at, message.tenant.rawValue,
                ])
            }
        }
        let count = try db.cachedStatement(
            sql: """
                INSERT INTO tenant_usage (tenant_id, hour, messages) VALUES (?, ?, ?)
                ON CONFLICT (tenant_id, hour) DO UPDATE SET messages = messages + excluded.messages
                """)
        for (key, messages) in usage {
            try count.execute(arguments: [key.tenant, key.hour, messages])
        }
    }

    /// A tenant's clock hour, as `tenant_usage` keys it.
    struct UsageKey: Hashable {
        var tenant: Int64
        var hour: Int64
    }

    public func counters(in range: TimeRange, scope: TenantScope) async throws -> Counters {
        try await pool.read { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let tenant = scope.tenant {
                conditions.append("tenant_id = ?")
                arguments += [tenant.rawValue]
            }
            if let from = range.from {
                conditions.append("at >= ?")
                arguments += [from.millisecondsSince1970]
            }
            if let to = range.to {
                conditions.append("at < ?")
                arguments += [to.millisecondsSince1970]
            }
            let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            let rows = try Row.fetchAll(
                db, sql: "SELECT type, COUNT(*) AS n FROM events \(whereClause) GROUP BY type", arguments: arguments)
            var counts: [EventType: Int] = [:]
            for row in rows {
                if let type = EventType(rawValue: row["type"]) { counts[type] = row["n"] }
            }
            var counters = Counters(eventCounts: counts)
            counters.throttled = try Self.throttled(in: range, scope: scope, db)
            if counts[.failed, default: 0] > 0 {
                let failedClause = (conditions + ["type = 'failed'", "json_extract(details, '$.async') = 'true'"])
                    .joined(separator: " AND ")
                counters.failedAsync = try Int.fetchOne(
                    db, sql: "SELECT COUNT(*) FROM events WHERE \(failedClause)", arguments: arguments) ?? 0
            }
            guard counts[.open, default: 0] + counts[.click, default: 0] > 0 else { return counters }
            let engagementClause = (conditions + ["type IN ('open', 'click')"]).joined(separator: " AND ")
            if let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT COUNT(DISTINCT CASE WHEN type = 'open' THEN recipient_id END) AS unique_opens,
                           COUNT(DISTINCT CASE WHEN type = 'click' THEN recipient_id END) AS unique_clicks,
                           COUNT(CASE WHEN type = 'open' AND json_extract(details, '$.machine') = 'false' THEN 1 END) AS human_opens,
                           COUNT(CASE WHEN type = 'click' AND json_extract(details, '$.machine') = 'false' THEN 1 END) AS human_clicks
                    FROM events WHERE \(engagementClause)
                    """,
                arguments: arguments)
            {
                counters.uniqueOpens = row["unique_opens"]
                counters.uniqueClicks = row["unique_clicks"]
                counters.humanOpens = row["human_opens"]
                counters.humanClicks = row["human_clicks"]
            }
            return counters
        }
    }

    /// Throttled messages of the hours that start within `range`.
    private static func throttled(in range: TimeRange, scope: TenantScope, _ db: Database) throws -> Int {
        try Int.fetchOne(
            db,
            sql: """
                SELECT COALESCE(SUM(throttled), 0) FROM tenant_usage
                WHERE hour >= ? AND hour < ? AND (? IS NULL OR tenant_id = ?)
                """,
            arguments: [
                range.from?.millisecondsSince1970 ?? Int64.min, range.to?.millisecondsSince1970 ?? Int64.max,
                scope.tenant?.rawValue, scope.tenant?.rawValue,
            ]) ?? 0
    }

    public func message(_ id: MessageID, scope: TenantScope) async throws -> StoredMessage? {
        try await pool.read { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT * FROM messages WHERE id = ?", arguments: [id.rawValue]),
                scope.includes(TenantID(rawValue: row["tenant_id"]))
            else { return nil }
            let recipients = try Row.fetchAll(
                db, sql: "SELECT id, address, state FROM recipients WHERE message_id = ? ORDER BY position",
                arguments: [id.rawValue]
            ).map { row in
                StoredRecipient(
                    id: RecipientID(rawValue: row["id"]), address: row["address"],
                    state: RecipientState(rawValue: row["state"]) ?? .queued)
            }
            let content: Data = row["content"]
            return StoredMessage(
                id: id, messageIDHeader: row["message_id_header"], mailFrom: row["mail_from"],
                recipients: recipients, content: [UInt8](content), credential: row["credential"],
                receivedAt: Date(millisecondsSince1970: row["received_at"]), tenant: TenantID(rawValue: row["tenant_id"]))
        }
    }

    public func addCredential(_ credential: Credential) async throws {
        try await pool.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM credentials WHERE name = ?", arguments: [credential.name]) != nil {
                throw StoreError(.duplicate, "a credential named \(credential.name) already exists")
            }
            if let tenant = credential.scope.tenant,
                try Row.fetchOne(db, sql: "SELECT 1 FROM tenants WHERE id = ?", arguments: [tenant.rawValue]) == nil
            {
                throw StoreError(.notFound, "no tenant with id \(tenant)")
            }
            try db.execute(
                sql: """
                    INSERT INTO credentials (name, password_hash, api_key_id, api_key_hash, networks, domains, created_at, tenant_id)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    credential.name, credential.passwordHash, credential.apiKeyID, credential.apiKeyHash,
                    credential.networks.map(\.description).joined(separator: ","), credential.domains.joined(separator: ","),
                    credential.createdAt.millisecondsSince1970, credential.scope.tenant?.rawValue,
                ])
        }
    }

    public func removeCredential(named name: String) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM credentials WHERE name = ?", arguments: [name])
            return db.changesCount > 0
        }
    }

    public func credential(named name: String) async throws -> Credential? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM credentials WHERE name = ?", arguments: [name]).map(Self.credential)
        }
    }

    public func credentials() async throws -> [Credential] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM credentials ORDER BY name").map(Self.credential)
        }
    }

    public func close() async throws {
        await checkpointer.stop()
        try contentReader.close()
        try pool.close()
    }

    private static func credential(_ row: Row) -> Credential {
        let networks: String = row["networks"]
        let domains: String = row["domains"]
        return Credential(
            name: row["name"], passwordHash: row["password_hash"], apiKeyID: row["api_key_id"],
            apiKeyHash: row["api_key_hash"],
            networks: networks.split(separator: ",").compactMap { IPNetwork(String($0)) },
            domains: domains.split(separator: ",").map(String.init),
            scope: (row["tenant_id"] as Int64?).map { .tenant(TenantID(rawValue: $0)) } ?? .all,
            createdAt: Date(millisecondsSince1970: row["created_at"]))
    }
}

extension SQLiteStore {
    /// The tables whose changes running servers must see at once.
    static let configurationTables = ["tenants", "credentials", "domains", "dkim_keys"]

    public func configurationGeneration() async throws -> Int64 {
        try await pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT generation FROM configuration_generation WHERE id = 1") ?? 0
        }
    }

    /// Forward-only, named migrations.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: messages, recipients, events, credentials") { db in
            try db.execute(
                sql: """
                    CREATE TABLE messages (
                        id INTEGER PRIMARY KEY,
                        message_id_header TEXT NOT NULL,
                        mail_from TEXT NOT NULL,
                        size INTEGER NOT NULL,
                        content BLOB NOT NULL,
                        credential TEXT,
                        client_ip TEXT,
                        received_at INTEGER NOT NULL,
                        eight_bit_mime INTEGER NOT NULL DEFAULT 0,
                        smtp_utf8 INTEGER NOT NULL DEFAULT 0
                    );
                    CREATE TABLE recipients (
                        id INTEGER PRIMARY KEY,
                        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
                        position INTEGER NOT NULL,
                        address TEXT NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'failed', 'suppressed')),
                        next_attempt_at INTEGER NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0
                    );
                    CREATE INDEX recipients_message ON recipients(message_id);
                    CREATE INDEX recipients_due ON recipients(state, next_attempt_at);
                    CREATE TABLE events (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        type TEXT NOT NULL,
                        message_id INTEGER,
                        recipient_id INTEGER,
                        at INTEGER NOT NULL,
                        details TEXT
                    );
                    CREATE INDEX events_at ON events(at, type);
                    CREATE INDEX events_recipient ON events(recipient_id);
                    CREATE TABLE credentials (
                        name TEXT PRIMARY KEY,
                        password_hash TEXT NOT NULL,
                        api_key_id TEXT NOT NULL UNIQUE,
                        api_key_hash TEXT NOT NULL,
                        networks TEXT NOT NULL DEFAULT '',
                        created_at INTEGER NOT NULL
                    );
                    """)
        }
        migrator.registerMigration("v2: delivery leases, suppressions") { db in
            try db.execute(
                sql: """
                    ALTER TABLE recipients ADD COLUMN lease_node TEXT;
                    ALTER TABLE recipients ADD COLUMN lease_until INTEGER;
                    CREATE TABLE suppressions (
                        address TEXT PRIMARY KEY,
                        reason TEXT NOT NULL,
                        created_at INTEGER NOT NULL
                    );
                    """)
        }
        // The claim takes new recipients (never attempted) and retries as two shares, each
        // from its own index, so that neither query reads past a backlog of the other kind.
        // Partial: only queued rows, however long the history of sent ones. `lease_until` is
        // in the key so that leased rows are skipped without reading the table.
        migrator.registerMigration("v3: claim indexes for new mail and retries") { db in
            try db.execute(
                sql: """
                    CREATE INDEX recipients_new ON recipients(next_attempt_at, lease_until)
                        WHERE state = 'queued' AND attempts = 0;
                    CREATE INDEX recipients_retry ON recipients(next_attempt_at, lease_until)
                        WHERE state = 'queued' AND attempts > 0;
                    -- Releasing a node's leases at start-up reads only the leased rows.
                    CREATE INDEX recipients_lease_node ON recipients(lease_node)
                        WHERE lease_node IS NOT NULL;
                    """)
        }
        // Every index and every AUTOINCREMENT is written again at each commit (one more page
        // in the log, one more B-tree to update per recipient). `recipients_due` served only
        // the queue listing, which the two claim indexes serve as well; AUTOINCREMENT kept
        // sqlite_sequence up to date, which ids that are never reused do not need (events are
        // not deleted, so the largest id plus one is always new).
        migrator.registerMigration("v4: fewer writes per recipient") { db in
            try db.execute(
                sql: """
                    DROP INDEX recipients_due;
                    CREATE TABLE events_v4 (
                        id INTEGER PRIMARY KEY,
                        type TEXT NOT NULL,
                        message_id INTEGER,
                        recipient_id INTEGER,
                        at INTEGER NOT NULL,
                        details TEXT
                    );
                    INSERT INTO events_v4 (id, type, message_id, recipient_id, at, details)
                        SELECT id, type, message_id, recipient_id, at, details FROM events ORDER BY id;
                    DROP TABLE events;
                    ALTER TABLE events_v4 RENAME TO events;
                    CREATE INDEX events_at ON events(at, type);
                    CREATE INDEX events_recipient ON events(recipient_id);
                    """)
        }
        // Tracking: the original link targets of each message (a click redirects to its
        // link's row), the sending domain of each message, suppressions per sending domain
        // (an unsubscribe stops that sender's mail, a hard bounce every sender's), and one
        // unsubscribe event per recipient however often the link is followed.
        migrator.registerMigration("v5: links, sending domains, suppressions per domain") { db in
            try db.execute(
                sql: """
                    ALTER TABLE messages ADD COLUMN from_domain TEXT NOT NULL DEFAULT '';
                    CREATE TABLE links (
                        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
                        position INTEGER NOT NULL,
                        url TEXT NOT NULL,
                        PRIMARY KEY (message_id, position)
                    ) WITHOUT ROWID;
                    CREATE TABLE suppressions_v5 (
                        address TEXT NOT NULL,
                        domain TEXT NOT NULL DEFAULT '',
                        reason TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        PRIMARY KEY (address, domain)
                    ) WITHOUT ROWID;
                    INSERT INTO suppressions_v5 (address, domain, reason, created_at)
                        SELECT address, '', reason, created_at FROM suppressions;
                    DROP TABLE suppressions;
                    ALTER TABLE suppressions_v5 RENAME TO suppressions;
                    CREATE UNIQUE INDEX events_unsubscribe_once ON events(recipient_id) WHERE type = 'unsubscribe';
                    """)
        }
        // The MX: what arrived (kept before the 250, reports until read, inbound mail until
        // posted), and the lookup of a sent message by its Message-ID for reports that lost
        // their VERP address.
        migrator.registerMigration("v6: inbound messages, Message-ID lookup") { db in
            try db.execute(
                sql: """
                    CREATE INDEX messages_message_id_header ON messages(message_id_header);
                    CREATE TABLE inbound_messages (
                        id INTEGER PRIMARY KEY,
                        received_at INTEGER NOT NULL,
                        client_ip TEXT,
                        helo TEXT NOT NULL,
                        mail_from TEXT NOT NULL,
                        recipients TEXT NOT NULL,
                        purpose TEXT NOT NULL CHECK (purpose IN ('report', 'inbound')),
                        size INTEGER NOT NULL,
                        content BLOB NOT NULL,
                        kind TEXT,
                        webhook_url TEXT,
                        webhook_state TEXT NOT NULL DEFAULT 'none'
                            CHECK (webhook_state IN ('none', 'pending', 'delivered', 'gave_up')),
                        webhook_attempts INTEGER NOT NULL DEFAULT 0,
                        webhook_next_at INTEGER,
                        webhook_last_at INTEGER,
                        webhook_last_status INTEGER,
                        webhook_last_error TEXT
                    );
                    CREATE INDEX inbound_reports_unread ON inbound_messages(id) WHERE kind IS NULL;
                    CREATE INDEX inbound_webhooks_due ON inbound_messages(webhook_next_at) WHERE webhook_state = 'pending';
                    """)
        }
        // Sending domains and their DKIM keys live in the store (not in one node's data
        // folder), so that every node signs alike.
        migrator.registerMigration("v7: sending domains, DKIM keys, the domains a credential may send for") { db in
            try db.execute(
                sql: """
                    CREATE TABLE domains (
                        name TEXT PRIMARY KEY,
                        return_path_domain TEXT,
                        track TEXT,
                        inbound_route TEXT,
                        created_at INTEGER NOT NULL,
                        verified_at INTEGER
                    ) WITHOUT ROWID;
                    CREATE TABLE dkim_keys (
                        domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,
                        selector TEXT NOT NULL,
                        algorithm TEXT NOT NULL CHECK (algorithm IN ('rsa', 'ed25519')),
                        private_key TEXT NOT NULL,
                        public_record TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        retired_at INTEGER,
                        PRIMARY KEY (domain, selector)
                    ) WITHOUT ROWID;
                    ALTER TABLE credentials ADD COLUMN domains TEXT NOT NULL DEFAULT '';
                    """)
        }
        // Several nodes on one store: who is there (a heartbeat each), and the secrets every
        // node signs and verifies with, chosen once by whichever node asks first.
        migrator.registerMigration("v8: nodes, node numbers, shared secrets") { db in
            try db.execute(
                sql: """
                    CREATE TABLE nodes (
                        id TEXT PRIMARY KEY,
                        hostname TEXT NOT NULL,
                        started_at INTEGER NOT NULL,
                        heartbeat_at INTEGER NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('running', 'stopped')),
                        detail TEXT NOT NULL DEFAULT ''
                    ) WITHOUT ROWID;
                    CREATE TABLE secrets (
                        name TEXT PRIMARY KEY,
                        value BLOB NOT NULL,
                        created_at INTEGER NOT NULL
                    ) WITHOUT ROWID;
                    CREATE TABLE node_numbers (
                        number INTEGER PRIMARY KEY CHECK (number >= 0 AND number < 1024),
                        node TEXT NOT NULL UNIQUE
                    );
                    """)
        }
        // Tenants: the unit of ownership. Everything stored so far belongs to `default`
        // (id 1); a report matched to nothing belongs to no tenant. Suppressions are per
        // tenant, tenant 0 standing for the installation-wide entries the operator adds.
        // `tenant_usage` counts each tenant's accepted and throttled messages per clock hour
        // (UTC, the hour's start in milliseconds): what its limits are checked against.
        // `tenant_id` columns added with DEFAULT 1 cost no rewrite of the existing rows;
        // every insert names its tenant.
        migrator.registerMigration("v9: tenants") { db in
            try db.execute(
                sql: """
                    CREATE TABLE tenants (
                        id INTEGER PRIMARY KEY,
                        name TEXT NOT NULL UNIQUE,
                        created_at INTEGER NOT NULL,
                        max_messages_per_hour INTEGER,
                        max_messages_per_day INTEGER,
                        max_recipients_per_message INTEGER
                    );
                    INSERT INTO tenants (id, name, created_at) VALUES (1, 'default', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
                    ALTER TABLE messages ADD COLUMN tenant_id INTEGER NOT NULL DEFAULT 1;
                    ALTER TABLE events ADD COLUMN tenant_id INTEGER DEFAULT 1;
                    UPDATE events SET tenant_id = NULL WHERE type = 'unmatched_report';
                    ALTER TABLE credentials ADD COLUMN tenant_id INTEGER DEFAULT 1;
                    ALTER TABLE domains ADD COLUMN tenant_id INTEGER NOT NULL DEFAULT 1;
                    ALTER TABLE inbound_messages ADD COLUMN tenant_id INTEGER;
                    UPDATE inbound_messages SET tenant_id = 1 WHERE purpose = 'inbound';
                    CREATE TABLE suppressions_v9 (
                        tenant_id INTEGER NOT NULL,
                        address TEXT NOT NULL,
                        domain TEXT NOT NULL DEFAULT '',
                        reason TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        PRIMARY KEY (address, tenant_id, domain)
                    ) WITHOUT ROWID;
                    INSERT INTO suppressions_v9 (tenant_id, address, domain, reason, created_at)
                        SELECT 1, address, domain, reason, created_at FROM suppressions;
                    DROP TABLE suppressions;
                    ALTER TABLE suppressions_v9 RENAME TO suppressions;
                    CREATE INDEX messages_tenant ON messages(tenant_id);
                    CREATE INDEX inbound_messages_tenant ON inbound_messages(tenant_id) WHERE tenant_id IS NOT NULL;
                    CREATE TABLE tenant_usage (
                        tenant_id INTEGER NOT NULL,
                        hour INTEGER NOT NULL,
                        messages INTEGER NOT NULL DEFAULT 0,
                        throttled INTEGER NOT NULL DEFAULT 0,
                        PRIMARY KEY (tenant_id, hour)
                    ) WITHOUT ROWID;
                    CREATE TABLE configuration_generation (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        generation INTEGER NOT NULL
                    );
                    INSERT INTO configuration_generation (id, generation) VALUES (1, 0);
                    """)
            // Every change to who may send and how grows the generation, in its own transaction:
            // running servers poll it and reload at once (`configurationGeneration()`).
            for table in Self.configurationTables {
                for change in ["INSERT", "UPDATE", "DELETE"] {
                    try db.execute(
                        sql: """
                            CREATE TRIGGER \(table)_\(change.lowercased())_generation AFTER \(change) ON \(table)
                            BEGIN UPDATE configuration_generation SET generation = generation + 1; END
                            """)
                }
            }
        }
        return migrator
    }
}
