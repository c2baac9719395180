import Foundation
import PostgresNIO
import Testing
import TernCore
@testable import TernStorePostgres

/// A 250 is only as safe as the commit under it: PostgreSQL must flush the commit's WAL
/// before it returns (`synchronous_commit` on, or stricter), on every connection the store's
/// pool opens, inside the transactions the store commits with. (The test server runs with
/// `fsync=off` to spare the disk; `synchronous_commit` is what the store itself controls.)
@Suite(.enabled(if: PostgresTestServer.isConfigured, "needs TERN_TEST_POSTGRES_URL (scripts/postgres.sh start)"))
struct PostgresDurabilityTests {
    /// Every setting but `off` waits for the local WAL flush.
    static let waitsForTheLog: Set<String> = ["on", "local", "remote_write", "remote_apply"]

    @Test func everyConnectionCommitsSynchronously() async throws {
        try await PostgresTestServer.withStore { store in
            // As many transactions at once as the test pool has connections, each held for a
            // moment, so that the pool opens all of them.
            let answers = try await withThrowingTaskGroup(of: (Int32, String).self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await store.transaction { connection in
                            let rows = try await connection.query(
                                "SELECT pg_backend_pid(), current_setting('synchronous_commit') FROM pg_sleep(0.2)",
                                logger: store.logger)
                            var answer: (Int32, String)?
                            for try await row in rows.decode((Int32, String).self) { answer = row }
                            return try #require(answer)
                        }
                    }
                }
                var answers: [(Int32, String)] = []
                for try await answer in group { answers.append(answer) }
                return answers
            }
            #expect(answers.count == 4)
            #expect(Set(answers.map(\.0)).count > 1, "the transactions shared one connection: \(answers)")
            for (backend, setting) in answers {
                #expect(Self.waitsForTheLog.contains(setting), "synchronous_commit = \(setting) on backend \(backend)")
            }
        }
    }
}
