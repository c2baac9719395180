import Foundation
import Testing
import TernCore

/// `EngagementStoreTests` of TernStoreSQLite, on every store.
@Suite struct EngagementStoreConformanceTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func trackedMessage() -> QueuedMessage {
        var message = sampleMessage(recipients: 2, at: t0)
        message.fromDomain = "news.example"
        message.links = ["https://example.com/a?x=1&y=2", "https://example.com/b"]
        return message
    }

    @Test(arguments: StoreFactory.all)
    func linksAreStoredOncePerMessageInOrder(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let message = trackedMessage()
            try await store.commitAndWait([message, sampleMessage()])
            #expect(try await store.links(of: message.id) == message.links)
            #expect(try await store.links(of: .random()).isEmpty)
        }
    }

    @Test(arguments: StoreFactory.all)
    func opensClicksAndUniqueAndHumanCounters(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let message = trackedMessage()
            try await store.commitAndWait([message])
            let (first, second) = (message.recipients[0].id, message.recipients[1].id)
            func event(_ type: EventType, _ recipient: RecipientID, machine: Bool, at offset: TimeInterval) -> EngagementEvent {
                EngagementEvent(
                    type: type, messageID: message.id, recipientID: recipient, at: t0.addingTimeInterval(offset),
                    details: EngagementDetails(machine: machine, reason: machine ? "apple_mpp" : "human"))
            }
            try await store.recordEngagement([
                event(.open, first, machine: true, at: 1), event(.open, first, machine: false, at: 2),
                event(.open, second, machine: false, at: 3), event(.click, first, machine: false, at: 4),
                event(.click, first, machine: true, at: 5),
                // A recipient of another message (a token for a message that no longer exists) is dropped.
                EngagementEvent(type: .open, messageID: .random(), recipientID: first, at: t0),
            ])
            let counters = try await store.counters(in: .allTime, scope: .all)
            #expect(counters.opens == 3 && counters.uniqueOpens == 2 && counters.humanOpens == 2)
            #expect(counters.clicks == 2 && counters.uniqueClicks == 1 && counters.humanClicks == 1)
            let later = try await store.counters(in: TimeRange(from: t0.addingTimeInterval(3)), scope: .all)
            #expect(later.opens == 1 && later.uniqueOpens == 1 && later.clicks == 2 && later.humanClicks == 1)
        }
    }

    @Test(arguments: StoreFactory.all)
    func unsubscribeSuppressesForTheSendingDomainOnce(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let message = trackedMessage()
            try await store.commitAndWait([message])
            let recipient = message.recipients[1]
            let unsubscribe = EngagementEvent(
                type: .unsubscribe, messageID: message.id, recipientID: recipient.id, at: t0, details: EngagementDetails(method: "one-click"))
            try await store.recordEngagement([unsubscribe])
            try await store.recordEngagement([unsubscribe, unsubscribe])
            #expect(try await store.counters(in: .allTime, scope: .all).unsubscribes == 1)
            #expect(try await store.suppressions(scope: .all) == [
                Suppression(address: recipient.address, domain: "news.example", reason: "unsubscribed", createdAt: t0)
            ])
            let summary = try await store.recipientSummary(recipient.id)
            #expect(summary == RecipientSummary(id: recipient.id, messageID: message.id, address: recipient.address, fromDomain: "news.example"))
            #expect(try await store.recipientSummary(.random()) == nil)
        }
    }

    @Test(arguments: StoreFactory.all)
    func timelineListsEveryEventOfTheMessageInOrder(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let message = trackedMessage()
            try await store.commitAndWait([message, sampleMessage()])
            let recipient = message.recipients[0].id
            try await store.record([
                RecipientOutcome(recipientID: recipient, messageID: message.id, kind: .sent, at: t0.addingTimeInterval(1), details: ["remote_host": "mx.example.net"])
            ])
            try await store.recordEngagement([
                EngagementEvent(type: .click, messageID: message.id, recipientID: recipient, at: t0.addingTimeInterval(9), details: EngagementDetails(link: 1)),
                EngagementEvent(type: .open, messageID: message.id, recipientID: recipient, at: t0.addingTimeInterval(5)),
            ])
            let timeline = try await store.timeline(of: message.id)
            #expect(timeline.map(\.type) == [.outbound, .outbound, .sent, .open, .click])
            #expect(timeline.filter { $0.recipientID == recipient }.map(\.type) == [.outbound, .sent, .open, .click])
            #expect(timeline.last?.details == ["link": "1"])
            #expect(try await store.timeline(of: .random()).isEmpty)
        }
    }
    /// More events than one statement takes (the SQLite store inserts them 128 at a time):
    /// every one stored in the order given, those of unknown recipients dropped wherever they
    /// are, a repeated unsubscribe stored once.
    @Test(arguments: StoreFactory.all)
    func aLargeBatchIsStoredInOrder(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let message = trackedMessage()
            try await store.commitAndWait([message, sampleMessage()])
            let (first, second) = (message.recipients[0].id, message.recipients[1].id)
            var batch: [EngagementEvent] = []
            var expected: [String] = []
            for n in 0..<300 {
                let recipient = n.isMultiple(of: 2) ? first : second
                switch n {
                case 10, 127, 128, 255, 256:
                    batch.append(EngagementEvent(type: .open, messageID: .random(), recipientID: recipient, at: t0, details: EngagementDetails(link: n)))
                case 70, 280:
                    batch.append(EngagementEvent(type: .unsubscribe, messageID: message.id, recipientID: second, at: t0, details: EngagementDetails(link: n)))
                    if n == 70 { expected.append("unsubscribe \(n)") }
                case 99:
                    batch.append(EngagementEvent(type: .open, messageID: message.id, recipientID: recipient, at: t0))
                    expected.append("open -")
                default:
                    let type: EventType = n.isMultiple(of: 3) ? .click : .open
                    batch.append(EngagementEvent(
                        type: type, messageID: message.id, recipientID: recipient, at: t0,
                        details: EngagementDetails(link: n, userAgent: "A \"quoted\" agent\\\(n)")))
                    expected.append("\(type.rawValue) \(n)")
                }
            }
            try await store.recordEngagement(batch)
            let timeline = try await store.timeline(of: message.id).filter { $0.type != .outbound }
            #expect(timeline.map { "\($0.type.rawValue) \($0.details["link"] ?? "-")" } == expected)
            #expect(timeline.first { $0.details["link"] == "5" }?.details["user_agent"] == "A \"quoted\" agent\\5")
            #expect(try await store.counters(in: .allTime, scope: .all).unsubscribes == 1)
            #expect(try await store.suppressions(scope: .all).count == 1)
        }
    }
}
