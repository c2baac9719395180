import Foundation
import PostgresNIO
import Testing
import TernCore
@testable import TernStorePostgres

@Suite(.enabled(if: PostgresTestServer.isConfigured, "needs TERN_TEST_POSTGRES_URL (scripts/postgres.sh start)"))
struct PostgresMigrationTests {
    /// The first start applies every migration and records it; later starts apply none.
    @Test func migrationsAreRecordedAndAppliedOnce() async throws {
        try await PostgresTestServer.withDatabase { url async throws in
            try await PostgresTestServer.withRunningStore(url: url) { store async throws in
                let all = PostgresStore.migrations.map(\.name)
                #expect(try await store.migrate() == all)
                #expect(try await store.migrate() == [])
                #expect(try await store.appliedMigrations() == all)
            }
            // Another node (a new pool) starting on the same database applies nothing either.
            try await PostgresTestServer.withRunningStore(url: url) { store async throws in
                #expect(try await store.migrate() == [])
            }
        }
    }

    /// Nodes starting at once: the advisory lock lets one apply the schema; the others wait
    /// for its transaction and find the migrations recorded (no "relation already exists").
    @Test func nodesStartingAtOnceMigrateOnce() async throws {
        try await PostgresTestServer.withDatabase { url async throws in
            let applied = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await PostgresTestServer.withRunningStore(url: url) { store in try await store.migrate() }
                    }
                }
                var results: [[String]] = []
                for try await names in group { results.append(names) }
                return results
            }
            #expect(applied.filter { !$0.isEmpty } == [PostgresStore.migrations.map(\.name)])
            #expect(applied.filter(\.isEmpty).count == 3)
        }
    }

    /// Data written before a restart is read after it (a new pool on the same database).
    @Test func dataSurvivesANewStore() async throws {
        try await PostgresTestServer.withDatabase { url async throws in
            let message = sampleMessage()
            try await PostgresTestServer.withRunningStore(url: url) { store async throws in
                try await store.migrate()
                try await store.commitAndWait([message])
            }
            try await PostgresTestServer.withRunningStore(url: url) { store async throws in
                try await store.migrate()
                #expect(try await store.message(message.id, scope: .all)?.content == message.content)
            }
        }
    }

    /// A database of the first release (migration 1 only) holding a queued message, a lease
    /// and an inbound message is upgraded in place at the next start: the rows are intact,
    /// the first migration stays recorded, and the new tables work.
    @Test func aDatabaseOfTheFirstSchemaUpgradesInPlace() async throws {
        try await PostgresTestServer.withDatabase { url async throws in
            let first = try #require(PostgresStore.migrations.first).name
            let now = Date()
            let message = sampleMessage(recipients: 3, at: now.addingTimeInterval(-60))
            let arrival = InboundMessage(
                id: .next(), receivedAt: now, clientIP: nil, heloName: "mx.example.net", mailFrom: "a@example.org",
                recipients: ["help@support.example"], purpose: .inbound, webhookURL: "http://127.0.0.1:9/hook",
                content: Array("Subject: x\r\n\r\nbody\r\n".utf8))
            let at = message.receivedAt.millisecondsSince1970
            try await PostgresTestServer.withRunningStore(url: url) { store async throws in
                #expect(try await store.migrate(upTo: first) == [first])
                // Rows as the first release wrote them: its columns only, two recipients leased.
                let client = store.client
                try await client.query(
                    """
                    INSERT INTO messages (id, message_id_header, mail_from, size, content, received_at)
                    VALUES (\(message.id.rawValue), \(message.messageIDHeader), \(message.mailFrom),
                            \(Int64(message.content.count)), \(ByteBuffer(bytes: message.content)), \(at))
                    """)
                for (position, recipient) in message.recipients.enumerated() {
                    let lease: String? = position < 2 ? "a" : nil
                    let until: Int64? = position < 2 ? now.addingTimeInterval(3600).millisecondsSince1970 : nil
                    try await client.query(
                        """
                        INSERT INTO recipients (id, message_id, position, address, state, next_attempt_at, lease_node, lease_until)
                        VALUES (\(recipient.id.rawValue), \(message.id.rawValue), \(Int32(position)), \(recipient.address), 'queued',
                                \(at), \(lease), \(until))
                        """)
                    try await client.query(
                        """
                        INSERT INTO events (type, message_id, recipient_id, at)
                        VALUES ('outbound', \(message.id.rawValue), \(recipient.id.rawValue), \(at))
                        """)
                }
                try await client.query("INSERT INTO events (type, at) VALUES ('unmatched_report', \(at))")
                try await client.query(
                    """
                    INSERT INTO inbound_messages (id, received_at, helo, mail_from, recipients, purpose, size, content, kind,
                                                  webhook_url, webhook_state, webhook_next_at)
                    VALUES (\(arrival.id.rawValue), \(arrival.receivedAt.millisecondsSince1970), \(arrival.heloName),
                            \(arrival.mailFrom), \(arrival.recipients), 'inbound', \(Int64(arrival.content.count)),
                            \(ByteBuffer(bytes: arrival.content)), 'inbound', \(arrival.webhookURL), 'pending',
                            \(arrival.receivedAt.millisecondsSince1970))
                    """)
                try await client.query(
                    """
                    INSERT INTO credentials (name, password_hash, api_key_id, api_key_hash, created_at)
                    VALUES ('app', 'x', 'AAAAAAAAAAAA', 'y', \(at))
                    """)
                try await client.query(
                    "INSERT INTO suppressions (address, domain, reason, created_at) VALUES ('gone@example.net', '', 'hard bounce', \(at))")
                try await client.query("INSERT INTO domains (name, created_at) VALUES ('shop.example', \(at))")
            }

            try await PostgresTestServer.withRunningStore(url: url) { store async throws in
                let later = PostgresStore.migrations.dropFirst().map(\.name)
                #expect(!later.isEmpty)
                #expect(try await store.migrate() == later)
                #expect(try await store.appliedMigrations() == [first] + later)
                let stored = try #require(try await store.message(message.id, scope: .all))
                #expect(stored.content == message.content)
                #expect(stored.recipients.map(\.id) == message.recipients.map(\.id))
                #expect(stored.recipients.allSatisfy { $0.state == .queued })
                #expect(try await store.counters(in: .allTime, scope: .all).outbound == 3)
                #expect(try await store.inboundMessages(limit: 10, scope: .all).map(\.id) == [arrival.id.description])
                // Everything belongs to the tenant `default`, but the report matched to nothing.
                #expect(try await store.tenants().map(\.name) == [Tenant.defaultName])
                #expect(stored.tenant == .default)
                let own = try await store.counters(in: .allTime, scope: .tenant(.default))
                #expect(own.outbound == 3 && own.unmatchedReports == 0)
                #expect(try await store.counters(in: .allTime, scope: .all).unmatchedReports == 1)
                #expect(try await store.inboundMessages(limit: 10, scope: .tenant(.default)).map(\.id) == [arrival.id.description])
                #expect(try await store.credential(named: "app")?.scope == .tenant(.default))
                #expect(try await store.domain(named: "shop.example")?.tenant == .default)
                #expect(try await store.suppressions(scope: .all).map(\.tenant) == [.default])
                // A tenant added after the migration gets a new id, not the default's.
                #expect(try await store.addTenant(named: "b", limits: .none, createdAt: now).id != .default)

                try await store.heartbeat(
                    NodeRecord(id: "a", hostname: "a.example", startedAt: now, heartbeatAt: now, state: .running, detail: ""))
                let nodes = try await store.nodes(deliveriesSince: now.addingTimeInterval(-3600))
                #expect(nodes.map(\.node.id) == ["a"])
                #expect(nodes.map(\.leasedRecipients) == [2])
                #expect(try await store.sharedSecret(named: "tracking", proposed: [1, 2]) == [1, 2])
                #expect(
                    try await store.claimDueWebhooks(now: now, limit: 10, leaseUntil: now.addingTimeInterval(60)).map(\.id)
                        == [arrival.id])
                #expect(try await store.claimDueRecipients(now: now, limit: 10, node: "b", leaseUntil: now).count == 1)
            }
        }
    }

    /// The claim's indexes are partial, as in SQLite: only queued rows are indexed.
    @Test func claimIndexesArePartial() async throws {
        try await PostgresTestServer.withStore { store async throws in
            let rows = try await store.client.query(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'recipients' ORDER BY indexname")
            var definitions: [String: String] = [:]
            for try await (name, definition) in rows.decode((String, String).self) { definitions[name] = definition }
            #expect(definitions["recipients_new"]?.contains("WHERE ((state = 'queued'::text) AND (attempts = 0))") == true)
            #expect(definitions["recipients_retry"]?.contains("WHERE ((state = 'queued'::text) AND (attempts > 0))") == true)
            #expect(definitions["recipients_lease_node"]?.contains("WHERE (lease_node IS NOT NULL)") == true)
        }
    }
}

extension PostgresStore {
    /// The names of the migrations recorded in the database, in the order they were applied.
    func appliedMigrations() async throws -> [String] {
        var names: [String] = []
        let rows = try await client.query("SELECT name FROM schema_migrations ORDER BY applied_at, name", logger: logger)
        for try await name in rows.decode(String.self) { names.append(name) }
        return names
    }
}
