import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
import TernCore
@testable import TernHTTP
import TernStoreSQLite

@Suite struct TrackingRoutesTests {
    struct Fixture {
        var store: SQLiteStore
        var keys: TrackingKeys
        var recorder: EngagementRecorder
        var message: QueuedMessage

        func token(_ kind: TrackingTokenKind, recipient: Int = 0, link: Int = 0) -> String {
            keys.token(TrackingToken(kind: kind, messageID: message.id, recipientID: message.recipients[recipient].id, linkIndex: link))
        }

        /// Writes what the endpoints recorded, then reads the counters.
        func counters() async throws -> Counters {
            await recorder.flush()
            return try await store.counters(in: .allTime, scope: .all)
        }
    }

    static let secret = [UInt8](repeating: 7, count: 32)

    func withTracking(_ body: @escaping @Sendable (any TestClientProtocol, Fixture) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tern-tracking-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: folder + "/tern.sqlite")
        // Accepted an hour ago: engagement now is not "too fast after delivery".
        let ids = TimeOrderedID()
        let anHourAgo = Int64(Date().addingTimeInterval(-3600).timeIntervalSince1970 * 1000)
        let message = QueuedMessage(
            id: MessageID(rawValue: ids.next(nowMilliseconds: anHourAgo)), messageIDHeader: "<1@t>", mailFrom: "news@news.example",
            recipients: [
                QueuedRecipient(id: RecipientID(rawValue: ids.next(nowMilliseconds: anHourAgo)), address: "Reader@Example.NET"),
                QueuedRecipient(id: RecipientID(rawValue: ids.next(nowMilliseconds: anHourAgo)), address: "other@example.net"),
            ],
            content: Array("Subject: hi\r\n\r\nbody\r\n".utf8), credential: "app", clientIP: nil, receivedAt: Date(),
            eightBitMIME: false, smtpUTF8: false, fromDomain: "news.example",
            links: ["https://shop.example/a?x=1&y=2", "http://shop.example/b"])
        try await store.commitAndWait([message])
        let keys = try TrackingKeys(secrets: [Self.secret])
        let recorder = EngagementRecorder(store: store, logger: Logger(label: "test"))
        let routes = TrackingRoutes(
            keys: keys, classifier: EngagementClassifier(), recorder: recorder, links: LinkTable(store: store), store: store)
        let router = TernAPI(store: store, credentials: CredentialDirectory(store: store)).buildRouter()
        routes.add(to: router)
        try await Application(router: router).test(.router) { client in
            try await body(client, Fixture(store: store, keys: keys, recorder: recorder, message: message))
        }
        try await store.close()
    }

    static let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

    @Test func openAnswersAPixelAndRecordsAnOpen() async throws {
        try await withTracking { client, fixture in
            try await client.execute(uri: "/o/\(fixture.token(.open))", method: .get, headers: [.userAgent: Self.firefox]) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "image/gif")
                #expect(response.headers[.cacheControl]?.contains("no-store") == true)
                #expect(response.body.readableBytes == 43)
                #expect(response.body.getString(at: response.body.readerIndex, length: 6) == "GIF89a")
            }
            // A scanner's HEAD is counted, as a machine open.
            try await client.execute(uri: "/o/\(fixture.token(.open, recipient: 1))", method: .head, headers: [.userAgent: Self.firefox]) { response in
                #expect(response.status == .ok)
            }
            let counters = try await fixture.counters()
            #expect(counters.opens == 2 && counters.uniqueOpens == 2 && counters.humanOpens == 1)
            let timeline = try await fixture.store.timeline(of: fixture.message.id).filter { $0.type == .open }
            #expect(timeline.map { $0.details["reason"] } == ["human", "scanner_head"])
            #expect(timeline.first?.details["user_agent"] == Self.firefox)
        }
    }

    @Test func clickRedirectsToTheStoredTarget() async throws {
        try await withTracking { client, fixture in
            try await client.execute(uri: "/c/\(fixture.token(.click, link: 0))", method: .get, headers: [.userAgent: Self.firefox]) { response in
                #expect(response.status == .found)
                #expect(response.headers[.location] == "https://shop.example/a?x=1&y=2")
            }
            try await client.execute(uri: "/c/\(fixture.token(.click, recipient: 1, link: 1))", method: .get, headers: [.userAgent: "python-requests/2.32"]) { response in
                #expect(response.headers[.location] == "http://shop.example/b")
            }
            // A link index the message does not have.
            try await client.execute(uri: "/c/\(fixture.token(.click, link: 2))", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.location] == nil)
            }
            let counters = try await fixture.counters()
            #expect(counters.clicks == 2 && counters.humanClicks == 1 && counters.uniqueClicks == 2)
            let clicks = try await fixture.store.timeline(of: fixture.message.id).filter { $0.type == .click }
            #expect(clicks.map { $0.details["url"] } == ["https://shop.example/a?x=1&y=2", "http://shop.example/b"])
            #expect(clicks.map { $0.details["link"] } == ["0", "1"])
        }
    }

    /// Nothing taken from a request whose token does not verify: 404, no redirect, no event.
    @Test(arguments: ["forged", "truncated", "altered", "wrongKind", "otherSecret", "empty"])
    func badTokensAreNotFound(_ kind: String) async throws {
        try await withTracking { client, fixture in
            let good = fixture.token(.click, link: 1)
            let token: String
            switch kind {
            case "forged": token = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            case "truncated": token = String(good.dropLast(3))
            case "altered":
                var characters = Array(good)
                characters[characters.count / 2] = characters[characters.count / 2] == "A" ? "B" : "A"
                token = String(characters)
            case "wrongKind": token = fixture.token(.bounce)
            case "otherSecret":
                token = try TrackingKeys(secrets: [[UInt8](repeating: 9, count: 32)]).token(
                    TrackingToken(kind: .click, messageID: fixture.message.id, recipientID: fixture.message.recipients[0].id, linkIndex: 1))
            default: token = "%20"
            }
            for path in ["/c/\(token)", "/o/\(token)", "/u/\(token)"] {
                try await client.execute(uri: path, method: .get) { response in
                    #expect(response.status == .notFound, "\(path)")
                    #expect(response.headers[.location] == nil)
                }
            }
            try await client.execute(uri: "/u/\(token)", method: .post) { response in
                #expect(response.status == .notFound)
            }
            let counters = try await fixture.counters()
            #expect(counters.opens == 0 && counters.clicks == 0 && counters.unsubscribes == 0)
        }
    }

    @Test func unsubscribePageThenOneClickPost() async throws {
        try await withTracking { client, fixture in
            let path = "/u/\(fixture.token(.unsubscribe))"
            try await client.execute(uri: path, method: .get) { response in
                #expect(response.status == .ok)
                let page = String(buffer: response.body)
                #expect(page.contains("Reader@Example.NET"))
                #expect(page.contains("news.example"))
                #expect(page.contains("method=\"post\""))
            }
            // Fetching the page (as a scanner does) changes nothing.
            #expect(try await fixture.counters().unsubscribes == 0)
            #expect(try await fixture.store.suppressions(scope: .all).isEmpty)
            for _ in 0..<2 {
                try await client.execute(
                    uri: path, method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                    body: ByteBuffer(string: "List-Unsubscribe=One-Click")
                ) { response in
                    #expect(response.status == .ok)
                    #expect(String(buffer: response.body).contains("unsubscribed"))
                }
            }
            #expect(try await fixture.counters().unsubscribes == 1)
            let suppressions = try await fixture.store.suppressions(scope: .all)
            #expect(suppressions.map { "\($0.address) \($0.domain) \($0.reason)" } == ["reader@example.net news.example unsubscribed"])
            let unsubscribe = try await fixture.store.timeline(of: fixture.message.id).first { $0.type == .unsubscribe }
            #expect(unsubscribe?.details["method"] == "one-click")
        }
    }

    @Test func messageTimelineThroughTheAPI() async throws {
        try await withTracking { client, fixture in
            let (credential, issued) = try Credential.issue(name: "api", networks: [], hasher: SecretHasher(rounds: 1 << 10))
            try await fixture.store.addCredential(credential)
            let auth: HTTPFields = [.authorization: "Bearer \(issued.apiKey)"]
            try await client.execute(uri: "/o/\(fixture.token(.open))", method: .get, headers: [.userAgent: Self.firefox]) { _ in }
            await fixture.recorder.flush()
            try await client.execute(uri: "/api/v1/messages/\(fixture.message.id)", method: .get, headers: auth) { response in
                #expect(response.status == .ok)
                let view = try JSONDecoder().decode(MessageView.self, from: Data(buffer: response.body))
                #expect(view.id == fixture.message.id.description)
                #expect(view.recipients.map(\.address) == ["Reader@Example.NET", "other@example.net"])
                #expect(view.recipients[0].events.map(\.type) == ["outbound", "open"])
                #expect(view.recipients[0].events.last?.details["reason"] == "human")
                #expect(view.recipients[1].events.map(\.type) == ["outbound"])
            }
            try await client.execute(uri: "/api/v1/messages/\(MessageID.random())", method: .get, headers: auth) { response in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: "/api/v1/messages/nonsense", method: .get, headers: auth) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/api/v1/messages/\(fixture.message.id)", method: .get) { response in
                #expect(response.status == .unauthorized)
            }
        }
    }
}

@Suite struct LocationValueTests {
    @Test(arguments: [
        ("https://shop.example/a?x=1&y=2#top", "https://shop.example/a?x=1&y=2#top"),
        ("https://shop.example/p?q=<b>&n=\"1\"", "https://shop.example/p?q=%3Cb%3E&n=%221%22"),
        ("https://shop.example/a b", "https://shop.example/a%20b"),
        ("https://shop.example/\r\nSet-Cookie: x=1", "https://shop.example/%0D%0ASet-Cookie:%20x=1"),
        ("https://shop.example/caf\u{e9}", "https://shop.example/caf%C3%A9"),
        ("https://shop.example/already%20encoded", "https://shop.example/already%20encoded"),
    ])
    func linksBecomeSafeLocationValues(_ link: String, _ expected: String) {
        #expect(TrackingRoutes.locationValue(link) == expected)
    }
}
