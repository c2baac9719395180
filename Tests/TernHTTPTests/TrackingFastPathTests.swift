import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
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
        }

        func token(_ kind: TrackingTokenKind, link: Int = 0) -> String {
            keys.token(TrackingToken(kind: kind, messageID: message, recipientID: recipient, linkIndex: link))
        }

        func recorded() async -> [EngagementEvent] {
            await recorder.flush()
            return store.events.withLock { $0 }
        }
    }

    static let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

    static func readAll(_ channel: EmbeddedChannel) throws -> String {
        String(decoding: try readBytes(channel), as: UTF8.self)
    }

    static func readBytes(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var bytes: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { bytes += buffer.readableBytesView }
        return bytes
    }

    // MARK: On its own

    /// The fast path alone: what it answers comes out as bytes, what it hands on comes in as bytes.
    static func channel(_ fixture: Fixture, idleTimeout: TimeAmount = .seconds(60), head: (any ChannelHandler)? = nil) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        if let head { try channel.pipeline.syncOperations.addHandler(head) }
        try channel.pipeline.syncOperations.addHandler(TrackingFastPath(routes: fixture.routes, serverName: "Tern", idleTimeout: idleTimeout))
        let client = try SocketAddress(ipAddress: "192.0.2.7", port: 40_000)
        try channel.connect(to: client).wait()
        return channel
    }

    static func handedOn(_ channel: EmbeddedChannel) throws -> String {
        var bytes: [UInt8] = []
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { bytes += buffer.readableBytesView }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func pipelinedOpensAreAnsweredInOrderAndRecorded() async throws {
        let fixture = try Fixture()
        let channel = try Self.channel(fixture)
        let open = "GET /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\nUser-Agent: \(Self.firefox)\r\n\r\n"
        let head = "HEAD /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\n\r\n"
        try channel.writeInbound(ByteBuffer(string: open + head + open))
        let bytes = try Self.readBytes(channel)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.components(separatedBy: "HTTP/1.1 200 OK\r\n").count == 4)
        let pixel = String(decoding: TrackingRoutes.pixel, as: UTF8.self)
        #expect(text.components(separatedBy: pixel).count == 3)  // no body for HEAD
        #expect(try Self.handedOn(channel).isEmpty)
        let events = await fixture.recorded()
        #expect(events.map(\.type) == [.open, .open, .open])
        #expect(events.map { $0.details.method } == [nil, "HEAD", nil])
        #expect(events.first?.details.userAgent == Self.firefox)
        #expect(events.first?.details.ip == "192.0.2.7")
        #expect(events.first?.details.reason == "human")
    }

    @Test func aHeadInPiecesIsAnsweredOnceWhole() async throws {
        let fixture = try Fixture()
        let channel = try Self.channel(fixture)
        for byte in "GET /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\n\r\n".utf8 {
            #expect(try Self.readBytes(channel).isEmpty)
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
        }
        #expect(try Self.readAll(channel).hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(try Self.handedOn(channel).isEmpty)
        #expect(await fixture.recorded().map(\.type) == [.open])
    }

    @Test func fromTheFirstRequestNotAnsweredEverythingIsHandedOn() async throws {
        let fixture = try Fixture()
        let channel = try Self.channel(fixture)
        let open = "GET /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\n\r\n"
        let unsubscribe = "POST /u/\(fixture.token(.unsubscribe)) HTTP/1.1\r\nContent-Length: 2\r\n\r\nab"
        try channel.writeInbound(ByteBuffer(string: open + unsubscribe + open))
        try channel.writeInbound(ByteBuffer(string: open))
        #expect(try Self.readAll(channel).components(separatedBy: "HTTP/1.1 200 OK").count == 2)
        #expect(try Self.handedOn(channel) == unsubscribe + open + open)
        #expect(await fixture.recorded().map(\.type) == [.open])
    }

    @Test func aClickOnAHeldLinkRedirects() async throws {
        let fixture = try Fixture()
        fixture.links.remember(["https://example.com/a b"], of: fixture.message)
        let channel = try Self.channel(fixture)
        try channel.writeInbound(ByteBuffer(string: "GET /c/\(fixture.token(.click)) HTTP/1.1\r\nHost: x\r\n\r\n"))
        let response = try Self.readAll(channel)
        #expect(response.hasPrefix("HTTP/1.1 302 Found\r\nLocation: https://example.com/a%20b\r\nCache-Control: no-store\r\nContent-Length: 0\r\nDate: "))
        #expect(response.hasSuffix("\r\nServer: Tern\r\n\r\n"))
        #expect(await fixture.recorded().first?.details.url == "https://example.com/a b")
    }

    @Test func aClickOnALinkNotHeldIsHandedOn() async throws {
        let fixture = try Fixture()
        let channel = try Self.channel(fixture)
        let click = "GET /c/\(fixture.token(.click)) HTTP/1.1\r\nHost: x\r\n\r\n"
        try channel.writeInbound(ByteBuffer(string: click))
        #expect(try Self.handedOn(channel) == click)
        #expect(try Self.readBytes(channel).isEmpty)
    }

    @Test(arguments: ["GET", "HEAD"])
    func aForgedTokenIsNotFound(method: String) async throws {
        let fixture = try Fixture()
        let channel = try Self.channel(fixture)
        var token = Array(fixture.token(.open).utf8)
        token[token.count / 2] = token[token.count / 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        try channel.writeInbound(ByteBuffer(string: "\(method) /o/\(String(decoding: token, as: UTF8.self)) HTTP/1.1\r\n\r\n"))
        let response = try Self.readAll(channel)
        #expect(response.hasPrefix("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 23\r\n"))
        #expect(response.hasSuffix(method == "GET" ? "\r\n\r\nThis link is not known." : "\r\n\r\n"))
        #expect(await fixture.recorded().isEmpty)
    }

    @Test func connectionCloseClosesAndIgnoresTheRest() async throws {
        let fixture = try Fixture()
        let channel = try Self.channel(fixture)
        let open = "GET /o/\(fixture.token(.open)) HTTP/1.1\r\n"
        try channel.writeInbound(ByteBuffer(string: open + "Connection: close\r\n\r\n" + open + "\r\n"))
        let response = try Self.readAll(channel)
        #expect(response.contains("\r\nConnection: close\r\n\r\n"))
        #expect(response.components(separatedBy: "HTTP/1.1 200 OK").count == 2)
        #expect(!channel.isActive)
        #expect(try Self.handedOn(channel).isEmpty)
    }

    @Test func http10KeepsTheConnectionOnlyWhenAsked() async throws {
        let fixture = try Fixture()
        let channel = try Self.channel(fixture)
        try channel.writeInbound(ByteBuffer(string: "GET /o/\(fixture.token(.open)) HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"))
        #expect(try Self.readAll(channel).contains("\r\nConnection: keep-alive\r\n\r\n"))
        #expect(channel.isActive)
        try channel.writeInbound(ByteBuffer(string: "GET /o/\(fixture.token(.open)) HTTP/1.0\r\n\r\n"))
        #expect(try Self.readAll(channel).contains("\r\nConnection: close\r\n\r\n"))
        #expect(!channel.isActive)
    }

    @Test func anOverlongHeadIsHandedOn() throws {
        let fixture = try Fixture()
        let channel = try Self.channel(fixture)
        let head = "GET /o/\(fixture.token(.open)) HTTP/1.1\r\nX-Long: \(String(repeating: "a", count: TrackingFastPath.maxHeadLength))"
        try channel.writeInbound(ByteBuffer(string: head))
        #expect(try Self.handedOn(channel) == head)
        // The rest follows it to the decoder.
        try channel.writeInbound(ByteBuffer(string: "\r\n\r\n"))
        #expect(try Self.handedOn(channel) == "\r\n\r\n")
    }

    @Test func anUnfinishedHeadGoesToTheDecoderWhenTheConnectionEnds() throws {
        let fixture = try Fixture()
        let channel = try Self.channel(fixture)
        try channel.writeInbound(ByteBuffer(string: "GET /o/abc HTTP/1.1\r\nHost"))
        #expect(try Self.handedOn(channel).isEmpty)
        channel.pipeline.fireChannelInactive()
        #expect(try Self.handedOn(channel) == "GET /o/abc HTTP/1.1\r\nHost")
    }

    // MARK: Backpressure

    /// Sits next to the channel's head: counts the `read`s that get through, and makes the
    /// channel unwritable after `writableFor` writes.
    final class HeadProbe: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var reads = 0
        var writes = 0
        var writableFor = Int.max

        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            writes += 1
            if writes >= writableFor, let channel = context.channel as? EmbeddedChannel { channel.isWritable = false }
            context.write(data, promise: promise)
        }
    }

    static func becomeWritable(_ channel: EmbeddedChannel) {
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
    }

    @Test func whileNotWritableNothingIsAnsweredAndNothingMoreRead() async throws {
        let fixture = try Fixture()
        let probe = HeadProbe()
        let channel = try Self.channel(fixture, head: probe)
        let open = "GET /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\n\r\n"
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        try channel.writeInbound(ByteBuffer(string: open + open + open))
        channel.read()
        #expect(try Self.readBytes(channel).isEmpty)
        #expect(probe.reads == 0)

        Self.becomeWritable(channel)
        #expect(try Self.readAll(channel).components(separatedBy: "HTTP/1.1 200 OK\r\n").count == 4)
        #expect(probe.reads == 1)  // the held read, asked for once writable
        #expect(await fixture.recorded().count == 3)
    }

    @Test func answeringStopsWhenTheChannelBecomesUnwritableAndResumesInOrder() async throws {
        let fixture = try Fixture()
        let probe = HeadProbe()
        probe.writableFor = 2
        let channel = try Self.channel(fixture, head: probe)
        let open = "GET /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\n\r\n"
        let head = "HEAD /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\n\r\n"
        try channel.writeInbound(ByteBuffer(string: open + open + open + head + open))
        #expect(try Self.readAll(channel).components(separatedBy: "HTTP/1.1 200 OK\r\n").count == 3)
        #expect(await fixture.recorded().count == 2)
        channel.read()
        #expect(probe.reads == 0)  // not while requests read are unanswered

        probe.writableFor = Int.max
        Self.becomeWritable(channel)
        #expect(probe.reads == 1)
        let rest = try Self.readAll(channel)
        #expect(rest.components(separatedBy: "HTTP/1.1 200 OK\r\n").count == 4)
        let pixel = String(decoding: TrackingRoutes.pixel, as: UTF8.self)
        #expect(rest.components(separatedBy: pixel).count == 3)  // open, HEAD (no body), open
        #expect(await fixture.recorded().map { $0.details.method } == [nil, nil, nil, "HEAD", nil])
    }

    @Test func aClientTooFarAheadIsClosed() throws {
        let fixture = try Fixture()
        let channel = try Self.channel(fixture)
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        let open = "GET /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\n\r\n"
        let batch = String(repeating: open, count: 64 * 1024 / open.utf8.count)
        for _ in 0..<(TrackingFastPath.maxPendingBytes / batch.utf8.count) {
            try channel.writeInbound(ByteBuffer(string: batch))
            #expect(channel.isActive)
        }
        try channel.writeInbound(ByteBuffer(string: batch))
        #expect(!channel.isActive)
    }

    // MARK: Deadlines

    @Test func anIdleConnectionIsClosedAfterTheTimeout() throws {
        let fixture = try Fixture()
        let channel = try Self.channel(fixture, idleTimeout: .seconds(10))
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    @Test func aHeadTrickledByteByByteIsClosedAtTheDeadline() throws {
        let fixture = try Fixture()
        let channel = try Self.channel(fixture, idleTimeout: .seconds(10))
        let bytes = Array("GET /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\nX-Slow: \(String(repeating: "a", count: 40))".utf8)
        for (second, byte) in bytes.prefix(9).enumerated() {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
            channel.embeddedEventLoop.advanceTime(by: .seconds(1))
            #expect(channel.isActive, "closed after \(second + 1) s")
        }
        for byte in bytes.dropFirst(9).prefix(2) {
            _ = try? channel.writeInbound(ByteBuffer(bytes: [byte]))
            channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        }
        #expect(!channel.isActive)
        #expect(try Self.readBytes(channel).isEmpty)
    }

    @Test func eachAnsweredRequestStartsTheWaitAgain() throws {
        let fixture = try Fixture()
        let channel = try Self.channel(fixture, idleTimeout: .seconds(10))
        let open = "GET /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in 0..<3 {
            channel.embeddedEventLoop.advanceTime(by: .seconds(8))
            try channel.writeInbound(ByteBuffer(string: open))
            #expect(try Self.readAll(channel).hasPrefix("HTTP/1.1 200 OK\r\n"))
        }
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    // MARK: In every HTTP connection's pipeline

    /// A connection's pipeline as `TernHTTPChannel` builds it; the test plays the router at the tail.
    static func pipeline(_ fixture: Fixture, idleTimeout: TimeAmount = .seconds(60)) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try TernHTTPChannel.addHandlers(
            to: channel, routes: fixture.routes, serverName: "Tern", idleTimeout: idleTimeout, logger: Logger(label: "test"))
        let client = try SocketAddress(ipAddress: "192.0.2.7", port: 40_000)
        try channel.connect(to: client).wait()
        return channel
    }

    @Test func theFastPathIsInFrontOfNIOsHandlers() throws {
        let fixture = try Fixture()
        let channel = try Self.pipeline(fixture)
        let order = channel.pipeline.debugDescription
        let fastPath = try #require(order.range(of: "TrackingFastPath"))
        let encoder = try #require(order.range(of: "HTTPResponseEncoder"))
        let decoder = try #require(order.range(of: "ByteToMessageHandler<HTTPDecoder<HTTPPart<HTTPRequestHead"))
        #expect(fastPath.upperBound <= encoder.lowerBound && fastPath.upperBound <= decoder.lowerBound)
    }

    @Test func theStartUpCheckPassesOnThePipelineConnectionsGet() throws {
        let fixture = try Fixture()
        try TernHTTPChannel.checkFastPath(routes: fixture.routes, serverName: "Tern")
    }

    @Test func theStartUpCheckFailsWithoutTheFastPath() throws {
        let fixture = try Fixture()
        // NIO's HTTP/1 handlers and no fast path in front of them, as when it could not be installed.
        #expect(throws: TernHTTPChannel.FastPathMissing.self) {
            try TernHTTPChannel.checkFastPath(routes: fixture.routes, serverName: "Tern") { channel in
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
            }
        }
    }

    @Test func anOpenIsAnsweredInFrontOfTheDecoder() async throws {
        let fixture = try Fixture()
        let channel = try Self.pipeline(fixture)
        try channel.writeInbound(ByteBuffer(string: "GET /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == nil)
        let bytes = try Self.readBytes(channel)
        let headEnd = try #require(bytes.firstRange(of: Array("\r\n\r\n".utf8)))
        let lines = String(decoding: bytes[..<headEnd.lowerBound], as: UTF8.self).split(separator: "\r\n")
        #expect(lines.first == "HTTP/1.1 200 OK")
        #expect(lines.dropFirst().map { $0.prefix { $0 != ":" } } == [
            "Content-Type", "Cache-Control", "Pragma", "Expires", "Content-Length", "Date", "Server",
        ])
        #expect(Array(bytes[headEnd.upperBound...]) == TrackingRoutes.pixel)
        #expect(await fixture.recorded().map(\.type) == [.open])
    }

    @Test func afterHandingOnTheRouterAnswersInOrder() async throws {
        let fixture = try Fixture()
        let channel = try Self.pipeline(fixture)
        let open = "GET /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\n\r\n"
        try channel.writeInbound(ByteBuffer(string: open + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + open))
        // The first open is answered in front of the decoder; /healthz goes to the router, and
        // so does the open after it.
        #expect(try Self.readAll(channel).hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: image/gif\r\n"))
        var paths: [String?] = []
        while let part = try channel.readInbound(as: HTTPRequestPart.self) {
            if case .head(let head) = part { paths.append(head.path) }
        }
        #expect(paths == ["/healthz", "/o/\(fixture.token(.open))"])
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok, headerFields: [.contentLength: "0"])))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok, headerFields: [.contentLength: "0"])))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        #expect(try Self.readAll(channel).components(separatedBy: "HTTP/1.1 200 OK\r\n").count == 3)
        #expect(await fixture.recorded().map(\.type) == [.open])
    }

    @Test func whileTheRouterWorksOnARequestTheConnectionIsNotTimed() throws {
        let fixture = try Fixture()
        let channel = try Self.pipeline(fixture, idleTimeout: .seconds(10))
        try channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(35))
        #expect(channel.isActive)
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok, headerFields: [.contentLength: "0"])))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    @Test func aHeadTrickledToTheRouterIsClosedAtTheDeadline() throws {
        let fixture = try Fixture()
        let channel = try Self.pipeline(fixture, idleTimeout: .seconds(10))
        for byte in "GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa".utf8 {
            guard channel.isActive else { break }
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
            channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        }
        #expect(!channel.isActive)
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == nil)
    }

    @Test(arguments: [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"), (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (951_825_600, "Tue, 29 Feb 2000 12:00:00 GMT"), (4_102_444_799, "Thu, 31 Dec 2099 23:59:59 GMT"),
    ])
    func httpDate(seconds: Int, expected: String) {
        #expect(HTTPDateCache.imfFixdate(secondsSince1970: seconds) == expected)
    }
}
