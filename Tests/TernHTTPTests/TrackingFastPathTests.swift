import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Synchronization
import TernCore
import Testing
@testable import TernHTTP

@Suite struct TrackingFastPathTests {
    /// Keeps what the recorder writes; the fast path never reads the store.
    final class RecordingStore: EngagementStore {
        let events = Mutex<[EngagementEvent]>([])
        func links(of message: MessageID) async throws -> [String] { [] }
        func recordEngagement(_ events: [EngagementEvent]) async throws { self.events.withLock { $0 += events } }
        func recipientSummary(_ id: RecipientID) async throws -> RecipientSummary? { nil }
        func timeline(of message: MessageID) async throws -> [TimelineEvent] { [] }
    }

    struct Fixture {
        let store = RecordingStore()
        let keys: TrackingKeys
        let recorder: EngagementRecorder
        let links: LinkTable
        let routes: TrackingRoutes
        let message: MessageID
        let recipient: RecipientID
        let channel: EmbeddedChannel

        init() throws {
            keys = try TrackingKeys(secrets: [[UInt8](repeating: 7, count: 32)])
            recorder = EngagementRecorder(store: store, logger: Logger(label: "test"))
            links = LinkTable(store: store)
            routes = TrackingRoutes(keys: keys, classifier: EngagementClassifier(), recorder: recorder, links: links, store: store)
            // Accepted an hour ago: engagement now is not "too fast after delivery".
            let ids = TimeOrderedID()
            let anHourAgo = Int64(Date().addingTimeInterval(-3600).timeIntervalSince1970 * 1000)
            message = MessageID(rawValue: ids.next(nowMilliseconds: anHourAgo))
            recipient = RecipientID(rawValue: ids.next(nowMilliseconds: anHourAgo))
            channel = EmbeddedChannel(handler: TrackingFastPath(routes: routes, serverName: "Tern"))
            let client = try SocketAddress(ipAddress: "192.0.2.7", port: 40_000)
            channel.connect(to: client, promise: nil)
            channel.remoteAddress = client
        }

        func token(_ kind: TrackingTokenKind, link: Int = 0) -> String {
            keys.token(TrackingToken(kind: kind, messageID: message, recipientID: recipient, linkIndex: link))
        }

        func recorded() async -> [EngagementEvent] {
            await recorder.flush()
            return store.events.withLock { $0 }
        }

        /// Sends a whole request (head and end).
        func send(_ method: HTTPRequest.Method, _ path: String, _ fields: HTTPFields = [:]) throws {
            let head = HTTPRequest(method: method, scheme: "http", authority: "t.example", path: path, headerFields: fields)
            try channel.writeInbound(HTTPRequestPart.head(head))
            try channel.writeInbound(HTTPRequestPart.end(nil))
        }

        /// The response written on the channel: head, body bytes, and whether an end followed.
        func response() throws -> (head: HTTPResponse, body: [UInt8], ended: Bool)? {
            guard case .head(let head) = try channel.readOutbound(as: HTTPResponsePart.self) else { return nil }
            var body: [UInt8] = []
            while let part = try channel.readOutbound(as: HTTPResponsePart.self) {
                switch part {
                case .body(let buffer): body += buffer.readableBytesView
                case .end: return (head, body, true)
                case .head: Issue.record("a second head")
                }
            }
            return (head, body, false)
        }

        /// The request parts handed on to Hummingbird.
        func forwarded() throws -> [HTTPRequestPart] {
            var parts: [HTTPRequestPart] = []
            while let part = try channel.readInbound(as: HTTPRequestPart.self) { parts.append(part) }
            return parts
        }
    }

    static let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

    @Test func openAnswersThePixelOnTheEventLoopAndRecordsIt() async throws {
        let fixture = try Fixture()
        try fixture.send(.get, "/o/\(fixture.token(.open))?utm=x", [.userAgent: Self.firefox])
        let response = try #require(try fixture.response())
        #expect(response.head.status == .ok)
        #expect(response.head.headerFields[.contentType] == "image/gif")
        #expect(response.head.headerFields[.contentLength] == "43")
        #expect(response.head.headerFields[.cacheControl] == "no-cache, no-store, must-revalidate, private, max-age=0")
        #expect(response.head.headerFields[.server] == "Tern")
        #expect(response.head.headerFields[.date] != nil)
        #expect(response.head.headerFields[.connection] == nil)
        #expect(response.body == TrackingRoutes.pixel && response.ended)
        #expect(try fixture.forwarded().isEmpty)
        #expect(fixture.channel.isActive)
        let events = await fixture.recorded()
        #expect(events.count == 1)
        #expect(events.first?.type == .open && events.first?.recipientID == fixture.recipient)
        #expect(events.first?.details["reason"] == "human")
        #expect(events.first?.details["ip"] == "192.0.2.7")
        #expect(events.first?.details["user_agent"] == Self.firefox)
    }

    @Test func headHasTheHeadersButNoBody() async throws {
        let fixture = try Fixture()
        try fixture.send(.head, "/o/\(fixture.token(.open))", [.userAgent: Self.firefox])
        let response = try #require(try fixture.response())
        #expect(response.head.status == .ok && response.head.headerFields[.contentLength] == "43")
        #expect(response.body.isEmpty && response.ended)
        let events = await fixture.recorded()
        #expect(events.map { $0.details["method"] } == ["HEAD"])
        #expect(events.first?.details["reason"] == "scanner_head")
    }

