import Foundation
import Logging
import NIOCore
import SMTPCore
import SMTPNIO
import Testing
import TernCore
import TernStoreSQLite
@testable import TernEngine

@Suite struct InboundAddressBookTests {
    static let keys = try! TrackingKeys(secrets: [[UInt8](repeating: 7, count: 32)])
    static let otherKeys = try! TrackingKeys(secrets: [[UInt8](repeating: 8, count: 32)])
    static let message = MessageID(rawValue: 0x1234_5678_9abc)
    static let recipient = RecipientID(rawValue: 0x1234_5678_9abd)

    static var bounce: TrackingToken { TrackingToken(kind: .bounce, messageID: message, recipientID: recipient) }
    static var unsubscribe: TrackingToken { TrackingToken(kind: .unsubscribe, messageID: message, recipientID: recipient) }

    let book = InboundAddressBook(
        keys: InboundAddressBookTests.keys, returnPathDomains: ["rp.example.com"], feedbackAddresses: ["FBL-Yahoo@Example.com"],
        routes: [
            .init(pattern: "support@example.org", webhookURL: "https://app.example/support"),
            .init(pattern: "example.org", webhookURL: "https://app.example/all"),
            .init(pattern: "*.example.net", webhookURL: nil),
        ])

    @Test func tokensNameTheirRecipientAtAnyDomainAndInAnyCase() {
        let verp = "b-" + Self.keys.addressToken(Self.bounce)
        #expect(book.destination(of: verp + "@bounces.anything.example") == .bounce(Self.bounce))
        #expect(book.destination(of: verp.uppercased() + "@BOUNCES.ANYTHING.EXAMPLE") == .bounce(Self.bounce))
        let leave = "unsubscribe+" + Self.keys.addressToken(Self.unsubscribe)
        #expect(book.destination(of: leave + "@bounces.news.example") == .unsubscribe(Self.unsubscribe))
    }

    @Test func forgedOrMisusedTokensAreNotOurs() {
        // Another server's secret, a token of the wrong kind, a damaged token: refused at
        // a foreign domain, read as a report (matched by content) at a return-path domain.
        let foreign = "b-" + Self.otherKeys.addressToken(Self.bounce)
        let wrongKind = "b-" + Self.keys.addressToken(Self.unsubscribe)
        let wrongKindUnsubscribe = "unsubscribe+" + Self.keys.addressToken(Self.bounce)
        var damaged = Array(("b-" + Self.keys.addressToken(Self.bounce)).utf8)
        damaged[5] = damaged[5] == UInt8(ascii: "a") ? UInt8(ascii: "b") : UInt8(ascii: "a")
        for local in [foreign, wrongKind, wrongKindUnsubscribe, String(decoding: damaged, as: UTF8.self)] {
            #expect(book.destination(of: local + "@bounces.elsewhere.example") == nil, "\(local)")
            #expect(book.destination(of: local + "@rp.example.com") == .bounce(nil), "\(local)")
        }
    }

    @Test(arguments: [
        ("fbl@rp.example.com", InboundAddressBook.Destination.feedback),
        ("FBL@RP.example.com", .feedback),
        ("fbl-yahoo@example.com", .feedback),
        ("postmaster@rp.example.com", .bounce(nil)),
        ("support@example.org", .inbound(.init(pattern: "support@example.org", webhookURL: "https://app.example/support"))),
        ("Sales@Example.ORG", .inbound(.init(pattern: "example.org", webhookURL: "https://app.example/all"))),
        ("x@eu.mail.example.net", .inbound(.init(pattern: "*.example.net", webhookURL: nil))),
    ])
    func configuredAddresses(address: String, expected: InboundAddressBook.Destination) {
        #expect(book.destination(of: address) == expected)
    }

    /// No open relay: nothing else is taken.
    @Test(arguments: [
        "someone@gmail.example", "fbl@example.com", "x@example.net", "x@sub.example.org", "support@example.org.evil.example",
        "x@rp.example.com.evil.example", "no-at-sign", "b-@bounces.example.com", "unsubscribe+@bounces.example.com",
    ])
    func everythingElseIsRefused(address: String) {
        #expect(book.destination(of: address) == nil)
    }

