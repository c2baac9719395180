import Foundation
import Logging
import Synchronization
import Testing
import TernCore
import TernStoreSQLite
@testable import TernEngine

/// A transport that answers by the recipient's local part: `ok` sent, `bad` failed,
/// `later` deferred on its first attempt and sent on the next. Records every attempt.
final class ScriptedTransport: DeliveryTransport {
    let attempts = Mutex<[String: Int]>([:])
    /// The envelope sender and recipients of each request.
    let envelopes = Mutex<[(mailFrom: String, recipients: [String])]>([])

    func deliver(_ request: DeliveryRequest) async -> [RecipientID: TransportOutcome] {
        envelopes.withLock { $0.append((request.reversePath.description, request.recipients.map(\.address))) }
        var outcomes: [RecipientID: TransportOutcome] = [:]
        for recipient in request.recipients {
            let count = attempts.withLock { map -> Int in
                map[recipient.address, default: 0] += 1
                return map[recipient.address, default: 0]
            }
            let local = recipient.address.split(separator: "@").first.map(String.init) ?? ""
            switch local {
            case "ok": outcomes[recipient.id] = .sent(details: ["remote_host": "mx.test", "code": "250"])
            case "bad": outcomes[recipient.id] = .failed(details: ["code": "550", "enhanced_code": "5.1.1", "bounce_class": "hard"])
            case "later" where count == 1: outcomes[recipient.id] = .deferred(reason: "450 try later", kind: .recipient, details: [:])
            case "later": outcomes[recipient.id] = .sent(details: ["code": "250"])
            default: break  // no outcome: the service must treat it as a deferral
            }
        }
        return outcomes
    }
}

@Suite struct DeliveryServiceTests {
    @Test func recordsSentFailedDeferredRetriedAndSuppressed() async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: path)
        try await store.addSuppression(Suppression(address: "Gone@Example.NET", reason: "test", createdAt: Date()))
        let message = QueuedMessage(
            id: .random(), messageIDHeader: "<d@t>", mailFrom: "from@example.com",
            recipients: ["ok@example.net", "bad@example.net", "later@example.org", "gone@example.net"].map {
                QueuedRecipient(id: .random(), address: $0)
            },
            content: Array("Subject: x\r\n\r\nbody\r\n".utf8), credential: nil, clientIP: nil, receivedAt: Date(),
            eightBitMIME: false, smtpUTF8: false)
        try await store.commitAndWait([message])

        let transport = ScriptedTransport()
        let configuration = DeliveryService.Configuration(
            scheduler: DeliverySchedulerConfiguration(
                activeLimit: 100, newMailReserve: 10,
                retry: RetrySchedule(delays: [.milliseconds(300)], repeatingDelay: .seconds(1), jitter: 0)),
            node: "test", pollInterval: .milliseconds(50))
        let service = DeliveryService(store: store, transport: transport, configuration: configuration, logger: Logger(label: "test"))

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                let counters = try await store.counters(in: .allTime, scope: .all)
                if counters.sent == 2 && counters.failed == 1 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            group.cancelAll()
        }
        #expect(try await store.counters(in: .allTime, scope: .all) == Counters(outbound: 4, sent: 2, failed: 1, suppressed: 1, deferred: 1))
        let states = try #require(try await store.message(message.id, scope: .all)).recipients.map(\.state)
        #expect(states == [.sent, .failed, .sent, .suppressed])
        let attempts = transport.attempts.withLock { $0 }
        #expect(attempts == ["ok@example.net": 1, "bad@example.net": 1, "later@example.org": 2])
        #expect(try await store.queueEntries(limit: 10, scope: .all).isEmpty)
        try await store.close()
    }
}

@Suite struct SMTPTransportTests {
    @Test(arguments: [
        ("5.1.1 <a@b>: user unknown", "5.1.1"),
        ("4.2.0 greylisted", "4.2.0"),
        ("5.7.1", "5.7.1"),
        ("user unknown", nil),
        ("5.1 nope", nil),
        ("3.1.1 wrong class", nil),
        ("5.x.1 bad", nil),
        ("5.1.1234 too long", nil),
        ("", nil),
    ] as [(String, String?)])
    func leadingEnhancedCode(text: String, expected: String?) {
        #expect(SMTPTransport.leadingEnhancedCode(text) == expected)
    }

