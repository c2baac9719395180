import Foundation
import Logging
import TernCore
import TernStorePostgres
import TernStoreSQLite

/// The configured store, open for the length of `body`: SQLite in the data folder (the
/// default), or the PostgreSQL database at `store.url`, whose schema is brought up to date
/// first (under an advisory lock, so nodes starting together take turns). The store is
/// closed when `body` returns or throws, after its pending writes.
func withStore<Result>(
    _ configuration: TernConfiguration, logger: Logger = Logger(label: "tern.store"),
    _ body: (any Store) async throws -> Result
) async throws -> Result {
    guard let text = configuration.store.url else {
        try DataFolder(path: configuration.dataDir).create()
        let store = try SQLiteStore(path: configuration.databasePath)
        let result: Result
        do {
            result = try await body(store)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
        return result
    }
    let url = try PostgresStoreURL(parsing: text)
    let store = PostgresStore(
        url: url, maximumConnections: configuration.store.maxConnections,
        logger: logger)
    return try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
        // The pool's connections live as long as this task.
        group.addTask { await store.run() }
        await store.waitUntilRunning()
        do {
            try await migrate(store, url: url, timeout: configuration.store.connectTimeout, logger: logger)
            let result = try await body(store)
            try await store.close()
            try await group.waitForAll()
            return result
        } catch {
            try? await store.close()
            throw error
        }
    }
}

/// Applies the PostgreSQL store's migrations, failing with a clear error when the server
/// cannot be reached in time (the pool would otherwise keep trying).
private func migrate(_ store: PostgresStore, url: PostgresStoreURL, timeout: Int, logger: Logger) async throws {
    try await withThrowingTaskGroup(of: [String]?.self) { group in
        group.addTask { try await store.migrate() }
        group.addTask {
            try await Task.sleep(for: .seconds(timeout))
            return nil
        }
        defer { group.cancelAll() }
        guard let applied = try await group.next() ?? nil else {
            throw StoreError(
                .unavailable,
                "cannot reach PostgreSQL at \(url.host):\(url.port) (database \(url.database)) within \(timeout) s (store.connect_timeout)")
        }
        for name in applied { logger.notice("database migrated: \(name)") }
    }
}
