import Foundation
import PostgresNIO
import Testing
import TernCore
import TernStorePostgres
import TernStoreSQLite

/// Makes a fresh, empty store for one test case and closes it afterwards.
struct StoreFactory: Sendable, CustomTestStringConvertible {
    var name: String
    /// `count` stores on one fresh database, as `count` nodes see it: their own pools on
    /// PostgreSQL, their own connections to one file on SQLite.
    var withStores: @Sendable (_ count: Int, _ body: @escaping @Sendable ([any Store]) async throws -> Void) async throws -> Void

    var testDescription: String { name }

    func withStore(_ body: @Sendable @escaping (any Store) async throws -> Void) async throws {
        try await withStores(1) { stores in
            for store in stores { try await body(store) }
        }
    }

    static let sqlite = StoreFactory(name: "SQLite") { count, body in
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tern-store-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var stores: [SQLiteStore] = []
        do {
            for _ in 0..<count { stores.append(try SQLiteStore(path: folder + "/tern.sqlite")) }
            try await body(stores)
            for store in stores { try await store.close() }
        } catch {
            for store in stores { try? await store.close() }
            throw error
        }
    }

    static let postgres = StoreFactory(name: "PostgreSQL") { count, body in
        do {
            try await PostgresTestServer.withStores(count) { stores in try await body(stores) }
        } catch let error as PSQLError {
            // postgres-nio hides the server's message from `description`; a failing test needs it.
            throw DescribedPostgresError(description: String(reflecting: error))
        }
    }

    /// SQLite always; PostgreSQL when `TERN_TEST_POSTGRES_URL` names a server.
    static var all: [StoreFactory] {
        PostgresTestServer.isConfigured ? [.sqlite, .postgres] : [.sqlite]
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

/// A PostgreSQL error with the server's message, for the test report.
struct DescribedPostgresError: Error, CustomStringConvertible {
    var description: String
}

/// One suite, every store: what `Store` promises, whichever database keeps it.
@Suite struct StoreConformanceTests {
    @Test(arguments: StoreFactory.all)
    func commitStoresMessageRecipientsAndOutboundEvents(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let first = sampleMessage(recipients: 2)
            let second = sampleMessage(recipients: 3)
            try await store.commitAndWait([first, second])
            let stored = try #require(try await store.message(first.id, scope: .all))
            #expect(stored.content == first.content)
            #expect(stored.mailFrom == "sender@example.com")
            #expect(stored.messageIDHeader == first.messageIDHeader)
            #expect(stored.credential == "app")
            #expect(stored.recipients.map(\.address) == ["r0@example.net", "r1@example.net"])
            #expect(stored.recipients.map(\.id) == first.recipients.map(\.id))
            #expect(stored.recipients.allSatisfy { $0.state == .queued })
            #expect(try await store.message(second.id, scope: .all)?.recipients.count == 3)
            #expect(try await store.counters(in: .allTime, scope: .all) == Counters(outbound: 5))
            #expect(try await store.message(.random(), scope: .all) == nil)
        }
    }

    /// Content is octets, not text: every byte value (NUL and 8-bit included) comes back as
    /// written, and the time keeps its milliseconds.
    @Test(arguments: StoreFactory.all)
    func contentAndTimeRoundTrip(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let at = Date(millisecondsSince1970: 1_800_000_000_123)
            var message = sampleMessage(recipients: 1, at: at)
            message.content = (0..<4).flatMap { _ in Array(0...UInt8.max) }
            message.mailFrom = ""
            message.credential = nil
            try await store.commitAndWait([message])
            let stored = try #require(try await store.message(message.id, scope: .all))
            #expect(stored.content == message.content)
            #expect(stored.mailFrom == "")
            #expect(stored.credential == nil)
            #expect(stored.receivedAt.millisecondsSince1970 == 1_800_000_000_123)
        }
    }

    @Test(arguments: StoreFactory.all)
    func aFailedGroupCommitsNothing(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let message = sampleMessage()
            try await store.commitAndWait([message])
            // The same id again violates the primary key: the whole group is rolled back.
            let fresh = sampleMessage()
            await #expect(throws: (any Error).self) { try await store.commitAndWait([fresh, message]) }
            #expect(try await store.message(fresh.id, scope: .all) == nil)
            #expect(try await store.counters(in: .allTime, scope: .all).outbound == 2)
        }
    }

    @Test(arguments: StoreFactory.all)
    func anEmptyCommitWritesNothing(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            try await store.commitAndWait([])
            let noRecipients = sampleMessage(recipients: 0)
            try await store.commitAndWait([noRecipients])
            #expect(try await store.message(noRecipients.id, scope: .all) != nil)
            #expect(try await store.counters(in: .allTime, scope: .all) == Counters())
        }
    }

    @Test(arguments: StoreFactory.all)
    func countersHonourTheRange(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let base = Date(timeIntervalSince1970: 1_800_000_000)
            try await store.commitAndWait([
                sampleMessage(recipients: 1, at: base),
                sampleMessage(recipients: 2, at: base.addingTimeInterval(3600)),
                sampleMessage(recipients: 4, at: base.addingTimeInterval(7200)),
            ])
            #expect(try await store.counters(in: .allTime, scope: .all).outbound == 7)
            #expect(try await store.counters(in: TimeRange(from: base.addingTimeInterval(1)), scope: .all).outbound == 6)
            #expect(try await store.counters(in: TimeRange(to: base.addingTimeInterval(3600)), scope: .all).outbound == 1)
            #expect(try await store.counters(in: TimeRange(from: base, to: base.addingTimeInterval(3601)), scope: .all).outbound == 3)
            #expect(try await store.counters(in: TimeRange(from: base.addingTimeInterval(9000)), scope: .all) == Counters())
        }
    }

    @Test(arguments: StoreFactory.all)
    func credentials(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let hasher = SecretHasher(rounds: 1 << 10)
            let (credential, _) = try Credential.issue(
                name: "app", networks: [try #require(IPNetwork("127.0.0.0/8")), try #require(IPNetwork("::1"))],
                domains: ["Example.com", "mail.example.org"], hasher: hasher,
                now: Date(millisecondsSince1970: 1_800_000_000_456))
            try await store.addCredential(credential)
            await #expect(throws: StoreError.self) { try await store.addCredential(credential) }
            let loaded = try #require(try await store.credential(named: "app"))
            #expect(loaded == credential)
            #expect(loaded.domains == ["example.com", "mail.example.org"])
            let (other, _) = try Credential.issue(name: "billing", networks: [], hasher: hasher)
            try await store.addCredential(other)
            #expect(try await store.credentials().map(\.name) == ["app", "billing"])
            #expect(try await store.removeCredential(named: "app"))
            #expect(!(try await store.removeCredential(named: "app")))
            #expect(try await store.credential(named: "app") == nil)
            #expect(try await store.credentials().map(\.name) == ["billing"])
        }
    }
}
