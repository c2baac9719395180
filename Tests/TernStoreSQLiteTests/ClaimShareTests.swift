import Foundation
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
