import Foundation
import Logging
import PostgresNIO
import Testing
import TernStorePostgres

/// The PostgreSQL server the tests use: `TERN_TEST_POSTGRES_URL` (from `scripts/postgres.sh start`).
/// Without it the PostgreSQL cases are skipped on a developer's machine, and fail on CI
/// (`CI` set), so that CI cannot pass without having run them.
enum PostgresTestServer {
    static let environmentVariable = "TERN_TEST_POSTGRES_URL"

    static var urlText: String? {
        guard let text = ProcessInfo.processInfo.environment[environmentVariable], !text.isEmpty else { return nil }
        return text
    }

    static var isConfigured: Bool { urlText != nil }

    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"].map { !$0.isEmpty } ?? false }

    static func url() throws -> PostgresStoreURL {
        let text = try #require(urlText, "\(environmentVariable) is not set: run `export \(environmentVariable)=$(scripts/postgres.sh start)`")
        return try PostgresStoreURL(parsing: text)
    }

    static let logger: Logger = {
        var logger = Logger(label: "tern.test.postgres")
        logger.logLevel = .warning
        return logger
    }()

    /// Runs `body` against a database of its own (created, and dropped afterwards), so tests
    /// run in parallel without seeing each other's rows.
    static func withDatabase<T: Sendable>(_ body: @Sendable (PostgresStoreURL) async throws -> T) async throws -> T {
        let base = try url()
        // A name made here from random hex digits: an identifier cannot be a bound parameter.
        let name = "tern_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try await withClient(base) { client in
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        }
        var url = base
        url.database = name
        let result: T
        do {
            result = try await body(url)
        } catch {
            await dropDatabase(name, base: base)
            throw error
        }
        await dropDatabase(name, base: base)
        return result
    }

    /// Drops a test's database: clean-up, which never fails the test. A backend of another
    /// role still on the database (FORCE may not end it: SQLSTATE 42501), or one that is
    /// going away (55006), is waited for a moment; after that the database is left to the
    /// throwaway server.
    private static func dropDatabase(_ name: String, base: PostgresStoreURL) async {
        for attempt in 0..<5 {
            do {
                try await withClient(base) { client in
                    try await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: logger)
                }
                return
            } catch {
                logger.warning("could not drop \(name) (attempt \(attempt + 1)): \(String(reflecting: error))")
                try? await Task.sleep(for: .milliseconds(200 * (attempt + 1)))
            }
        }
    }

    /// A migrated store on a fresh database, running for the length of `body`.
    static func withStore<T: Sendable>(_ body: @Sendable (PostgresStore) async throws -> T) async throws -> T {
        try await withDatabase { url in
            try await withRunningStore(url: url) { store in
                try await store.migrate()
                return try await body(store)
            }
        }
    }

    /// `count` migrated stores (each its own pool, as `count` nodes) on one fresh database,
    /// running for the length of `body`.
    static func withStores<T: Sendable>(_ count: Int, _ body: @Sendable @escaping ([PostgresStore]) async throws -> T) async throws -> T {
        try await withDatabase { url in
            try await withRunningStores(url: url, count: count, opened: []) { stores in
                if let first = stores.first { try await first.migrate() }
                return try await body(stores)
            }
        }
    }

    private static func withRunningStores<T: Sendable>(
        url: PostgresStoreURL, count: Int, opened: [PostgresStore], _ body: @Sendable @escaping ([PostgresStore]) async throws -> T
    ) async throws -> T {
        guard opened.count < count else { return try await body(opened) }
        return try await withRunningStore(url: url) { store in
            try await withRunningStores(url: url, count: count, opened: opened + [store], body)
        }
    }

    /// A store on `url`, not migrated, its pool running for the length of `body`.
    static func withRunningStore<T: Sendable>(
        url: PostgresStoreURL, _ body: @Sendable (PostgresStore) async throws -> T
    ) async throws -> T {
        let store = PostgresStore(url: url, maximumConnections: 4, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            do {
                let result = try await body(store)
                try await store.close()
                try await group.waitForAll()
                return result
            } catch {
                try? await store.close()
                group.cancelAll()
                throw error
            }
        }
    }

    private static func withClient(_ url: PostgresStoreURL, _ body: @Sendable (PostgresClient) async throws -> Void) async throws {
        let client = PostgresClient(
            configuration: .init(
                host: url.host, port: url.port, username: url.username, password: url.password, database: url.database,
                tls: .disable),
            backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await body(client)
        }
    }
}

@Suite struct PostgresTestServerTests {
    /// On CI the PostgreSQL cases must run: a missing URL is a failure, not a skip.
    @Test func ciProvidesAServer() {
        if PostgresTestServer.isCI {
            #expect(
                PostgresTestServer.isConfigured,
                "CI is set but \(PostgresTestServer.environmentVariable) is not: start a server with scripts/postgres.sh start")
        }
    }
}
