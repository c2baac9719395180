import Foundation
import Testing
import TernCore

/// `InboundStoreTests` of TernStoreSQLite, on every store.
@Suite struct InboundStoreConformanceTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func arrival(_ purpose: InboundPurpose, url: String? = nil, at date: Date, to recipients: [String] = ["b-x@bounces.example.com"]) -> InboundMessage {
        InboundMessage(
            id: .next(), receivedAt: date, clientIP: "192.0.2.7", heloName: "mx.example.net", mailFrom: "",
            recipients: recipients, purpose: purpose, webhookURL: url, content: Array("Subject: x\r\n\r\nbody\r\n".utf8))
    }

    @Test(arguments: StoreFactory.all)
    func reportsArePendingUntilReadOnce(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let sent = sampleMessage(recipients: 2, at: t0)
            try await store.commitAndWait([sent])
            let report = arrival(.report, at: t0)
            let inbound = arrival(.inbound, url: "http://127.0.0.1:9/hook", at: t0, to: ["help@support.example"])
            try await store.commitInbound([report, inbound])
            #expect(try await store.pendingReports(limit: 10) == [report])

            let recipient = sent.recipients[0]
            let failure = ReportEvent(
                type: .failed, messageID: sent.id, recipientID: recipient.id, at: t0.addingTimeInterval(60),
                details: ["async": "true", "status": "5.1.1"])
            let outcome = ReportOutcome(
                kind: "bounce",
                events: [failure, ReportEvent(type: .unmatchedReport, messageID: nil, recipientID: nil, at: t0, details: ["reason": "x"])],
                suppressions: [Suppression(address: "R0@Example.NET", reason: "hard bounce 5.1.1", createdAt: t0)])
            try await store.completeReport(report.id, outcome: outcome)
            #expect(try await store.pendingReports(limit: 10).isEmpty)
            // Handed over again (a crash between read and commit elsewhere): nothing changes.
            try await store.completeReport(report.id, outcome: outcome)

            // A second report about the same recipient (a duplicate DSN) adds no second failure.
            let again = arrival(.report, at: t0)
            try await store.commitInbound([again])
            try await store.completeReport(again.id, outcome: ReportOutcome(kind: "bounce", events: [failure], suppressions: []))

            let counters = try await store.counters(in: .allTime, scope: .all)
            #expect(counters.failed == 1 && counters.failedAsync == 1 && counters.unmatchedReports == 1 && counters.inbound == 1)
            #expect(try await store.suppressions(scope: .all).map(\.address) == ["r0@example.net"])
            #expect(try await store.suppressions(scope: .all).map(\.domain) == [""])
            let summaries = try await store.inboundMessages(limit: 10, scope: .all)
            #expect(summaries.map(\.id) == [again, inbound, report].map(\.id.description))
            #expect(summaries.map(\.kind) == ["bounce", "inbound", "bounce"])
            #expect(summaries[1].webhook?.state == "pending" && summaries[1].webhook?.attempts == 0)
            #expect(summaries[0].webhook == nil)
        }
    }

    /// Two reports about the same recipients (a DSN and its duplicate) read at once by two
    /// nodes (two stores on one database): still one failure and one complaint per recipient,
    /// whichever order each report names them in.
    @Test(arguments: StoreFactory.all)
    func reportsAboutOneRecipientReadAtOnceStoreOneFailure(_ factory: StoreFactory) async throws {
        try await factory.withStores(2) { stores in
            let rounds = 8
            for _ in 0..<rounds {
                let sent = sampleMessage(recipients: 3, at: t0)
                for store in stores.prefix(1) { try await store.commitAndWait([sent]) }
                let events = sent.recipients.map { recipient in
                    ReportEvent(
                        type: .failed, messageID: sent.id, recipientID: recipient.id, at: t0, details: ["async": "true"])
                }
                let complaint = ReportEvent(
                    type: .complaint, messageID: sent.id, recipientID: sent.recipients.first?.id, at: t0, details: [:])
                let outcomes = [
                    ReportOutcome(kind: "bounce", events: events + [complaint], suppressions: []),
                    ReportOutcome(kind: "bounce", events: [complaint] + events.reversed(), suppressions: []),
                ]
                let reports = outcomes.map { _ in arrival(.report, at: t0) }
                for store in stores.prefix(1) { try await store.commitInbound(reports) }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (index, store) in stores.enumerated() {
                        let (report, outcome) = (reports[index % reports.count], outcomes[index % outcomes.count])
                        group.addTask { try await store.completeReport(report.id, outcome: outcome) }
                    }
                    try await group.waitForAll()
                }
            }
            for store in stores {
                let counters = try await store.counters(in: .allTime, scope: .all)
                #expect(counters.failed == 3 * rounds)
                #expect(counters.complaints == rounds)
                #expect(try await store.pendingReports(limit: 10).isEmpty)
            }
        }
    }

    @Test(arguments: StoreFactory.all)
    func unsubscribeMailSuppressesForTheSendingDomainOnce(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            var sent = sampleMessage(recipients: 1, at: t0)
            sent.fromDomain = "news.example"
            try await store.commitAndWait([sent])
            let recipient = sent.recipients[0]
            let event = ReportEvent(
                type: .unsubscribe, messageID: sent.id, recipientID: recipient.id, at: t0, details: ["method": "mailto"])
            for _ in 0..<2 {
                let mail = arrival(.report, at: t0, to: ["unsubscribe+x@bounces.news.example"])
                try await store.commitInbound([mail])
                try await store.completeReport(mail.id, outcome: ReportOutcome(kind: "unsubscribe", events: [event], suppressions: []))
            }
            #expect(try await store.counters(in: .allTime, scope: .all).unsubscribes == 1)
            #expect(try await store.suppressions(scope: .all).map { "\($0.address) \($0.domain)" } == ["r0@example.net news.example"])
        }
    }

    @Test(arguments: StoreFactory.all)
    func webhookAttemptsMoveThroughTheirStates(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let posted = arrival(.inbound, url: "http://127.0.0.1:9/a", at: t0, to: ["a@support.example"])
            let failing = arrival(.inbound, url: "http://127.0.0.1:9/b", at: t0.addingTimeInterval(1), to: ["b@support.example"])
            let storeOnly = arrival(.inbound, at: t0, to: ["c@archive.example"])
            try await store.commitInbound([posted, failing, storeOnly])
            #expect(try await store.claimDueWebhooks(now: t0.addingTimeInterval(-1), limit: 10, leaseUntil: t0.addingTimeInterval(59)).isEmpty)
            #expect(
                try await store.claimDueWebhooks(now: t0.addingTimeInterval(5), limit: 10, leaseUntil: t0.addingTimeInterval(65)).map(\.id)
                    == [posted.id, failing.id])

            try await store.recordWebhookAttempt(posted.id, WebhookAttempt(at: t0, status: 200, error: nil, nextAttemptAt: nil))
            try await store.recordWebhookAttempt(
                failing.id, WebhookAttempt(at: t0, status: 503, error: "HTTP 503", nextAttemptAt: t0.addingTimeInterval(60)))
            #expect(try await store.claimDueWebhooks(now: t0.addingTimeInterval(59), limit: 10, leaseUntil: t0.addingTimeInterval(119)).isEmpty)
            let due = try await store.claimDueWebhooks(now: t0.addingTimeInterval(60), limit: 10, leaseUntil: t0.addingTimeInterval(120))
            #expect(due.map(\.id) == [failing.id])
            #expect(due.first?.content == failing.content && due.first?.webhookURL == "http://127.0.0.1:9/b")
            try await store.recordWebhookAttempt(failing.id, WebhookAttempt(at: t0, status: nil, error: "refused", nextAttemptAt: nil))
            // Delivered or given up: no longer due, and a late attempt changes nothing.
            try await store.recordWebhookAttempt(posted.id, WebhookAttempt(at: t0, status: 500, error: "late", nextAttemptAt: t0))
            #expect(
                try await store.claimDueWebhooks(
                    now: t0.addingTimeInterval(1_000_000), limit: 10, leaseUntil: t0.addingTimeInterval(1_000_060)
                ).isEmpty)

            let byID = Dictionary(uniqueKeysWithValues: try await store.inboundMessages(limit: 10, scope: .all).map { ($0.id, $0) })
            #expect(byID[posted.id.description]?.webhook?.state == "delivered")
            #expect(byID[posted.id.description]?.webhook?.lastStatus == 200)
            #expect(byID[failing.id.description]?.webhook?.state == "gave_up")
            #expect(byID[failing.id.description]?.webhook?.attempts == 2)
            #expect(byID[failing.id.description]?.webhook?.lastError == "refused")
            #expect(byID[storeOnly.id.description]?.webhook == nil)
            #expect(try await store.counters(in: .allTime, scope: .all).inbound == 3)
        }
    }

    @Test(arguments: StoreFactory.all)
    func sentRecipientsAreFoundByMessageID(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            var older = sampleMessage(recipients: 2, at: t0, header: "<shared@example.com>")
            older.fromDomain = "example.com"
            let newer = sampleMessage(recipients: 1, at: t0, header: "<shared@example.com>")
            try await store.commitAndWait([older, sampleMessage(recipients: 1, at: t0), newer])
            let found = try await store.recipients(messageIDHeader: "<shared@example.com>", limit: 10)
            #expect(Set(found.map(\.id)) == Set((older.recipients + newer.recipients).map(\.id)))
            #expect(found.first(where: { $0.messageID == older.id })?.fromDomain == "example.com")
            #expect(try await store.recipients(messageIDHeader: "<other@example.com>", limit: 10).isEmpty)
            #expect(try await store.recipients(messageIDHeader: "<shared@example.com>", limit: 2).count == 2)
        }
    }
}
