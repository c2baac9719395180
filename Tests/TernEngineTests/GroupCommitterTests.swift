import Foundation
import Logging
import Synchronization
import Testing
import TernCore
import TernStoreSQLite
@testable import TernEngine

/// Wraps a real store and records the size of each commit group.
final class RecordingStore: Store {
    let inner: SQLiteStore
    let groups = Mutex<[Int]>([])
    let failNext = Mutex(false)
    let commitDelay = Mutex(Duration.zero)

    init(_ inner: SQLiteStore) { self.inner = inner }

    func commit(_ messages: [QueuedMessage], completion: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        groups.withLock { $0.append(messages.count) }
        let delay = commitDelay.withLock { $0 }
        let fail = failNext.withLock { value in defer { value = false }; return value }
        let inner = self.inner
        let write: @Sendable () -> Void = {
            if fail {
                completion(.failure(StoreError(.unavailable, "disk full")))
            } else {
                inner.commit(messages, completion: completion)
            }
        }
        guard delay > .zero else { return write() }
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(delay / .nanoseconds(1))), execute: write)
    }
    func counters(in range: TimeRange, scope: TenantScope) async throws -> Counters { try await inner.counters(in: range, scope: scope) }
    func message(_ id: MessageID, scope: TenantScope) async throws -> StoredMessage? { try await inner.message(id, scope: scope) }
    func addCredential(_ credential: Credential) async throws { try await inner.addCredential(credential) }
    func removeCredential(named name: String) async throws -> Bool { try await inner.removeCredential(named: name) }
    func credential(named name: String) async throws -> Credential? { try await inner.credential(named: name) }
    func credentials() async throws -> [Credential] { try await inner.credentials() }
    func close() async throws { try await inner.close() }
    func claimDueRecipients(now: Date, newLimit: Int, retryLimit: Int, node: String, leaseUntil: Date) async throws -> [DueRecipient] {
        try await inner.claimDueRecipients(now: now, newLimit: newLimit, retryLimit: retryLimit, node: node, leaseUntil: leaseUntil)
    }
    func record(_ outcomes: [RecipientOutcome]) async throws { try await inner.record(outcomes) }
    func renewLeases(_ recipients: [RecipientID], node: String, leaseUntil: Date) async throws {
        try await inner.renewLeases(recipients, node: node, leaseUntil: leaseUntil)
    }
    func releaseLeases(_ recipients: [RecipientID], node: String) async throws {
        try await inner.releaseLeases(recipients, node: node)
    }
    func releaseLeases(heldBy node: String) async throws { try await inner.releaseLeases(heldBy: node) }
    func content(of message: MessageID) async throws -> [UInt8]? { try await inner.content(of: message) }
    func readContent(of message: MessageID, offset: Int, maxLength: Int) async throws -> [UInt8] {
        try await inner.readContent(of: message, offset: offset, maxLength: maxLength)
    }
    func queueEntries(limit: Int, scope: TenantScope) async throws -> [QueueEntry] { try await inner.queueEntries(limit: limit, scope: scope) }
    func retryNow(_ id: Int64, now: Date) async throws -> Int { try await inner.retryNow(id, now: now) }
    func drop(_ id: Int64, now: Date) async throws -> Int { try await inner.drop(id, now: now) }
    func addSuppression(_ suppression: Suppression) async throws { try await inner.addSuppression(suppression) }
    func removeSuppression(address: String, domain: String?, tenant: TenantID?) async throws -> Int {
        try await inner.removeSuppression(address: address, domain: domain, tenant: tenant)
    }
    func suppressions(scope: TenantScope) async throws -> [Suppression] { try await inner.suppressions(scope: scope) }
    func suppressed(_ recipients: [DueRecipient]) async throws -> Set<RecipientID> { try await inner.suppressed(recipients) }
    func links(of message: MessageID) async throws -> [String] { try await inner.links(of: message) }
    func recordEngagement(_ events: [EngagementEvent]) async throws { try await inner.recordEngagement(events) }
    func recipientSummary(_ id: RecipientID) async throws -> RecipientSummary? { try await inner.recipientSummary(id) }
    func timeline(of message: MessageID) async throws -> [TimelineEvent] { try await inner.timeline(of: message) }
    func commitInbound(_ messages: [InboundMessage]) async throws { try await inner.commitInbound(messages) }
    func pendingReports(limit: Int) async throws -> [InboundMessage] { try await inner.pendingReports(limit: limit) }
    func completeReport(_ id: InboundMessageID, outcome: ReportOutcome) async throws {
        try await inner.completeReport(id, outcome: outcome)
    }
    func claimDueWebhooks(now: Date, limit: Int, leaseUntil: Date) async throws -> [InboundMessage] {
        try await inner.claimDueWebhooks(now: now, limit: limit, leaseUntil: leaseUntil)
    }
    func recordWebhookAttempt(_ id: InboundMessageID, _ attempt: WebhookAttempt) async throws {
        try await inner.recordWebhookAttempt(id, attempt)
    }
    func inboundMessages(limit: Int, scope: TenantScope) async throws -> [InboundSummary] { try await inner.inboundMessages(limit: limit, scope: scope) }
    func recipients(messageIDHeader: String, limit: Int) async throws -> [RecipientSummary] {
        try await inner.recipients(messageIDHeader: messageIDHeader, limit: limit)
    }
    func addDomain(_ domain: SendingDomain) async throws { try await inner.addDomain(domain) }
    func removeDomain(named name: String) async throws -> Bool { try await inner.removeDomain(named: name) }
    func domain(named name: String) async throws -> SendingDomain? { try await inner.domain(named: name) }
    func domains() async throws -> [SendingDomain] { try await inner.domains() }
    func rotateKeys(of name: String, to keys: [DomainKey], at date: Date) async throws {
        try await inner.rotateKeys(of: name, to: keys, at: date)
    }
    func setVerified(_ name: String, at date: Date?) async throws { try await inner.setVerified(name, at: date) }
    func heartbeat(_ node: NodeRecord) async throws { try await inner.heartbeat(node) }
    func nodes(deliveriesSince since: Date) async throws -> [NodeStatus] { try await inner.nodes(deliveriesSince: since) }
    func removeNode(_ id: String) async throws -> Bool { try await inner.removeNode(id) }
    func nodeNumber(of id: String) async throws -> Int { try await inner.nodeNumber(of: id) }
    func sharedSecret(named name: String, proposed: [UInt8]) async throws -> [UInt8] {
        try await inner.sharedSecret(named: name, proposed: proposed)
    }
    func addTenant(named name: String, limits: TenantLimits, createdAt: Date) async throws -> Tenant {
        try await inner.addTenant(named: name, limits: limits, createdAt: createdAt)
    }
    func tenants() async throws -> [Tenant] { try await inner.tenants() }
    func tenant(named name: String) async throws -> Tenant? { try await inner.tenant(named: name) }
    func setLimits(_ limits: TenantLimits, of tenant: TenantID) async throws { try await inner.setLimits(limits, of: tenant) }
    func removeTenant(_ tenant: TenantID, force: Bool) async throws -> TenantRemoval {
        try await inner.removeTenant(tenant, force: force)
    }
    func tenantUsage(since: Date) async throws -> [TenantUsage] { try await inner.tenantUsage(since: since) }
    func addThrottled(_ counts: [TenantID: Int], at: Date) async throws { try await inner.addThrottled(counts, at: at) }
    func configurationGeneration() async throws -> Int64 { try await inner.configurationGeneration() }
}