    @Test(arguments: [("5.1.1", "hard"), ("5.1.10", "hard"), ("5.2.2", "soft"), ("5.7.1", "soft"), ("4.1.1", "soft"), (nil, "soft")] as [(String?, String)])
    func bounceClass(code: String?, expected: String) {
        #expect(TransportOutcome.bounceClass(enhancedCode: code) == expected)
    }
}

/// Accepts every recipient after `delay`, cancelled or not, as a remote that has already
/// been sent the message does; counts the recipients it was given.
final class SlowTransport: DeliveryTransport {
    let started = Mutex(0)
    let delay: Duration

    init(delay: Duration) { self.delay = delay }

    func deliver(_ request: DeliveryRequest) async -> [RecipientID: TransportOutcome] {
        started.withLock { $0 += request.recipients.count }
        let until = ContinuousClock.now + delay
        while ContinuousClock.now < until { try? await Task.sleep(for: .milliseconds(10)) }
        return Dictionary(uniqueKeysWithValues: request.recipients.map { ($0.id, TransportOutcome.sent(details: ["code": "250"])) })
    }
}

@Suite struct DeliveryServiceShutdownTests {
    @Test func outcomesOfDeliveriesUnderWayAreStoredAtShutdown() async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: path)
        let message = QueuedMessage(
            id: .random(), messageIDHeader: "<s@t>", mailFrom: "from@example.com",
            recipients: [QueuedRecipient(id: .random(), address: "ok@example.net")],
            content: Array("Subject: x\r\n\r\nbody\r\n".utf8), credential: nil, clientIP: nil, receivedAt: Date(),
            eightBitMIME: false, smtpUTF8: false)
        try await store.commitAndWait([message])
        let transport = SlowTransport(delay: .milliseconds(500))
        let service = DeliveryService(
            store: store, transport: transport, configuration: DeliveryService.Configuration(node: "test", pollInterval: .milliseconds(50)),
            logger: Logger(label: "test"))

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline, transport.started.withLock({ $0 }) == 0 {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(transport.started.withLock { $0 } == 1)
            group.cancelAll()  // as a graceful shutdown does, mid-delivery
        }
        #expect(try #require(try await store.message(message.id, scope: .all)).recipients.map(\.state) == [.sent])
        #expect(try await store.counters(in: .allTime, scope: .all).sent == 1)
        try await store.close()
    }

    /// With VERP, each recipient goes in a request of its own, with its own envelope sender.
    @Test func verpGivesEachRecipientItsOwnEnvelope() async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: path)
        let message = QueuedMessage(
            id: .next(), messageIDHeader: "<v@t>", mailFrom: "app@news.example",
            recipients: ["ok@example.net", "ok@example.org", "ok@example.com"].map { QueuedRecipient(id: .next(), address: $0) },
            content: Array("Subject: x\r\n\r\nbody\r\n".utf8), credential: nil, clientIP: nil, receivedAt: Date(),
            eightBitMIME: false, smtpUTF8: false, fromDomain: "news.example")
        try await store.commitAndWait([message])
        let keys = try TrackingKeys(secrets: [[UInt8](repeating: 9, count: 32)])
        let transport = ScriptedTransport()
        // Set after the initialiser, as `tern serve` does.
        var configuration = DeliveryService.Configuration(node: "test", pollInterval: .milliseconds(50))
        configuration.returnPath = VERPReturnPath(keys: keys, returnPaths: ReturnPaths())
        let service = DeliveryService(store: store, transport: transport, configuration: configuration, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline, try await store.counters(in: .allTime, scope: .all).sent < 3 {
                try await Task.sleep(for: .milliseconds(50))
            }
            group.cancelAll()
        }
        let envelopes = transport.envelopes.withLock { $0 }
        #expect(envelopes.count == 3)
        #expect(envelopes.allSatisfy { $0.recipients.count == 1 })
        for recipient in message.recipients {
            let token = keys.addressToken(TrackingToken(kind: .bounce, messageID: message.id, recipientID: recipient.id))
            #expect(envelopes.contains { $0.mailFrom == "b-\(token)@bounces.news.example" && $0.recipients == [recipient.address] })
        }
        try await store.close()
    }
}

