import Foundation
import Testing
import TernCore
import TernStoreSQLite
@testable import TernEngine

/// The report reader against a real store and the real parser: which recipient each
/// report is matched to, and what it leads to.
@Suite struct ReportReaderTests {
    static let keys = try! TrackingKeys(secrets: [[UInt8](repeating: 5, count: 32)])
    let book = InboundAddressBook(keys: ReportReaderTests.keys, returnPathDomains: ["bounces.shop.example"], feedbackAddresses: [], routes: [])
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    struct World {
        let store: SQLiteStore
        let reader: ReportReader
        let message: QueuedMessage
        let folder: String

        func verp(_ index: Int) -> String {
            let recipient = message.recipients[index]
            let token = ReportReaderTests.keys.addressToken(
                TrackingToken(kind: .bounce, messageID: message.id, recipientID: recipient.id))
            return "b-\(token)@bounces.shop.example"
        }
    }

    func world(recipients: [String] = ["alice@example.net", "bob@example.net"], messageID: String = "<order-1@shop.example>") async throws -> World {
        let (folder, path) = try temporaryStorePath()
        let store = try SQLiteStore(path: path)
        let message = QueuedMessage(
            id: .next(), messageIDHeader: messageID, mailFrom: "news@shop.example",
            recipients: recipients.map { QueuedRecipient(id: .next(), address: $0) },
            content: Array("Subject: x\r\n\r\nbody\r\n".utf8), credential: "app", clientIP: nil, receivedAt: at,
            eightBitMIME: false, smtpUTF8: false, fromDomain: "shop.example")
        try await store.commitAndWait([message])
        return World(store: store, reader: ReportReader(keys: Self.keys, addresses: book, store: store), message: message, folder: folder)
    }

    func arrival(to recipients: [String], _ content: String) -> InboundMessage {
        InboundMessage(
            id: .next(), receivedAt: at.addingTimeInterval(60), clientIP: "192.0.2.1", heloName: "mx.example.net", mailFrom: "",
            recipients: recipients, purpose: .report, webhookURL: nil, content: Array(content.utf8))
    }

    func dsn(for address: String, status: String, action: String = "failed", messageID: String = "order-1@shop.example",
             returnPath: String? = nil, diagnostic: String = "550 5.1.1 User unknown") -> String {
        let returned = (returnPath.map { "Return-Path: <\($0)>\r\n" } ?? "") + "Message-ID: <\(messageID)>\r\nSubject: x\r\n"
        return """
            From: MAILER-DAEMON@mx.example.net\r
            Subject: Undelivered Mail Returned to Sender\r
            MIME-Version: 1.0\r
            Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r
            \r
            --b\r
            Content-Type: text/plain\r
            \r
            Your message could not be delivered.\r
            --b\r
            Content-Type: message/delivery-status\r
            \r
            Reporting-MTA: dns; mx.example.net\r
            \r
            Final-Recipient: rfc822; \(address)\r
            Action: \(action)\r
            Status: \(status)\r
            Diagnostic-Code: smtp; \(diagnostic)\r
            \r
            --b\r
            Content-Type: text/rfc822-headers\r
            \r
            \(returned)\r
            --b--\r

            """
    }

    @Test func aBounceToTheVERPAddressFailsThatRecipientAndAHardOneSuppresses() async throws {
        let w = try await world()
        defer { try? FileManager.default.removeItem(atPath: w.folder) }
        // The DSN names bob, but it came to alice's VERP address and names one recipient:
        // VERP is per recipient, so it is alice's (a forwarded address bounced).
        let outcome = try await w.reader.read(arrival(to: [w.verp(0)], dsn(for: "forwarded@elsewhere.example", status: "5.1.1")))
        #expect(outcome.kind == "bounce")
        #expect(outcome.events.map(\.type) == [.failed])
        #expect(outcome.events.first?.recipientID == w.message.recipients[0].id)
        #expect(outcome.events.first?.details["async"] == "true")
        #expect(outcome.events.first?.details["bounce_class"] == "hard")
        #expect(outcome.suppressions.map { "\($0.address)|\($0.domain)" } == ["alice@example.net|"])
    }

    @Test func softBouncesAndDelaysSuppressNothing() async throws {
        let w = try await world()
        defer { try? FileManager.default.removeItem(atPath: w.folder) }
        let full = try await w.reader.read(arrival(to: [w.verp(1)], dsn(for: "bob@example.net", status: "5.2.2", diagnostic: "552 5.2.2 Mailbox full")))
        #expect(full.events.map(\.type) == [.failed] && full.events.first?.details["bounce_class"] == "soft")
        #expect(full.suppressions.isEmpty)
        let policy = try await w.reader.read(arrival(
            to: [w.verp(1)], dsn(for: "bob@example.net", status: "5.7.1", diagnostic: "554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org")))
        #expect(policy.suppressions.isEmpty)
        let delay = try await w.reader.read(arrival(to: [w.verp(1)], dsn(for: "bob@example.net", status: "4.4.1", action: "delayed")))
        #expect(delay.kind == "delay" && delay.events.map(\.type) == [.delayed] && delay.suppressions.isEmpty)
        #expect(delay.events.first?.recipientID == w.message.recipients[1].id)
    }

