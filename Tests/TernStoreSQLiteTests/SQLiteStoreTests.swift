import Foundation
import GRDB
import Testing
import TernCore
@testable import TernStoreSQLite

/// A store in a fresh temporary folder, removed afterwards.
func withTemporaryStore<T>(_ body: (SQLiteStore, String) async throws -> T) async throws -> T {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tern-store-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = folder + "/tern.sqlite"
    let store = try SQLiteStore(path: path)
    do {
        let result = try await body(store, path)
        try await store.close()
        return result
    } catch {
        try? await store.close()
        throw error
    }
}

func sampleMessage(recipients: Int = 2, at date: Date = Date(), header: String? = nil) -> QueuedMessage {
    let id = MessageID.random()
    return QueuedMessage(
        id: id, messageIDHeader: header ?? "<\(id)@test>", mailFrom: "sender@example.com",
        recipients: (0..<recipients).map { QueuedRecipient(id: .random(), address: "r\($0)@example.net") },
        content: Array("Subject: hi\r\n\r\nbody\r\n".utf8), credential: "app", clientIP: "127.0.0.1",
        receivedAt: date, eightBitMIME: false, smtpUTF8: false)
}

/// What only SQLite has: its durability settings, checkpoints and upgrades of earlier files.
/// Everything a store does is in the store conformance suite (StoreConformanceTests),
/// which runs on SQLite too.
@Suite struct SQLiteStoreTests {
    /// A 250 is only as safe as the commit under it: the writer must sync the log before a
    /// commit returns (`FULL`), not only at checkpoints (`NORMAL`, GRDB's default for WAL).
    @Test func commitsSyncTheLogBeforeReturning() async throws {
        try await withTemporaryStore { store, _ in
            let (journal, synchronous) = try await store.writer.writeWithoutTransaction { db in
                (try String.fetchOne(db, sql: "PRAGMA journal_mode"), try Int.fetchOne(db, sql: "PRAGMA synchronous"))
            }
            #expect(journal == "wal")
            #expect(synchronous == 2, "PRAGMA synchronous on the writer: 2 is FULL, 1 is NORMAL")
        }
    }

    @Test func dataSurvivesReopening() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tern-store-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let message = sampleMessage()
        let store = try SQLiteStore(path: folder + "/tern.sqlite")
        try await store.commitAndWait([message])
        try await store.close()
        let reopened = try SQLiteStore(path: folder + "/tern.sqlite")
        #expect(try await reopened.message(message.id, scope: .all)?.content == message.content)
        try await reopened.close()
    }

}

@Suite struct WALCheckpointTests {
    private func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    /// About 12 MB of commits stay far below the commit-time checkpoint threshold (64 MB of
    /// log): the pages reach the database file only through the background checkpointer.
    @Test func committedPagesReachTheDatabaseFileInTheBackground() async throws {
        try await withTemporaryStore { store, path in
            #expect(SQLiteStore.walAutocheckpointPages * 4096 > 50_000_000)
            var messages: [QueuedMessage] = []
            for _ in 0..<2_000 {
                var message = sampleMessage(recipients: 1)
                message.content = Array(repeating: UInt8(ascii: "x"), count: 6_000)
                messages.append(message)
            }
            for group in stride(from: 0, to: messages.count, by: 100) {
                try await store.commitAndWait(Array(messages[group..<(group + 100)]))
            }
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline, size(path) < 10_000_000 {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(size(path) >= 10_000_000, "database file \(size(path)) octets, log \(size(path + "-wal")) octets")
            #expect(try await store.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM messages") } == 2_000)
        }
    }
}

@Suite struct SQLiteMigrationTests {
    /// A store written by the v3 schema is upgraded in place: its events keep their ids and
    /// new ones follow them; the queue listing's old index is gone.
    @Test func v3StoreUpgradesInPlace() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tern-migrate-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/tern.sqlite"
        let old = sampleMessage(recipients: 2)
        do {
            let queue = try DatabaseQueue(path: path)
            try SQLiteStore.migrator.migrate(queue, upTo: "v3: claim indexes for new mail and retries")
            try await queue.write { db in
                try db.execute(
                    sql: "INSERT INTO messages (id, message_id_header, mail_from, size, content, received_at) VALUES (?, '<m@x>', '', 1, x'00', 0)",
                    arguments: [old.id.rawValue])
                for (position, recipient) in old.recipients.enumerated() {
                    try db.execute(
                        sql: "INSERT INTO recipients (id, message_id, position, address, state, next_attempt_at) VALUES (?, ?, ?, ?, 'queued', 0)",
                        arguments: [recipient.id.rawValue, old.id.rawValue, position, recipient.address])
                    try db.execute(
                        sql: "INSERT INTO events (id, type, message_id, recipient_id, at) VALUES (?, 'outbound', ?, ?, 0)",
                        arguments: [40 + position, old.id.rawValue, recipient.id.rawValue])
                }
            }
            try queue.close()
        }