/// A store whose first claim hands every recipient back more often than asked for, as a
/// store does when a lease this node lost is claimed again while the first copy is still
/// held: the copy past the request is not admitted, its claim is released, and the job the
/// scheduler starts for the first copy finds its recipient no longer held.
final class LostLeaseStore: DeliveryStore {
    let base: SQLiteStore
    let claims = Mutex(0)

    init(_ base: SQLiteStore) { self.base = base }

    func claimDueRecipients(now: Date, newLimit: Int, retryLimit: Int, node: String, leaseUntil: Date) async throws -> [DueRecipient] {
        let claimed = try await base.claimDueRecipients(now: now, newLimit: newLimit, retryLimit: retryLimit, node: node, leaseUntil: leaseUntil)
        let first = claims.withLock { count -> Bool in
            if !claimed.isEmpty { count += 1 }
            return count == 1 && !claimed.isEmpty
        }
        return first ? Array(repeating: claimed, count: newLimit + retryLimit + 1).flatMap { $0 } : claimed
    }
    func renewLeases(_ recipients: [RecipientID], node: String, leaseUntil: Date) async throws {
        try await base.renewLeases(recipients, node: node, leaseUntil: leaseUntil)
    }
    func releaseLeases(_ recipients: [RecipientID], node: String) async throws { try await base.releaseLeases(recipients, node: node) }
    func releaseLeases(heldBy node: String) async throws { try await base.releaseLeases(heldBy: node) }
    func record(_ outcomes: [RecipientOutcome]) async throws { try await base.record(outcomes) }
    func content(of message: MessageID) async throws -> [UInt8]? { try await base.content(of: message) }
    func readContent(of message: MessageID, offset: Int, maxLength: Int) async throws -> [UInt8] {
        try await base.readContent(of: message, offset: offset, maxLength: maxLength)
    }
    func queueEntries(limit: Int, scope: TenantScope) async throws -> [QueueEntry] { try await base.queueEntries(limit: limit, scope: scope) }
    func retryNow(_ id: Int64, now: Date) async throws -> Int { try await base.retryNow(id, now: now) }
    func drop(_ id: Int64, now: Date) async throws -> Int { try await base.drop(id, now: now) }
    func addSuppression(_ suppression: Suppression) async throws { try await base.addSuppression(suppression) }
    func removeSuppression(address: String, domain: String?, tenant: TenantID?) async throws -> Int {
        try await base.removeSuppression(address: address, domain: domain, tenant: tenant)
    }
    func suppressions(scope: TenantScope) async throws -> [Suppression] { try await base.suppressions(scope: scope) }
    func suppressed(_ recipients: [DueRecipient]) async throws -> Set<RecipientID> { try await base.suppressed(recipients) }
}