func temporaryStorePath() throws -> (folder: String, path: String) {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tern-engine-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    return (folder, folder + "/tern.sqlite")
}

func message(_ index: Int) -> QueuedMessage {
    QueuedMessage(
        id: .random(), messageIDHeader: "<\(index)@test>", mailFrom: "a@example.com",
        recipients: [QueuedRecipient(id: .random(), address: "b\(index)@example.net")],
        content: Array("Subject: \(index)\r\n\r\nbody\r\n".utf8), credential: nil, clientIP: nil,
        receivedAt: Date(), eightBitMIME: false, smtpUTF8: false)
}

extension GroupCommitter {
    /// Awaits `commit(_:completion:)` for one message, as intake calls it.
    func commitAndWait(_ message: QueuedMessage) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            commit([message]) { continuation.resume(with: $0) }
        }
    }
}

@Suite struct GroupCommitterTests {
    @Test func concurrentCommitsShareTransactionsAndAllLand() async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = RecordingStore(try SQLiteStore(path: path))
        let committer = GroupCommitter(store: store, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await committer.run() }
            try await withThrowingTaskGroup(of: Void.self) { senders in
                for index in 0..<500 {
                    senders.addTask { try await committer.commitAndWait(message(index)) }
                }
                try await senders.waitForAll()
            }
            // Every commit returned: every message must be in the store already.
            #expect(try await store.counters(in: .allTime, scope: .all).outbound == 500)
            committer.stop()
            try await group.waitForAll()
        }
        let groups = store.groups.withLock { $0 }
        #expect(groups.reduce(0, +) == 500)
        #expect(groups.count < 500, "commits were not grouped: \(groups.count) transactions")
        #expect(groups.allSatisfy { $0 <= GroupCommitter.defaultMaxBatch })
        try await store.close()
    }

    /// Straight on the SQLite store: its own writer-queue commit path, no task per group.
    @Test func groupsOnTheSQLiteStoresWriter() async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: path)
        let committer = GroupCommitter(store: store, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await committer.run() }
            try await withThrowingTaskGroup(of: Void.self) { senders in
                for index in 0..<300 {
                    senders.addTask { try await committer.commitAndWait(message(index)) }
                }
                try await senders.waitForAll()
            }
            #expect(try await store.counters(in: .allTime, scope: .all).outbound == 300)
            committer.stop()
            try await group.waitForAll()
        }
        try await store.close()
    }

    @Test func stopCommitsWhatIsPendingBeforeRunReturns() async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = RecordingStore(try SQLiteStore(path: path))
        store.commitDelay.withLock { $0 = .milliseconds(200) }
        let committer = GroupCommitter(store: store, maxBatch: 10, logger: Logger(label: "test"))
        let run = Task { try await committer.run() }
        let (results, answer) = AsyncStream.makeStream(of: Bool.self)
        for index in 0..<40 {
            committer.commit([message(index)]) { result in answer.yield((try? result.get()) != nil) }
        }
        while store.groups.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(5)) }
        committer.stop()  // a group is with the store, the others wait
        try await run.value
        // `run` returned: everything accepted before the stop is durable.
        #expect(try await store.counters(in: .allTime, scope: .all).outbound == 40)
        var committed = 0
        for await success in results.prefix(40) where success { committed += 1 }
        #expect(committed == 40)
        #expect(store.groups.withLock { $0.count } >= 4)
        try await store.close()
    }

    @Test func aFailedCommitFailsItsCallersAndTheNextOneWorks() async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = RecordingStore(try SQLiteStore(path: path))
        let committer = GroupCommitter(store: store, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await committer.run() }
            store.failNext.withLock { $0 = true }
            await #expect(throws: StoreError.self) { try await committer.commitAndWait(message(1)) }
            try await committer.commitAndWait(message(2))
            #expect(try await store.counters(in: .allTime, scope: .all).outbound == 1)
            committer.stop()
            try await group.waitForAll()
        }
        // After stop, nothing new is accepted.
        await #expect(throws: StoreError.self) { try await committer.commitAndWait(message(3)) }
        try await store.close()
    }
}
