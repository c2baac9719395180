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
                let counters = try await store.counters(in: .allTime)
                if counters.sent == 2 && counters.failed == 1 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            group.cancelAll()
        }
        #expect(try await store.counters(in: .allTime) == Counters(outbound: 4, sent: 2, failed: 1, suppressed: 1, deferred: 1))
        let states = try #require(try await store.message(message.id)).recipients.map(\.state)
        #expect(states == [.sent, .failed, .sent, .suppressed])
        let attempts = transport.attempts.withLock { $0 }
        #expect(attempts == ["ok@example.net": 1, "bad@example.net": 1, "later@example.org": 2])
        #expect(try await store.queueEntries(limit: 10).isEmpty)
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
        #expect(try #require(try await store.message(message.id)).recipients.map(\.state) == [.sent])
        #expect(try await store.counters(in: .allTime).sent == 1)
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
            while ContinuousClock.now < deadline, try await store.counters(in: .allTime).sent < 3 {
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
