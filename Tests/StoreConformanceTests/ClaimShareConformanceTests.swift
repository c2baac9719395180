import Foundation
import Testing
import TernCore

/// A claim takes new recipients and retries as two shares, so a backlog of one kind never
/// keeps the other out.
/// `ClaimShareTests` of TernStoreSQLite (but the SQLite query plans), on every store.
@Suite struct ClaimShareConformanceTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    /// Commits `new` recipients queued at `t0 + 10` and `retries` recipients queued at `t0`,
    /// deferred once and due again at `t0 + 1`: every retry is due before any new one.
    func queue(new: Int, retries: Int, in store: any Store) async throws -> (new: Set<RecipientID>, retries: Set<RecipientID>) {
        var retryIDs: Set<RecipientID> = []
        if retries > 0 {
            let backlog = sampleMessage(recipients: retries, at: t0)
            try await store.commitAndWait([backlog])
            try await store.record(backlog.recipients.map {
                RecipientOutcome(recipientID: $0.id, messageID: backlog.id, kind: .deferred(nextAttemptAt: t0.addingTimeInterval(1)), at: t0)
            })
            retryIDs = Set(backlog.recipients.map(\.id))
        }
        let fresh = (0..<new).map { _ in sampleMessage(recipients: 1, at: t0.addingTimeInterval(10)) }
        try await store.commitAndWait(fresh)
        return (Set(fresh.flatMap { $0.recipients.map(\.id) }), retryIDs)
    }

    func claim(_ store: any Store, limit: Int, node: String = "a") async throws -> [DueRecipient] {
        let now = t0.addingTimeInterval(20)
        return try await store.claimDueRecipients(now: now, limit: limit, node: node, leaseUntil: now.addingTimeInterval(60))
    }

    @Test(arguments: StoreFactory.all, [
        // newLimit, retryLimit → new, retries claimed (20 of each due)
        (0, 5, 0, 5),
        (3, 0, 3, 0),
        (4, 6, 4, 6),
        (0, 0, 0, 0),
        (30, 30, 20, 20),
    ])
    func explicitSharesTakeNoMoreOfAKindThanAsked(_ factory: StoreFactory, _ shares: (Int, Int, Int, Int)) async throws {
        let (newLimit, retryLimit, newClaimed, retriesClaimed) = shares
        try await factory.withStore { store in
            let queued = try await queue(new: 20, retries: 20, in: store)
            let now = t0.addingTimeInterval(20)
            let claimed = try await store.claimDueRecipients(
                now: now, newLimit: newLimit, retryLimit: retryLimit, node: "a", leaseUntil: now.addingTimeInterval(60))
            #expect(claimed.filter { queued.new.contains($0.id) }.count == newClaimed)
            #expect(claimed.filter { queued.retries.contains($0.id) }.count == retriesClaimed)
            // Leased: a second claim does not take them again.
            let again = try await store.claimDueRecipients(
                now: now, newLimit: 40, retryLimit: 40, node: "b", leaseUntil: now.addingTimeInterval(60))
            #expect(Set(again.map(\.id)).isDisjoint(with: claimed.map(\.id)))
            #expect(again.count + claimed.count == 40)
        }
    }

    @Test(arguments: StoreFactory.all)
    func newMailIsClaimedPastADueBacklog(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let queued = try await queue(new: 5, retries: 1000, in: store)
            let claimed = try await claim(store, limit: 10)
            #expect(Set(claimed.filter { $0.attempts == 0 }.map(\.id)) == queued.new)
            #expect(claimed.filter { $0.attempts > 0 }.count == 5)
            #expect(Set(claimed.map(\.id)).isSubset(of: queued.new.union(queued.retries)))
        }
    }

    @Test(arguments: StoreFactory.all, [
        // new, retries queued; limit → new, retries claimed
        (20, 20, 10, 5, 5),
        (20, 20, 7, 4, 3),
        (20, 20, 1, 1, 0),
        (3, 20, 10, 3, 7),
        (20, 3, 10, 7, 3),
        (0, 20, 10, 0, 10),
        (20, 0, 10, 10, 0),
        (2, 3, 10, 2, 3),
    ])
    func sharesOfTheLimit(_ factory: StoreFactory, _ shares: (Int, Int, Int, Int, Int)) async throws {
        let (new, retries, limit, newClaimed, retriesClaimed) = shares
        try await factory.withStore { store in
            let queued = try await queue(new: new, retries: retries, in: store)
            let claimed = try await claim(store, limit: limit)
            #expect(claimed.filter { queued.new.contains($0.id) }.count == newClaimed)
            #expect(claimed.filter { queued.retries.contains($0.id) }.count == retriesClaimed)
            #expect(Set(claimed.map(\.id)).count == claimed.count)
        }
    }

    @Test(arguments: StoreFactory.all)
    func eachShareSkipsLeasedRecipients(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let queued = try await queue(new: 10, retries: 10, in: store)
            let first = try await claim(store, limit: 8, node: "a")
            let second = try await claim(store, limit: 8, node: "b")
            let third = try await claim(store, limit: 8, node: "c")
            let all = first + second + third
            #expect([first.count, second.count, third.count] == [8, 8, 4] as [Int])
            #expect(Set(all.map(\.id)) == queued.new.union(queued.retries))
            #expect(try await claim(store, limit: 8, node: "d").isEmpty)
        }
    }

    @Test(arguments: StoreFactory.all)
    func retriesComeEarliestDueFirst(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let backlog = sampleMessage(recipients: 6, at: t0)
            try await store.commitAndWait([backlog])
            try await store.record(backlog.recipients.enumerated().map { index, recipient in
                RecipientOutcome(
                    recipientID: recipient.id, messageID: backlog.id,
                    kind: .deferred(nextAttemptAt: t0.addingTimeInterval(Double(6 - index))), at: t0)
            })
            let claimed = try await claim(store, limit: 3)
            #expect(Set(claimed.map(\.id)) == Set(backlog.recipients.suffix(3).map(\.id)))
        }
    }
}
