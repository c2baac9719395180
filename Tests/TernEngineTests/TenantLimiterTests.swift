import Foundation
import Logging
import Synchronization
import Testing
import TernCore
import TernStoreSQLite
@testable import TernEngine

/// A clock the test moves.
private final class SettableDate: Sendable {
    private let now: Mutex<Date>
    init(_ start: Date) { now = Mutex(start) }
    func callAsFunction() -> Date { now.withLock { $0 } }
    func advance(to date: Date) { now.withLock { $0 = date } }
}

@Suite struct TenantLimiterTests {
    /// 2027-01-15 08:00:00 UTC, the start of an hour.
    let hour = Date(timeIntervalSince1970: 1_800_000_000)

    private func tenantMessage(_ tenant: TenantID, recipients: Int, at date: Date) -> QueuedMessage {
        QueuedMessage(
            id: .random(), messageIDHeader: "<\(UUID())@t>", mailFrom: "a@shop.example",
            recipients: (0..<recipients).map { QueuedRecipient(id: .random(), address: "r\($0)@example.net") },
            content: Array("Subject: x\r\n\r\nx\r\n".utf8), credential: "app", clientIP: nil, receivedAt: date,
            eightBitMIME: false, smtpUTF8: false, tenant: tenant)
    }

    private func withLimiter(
        _ body: @escaping @Sendable (SQLiteStore, TenantLimiter, SettableDate, String) async throws -> Void
    ) async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: path)
        let clock = SettableDate(hour.addingTimeInterval(600))
        let limiter = TenantLimiter(store: store, clock: { clock() }, logger: Logger(label: "test"))
        do {
            try await body(store, limiter, clock, path)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    /// Commits as intake does: the store, then the limiter's count.
    private func commit(_ messages: [QueuedMessage], _ store: SQLiteStore, _ limiter: TenantLimiter) async throws {
        try await store.commitAndWait(messages)
        limiter.committed(messages)
    }

    @Test func theHoursLimitRefusesAtMailAndRcptUntilTheHourEnds() async throws {
        try await withLimiter { store, limiter, clock, _ in
            let acme = try await store.addTenant(named: "acme", limits: TenantLimits(maxMessagesPerHour: 3), createdAt: Date())
            try await limiter.refresh()
            #expect(limiter.refusalAtMail(of: acme.id) == nil)
            try await commit([tenantMessage(acme.id, recipients: 2, at: clock())], store, limiter)
            // One recipient left this hour: the first RCPT is taken, a second would pass the limit.
            #expect(limiter.refusalAtMail(of: acme.id) == nil)
            #expect(limiter.refusalAtRecipient(of: acme.id, accepted: 0) == nil)
            let atRecipient = try #require(limiter.refusalAtRecipient(of: acme.id, accepted: 1))
            #expect(atRecipient.code == 451 && atRecipient.enhancedStatusCode?.description == "4.7.1")
            try await commit([tenantMessage(acme.id, recipients: 1, at: clock())], store, limiter)
            let atMail = try #require(limiter.refusalAtMail(of: acme.id))
            #expect(atMail.code == 451 && atMail.enhancedStatusCode?.description == "4.7.1")
            #expect(atMail.lines.joined().contains("max_messages_per_hour (3)"))
            #expect(atMail.lines.joined().contains("2027-01-15T09:00:00Z"))
            // Other tenants are not held back.
            #expect(limiter.refusalAtMail(of: .default) == nil)
            // The refusals are stored at the next refresh and counted as throttled.
            try await limiter.refresh()
            #expect(try await store.counters(in: .allTime, scope: .tenant(acme.id)).throttled == 2)
            // The next hour starts afresh.
            clock.advance(to: hour.addingTimeInterval(3_600))
            #expect(limiter.refusalAtMail(of: acme.id) == nil)
            try await limiter.refresh()
            #expect(limiter.refusalAtMail(of: acme.id) == nil)
        }
    }

    @Test func theDaysLimitCountsEveryHourOfTheDay() async throws {
        try await withLimiter { store, limiter, clock, _ in
            let acme = try await store.addTenant(named: "acme", limits: TenantLimits(maxMessagesPerDay: 4), createdAt: Date())
            try await limiter.refresh()
            try await commit([tenantMessage(acme.id, recipients: 2, at: clock())], store, limiter)
            clock.advance(to: hour.addingTimeInterval(3 * 3_600))
            try await commit([tenantMessage(acme.id, recipients: 2, at: clock())], store, limiter)
            try await limiter.refresh()
            let refusal = try #require(limiter.refusalAtMail(of: acme.id))
            #expect(refusal.lines.joined().contains("max_messages_per_day (4)") && refusal.lines.joined().contains("2027-01-16T00:00:00Z"))
            // 2027-01-16 00:00:00 UTC.
            clock.advance(to: Date(timeIntervalSince1970: 1_800_057_600))
            #expect(limiter.refusalAtMail(of: acme.id) == nil)
        }
    }

    @Test func recipientsPerMessageAre452AsRFC5321Says() async throws {
        try await withLimiter { store, limiter, _, _ in
            let acme = try await store.addTenant(named: "acme", limits: TenantLimits(maxRecipientsPerMessage: 2), createdAt: Date())
            try await limiter.refresh()
            #expect(limiter.refusalAtRecipient(of: acme.id, accepted: 1) == nil)
            let refusal = try #require(limiter.refusalAtRecipient(of: acme.id, accepted: 2))
            #expect(refusal.code == 452 && refusal.enhancedStatusCode?.description == "4.5.3")
        }
    }

    /// Another node's commits (another connection to the same database) and a limit changed
    /// with `tern tenant set` count from the next refresh.
    @Test func otherNodesCommitsAndNewLimitsCountAfterARefresh() async throws {
        try await withLimiter { store, limiter, clock, path in
            let acme = try await store.addTenant(named: "acme", limits: .none, createdAt: Date())
            try await limiter.refresh()
            let otherNode = try SQLiteStore(path: path)
            try await otherNode.commitAndWait([tenantMessage(acme.id, recipients: 5, at: clock())])
            try await otherNode.setLimits(TenantLimits(maxMessagesPerHour: 5), of: acme.id)
            try await otherNode.close()
            #expect(limiter.refusalAtMail(of: acme.id) == nil)
            try await limiter.refresh()
            #expect(limiter.refusalAtMail(of: acme.id)?.code == 451)
        }
    }
}
