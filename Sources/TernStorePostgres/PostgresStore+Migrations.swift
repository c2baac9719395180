import Logging
import PostgresNIO
import TernCore

/// A named schema change. Migrations only move forward: once released, a migration is never
/// edited; a change is a new migration appended to the list.
struct PostgresMigration: Sendable {
    var name: String
    /// One statement each (the extended protocol runs one statement per query).
    var statements: [String]
}

extension PostgresStore {
    /// The advisory lock key held while migrating ("tern" in ASCII): two nodes starting at
    /// once apply the migrations one after the other, the second finding them applied.
    /// - SeeAlso: PostgreSQL documentation §9.27.10 (`pg_advisory_xact_lock`)
    static let migrationLockKey: Int64 = 0x7465_726E

    /// Applies every migration not yet recorded in `schema_migrations`, all in one transaction
    /// under `pg_advisory_xact_lock`: either every pending migration is applied or none is.
    /// - Returns: the names of the migrations this call applied.
    @discardableResult
    public func migrate() async throws -> [String] {
        try await migrate(Self.migrations)
    }

    /// Applies the migrations up to and including the one called `name`, and no later one:
    /// for tests that upgrade a database of an older schema.
    @discardableResult
    func migrate(upTo name: String) async throws -> [String] {
        guard let last = Self.migrations.firstIndex(where: { $0.name == name }) else {
            throw StoreError(.notFound, "no migration called \(name)")
        }
        return try await migrate(Array(Self.migrations[...last]))
    }