    @Test(arguments: ["/o/AAAA", "/c/AAAA", "/o/", "CLICK_AS_OPEN"])
    func aBadTokenIsNotFound(path: String) async throws {
        let fixture = try Fixture()
        fixture.links.remember(["https://shop.example/a"], of: fixture.message)
        let path = path == "CLICK_AS_OPEN" ? "/o/\(fixture.token(.click))" : path
        try fixture.send(.get, path)
        if path == "/o/" {  // not a token path at all: the router's 404
            #expect(try fixture.forwarded().count == 2)
            return
        }
        let response = try #require(try fixture.response())
        #expect(response.head.status == .notFound)
        #expect(response.head.headerFields[.location] == nil)
        #expect(String(decoding: response.body, as: UTF8.self) == "This link is not known.")
        #expect(await fixture.recorded().isEmpty)
    }

    @Test func clickOnAHeldLinkRedirects() async throws {
        let fixture = try Fixture()
        fixture.links.remember(["https://shop.example/a", "https://shop.example/b?q=a b"], of: fixture.message)
        try fixture.send(.get, "/c/\(fixture.token(.click, link: 1))", [.userAgent: Self.firefox])
        let response = try #require(try fixture.response())
        #expect(response.head.status == .found)
        #expect(response.head.headerFields[.location] == "https://shop.example/b?q=a%20b")
        #expect(response.head.headerFields[.cacheControl] == "no-store")
        #expect(response.body.isEmpty && response.ended)
        let events = await fixture.recorded()
        #expect(events.map(\.type) == [.click])
        #expect(events.first?.details["url"] == "https://shop.example/b?q=a b" && events.first?.details["link"] == "1")

        // A link index the message does not have.
        try fixture.send(.get, "/c/\(fixture.token(.click, link: 2))")
        #expect(try fixture.response()?.head.status == .notFound)
    }

    @Test func clickOnALinkNotHeldGoesToTheRouter() async throws {
        let fixture = try Fixture()
        try fixture.send(.get, "/c/\(fixture.token(.click))")
        let parts = try fixture.forwarded()
        #expect(parts.count == 2)
        guard case .head(let head) = parts.first else { Issue.record("no head"); return }
        #expect(head.path == "/c/\(fixture.token(.click))")
        #expect(try fixture.channel.readOutbound(as: HTTPResponsePart.self) == nil)
        #expect(await fixture.recorded().isEmpty)
    }

    @Test func requestsAfterAnUnansweredOneWaitForTheRouterInOrder() async throws {
        let fixture = try Fixture()
        try fixture.send(.get, "/c/\(fixture.token(.click))")  // not held: the router answers
        try fixture.send(.get, "/o/\(fixture.token(.open))")  // must not overtake it
        #expect(try fixture.forwarded().count == 4)
        #expect(try fixture.channel.readOutbound(as: HTTPResponsePart.self) == nil)

        // The router answers both, in order; afterwards requests are answered here again.
        for _ in 0..<2 {
            try fixture.channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
            try fixture.channel.writeOutbound(HTTPResponsePart.end(nil))
        }
        #expect(try fixture.response()?.head.status == .ok)
        #expect(try fixture.response()?.head.status == .ok)
        try fixture.send(.get, "/o/\(fixture.token(.open))")
        #expect(try fixture.forwarded().isEmpty)
        #expect(try fixture.response()?.head.headerFields[.contentType] == "image/gif")
    }

    @Test(arguments: [
        (HTTPRequest.Method.get, "/api/v1/messages"), (.get, "/healthz"), (.get, "/u/AAAA"), (.post, "/o/AAAA"),
        (.options, "/c/AAAA"), (.get, "/ox/AAAA"),
    ])
    func otherRequestsPassThrough(method: HTTPRequest.Method, path: String) throws {
        let fixture = try Fixture()
        let head = HTTPRequest(method: method, scheme: "http", authority: "t.example", path: path)
        try fixture.channel.writeInbound(HTTPRequestPart.head(head))
        try fixture.channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: "x=1")))
        try fixture.channel.writeInbound(HTTPRequestPart.end(nil))
        let parts = try fixture.forwarded()
        #expect(parts.count == 3)
        if case .head(let forwarded) = parts.first { #expect(forwarded == head) } else { Issue.record("no head") }
        #expect(try fixture.channel.readOutbound(as: HTTPResponsePart.self) == nil)
    }

    @Test func aBodyOfAnAnsweredRequestIsConsumed() throws {
        let fixture = try Fixture()
        let head = HTTPRequest(method: .get, scheme: "http", authority: "t.example", path: "/o/\(fixture.token(.open))")
        try fixture.channel.writeInbound(HTTPRequestPart.head(head))
        try fixture.channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: "ignored")))
        try fixture.channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try fixture.forwarded().isEmpty)
        #expect(try fixture.response()?.head.status == .ok)
    }

    @Test func connectionCloseClosesAfterTheResponse() throws {
        let fixture = try Fixture()
        try fixture.send(.get, "/o/\(fixture.token(.open))", [.connection: "close"])
        let response = try #require(try fixture.response())
        #expect(response.head.headerFields[.connection] == "close" && response.ended)
        fixture.channel.embeddedEventLoop.run()
        #expect(!fixture.channel.isActive)
    }

    @Test(arguments: [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"), (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (951_825_600, "Tue, 29 Feb 2000 12:00:00 GMT"), (4_102_444_799, "Thu, 31 Dec 2099 23:59:59 GMT"),
    ])
    func httpDate(seconds: Int, expected: String) {
        #expect(HTTPDateCache.imfFixdate(secondsSince1970: seconds) == expected)
    }
}