@Suite struct DeliveryServiceLostLeaseTests {
    /// The scheduler's answer to a job whose recipients are no longer held (a deferral) is
    /// written to the store: the recipient is queued again, never left without a word.
    @Test func aJobWhoseLeaseWasLostEndsWithItsDeferralStored() async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let base = try SQLiteStore(path: path)
        let message = QueuedMessage(
            id: .random(), messageIDHeader: "<l@t>", mailFrom: "from@example.com",
            recipients: [QueuedRecipient(id: .random(), address: "ok@example.net")],
            content: Array("Subject: x\r\n\r\nbody\r\n".utf8), credential: nil, clientIP: nil, receivedAt: Date(),
            eightBitMIME: false, smtpUTF8: false)
        try await base.commitAndWait([message])
        let store = LostLeaseStore(base)
        let transport = ScriptedTransport()
        // One recipient in the active set: the second copy of the claim is one too many.
        let configuration = DeliveryService.Configuration(
            scheduler: DeliverySchedulerConfiguration(
                activeLimit: 1, newMailReserve: 0,
                retry: RetrySchedule(delays: [.seconds(60)], repeatingDelay: .seconds(60), jitter: 0)),
            node: "test", pollInterval: .milliseconds(50))
        let service = DeliveryService(store: store, transport: transport, configuration: configuration, logger: Logger(label: "test"))

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline, try await base.counters(in: .allTime, scope: .all).deferred < 1 {
                try await Task.sleep(for: .milliseconds(50))
            }
            group.cancelAll()
        }
        #expect(store.claims.withLock { $0 } == 1)
        #expect(try await base.counters(in: .allTime, scope: .all) == Counters(outbound: 1, deferred: 1))
        #expect(transport.attempts.withLock { $0 }.isEmpty)
        let timeline = try await base.timeline(of: message.id)
        #expect(timeline.map(\.type) == [.outbound, .deferred])
        #expect(timeline.last?.details["text"] == "recipients of the job are no longer held")
        let entries = try await base.queueEntries(limit: 10, scope: .all)
        #expect(entries.count == 1)
        #expect(entries.first?.attempts == 1)
        try await base.close()
    }
}

/// Sends the recipients of the first request at once and holds every later request until
/// its task is cancelled (a delivery still under way); records the recipients asked for.
final class FirstThenHoldTransport: DeliveryTransport {
    let requested = Mutex<[RecipientID]>([])

    func deliver(_ request: DeliveryRequest) async -> [RecipientID: TransportOutcome] {
        let first = requested.withLock { requested in
            defer { requested += request.recipients.map(\.id) }
            return requested.isEmpty
        }
        guard first else {
            try? await Task.sleep(for: .seconds(3600))  // ended by the cancellation at shutdown
            return [:]
        }
        return Dictionary(uniqueKeysWithValues: request.recipients.map { ($0.id, TransportOutcome.sent(details: ["code": "250"])) })
    }
}

@Suite(.timeLimit(.minutes(1)))
struct DeliveryServiceOutcomeFlushTests {
    /// Outcomes wait to be written together, and are written on the loop's next tick, no
    /// later than one poll interval after they happen: the clock moves only when the test says.
    @Test func outcomesAreWrittenWithinOnePollInterval() async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: path)
        let message = QueuedMessage(
            id: .random(), messageIDHeader: "<f@t>", mailFrom: "from@example.com",
            recipients: ["a@example.net", "b@example.net"].map { QueuedRecipient(id: .random(), address: $0) },
            content: Array("Subject: x\r\n\r\nbody\r\n".utf8), credential: nil, clientIP: nil, receivedAt: Date(),
            eightBitMIME: false, smtpUTF8: false)
        try await store.commitAndWait([message])
        let transport = FirstThenHoldTransport()
        let interval: Duration = .milliseconds(200)
        // One delivery at a time, one recipient each.
        let configuration = DeliveryService.Configuration(
            scheduler: DeliverySchedulerConfiguration(totalConcurrency: 1, recipientsPerJob: 1),
            node: "test", pollInterval: interval)
        let service = DeliveryService(store: store, transport: transport, configuration: configuration, logger: Logger(label: "test"))
        let clock = TestClock()

        try await withThrowingTaskGroup(of: Void.self) { group async throws in
            group.addTask { try await service.run(clock: clock) }
            // The second delivery starts once the loop has taken the first one's outcome.
            #expect(try await poll { transport.requested.withLock { $0.count } == 2 })
            // The loop waits on its timer and the clock has not moved: nothing written yet.
            #expect(try await poll { clock.sleeperCount == 1 })
            #expect(try await store.counters(in: .allTime, scope: .all).sent == 0)
            clock.advance(by: interval)
            // Written with no further move of the clock (a poll in real time, well under the time limit).
            #expect(try await poll(timeout: .seconds(20)) { try await store.counters(in: .allTime, scope: .all).sent == 1 })
            group.cancelAll()
        }
        let first = try #require(transport.requested.withLock { $0.first })
        let recipients = try #require(try await store.message(message.id, scope: .all)).recipients
        #expect(recipients.first { $0.id == first }?.state == .sent)
        try await store.close()
    }
}