    /// Applies those of `migrations` (a prefix of `Self.migrations`) not yet recorded.
    private func migrate(_ migrations: [PostgresMigration]) async throws -> [String] {
        let logger = self.logger
        return try await transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLockKey))", logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    name TEXT PRIMARY KEY,
                    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                )
                """, logger: logger)
            var applied: Set<String> = []
            for try await name in try await connection.query("SELECT name FROM schema_migrations", logger: logger)
                .decode(String.self)
            {
                applied.insert(name)
            }
            let known = Set(Self.migrations.map(\.name))
            let unknown = applied.subtracting(known)
            if !unknown.isEmpty {
                // A newer Tern migrated this database; this node runs on a schema it does not know.
                logger.warning(
                    "the database has migrations this version of Tern does not know",
                    metadata: ["migrations": .string(unknown.sorted().joined(separator: ", "))])
            }
            var names: [String] = []
            for migration in migrations where !applied.contains(migration.name) {
                for statement in migration.statements {
                    // Schema text from this file only: no values are interpolated.
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO schema_migrations (name) VALUES (\(migration.name))", logger: logger)
                names.append(migration.name)
            }
            return names
        }
    }

    /// The schema, in PostgreSQL types, of `SQLiteStore`'s migrations: v1 is SQLite's v1–v7 in
    /// their final state (an inbound message's recipients are a TEXT[] where SQLite joins them with
    /// newlines): timestamps are milliseconds since 1970 (BIGINT) as in SQLite, so both stores
    /// read and write the same values; ids are the application's 64-bit ids (BIGINT).
    static let migrations: [PostgresMigration] = [
        PostgresMigration(
            name: "v1: messages, recipients, events, credentials, suppressions, inbound, domains (SQLite v1-v7)",
            statements: [
                """
                CREATE TABLE messages (
                    id BIGINT PRIMARY KEY,
                    message_id_header TEXT NOT NULL,
                    mail_from TEXT NOT NULL,
                    size BIGINT NOT NULL,
                    content BYTEA NOT NULL,
                    credential TEXT,
                    client_ip TEXT,
                    received_at BIGINT NOT NULL,
                    eight_bit_mime BOOLEAN NOT NULL DEFAULT FALSE,
                    smtp_utf8 BOOLEAN NOT NULL DEFAULT FALSE,
                    from_domain TEXT NOT NULL DEFAULT ''
                )
                """,
                // Content is stored uncompressed out of line, so that delivery's reads of a
                // piece (`substring`) fetch only that piece's chunks, not the whole message.
                "ALTER TABLE messages ALTER COLUMN content SET STORAGE EXTERNAL",
                // Reports that lost their VERP address are matched by Message-ID.
                "CREATE INDEX messages_message_id_header ON messages (message_id_header)",
                """
                CREATE TABLE links (
                    message_id BIGINT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
                    position INTEGER NOT NULL,
                    url TEXT NOT NULL,
                    PRIMARY KEY (message_id, position)
                )
                """,
                """
                CREATE TABLE recipients (
                    id BIGINT PRIMARY KEY,
                    message_id BIGINT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
                    position INTEGER NOT NULL,
                    address TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'failed', 'suppressed')),
                    next_attempt_at BIGINT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    lease_node TEXT,
                    lease_until BIGINT
                )
                """,
                "CREATE INDEX recipients_message ON recipients (message_id)",
                // The claim takes new recipients and retries as two shares, each from its own
                // partial index (only queued rows, however long the history of sent ones).
                """
                CREATE INDEX recipients_new ON recipients (next_attempt_at, lease_until)
                    WHERE state = 'queued' AND attempts = 0
                """,
                """
                CREATE INDEX recipients_retry ON recipients (next_attempt_at, lease_until)
                    WHERE state = 'queued' AND attempts > 0
                """,
                // Releasing a node's leases reads only the leased rows.
                "CREATE INDEX recipients_lease_node ON recipients (lease_node) WHERE lease_node IS NOT NULL",
                """
                CREATE TABLE events (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    type TEXT NOT NULL,
                    message_id BIGINT,
                    recipient_id BIGINT,
                    at BIGINT NOT NULL,
                    details JSONB
                )
                """,
                "CREATE INDEX events_at ON events (at, type)",
                "CREATE INDEX events_recipient ON events (recipient_id)",
                // One unsubscribe event per recipient however often the link is followed.
                "CREATE UNIQUE INDEX events_unsubscribe_once ON events (recipient_id) WHERE type = 'unsubscribe'",
                """
                CREATE TABLE credentials (
                    name TEXT PRIMARY KEY,
                    password_hash TEXT NOT NULL,
                    api_key_id TEXT NOT NULL UNIQUE,
                    api_key_hash TEXT NOT NULL,
                    networks TEXT NOT NULL DEFAULT '',
                    domains TEXT NOT NULL DEFAULT '',
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE suppressions (
                    address TEXT NOT NULL,
                    domain TEXT NOT NULL DEFAULT '',
                    reason TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    PRIMARY KEY (address, domain)
                )
                """,
                """
                CREATE TABLE inbound_messages (
                    id BIGINT PRIMARY KEY,
                    received_at BIGINT NOT NULL,
                    client_ip TEXT,
                    helo TEXT NOT NULL,
                    mail_from TEXT NOT NULL,
                    recipients TEXT[] NOT NULL,
                    purpose TEXT NOT NULL CHECK (purpose IN ('report', 'inbound')),
                    size BIGINT NOT NULL,
                    content BYTEA NOT NULL,
                    kind TEXT,
                    webhook_url TEXT,
                    webhook_state TEXT NOT NULL DEFAULT 'none'
                        CHECK (webhook_state IN ('none', 'pending', 'delivered', 'gave_up')),
                    webhook_attempts INTEGER NOT NULL DEFAULT 0,
                    webhook_next_at BIGINT,
                    webhook_last_at BIGINT,
                    webhook_last_status INTEGER,
                    webhook_last_error TEXT
                )
                """,
                "ALTER TABLE inbound_messages ALTER COLUMN content SET STORAGE EXTERNAL",
                "CREATE INDEX inbound_reports_unread ON inbound_messages (id) WHERE kind IS NULL",
                "CREATE INDEX inbound_webhooks_due ON inbound_messages (webhook_next_at) WHERE webhook_state = 'pending'",
                """
                CREATE TABLE domains (
                    name TEXT PRIMARY KEY,
                    return_path_domain TEXT,
                    track TEXT,
                    inbound_route TEXT,
                    created_at BIGINT NOT NULL,
                    verified_at BIGINT
                )
                """,
                """
                CREATE TABLE dkim_keys (
                    domain TEXT NOT NULL REFERENCES domains (name) ON DELETE CASCADE,
                    selector TEXT NOT NULL,
                    algorithm TEXT NOT NULL CHECK (algorithm IN ('rsa', 'ed25519')),
                    private_key TEXT NOT NULL,
                    public_record TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    retired_at BIGINT,
                    PRIMARY KEY (domain, selector)
                )
                """,
            ]),
        // Several nodes on one store: who is there (a heartbeat each), and the secrets every
        // node signs and verifies with, chosen once by whichever node asks first.
        PostgresMigration(
            name: "v2: nodes, node numbers, shared secrets (SQLite v8)",
            statements: [
                """
                CREATE TABLE nodes (
                    id TEXT PRIMARY KEY,
                    hostname TEXT NOT NULL,
                    started_at BIGINT NOT NULL,
                    heartbeat_at BIGINT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('running', 'stopped')),
                    detail TEXT NOT NULL DEFAULT ''
                )
                """,
                """
                CREATE TABLE secrets (
                    name TEXT PRIMARY KEY,
                    value BYTEA NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE node_numbers (
                    number INTEGER PRIMARY KEY CHECK (number >= 0 AND number < 1024),
                    node TEXT NOT NULL UNIQUE
                )
                """,
            ]),
        // Tenants (SQLite v9): everything stored so far belongs to `default` (id 1); a report
        // matched to nothing belongs to no tenant. Suppressions are per tenant, tenant 0
        // standing for installation-wide entries; `tenant_usage` counts each tenant's accepted and
        // throttled messages per clock hour, in 16 shards per hour so that the commits of
        // several nodes do not all wait for one row's lock. Columns added with a constant default cost
        // no rewrite; every insert names its tenant.
        PostgresMigration(
            name: "v3: tenants (SQLite v9)",
            statements: [
                """
                CREATE TABLE tenants (
                    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                    name TEXT NOT NULL UNIQUE,
                    created_at BIGINT NOT NULL,
                    max_messages_per_hour BIGINT,
                    max_messages_per_day BIGINT,
                    max_recipients_per_message BIGINT
                )
                """,
                "INSERT INTO tenants (id, name, created_at) VALUES (1, 'default', (extract(epoch FROM now()) * 1000)::BIGINT)",
                "SELECT setval(pg_get_serial_sequence('tenants', 'id'), 1)",
                "ALTER TABLE messages ADD COLUMN tenant_id BIGINT NOT NULL DEFAULT 1",
                "ALTER TABLE events ADD COLUMN tenant_id BIGINT DEFAULT 1",
                "UPDATE events SET tenant_id = NULL WHERE type = 'unmatched_report'",
                "ALTER TABLE credentials ADD COLUMN tenant_id BIGINT DEFAULT 1",
                "ALTER TABLE domains ADD COLUMN tenant_id BIGINT NOT NULL DEFAULT 1",
                "ALTER TABLE inbound_messages ADD COLUMN tenant_id BIGINT",
                "UPDATE inbound_messages SET tenant_id = 1 WHERE purpose = 'inbound'",
                "ALTER TABLE suppressions ADD COLUMN tenant_id BIGINT NOT NULL DEFAULT 1",
                "ALTER TABLE suppressions DROP CONSTRAINT suppressions_pkey",
                "ALTER TABLE suppressions ADD PRIMARY KEY (address, tenant_id, domain)",
                "CREATE INDEX messages_tenant ON messages (tenant_id)",
                "CREATE INDEX inbound_messages_tenant ON inbound_messages (tenant_id) WHERE tenant_id IS NOT NULL",
                """
                CREATE TABLE tenant_usage (
                    tenant_id BIGINT NOT NULL,
                    hour BIGINT NOT NULL,
                    shard SMALLINT NOT NULL DEFAULT 0,
                    messages BIGINT NOT NULL DEFAULT 0,
                    throttled BIGINT NOT NULL DEFAULT 0,
                    PRIMARY KEY (tenant_id, hour, shard)
                )
                """,
                // Every change to who may send and how grows the generation, in the change's
                // transaction: running servers poll it and reload at once.
                """
                CREATE TABLE configuration_generation (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    generation BIGINT NOT NULL
                )
                """,
                "INSERT INTO configuration_generation (id, generation) VALUES (1, 0)",
                """
                CREATE FUNCTION tern_configuration_changed() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    UPDATE configuration_generation SET generation = generation + 1 WHERE id = 1;
                    RETURN NULL;
                END
                $$
                """,
            ] + ["tenants", "credentials", "domains", "dkim_keys"].map { table in
                """
                CREATE TRIGGER \(table)_generation AFTER INSERT OR UPDATE OR DELETE ON \(table)
                FOR EACH STATEMENT EXECUTE FUNCTION tern_configuration_changed()
                """
            }),
    ]
}