    @Test func withoutAVERPAddressTheReturnedHeadersMatch() async throws {
        let w = try await world()
        defer { try? FileManager.default.removeItem(atPath: w.folder) }
        // By the VERP address in the returned Return-Path.
        let byReturnPath = try await w.reader.read(arrival(
            to: ["postmaster@bounces.shop.example"], dsn(for: "someone@else.example", status: "5.1.1", returnPath: w.verp(1))))
        #expect(byReturnPath.events.first?.recipientID == w.message.recipients[1].id)
        // By Message-ID and the address the report names (either recipient of the message).
        let byMessageID = try await w.reader.read(arrival(to: ["postmaster@bounces.shop.example"], dsn(for: "Bob@Example.NET", status: "5.1.1")))
        #expect(byMessageID.events.map(\.type) == [.failed])
        #expect(byMessageID.events.first?.recipientID == w.message.recipients[1].id)
        // A Message-ID of ours but an address that is not among its recipients: unmatched.
        let wrongAddress = try await w.reader.read(arrival(to: ["postmaster@bounces.shop.example"], dsn(for: "carol@example.net", status: "5.1.1")))
        #expect(wrongAddress.events.map(\.type) == [.unmatchedReport] && wrongAddress.suppressions.isEmpty)
        // Nothing of ours at all.
        let stranger = try await w.reader.read(arrival(
            to: ["postmaster@bounces.shop.example"], dsn(for: "bob@example.net", status: "5.1.1", messageID: "other@elsewhere.example")))
        #expect(stranger.kind == "bounce" && stranger.events.map(\.type) == [.unmatchedReport])
        #expect(stranger.events.first?.recipientID == nil && stranger.events.first?.details["inbound_id"] != nil)
    }

    @Test func complaintsSuppressForTheSendingTenantUnlessNotSpam() async throws {
        let w = try await world(recipients: ["erin@example.net"])
        defer { try? FileManager.default.removeItem(atPath: w.folder) }
        func arf(_ type: String) -> String {
            """
            From: fbl@provider.example\r
            Subject: complaint\r
            MIME-Version: 1.0\r
            Content-Type: multipart/report; report-type=feedback-report; boundary="f"\r
            \r
            --f\r
            Content-Type: text/plain\r
            \r
            An abuse report.\r
            --f\r
            Content-Type: message/feedback-report\r
            \r
            Feedback-Type: \(type)\r
            User-Agent: ProviderFBL/1.0\r
            Version: 1\r
            \r
            --f\r
            Content-Type: message/rfc822\r
            \r
            Message-ID: <order-1@shop.example>\r
            To: redacted@provider.example\r
            Subject: x\r
            \r
            body\r
            --f--\r

            """
        }
        // Redacted recipient: the message's only recipient is the one.
        let abuse = try await w.reader.read(arrival(to: ["fbl@bounces.shop.example"], arf("abuse")))
        #expect(abuse.kind == "complaint" && abuse.events.map(\.type) == [.complaint])
        #expect(abuse.events.first?.recipientID == w.message.recipients[0].id && abuse.events.first?.details["feedback_type"] == "abuse")
        // A complaint stops the sending tenant's mail to the address, from every one of its domains.
        #expect(abuse.suppressions.map { "\($0.address)|\($0.domain)|\($0.tenant.map(\.description) ?? "global")" } == ["erin@example.net||1"])
        let notSpam = try await w.reader.read(arrival(to: ["fbl@bounces.shop.example"], arf("not-spam")))
        #expect(notSpam.events.map(\.type) == [.complaint] && notSpam.suppressions.isEmpty)
    }

    @Test func unsubscribeMailAutoRepliesAndNonReports() async throws {
        let w = try await world()
        defer { try? FileManager.default.removeItem(atPath: w.folder) }
        let recipient = w.message.recipients[0]
        let token = Self.keys.addressToken(TrackingToken(kind: .unsubscribe, messageID: w.message.id, recipientID: recipient.id))
        let leave = try await w.reader.read(arrival(to: ["unsubscribe+\(token)@bounces.shop.example"], "Subject: unsubscribe\r\n\r\n"))
        #expect(leave.kind == "unsubscribe" && leave.events.map(\.type) == [.unsubscribe])
        #expect(leave.events.first?.recipientID == recipient.id && leave.events.first?.details["method"] == "mailto")

        let reply = "From: alice@example.net\r\nSubject: Out of Office\r\nAuto-Submitted: auto-replied\r\n\r\nI am away until Monday.\r\n"
        let autoReply = try await w.reader.read(arrival(to: [w.verp(0)], reply))
        #expect(autoReply.kind == "auto_reply" && autoReply.events.map(\.type) == [.autoReply] && autoReply.suppressions.isEmpty)
        #expect(autoReply.events.first?.recipientID == recipient.id)

        let chat = try await w.reader.read(arrival(to: [w.verp(0)], "From: alice@example.net\r\nSubject: Re: your order\r\n\r\nThanks, it arrived!\r\n"))
        #expect(chat.kind == "unknown" && chat.events.map(\.type) == [.unmatchedReport])
    }
}
