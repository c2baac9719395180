import Foundation
import Testing
import TernCore

/// `DeliveryStoreTests` of TernStoreSQLite, on every store.
@Suite struct DeliveryStoreConformanceTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test(arguments: StoreFactory.all)
    func claimsDueRecipientsOnceUntilTheLeaseExpires(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let message = sampleMessage(recipients: 3, at: t0)
            try await store.commitAndWait([message])
            let claimed = try await store.claimDueRecipients(now: t0, limit: 2, node: "a", leaseUntil: t0.addingTimeInterval(60))
            #expect(claimed.count == 2)
            #expect(claimed.allSatisfy { $0.messageID == message.id && $0.mailFrom == "sender@example.com" && $0.attempts == 0 })
            // Another node sees only the unclaimed one.
            let other = try await store.claimDueRecipients(now: t0, limit: 10, node: "b", leaseUntil: t0.addingTimeInterval(60))
            #expect(other.count == 1)
            #expect(Set(claimed.map(\.id) + other.map(\.id)) == Set(message.recipients.map(\.id)))
            #expect(try await store.claimDueRecipients(now: t0.addingTimeInterval(30), limit: 10, node: "b", leaseUntil: t0.addingTimeInterval(90)).isEmpty)
            // Node a died: after its lease expires, its recipients are claimable again.
            let again = try await store.claimDueRecipients(now: t0.addingTimeInterval(61), limit: 10, node: "b", leaseUntil: t0.addingTimeInterval(120))
            #expect(Set(again.map(\.id)) == Set(message.recipients.map(\.id)))
        }
    }

    @Test(arguments: StoreFactory.all)
    func leasesAreRenewedAndReleased(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let message = sampleMessage(recipients: 2, at: t0)
            try await store.commitAndWait([message])
            let claimed = try await store.claimDueRecipients(now: t0, limit: 10, node: "a", leaseUntil: t0.addingTimeInterval(60))
            #expect(claimed.count == 2)
            // Renewed by its holder: still held after the first expiry.
            try await store.renewLeases(claimed.map(\.id), node: "a", leaseUntil: t0.addingTimeInterval(600))
            // Another node's renewal changes nothing.
            try await store.renewLeases(claimed.map(\.id), node: "b", leaseUntil: t0.addingTimeInterval(6000))
            #expect(try await store.claimDueRecipients(now: t0.addingTimeInterval(300), limit: 10, node: "b", leaseUntil: t0.addingTimeInterval(900)).isEmpty)
            #expect(try await store.claimDueRecipients(now: t0.addingTimeInterval(601), limit: 10, node: "b", leaseUntil: t0.addingTimeInterval(900)).count == 2)
            // Released by its holder: claimable at once.
            try await store.releaseLeases([claimed[0].id], node: "b")
            #expect(try await store.claimDueRecipients(now: t0.addingTimeInterval(602), limit: 10, node: "c", leaseUntil: t0.addingTimeInterval(900)).map(\.id) == [claimed[0].id])
            // A restarted node gives up everything its previous run held.
            try await store.releaseLeases(heldBy: "c")
            #expect(try await store.claimDueRecipients(now: t0.addingTimeInterval(603), limit: 10, node: "d", leaseUntil: t0.addingTimeInterval(900)).map(\.id) == [claimed[0].id])
        }
    }

    @Test(arguments: StoreFactory.all)
    func outcomesAreFinalOnceAndCounted(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let message = sampleMessage(recipients: 4, at: t0)
            try await store.commitAndWait([message])
            let ids = message.recipients.map(\.id)
            let later = t0.addingTimeInterval(300)
            try await store.record([
                RecipientOutcome(recipientID: ids[0], messageID: message.id, kind: .sent, at: t0, details: ["remote_host": "mx.example.net", "reply": "250 ok"]),
                RecipientOutcome(recipientID: ids[1], messageID: message.id, kind: .failed, at: t0, details: ["code": "550"]),
                RecipientOutcome(recipientID: ids[2], messageID: message.id, kind: .deferred(nextAttemptAt: later), at: t0, details: ["text": "greylisted"]),
                RecipientOutcome(recipientID: ids[3], messageID: message.id, kind: .suppressed, at: t0),
            ])
            // A second outcome for a final recipient is ignored.
            try await store.record([RecipientOutcome(recipientID: ids[0], messageID: message.id, kind: .failed, at: t0)])
            #expect(try await store.counters(in: .allTime, scope: .all) == Counters(outbound: 4, sent: 1, failed: 1, suppressed: 1, deferred: 1))
            let states = try #require(try await store.message(message.id, scope: .all)).recipients.map(\.state)
            #expect(states == [.sent, .failed, .queued, .suppressed])
            // The deferred one is due again only at its next attempt time.
            #expect(try await store.claimDueRecipients(now: later.addingTimeInterval(-1), limit: 10, node: "a", leaseUntil: later).isEmpty)
            let due = try await store.claimDueRecipients(now: later, limit: 10, node: "a", leaseUntil: later.addingTimeInterval(60))
            #expect(due.map(\.id) == [ids[2]])
            #expect(due.first?.attempts == 1)
            let queue = try await store.queueEntries(limit: 10, scope: .all)
            #expect(queue.map(\.address) == ["r2@example.net"])
            #expect(queue.first?.lastReason == "greylisted")
        }
    }

    /// A batch that names a recipient twice is applied in order: a deferral then a delivery
    /// both count; after a final outcome, a second one is ignored.
    @Test(arguments: StoreFactory.all)
    func outcomesForOneRecipientInOneBatchApplyInOrder(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let message = sampleMessage(recipients: 2, at: t0)
            try await store.commitAndWait([message])
            let (first, second) = (message.recipients[0].id, message.recipients[1].id)
            let later = t0.addingTimeInterval(60)
            try await store.record([
                RecipientOutcome(recipientID: first, messageID: message.id, kind: .deferred(nextAttemptAt: later), at: t0, details: ["text": "4.2.0 busy"]),
                RecipientOutcome(recipientID: second, messageID: message.id, kind: .sent, at: t0),
                RecipientOutcome(recipientID: first, messageID: message.id, kind: .sent, at: later, details: ["reply": "250 ok"]),
                RecipientOutcome(recipientID: second, messageID: message.id, kind: .failed, at: later),
            ])
            #expect(try await store.counters(in: .allTime, scope: .all) == Counters(outbound: 2, sent: 2, deferred: 1))
            #expect(try #require(try await store.message(message.id, scope: .all)).recipients.map(\.state) == [.sent, .sent])
            let timeline = try await store.timeline(of: message.id).filter { $0.recipientID == first }
            #expect(timeline.map(\.type) == [.outbound, .deferred, .sent])
            #expect(timeline.map(\.details) == [[:], ["text": "4.2.0 busy"], ["reply": "250 ok"]])
        }
    }

    @Test(arguments: StoreFactory.all)
    func operatorRetryAndDrop(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let first = sampleMessage(recipients: 2, at: t0)
            let second = sampleMessage(recipients: 1, at: t0)
            try await store.commitAndWait([first, second])
            let future = t0.addingTimeInterval(3600)
            try await store.record(first.recipients.map {
                RecipientOutcome(recipientID: $0.id, messageID: first.id, kind: .deferred(nextAttemptAt: future), at: t0)
            })
            #expect(try await store.claimDueRecipients(now: t0, limit: 10, node: "a", leaseUntil: t0.addingTimeInterval(60)).map(\.id) == second.recipients.map(\.id))
            // Retry by message id makes both of its recipients due now.
            #expect(try await store.retryNow(first.id.rawValue, now: t0) == 2)
            #expect(try await store.claimDueRecipients(now: t0, limit: 10, node: "a", leaseUntil: t0.addingTimeInterval(1)).count == 2)
            // Drop by recipient id: failed with a reason, gone from the queue.
            #expect(try await store.drop(first.recipients[0].id.rawValue, now: t0) == 1)
            #expect(try await store.drop(first.recipients[0].id.rawValue, now: t0) == 0)
            #expect(try await store.queueEntries(limit: 10, scope: .all).count == 2)
            #expect(try await store.counters(in: .allTime, scope: .all).failed == 1)
        }
    }

    @Test(arguments: StoreFactory.all)
    func suppressionList(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            try await store.addSuppression(Suppression(address: "Bounce@Example.NET", reason: "manual", createdAt: t0))
            try await store.addSuppression(Suppression(address: "bounce@example.net", reason: "hard bounce", createdAt: t0))
            #expect(try await store.suppressions(scope: .all) == [Suppression(address: "bounce@example.net", reason: "hard bounce", createdAt: t0)])
            let bounce = due("BOUNCE@example.net", from: "shop.example")
            let ok = due("ok@example.net", from: "shop.example")
            #expect(try await store.suppressed([bounce, ok]) == [bounce.id])
            #expect(try await store.removeSuppression(address: "bounce@EXAMPLE.net", domain: nil, tenant: .default) == 1)
            #expect(try await store.suppressed([bounce]).isEmpty)
            #expect(try await store.removeSuppression(address: "bounce@example.net", domain: nil, tenant: .default) == 0)
        }
    }

    /// An unsubscribe stops one sender's mail; a bounce suppression stops everyone's.
    @Test(arguments: StoreFactory.all)
    func suppressionForOneSendingDomain(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            try await store.addSuppression(Suppression(address: "reader@example.net", domain: "News.Example", reason: "unsubscribed", createdAt: t0))
            let fromNews = due("Reader@example.net", from: "news.example")
            let fromShop = due("reader@example.net", from: "shop.example")
            #expect(try await store.suppressed([fromNews, fromShop]) == [fromNews.id])
            try await store.addSuppression(Suppression(address: "reader@example.net", reason: "hard bounce", createdAt: t0))
            #expect(try await store.suppressed([fromNews, fromShop]) == [fromNews.id, fromShop.id])
            #expect(try await store.suppressions(scope: .all).map(\.domain) == ["", "news.example"])
            #expect(try await store.removeSuppression(address: "reader@example.net", domain: "news.example", tenant: .default) == 1)
            #expect(try await store.suppressed([fromNews, fromShop]) == [fromNews.id, fromShop.id])
            #expect(try await store.removeSuppression(address: "reader@example.net", domain: nil, tenant: .default) == 1)
            #expect(try await store.suppressed([fromNews, fromShop]).isEmpty)
        }
    }

    /// A claimed recipient carries its message's sending domain.
    @Test(arguments: StoreFactory.all)
    func claimsCarryTheSendingDomain(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            var message = sampleMessage(recipients: 1, at: t0)
            message.fromDomain = "news.example"
            try await store.commitAndWait([message])
            let claimed = try await store.claimDueRecipients(now: t0, limit: 10, node: "a", leaseUntil: t0.addingTimeInterval(60))
            #expect(claimed.map(\.fromDomain) == ["news.example"])
        }
    }

    func due(_ address: String, from domain: String) -> DueRecipient {
        DueRecipient(
            id: .random(), messageID: .random(), address: address, mailFrom: "a@\(domain)", attempts: 0, queuedAt: t0,
            nextAttemptAt: t0, eightBitMIME: false, smtpUTF8: false, size: 1, fromDomain: domain)
    }

    @Test(arguments: StoreFactory.all)
    func contentIsReadBack(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let message = sampleMessage()
            try await store.commitAndWait([message])
            #expect(try await store.content(of: message.id) == message.content)
            #expect(try await store.content(of: .random()) == nil)
        }
    }

    @Test(arguments: StoreFactory.all)
    func contentIsReadInPieces(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            var message = sampleMessage()
            // Larger than a page and not a multiple of the piece size.
            message.content = (0..<200_003).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
            try await store.commitAndWait([message])
            var read: [UInt8] = []
            while true {
                let piece = try await store.readContent(of: message.id, offset: read.count, maxLength: 65_536)
                if piece.isEmpty { break }
                #expect(piece.count <= 65_536)
                read += piece
            }
            #expect(read == message.content)
            #expect(try await store.readContent(of: message.id, offset: 200_000, maxLength: 10) == Array(message.content[200_000...]))
            #expect(try await store.readContent(of: message.id, offset: 500_000, maxLength: 10) == [])
            await #expect(throws: StoreError.self) {
                try await store.readContent(of: .random(), offset: 0, maxLength: 10)
            }
        }
    }
}

