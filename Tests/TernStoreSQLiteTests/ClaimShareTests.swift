import Foundation
import GRDB
import Testing
import TernCore
@testable import TernStoreSQLite

/// How SQLite reads a claim's two shares (new mail, retries); what the claims return is in
/// the store conformance suite (StoreConformanceTests), which runs on SQLite too.
@Suite struct ClaimShareTests {
    @Test(arguments: [SQLiteStore.ClaimShare.new, .retry])
    func eachShareIsAnIndexRangeRead(_ share: SQLiteStore.ClaimShare) async throws {
        try await withTemporaryStore { store, _ in
            let index = share == .new ? "recipients_new" : "recipients_retry"
            let plan = try await store.queryPlan(share)
            #expect(plan.contains("SEARCH r USING INDEX \(index) (next_attempt_at<?)"))
            #expect(plan.contains("SEARCH m USING INTEGER PRIMARY KEY (rowid=?)"))
            #expect(plan.count == 2, "no sort, no scan: \(plan)")
        }
    }
}

extension SQLiteStore {
    /// `EXPLAIN QUERY PLAN` of a share's query, one line per step.
    func queryPlan(_ share: ClaimShare) async throws -> [String] {
        try await writer.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + share.sql, arguments: [0, 0, 1]).map { $0["detail"] }
        }
    }
}