    @Test func rateLimiterRefillsPerClient() {
        let limiter = ClientRateLimiter(ratePerMinute: 3, maxClients: 2)
        let start = ContinuousClock.now
        #expect((0..<4).map { _ in limiter.take("192.0.2.1", now: start) } == [true, true, true, false])
        #expect(limiter.take("192.0.2.2", now: start))
        // One token back every 20 seconds.
        #expect(!limiter.take("192.0.2.1", now: start + .seconds(19)))
        #expect(limiter.take("192.0.2.1", now: start + .seconds(40)))
        // A third client pushes out the least recently seen one, which starts again full.
        #expect(limiter.take("192.0.2.3", now: start + .seconds(41)))
        #expect((0..<3).allSatisfy { _ in limiter.take("192.0.2.2", now: start + .seconds(42)) })
    }

    @Test func intakeSplitsATransactionByPurposeAndRouteWithTraceFields() throws {
        let intake = InboundIntake(
            addresses: book, store: try SQLiteStore(path: temporaryStorePath().path), hostname: "mx.tern.test", rateLimiter: nil,
            logger: Logger(label: "test"))
        let verp = "b-" + Self.keys.addressToken(Self.bounce) + "@bounces.news.example"
        let received = SMTPReceivedMessage(
            clientAddress: try SocketAddress(ipAddress: "192.0.2.9", port: 4000), heloName: "mta.example.net",
            protocolName: "ESMTP", tls: false, identity: nil, reversePath: .null,
            recipients: [verp, "support@example.org", "fbl@rp.example.com", "other@example.org", "nobody@else.example", "Postmaster"]
                .map(SMTPMailbox.init(validated:)),
            eightBitMIME: false, smtpUTF8: false, content: ByteBuffer(string: "Subject: hi\r\n\r\nbody\r\n"))
        let messages = intake.inboundMessages(received, now: Date(timeIntervalSince1970: 1_800_000_000))
        #expect(messages.map(\.purpose) == [.report, .inbound, .inbound])
        #expect(messages.map(\.recipients) == [[verp, "fbl@rp.example.com"], ["support@example.org"], ["other@example.org"]])
        #expect(messages.map(\.webhookURL) == [nil, "https://app.example/support", "https://app.example/all"])
        #expect(Set(messages.map(\.id)).count == 3)
        for message in messages {
            let text = String(decoding: message.content, as: UTF8.self)
            #expect(text.hasPrefix("Return-Path: <>\r\nReceived: from mta.example.net ([192.0.2.9])\r\n\tby mx.tern.test (Tern) with ESMTP id \(message.id)"))
            #expect(text.hasSuffix("\r\nSubject: hi\r\n\r\nbody\r\n"))
            #expect(message.clientIP == "192.0.2.9" && message.heloName == "mta.example.net")
        }
        #expect(String(decoding: messages[1].content, as: UTF8.self).contains("\tfor <support@example.org>;"))
    }

    @Test func verpSenderNamesTheRecipientAtItsReturnPathDomain() {
        let verp = VERPReturnPath(keys: Self.keys, returnPaths: ReturnPaths(overrides: ["News.Example": "RP.News.Example"]))
        func due(_ mailFrom: String, fromDomain: String) -> DueRecipient {
            DueRecipient(
                id: Self.recipient, messageID: Self.message, address: "a@example.net", mailFrom: mailFrom, attempts: 0,
                queuedAt: Date(), nextAttemptAt: Date(), eightBitMIME: false, smtpUTF8: false, size: 10, fromDomain: fromDomain)
        }
        let token = Self.keys.addressToken(Self.bounce)
        #expect(verp.envelopeSender(for: due("app@news.example", fromDomain: "news.example"))
            == .mailbox(SMTPMailbox(localPart: "b-\(token)", domain: "rp.news.example")))
        #expect(verp.envelopeSender(for: due("app@shop.example", fromDomain: "shop.example")).description == "b-\(token)@bounces.shop.example")
        // No From domain: the envelope's domain.
        #expect(verp.envelopeSender(for: due("app@Env.Example", fromDomain: "")).description == "b-\(token)@bounces.env.example")
        // The null reverse path stays null; one without a domain stays as it is.
        #expect(verp.envelopeSender(for: due("", fromDomain: "news.example")) == .null)
        #expect(verp.envelopeSender(for: due("postmaster", fromDomain: "")) == .mailbox(SMTPMailbox(localPart: "postmaster", domain: nil)))
        #expect(InboundAddressBook(keys: Self.keys, returnPathDomains: [], feedbackAddresses: [], routes: [])
            .destination(of: verp.envelopeSender(for: due("app@news.example", fromDomain: "news.example")).description) == .bounce(Self.bounce))
    }
}