/// Several nodes claiming from one PostgreSQL queue at the same moment: `SKIP LOCKED` and the
/// lease let each recipient go to exactly one node.
@Suite(.enabled(if: PostgresTestServer.isConfigured, "needs TERN_TEST_POSTGRES_URL (scripts/postgres.sh start)"))
struct PostgresConcurrentClaimTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func concurrentClaimsNeverOverlap() async throws {
        let t0 = self.t0
        try await PostgresTestServer.withStore { store in
            let messages = (0..<50).map { _ in sampleMessage(recipients: 10, at: t0) }
            try await store.commitAndWait(messages)
            let claims = try await withThrowingTaskGroup(of: [RecipientID].self) { group in
                for node in 0..<8 {
                    group.addTask {
                        var mine: [RecipientID] = []
                        while true {
                            let claimed = try await store.claimDueRecipients(
                                now: t0, limit: 7, node: "node-\(node)", leaseUntil: t0.addingTimeInterval(60))
                            if claimed.isEmpty { return mine }
                            mine += claimed.map(\.id)
                        }
                    }
                }
                var all: [[RecipientID]] = []
                for try await claimed in group { all.append(claimed) }
                return all
            }
            let flat = claims.flatMap { $0 }
            #expect(flat.count == 500)
            #expect(Set(flat) == Set(messages.flatMap { $0.recipients.map(\.id) }))
        }
    }

    /// Two nodes, each with its own pool: node a claims and dies (its pool closes without
    /// releasing anything); node b takes a's recipients only once a's leases have expired.
    @Test func aDeadNodesLeasesAreTakenOverByAnotherNode() async throws {
        let t0 = self.t0
        try await PostgresTestServer.withDatabase { url async throws in
            let message = sampleMessage(recipients: 3, at: t0)
            let claimedByA = try await PostgresTestServer.withRunningStore(url: url) { a async throws in
                try await a.migrate()
                try await a.commitAndWait([message])
                return try await a.claimDueRecipients(now: t0, limit: 10, node: "a", leaseUntil: t0.addingTimeInterval(60)).map(\.id)
            }
            #expect(Set(claimedByA) == Set(message.recipients.map(\.id)))
            try await PostgresTestServer.withRunningStore(url: url) { b async throws in
                try await b.migrate()
                #expect(try await b.claimDueRecipients(now: t0.addingTimeInterval(59), limit: 10, node: "b", leaseUntil: t0.addingTimeInterval(120)).isEmpty)
                let taken = try await b.claimDueRecipients(now: t0.addingTimeInterval(60), limit: 10, node: "b", leaseUntil: t0.addingTimeInterval(120))
                #expect(Set(taken.map(\.id)) == Set(claimedByA))
                #expect(taken.allSatisfy { $0.attempts == 0 })
            }
        }
    }
}