        let store = try SQLiteStore(path: path)
        let new = sampleMessage(recipients: 1)
        try await store.commitAndWait([new])
        let (ids, indexes, sequences) = try await store.writer.read { db in
            (
                try Int64.fetchAll(db, sql: "SELECT id FROM events ORDER BY id"),
                try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('recipients', 'events') ORDER BY name"),
                try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_sequence WHERE name = 'events'")
            )
        }
        #expect(ids == [40, 41, 42])
        #expect(!indexes.contains("recipients_due"))
        #expect(indexes.contains("events_at") && indexes.contains("events_recipient"))
        #expect(sequences == 0)
        #expect(try await store.counters(in: .allTime, scope: .all).outbound == 3)
        #expect(try await store.queueEntries(limit: 10, scope: .all).count == 3)
        try await store.close()
    }

    /// A v7 store (the last schema without nodes) holding a queued message with a lease and
    /// an inbound message is upgraded to v8 in place: the rows are intact and the new tables work.
    @Test func v7StoreUpgradesToV8InPlace() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tern-migrate-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/tern.sqlite"
        let now = Date()
        let message = sampleMessage(recipients: 3)
        let inboundID = InboundMessageID.next()
        do {
            let queue = try DatabaseQueue(path: path)
            try SQLiteStore.migrator.migrate(queue, upTo: "v7: sending domains, DKIM keys, the domains a credential may send for")
            try await queue.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO messages (id, message_id_header, mail_from, size, content, received_at, from_domain)
                        VALUES (?, '<m@x>', '', 1, x'00', 0, 'example.com')
                        """,
                    arguments: [message.id.rawValue])
                for (position, recipient) in message.recipients.enumerated() {
                    // The first two leased by node a until an hour from now.
                    try db.execute(
                        sql: """
                            INSERT INTO recipients (id, message_id, position, address, state, next_attempt_at, lease_node, lease_until)
                            VALUES (?, ?, ?, ?, 'queued', 0, ?, ?)
                            """,
                        arguments: [
                            recipient.id.rawValue, message.id.rawValue, position, recipient.address,
                            position < 2 ? "a" : nil, position < 2 ? now.addingTimeInterval(3600).millisecondsSince1970 : nil,
                        ])
                    try db.execute(
                        sql: "INSERT INTO events (type, message_id, recipient_id, at) VALUES ('outbound', ?, ?, 0)",
                        arguments: [message.id.rawValue, recipient.id.rawValue])
                }
                try db.execute(
                    sql: """
                        INSERT INTO inbound_messages (id, received_at, helo, mail_from, recipients, purpose, size, content, kind,
                                                      webhook_url, webhook_state, webhook_next_at)
                        VALUES (?, 0, 'mx.example.net', '', 'help@support.example', 'inbound', 1, x'00', 'inbound',
                                'http://127.0.0.1:9/hook', 'pending', 0)
                        """,
                    arguments: [inboundID.rawValue])
            }
            try queue.close()
        }

        let store = try SQLiteStore(path: path)
        let applied = try await store.writer.read { db in try SQLiteStore.migrator.appliedIdentifiers(db) }
        #expect(applied.contains("v7: sending domains, DKIM keys, the domains a credential may send for"))
        #expect(applied.contains("v8: nodes, node numbers, shared secrets"))
        #expect(try await store.writer.read { db in try SQLiteStore.migrator.hasCompletedMigrations(db) })
        let stored = try #require(try await store.message(message.id, scope: .all))
        #expect(stored.recipients.map(\.id) == message.recipients.map(\.id))
        #expect(stored.content == [0])
        #expect(try await store.counters(in: .allTime, scope: .all).outbound == 3)

        try await store.heartbeat(NodeRecord(id: "a", hostname: "a.example", startedAt: now, heartbeatAt: now, state: .running, detail: ""))
        let nodes = try await store.nodes(deliveriesSince: Date(timeIntervalSince1970: 0))
        #expect(nodes.map(\.node.id) == ["a"])
        #expect(nodes.map(\.leasedRecipients) == [2])
        #expect(try await store.sharedSecret(named: "tracking", proposed: [1, 2]) == [1, 2])
        #expect(try await store.claimDueWebhooks(now: now, limit: 10, leaseUntil: now.addingTimeInterval(60)).map(\.id) == [inboundID])
        #expect(try await store.claimDueRecipients(now: now, limit: 10, node: "b", leaseUntil: now).count == 1)
        try await store.close()
    }

    /// A v8 store (the last schema without tenants) upgrades in place: everything it holds
    /// belongs to the tenant `default`, but a report that matched nothing, which belongs to
    /// no tenant; suppressions become the default tenant's.
    @Test func v8StoreUpgradesToTenantsInPlace() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tern-migrate-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/tern.sqlite"
        let message = sampleMessage(recipients: 2)
        let inboundID = InboundMessageID.next()
        let reportID = InboundMessageID.next()
        do {
            let queue = try DatabaseQueue(path: path)
            try SQLiteStore.migrator.migrate(queue, upTo: "v8: nodes, node numbers, shared secrets")
            try await queue.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO messages (id, message_id_header, mail_from, size, content, received_at, from_domain)
                        VALUES (?, '<m@x>', '', 1, x'00', 0, 'shop.example')
                        """,
                    arguments: [message.id.rawValue])
                for (position, recipient) in message.recipients.enumerated() {
                    try db.execute(
                        sql: "INSERT INTO recipients (id, message_id, position, address, state, next_attempt_at) VALUES (?, ?, ?, ?, 'queued', 0)",
                        arguments: [recipient.id.rawValue, message.id.rawValue, position, recipient.address])
                    try db.execute(
                        sql: "INSERT INTO events (type, message_id, recipient_id, at) VALUES ('outbound', ?, ?, 0)",
                        arguments: [message.id.rawValue, recipient.id.rawValue])
                }
                try db.execute(sql: "INSERT INTO events (type, at) VALUES ('unmatched_report', 0)")
                try db.execute(sql: "INSERT INTO events (type, at) VALUES ('inbound', 0)")
                for (id, purpose) in [(inboundID, "inbound"), (reportID, "report")] {
                    try db.execute(
                        sql: """
                            INSERT INTO inbound_messages (id, received_at, helo, mail_from, recipients, purpose, size, content)
                            VALUES (?, 0, 'mx.example.net', '', 'help@support.example', ?, 1, x'00')
                            """,
                        arguments: [id.rawValue, purpose])
                }
                try db.execute(
                    sql: "INSERT INTO credentials (name, password_hash, api_key_id, api_key_hash, created_at) VALUES ('app', 'x', 'AAAAAAAAAAAA', 'y', 0)")
                try db.execute(sql: "INSERT INTO domains (name, created_at) VALUES ('shop.example', 0)")
                try db.execute(
                    sql: "INSERT INTO suppressions (address, domain, reason, created_at) VALUES ('gone@example.net', '', 'hard bounce', 0)")
            }
            try queue.close()
        }

        let store = try SQLiteStore(path: path)
        #expect(try await store.tenants().map(\.name) == [Tenant.defaultName])
        #expect(try await store.message(message.id, scope: .tenant(.default))?.tenant == .default)
        let own = try await store.counters(in: .allTime, scope: .tenant(.default))
        #expect(own.outbound == 2 && own.inbound == 1 && own.unmatchedReports == 0)
        #expect(try await store.counters(in: .allTime, scope: .all).unmatchedReports == 1)
        #expect(try await store.inboundMessages(limit: 10, scope: .tenant(.default)).map(\.id) == [inboundID.description])
        #expect(Set(try await store.inboundMessages(limit: 10, scope: .all).map(\.id)) == [inboundID.description, reportID.description])
        #expect(try await store.credential(named: "app")?.scope == .tenant(.default))
        #expect(try await store.domain(named: "shop.example")?.tenant == .default)
        #expect(try await store.suppressions(scope: .all).map(\.tenant) == [.default])
        // A new tenant gets an id of its own, and the old suppression does not stop its mail.
        let b = try await store.addTenant(named: "b", limits: .none, createdAt: Date())
        #expect(b.id != .default)
        #expect(try await store.suppressions(scope: .tenant(b.id)).isEmpty)
        try await store.close()
    }
}
