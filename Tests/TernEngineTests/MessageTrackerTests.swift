import Foundation
import Logging
import Synchronization
import Testing
import TernCore
@testable import TernEngine

@Suite struct MessageTrackerTests {
    static let keys = try! TrackingKeys(secrets: [[UInt8](repeating: 3, count: 32)])

    final class Remembered: Sendable {
        let links = Mutex<[MessageID: [String]]>([:])
    }

    func tracker(_ features: TrackingFeatures, perCredential: [String: TrackingFeatures] = [:], links: Remembered? = nil) -> MessageTracker {
        MessageTracker(
            configuration: MessageTracker.Configuration(
                defaultFeatures: features, perCredential: perCredential, publicURL: "https://t.example/"),
            keys: Self.keys, logger: Logger(label: "test"),
            rememberLinks: { message, targets in links?.links.withLock { $0[message] = targets } })
    }

    func message(_ content: String, recipients: [String] = ["a@example.net", "b@example.net"], credential: String? = "app") -> QueuedMessage {
        QueuedMessage(
            id: .next(), messageIDHeader: "<m@t>", mailFrom: "bounce@envelope.example",
            recipients: recipients.map { QueuedRecipient(id: .next(), address: $0) },
            content: Array(content.utf8), credential: credential, clientIP: nil, receivedAt: Date(),
            eightBitMIME: false, smtpUTF8: false)
    }

    static let html = """
        From: News <news@News.Example>\r
        To: a@example.net\r
        Subject: hello\r
        MIME-Version: 1.0\r
        Content-Type: text/html; charset=utf-8\r
        \r
        <html><body><p><a href="https://shop.example/a">A</a> <a href="mailto:x@y">mail</a></p>\r
        <p><a href="{{unsubscribe_url}}">unsubscribe</a></p></body></html>\r

        """

    func text(_ message: QueuedMessage) -> String { String(decoding: message.content, as: UTF8.self) }

    @Test func untrackedMessagesKeepTheirBytesAndGetTheirSendingDomain() {
        let original = message(Self.html)
        let result = tracker([]).track(original)
        #expect(result.count == 1)
        #expect(result[0].content == original.content)
        #expect(result[0].recipients == original.recipients)
        #expect(result[0].fromDomain == "news.example")
        // No From: the envelope's domain.
        #expect(tracker([]).track(message("Subject: x\r\n\r\nbody\r\n"))[0].fromDomain == "envelope.example")
    }

    @Test func eachRecipientGetsItsOwnTrackedCopy() throws {
        let remembered = Remembered()
        let original = message(Self.html)
        let copies = tracker(.all, links: remembered).track(original)
        #expect(copies.count == 2)
        #expect(copies[0].id == original.id)
        #expect(copies[1].id != original.id)
        #expect(copies.map(\.recipients) == original.recipients.map { [$0] })
        for copy in copies {
            let content = text(copy)
            let recipient = copy.recipients[0].id
            let open = Self.keys.token(TrackingToken(kind: .open, messageID: copy.id, recipientID: recipient))
            let click = Self.keys.token(TrackingToken(kind: .click, messageID: copy.id, recipientID: recipient, linkIndex: 0))
            let unsubscribe = Self.keys.token(TrackingToken(kind: .unsubscribe, messageID: copy.id, recipientID: recipient))
            #expect(content.contains("https://t.example/o/\(open)"))
            #expect(content.contains("href=\"https://t.example/c/\(click)\""))
            #expect(content.contains("href=\"mailto:x@y\""))
            #expect(!content.contains("https://shop.example/a"))
            #expect(!content.contains("{{unsubscribe_url}}"))
            #expect(content.contains("List-Unsubscribe: <https://t.example/u/\(unsubscribe)>"))
            let mailbox = Self.keys.addressToken(TrackingToken(kind: .unsubscribe, messageID: copy.id, recipientID: recipient))
            #expect(content.contains("<mailto:unsubscribe+\(mailbox)@bounces.news.example>"))
            #expect(content.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"))
            #expect(copy.links == ["https://shop.example/a"])
            #expect(copy.fromDomain == "news.example")
        }
        #expect(remembered.links.withLock { $0 } == [copies[0].id: ["https://shop.example/a"], copies[1].id: ["https://shop.example/a"]])
    }

    @Test func theControlHeaderChoosesAndIsRemoved() {
        let withHeader = Self.html.replacingOccurrences(of: "Subject: hello\r\n", with: "Subject: hello\r\nX-Tern-Track: opens\r\n")
        let copies = tracker([]).track(message(withHeader))
        #expect(copies.count == 2)
        for copy in copies {
            let content = text(copy)
            #expect(!content.lowercased().contains("x-tern-track"))
            #expect(content.contains("https://t.example/o/"))
            #expect(content.contains("href=\"https://shop.example/a\""))
            #expect(!content.contains("List-Unsubscribe:"))
            #expect(copy.links.isEmpty)
        }
        // `none` turns off what the configuration turns on; the header still goes.
        let none = Self.html.replacingOccurrences(of: "Subject: hello\r\n", with: "Subject: hello\r\nx-tern-track: none\r\n")
        let untracked = tracker(.all).track(message(none))
        #expect(untracked.count == 1)
        #expect(!text(untracked[0]).lowercased().contains("x-tern-track"))
        #expect(text(untracked[0]).contains("href=\"https://shop.example/a\""))
        // An unknown word is ignored (the defaults apply) and the header removed.
        let bad = Self.html.replacingOccurrences(of: "Subject: hello\r\n", with: "Subject: hello\r\nX-Tern-Track: sometimes\r\n")
        let defaults = tracker([]).track(message(bad))
        #expect(defaults.count == 1 && !text(defaults[0]).contains("X-Tern-Track"))
    }

    @Test func perCredentialDefaults() {
        let tracked = tracker([], perCredential: ["marketing": [.clicks]])
        #expect(tracked.track(message(Self.html, credential: "marketing")).count == 2)
        #expect(tracked.track(message(Self.html, credential: "transactional")).count == 1)
        #expect(tracked.track(message(Self.html, credential: nil)).count == 1)
    }

    @Test func aMessagesOwnListUnsubscribeIsKept() {
        let own = Self.html.replacingOccurrences(
            of: "Subject: hello\r\n", with: "Subject: hello\r\nList-Unsubscribe: <mailto:leave@news.example>\r\n")
        let copies = tracker([.unsubscribe]).track(message(own, recipients: ["a@example.net"]))
        let content = text(copies[0])
        #expect(content.components(separatedBy: "List-Unsubscribe:").count == 2)
        #expect(content.contains("List-Unsubscribe: <mailto:leave@news.example>"))
        #expect(!content.contains("List-Unsubscribe-Post"))
        // The placeholder is still filled.
        #expect(content.contains("https://t.example/u/"))
    }
}
