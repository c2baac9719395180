import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
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
        func send(
            _ method: HTTPMethod, _ path: String, _ headers: HTTPHeaders = ["Host": "t.example"], version: HTTPVersion = .http1_1
        ) throws {
            let head = HTTPRequestHead(version: version, method: method, uri: path, headers: headers)
            try channel.writeInbound(HTTPServerRequestPart.head(head))
            try channel.writeInbound(HTTPServerRequestPart.end(nil))
        }

        /// The response written on the channel: head, body bytes, and whether an end followed.
        func response() throws -> (head: HTTPResponseHead, body: [UInt8], ended: Bool)? {
            guard case .head(let head) = try channel.readOutbound(as: HTTPServerResponsePart.self) else { return nil }
            var body: [UInt8] = []
            while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) {
                switch part {
                case .body(.byteBuffer(let buffer)): body += buffer.readableBytesView
                case .body(.fileRegion): Issue.record("a file region")
                case .end: return (head, body, true)
                case .head: Issue.record("a second head")
                }
            }
            return (head, body, false)
        }

        /// The request parts handed on to Hummingbird.
        func forwarded() throws -> [HTTPServerRequestPart] {
            var parts: [HTTPServerRequestPart] = []
            while let part = try channel.readInbound(as: HTTPServerRequestPart.self) { parts.append(part) }
            return parts
        }
    }

    static let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

    @Test func openAnswersThePixelOnTheEventLoopAndRecordsIt() async throws {
        let fixture = try Fixture()
        try fixture.send(.GET, "/o/\(fixture.token(.open))?utm=x", ["Host": "t.example", "User-Agent": Self.firefox])
        let response = try #require(try fixture.response())
        #expect(response.head.status == .ok && response.head.version == .http1_1)
        #expect(response.head.headers.map(\.name) == [
            "Content-Type", "Cache-Control", "Pragma", "Expires", "Content-Length", "Date", "Server",
        ])
        #expect(response.head.headers["Content-Type"] == ["image/gif"])
        #expect(response.head.headers["Content-Length"] == ["43"])
        #expect(response.head.headers["Cache-Control"] == ["no-cache, no-store, must-revalidate, private, max-age=0"])
        #expect(response.head.headers["Pragma"] == ["no-cache"] && response.head.headers["Expires"] == ["0"])
        #expect(response.head.headers["Server"] == ["Tern"])
        #expect(response.head.headers["Date"].count == 1)
        #expect(response.head.headers["Connection"].isEmpty)
        #expect(response.body == TrackingRoutes.pixel && response.ended)
        #expect(try fixture.forwarded().isEmpty)
        #expect(fixture.channel.isActive)
        let events = await fixture.recorded()
        #expect(events.count == 1)
        #expect(events.first?.type == .open && events.first?.recipientID == fixture.recipient)
        #expect(events.first?.details.reason == "human")
        #expect(events.first?.details.ip == "192.0.2.7")
        #expect(events.first?.details.userAgent == Self.firefox)
    }

    @Test func headHasTheHeadersButNoBody() async throws {
        let fixture = try Fixture()
        try fixture.send(.HEAD, "/o/\(fixture.token(.open))", ["Host": "t.example", "User-Agent": Self.firefox])
        let response = try #require(try fixture.response())
        #expect(response.head.status == .ok && response.head.headers["Content-Length"] == ["43"])
        #expect(response.body.isEmpty && response.ended)
        let events = await fixture.recorded()
        #expect(events.map { $0.details.method } == ["HEAD"])
        #expect(events.first?.details.reason == "scanner_head")
    }

    @Test(arguments: ["/o/AAAA", "/c/AAAA", "/o/", "CLICK_AS_OPEN"])
    func aBadTokenIsNotFound(path: String) async throws {
        let fixture = try Fixture()
        fixture.links.remember(["https://shop.example/a"], of: fixture.message)
        let path = path == "CLICK_AS_OPEN" ? "/o/\(fixture.token(.click))" : path
        try fixture.send(.GET, path)
        if path == "/o/" {  // not a token path at all: the router's 404
            #expect(try fixture.forwarded().count == 2)
            return
        }
        let response = try #require(try fixture.response())
        #expect(response.head.status == .notFound)
        #expect(response.head.headers["Location"].isEmpty)
        #expect(response.head.headers["Content-Type"] == ["text/plain; charset=utf-8"])
        #expect(response.head.headers["Content-Length"] == ["23"] && response.head.headers["Server"] == ["Tern"])
        #expect(String(decoding: response.body, as: UTF8.self) == "This link is not known.")
        #expect(await fixture.recorded().isEmpty)
    }

    @Test func clickOnAHeldLinkRedirects() async throws {
        let fixture = try Fixture()
        fixture.links.remember(["https://shop.example/a", "https://shop.example/b?q=a b"], of: fixture.message)
        try fixture.send(.GET, "/c/\(fixture.token(.click, link: 1))", ["Host": "t.example", "User-Agent": Self.firefox])
        let response = try #require(try fixture.response())
        #expect(response.head.status == .found)
        #expect(response.head.headers["Location"] == ["https://shop.example/b?q=a%20b"])
        #expect(response.head.headers["Cache-Control"] == ["no-store"])
        #expect(response.head.headers["Content-Length"] == ["0"] && response.head.headers["Date"].count == 1)
        #expect(response.body.isEmpty && response.ended)
        let events = await fixture.recorded()
        #expect(events.map(\.type) == [.click])
        #expect(events.first?.details.url == "https://shop.example/b?q=a b" && events.first?.details.link == 1)

        // A link index the message does not have.
        try fixture.send(.GET, "/c/\(fixture.token(.click, link: 2))")
        #expect(try fixture.response()?.head.status == .notFound)
    }

    @Test func clickOnALinkNotHeldGoesToTheRouter() async throws {
        let fixture = try Fixture()
        try fixture.send(.GET, "/c/\(fixture.token(.click))")
        let parts = try fixture.forwarded()
        #expect(parts.count == 2)
        guard case .head(let head) = parts.first else { Issue.record("no head"); return }
        #expect(head.uri == "/c/\(fixture.token(.click))")
        #expect(try fixture.channel.readOutbound(as: HTTPServerResponsePart.self) == nil)
        #expect(await fixture.recorded().isEmpty)
    }

    @Test func requestsAfterAnUnansweredOneWaitForTheRouterInOrder() async throws {
        let fixture = try Fixture()
        try fixture.send(.GET, "/c/\(fixture.token(.click))")  // not held: the router answers
        try fixture.send(.GET, "/o/\(fixture.token(.open))")  // must not overtake it
        #expect(try fixture.forwarded().count == 4)
        #expect(try fixture.channel.readOutbound(as: HTTPServerResponsePart.self) == nil)

        // The router answers both, in order; afterwards requests are answered here again.
        for _ in 0..<2 {
            try fixture.channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
            try fixture.channel.writeOutbound(HTTPServerResponsePart.end(nil))
        }
        #expect(try fixture.response()?.head.status == .ok)
        #expect(try fixture.response()?.head.status == .ok)
        try fixture.send(.GET, "/o/\(fixture.token(.open))")
        #expect(try fixture.forwarded().isEmpty)
        #expect(try fixture.response()?.head.headers["Content-Type"] == ["image/gif"])
    }

    @Test(arguments: [
        (HTTPMethod.GET, "/api/v1/messages"), (.GET, "/healthz"), (.GET, "/u/AAAA"), (.POST, "/o/AAAA"),
        (.OPTIONS, "/c/AAAA"), (.GET, "/ox/AAAA"),
    ])
    func otherRequestsPassThrough(method: HTTPMethod, path: String) throws {
        let fixture = try Fixture()
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: ["Host": "t.example"])
        try fixture.channel.writeInbound(HTTPServerRequestPart.head(head))
        try fixture.channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: "x=1")))
        try fixture.channel.writeInbound(HTTPServerRequestPart.end(nil))
        let parts = try fixture.forwarded()
        #expect(parts.count == 3)
        if case .head(let forwarded) = parts.first { #expect(forwarded == head) } else { Issue.record("no head") }
        #expect(try fixture.channel.readOutbound(as: HTTPServerResponsePart.self) == nil)
    }

    @Test func aBodyOfAnAnsweredRequestIsConsumed() throws {
        let fixture = try Fixture()
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/o/\(fixture.token(.open))")
        try fixture.channel.writeInbound(HTTPServerRequestPart.head(head))
        try fixture.channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: "ignored")))
        try fixture.channel.writeInbound(HTTPServerRequestPart.end(nil))
        #expect(try fixture.forwarded().isEmpty)
        #expect(try fixture.response()?.head.status == .ok)
    }

    @Test func connectionCloseClosesAfterTheResponse() throws {
        let fixture = try Fixture()
        try fixture.send(.GET, "/o/\(fixture.token(.open))", ["Host": "t.example", "Connection": "close"])
        let response = try #require(try fixture.response())
        #expect(response.head.headers["Connection"] == ["close"] && response.ended)
        fixture.channel.embeddedEventLoop.run()
        #expect(!fixture.channel.isActive)
    }

    @Test func http10ClosesUnlessItAsksToKeepTheConnection() throws {
        let fixture = try Fixture()
        try fixture.send(.GET, "/o/\(fixture.token(.open))", ["Host": "t.example", "Connection": "keep-alive"], version: .http1_0)
        let kept = try #require(try fixture.response())
        #expect(kept.head.headers["Connection"] == ["keep-alive"] && kept.ended)
        fixture.channel.embeddedEventLoop.run()
        #expect(fixture.channel.isActive)

        try fixture.send(.GET, "/o/\(fixture.token(.open))", version: .http1_0)
        let closed = try #require(try fixture.response())
        #expect(closed.head.headers["Connection"] == ["close"] && closed.ended)
        fixture.channel.embeddedEventLoop.run()
        #expect(!fixture.channel.isActive)
    }

    // MARK: In Hummingbird's HTTP/1 pipeline

    /// NIO's HTTP/1 handlers, Hummingbird's conversion to HTTP types, and the installer, as
    /// `HTTP1Channel` sets them up; the test plays Hummingbird's router at the tail.
    static func pipeline(_ fixture: Fixture) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        let operations = channel.pipeline.syncOperations
        try operations.configureHTTPServerPipeline(
            withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
            withEncoderConfiguration: .init(), withDecoderLimitConfiguration: .init())
        try operations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
        try operations.addHandler(TrackingFastPath.Installer(routes: fixture.routes, serverName: "Tern"))
        let client = try SocketAddress(ipAddress: "192.0.2.7", port: 40_000)
        try channel.connect(to: client).wait()
        return channel
    }

    static func readAll(_ channel: EmbeddedChannel) throws -> String {
        String(decoding: try readBytes(channel), as: UTF8.self)
    }

    static func readBytes(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var bytes: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { bytes += buffer.readableBytesView }
        return bytes
    }

    @Test func theInstallerPutsTheFastPathRightAfterTheDecoder() throws {
        let fixture = try Fixture()
        let channel = try Self.pipeline(fixture)
        let operations = channel.pipeline.syncOperations
        // Right after the decoder, before the conversion: the pipeline lists handlers in order.
        let order = channel.pipeline.debugDescription
        let decoder = try #require(order.range(of: "ByteToMessageHandler<HTTPDecoder<HTTPPart<HTTPRequestHead"))
        let fastPath = try #require(order.range(of: "TrackingFastPath"))
        let codec = try #require(order.range(of: "HTTP1ToHTTPServerCodec"))
        #expect(decoder.upperBound <= fastPath.lowerBound && fastPath.upperBound <= codec.lowerBound)
        #expect(!order[decoder.upperBound..<fastPath.lowerBound].contains("Handler"))
        #expect((try? operations.context(handlerType: TrackingFastPath.Installer.self)) == nil)
    }

    @Test func anOpenIsAnsweredInRawHTTP() async throws {
        let fixture = try Fixture()
        let channel = try Self.pipeline(fixture)
        try channel.writeInbound(ByteBuffer(string: "GET /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == nil)
        let bytes = try Self.readBytes(channel)
        let headEnd = try #require(bytes.firstRange(of: Array("\r\n\r\n".utf8)))
        let head = String(decoding: bytes[..<headEnd.lowerBound], as: UTF8.self)
        let body = Array(bytes[headEnd.upperBound...])
        let lines = head.split(separator: "\r\n")
        #expect(lines.first == "HTTP/1.1 200 OK")
        #expect(lines.dropFirst().map { $0.prefix { $0 != ":" } } == [
            "Content-Type", "Cache-Control", "Pragma", "Expires", "Content-Length", "Date", "Server",
        ])
        #expect(lines.contains("Content-Length: 43") && lines.contains("Server: Tern"))
        #expect(body == TrackingRoutes.pixel)
        #expect(await fixture.recorded().map(\.type) == [.open])
    }

    @Test func pipelinedRequestsAfterOneHandedOnAreAnsweredInOrder() async throws {
        let fixture = try Fixture()
        let channel = try Self.pipeline(fixture)
        try channel.writeInbound(ByteBuffer(string:
            "GET /c/\(fixture.token(.click)) HTTP/1.1\r\nHost: x\r\n\r\n"  // links not held: the router answers
            + "GET /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\n\r\n"))
        var paths: [String?] = []
        while let part = try channel.readInbound(as: HTTPRequestPart.self) {
            if case .head(let head) = part { paths.append(head.path) }
        }
        #expect(paths == ["/c/\(fixture.token(.click))", "/o/\(fixture.token(.open))"])
        #expect(try Self.readAll(channel).isEmpty)

        // The router answers both in order, through the conversion and the fast path.
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .found, headerFields: [.contentLength: "0"])))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok, headerFields: [.contentLength: "0"])))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        let answered = try Self.readAll(channel)
        #expect(answered.hasPrefix("HTTP/1.1 302 Found\r\n") && answered.contains("HTTP/1.1 200 OK\r\n"))

        // Nothing is unanswered any more: the next open is answered here.
        try channel.writeInbound(ByteBuffer(string: "HEAD /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == nil)
        let response = try Self.readAll(channel)
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: image/gif\r\n"))
        #expect(response.contains("Content-Length: 43\r\n") && response.hasSuffix("\r\n\r\n"))
        #expect(await fixture.recorded().map(\.type) == [.open])
    }

    @Test(arguments: [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"), (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (951_825_600, "Tue, 29 Feb 2000 12:00:00 GMT"), (4_102_444_799, "Thu, 31 Dec 2099 23:59:59 GMT"),
    ])
    func httpDate(seconds: Int, expected: String) {
        #expect(HTTPDateCache.imfFixdate(secondsSince1970: seconds) == expected)
    }
}
