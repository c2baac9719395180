import Foundation
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import TernCore
import Testing
@testable import TernHTTP

@Suite struct TrackingWirePathTests {
    typealias Fixture = TrackingFastPathTests.Fixture

    // MARK: Reading request heads

    static func parse(_ text: String) -> RawRequestHead.Parsed {
        RawRequestHead.parse(ByteBuffer(string: text).readableBytesView)
    }

    @Test func aPlainOpenIsRead() throws {
        let text = "GET /o/TOKEN?x=1 HTTP/1.1\r\nHost: t.example\r\nUser-Agent:  Mozilla/5.0 (X11) \t\r\nAccept: */*\r\n\r\n"
        #expect(Self.parse(text + "GET /next") == .complete(RawRequestHead(
            isHead: false, target: "/o/TOKEN?x=1", http10: false, userAgent: "Mozilla/5.0 (X11)", closes: false,
            length: text.utf8.count)))
    }

    @Test(arguments: [
        ("HEAD /c/T HTTP/1.1\r\nConnection: close\r\n\r\n", true, false, true),
        ("GET /c/T HTTP/1.1\r\nconnection: Keep-Alive, CLOSE\r\n\r\n", false, false, true),
        ("GET /o/T HTTP/1.0\r\n\r\n", false, true, true),
        ("GET /o/T HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false, true, false),
        ("GET /o/T HTTP/1.1\r\nConnection: upgrade-me, keep-alive\r\n\r\n", false, false, false),
    ])
    func methodVersionAndConnection(text: String, isHead: Bool, http10: Bool, closes: Bool) throws {
        guard case .complete(let head) = Self.parse(text) else {
            Issue.record("not read: \(text)")
            return
        }
        #expect(head.isHead == isHead && head.http10 == http10 && head.closes == closes)
        #expect(head.userAgent == nil && head.length == text.utf8.count)
    }

    @Test(arguments: [
        "G", "GET", "GET /", "GET /o", "HEAD /c", "GET /o/TOKEN", "GET /o/TOKEN HTTP/1.1", "GET /o/TOKEN HTTP/1.1\r",
        "GET /o/TOKEN HTTP/1.1\r\nHost: x\r\n", "GET /o/TOKEN HTTP/1.1\r\nHost: x\r\n\r",
    ])
    func anUnfinishedHeadWaits(text: String) {
        #expect(Self.parse(text) == .incomplete)
    }

    @Test(arguments: [
        "POST /o/T HTTP/1.1\r\n\r\n",  // not GET or HEAD
        "get /o/T HTTP/1.1\r\n\r\n",  // methods are case-sensitive
        "GET /u/T HTTP/1.1\r\n\r\n",  // not an open or a click
        "GET /healthz HTTP/1.1\r\n\r\n",
        "GET /o/T HTTP/2.0\r\n\r\n",
        "GET /o/T  HTTP/1.1\r\n\r\n",
        "GET /o/T\u{E9} HTTP/1.1\r\n\r\n",  // not ASCII
        "GET /o/T HTTP/1.1\nHost: x\r\n\r\n",  // bare LF
        "GET /o/T HTTP/1.1\r\nHost: x\n\r\n",
        "GET /o/T HTTP/1.1\r\nHost : x\r\n\r\n",  // space before the colon
        "GET /o/T HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",  // obs-fold
        "GET /o/T HTTP/1.1\r\nX-A: a\u{0}b\r\n\r\n",  // NUL
        "GET /o/T HTTP/1.1\r\nX-A: a\u{1}b\r\n\r\n",  // a control
        "GET /o/T HTTP/1.1\r\n: x\r\n\r\n",  // no name
        "GET /o/T HTTP/1.1\r\nContent-Length: 0\r\n\r\n",  // a body, however short
        "GET /o/T HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET /o/T HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        "GET /o/T HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        "\r\nGET /o/T HTTP/1.1\r\n\r\n",  // an empty line first
    ])
    func anythingElseIsTheDecoders(text: String) {
        #expect(Self.parse(text) == .notOurs)
    }

    // MARK: On its own

    /// The wire path alone: what it answers comes out as bytes, what it hands on comes in as bytes.
    static func channel(_ fixture: Fixture) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(handler: TrackingWirePath(routes: fixture.routes, serverName: "Tern"))
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
        let open = "GET /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\nUser-Agent: \(TrackingFastPathTests.firefox)\r\n\r\n"
        let head = "HEAD /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\n\r\n"
        try channel.writeInbound(ByteBuffer(string: open + head + open))
        let bytes = try TrackingFastPathTests.readBytes(channel)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.components(separatedBy: "HTTP/1.1 200 OK\r\n").count == 4)
        let pixel = String(decoding: TrackingRoutes.pixel, as: UTF8.self)
        #expect(text.components(separatedBy: pixel).count == 3)  // no body for HEAD
        #expect(try Self.handedOn(channel).isEmpty)
        let events = await fixture.recorded()
        #expect(events.map(\.type) == [.open, .open, .open])
        #expect(events.map { $0.details.method } == [nil, "HEAD", nil])
        #expect(events.first?.details.userAgent == TrackingFastPathTests.firefox)
        #expect(events.first?.details.ip == "192.0.2.7")
        #expect(events.first?.details.reason == "human")
    }

    @Test func aHeadInPiecesIsAnsweredOnceWhole() async throws {
        let fixture = try Fixture()
        let channel = try Self.channel(fixture)
        for byte in "GET /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\n\r\n".utf8 {
            #expect(try TrackingFastPathTests.readBytes(channel).isEmpty)
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
        }
        #expect(try TrackingFastPathTests.readAll(channel).hasPrefix("HTTP/1.1 200 OK\r\n"))
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
        #expect(try TrackingFastPathTests.readAll(channel).components(separatedBy: "HTTP/1.1 200 OK").count == 2)
        #expect(try Self.handedOn(channel) == unsubscribe + open + open)
        #expect(await fixture.recorded().map(\.type) == [.open])
    }

    @Test func aClickOnAHeldLinkRedirects() async throws {
        let fixture = try Fixture()
        fixture.links.remember(["https://example.com/a b"], of: fixture.message)
        let channel = try Self.channel(fixture)
        try channel.writeInbound(ByteBuffer(string: "GET /c/\(fixture.token(.click)) HTTP/1.1\r\nHost: x\r\n\r\n"))
        let response = try TrackingFastPathTests.readAll(channel)
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
        #expect(try TrackingFastPathTests.readBytes(channel).isEmpty)
    }

    @Test(arguments: ["GET", "HEAD"])
    func aForgedTokenIsNotFound(method: String) async throws {
        let fixture = try Fixture()
        let channel = try Self.channel(fixture)
        var token = Array(fixture.token(.open).utf8)
        token[token.count / 2] = token[token.count / 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        try channel.writeInbound(ByteBuffer(string: "\(method) /o/\(String(decoding: token, as: UTF8.self)) HTTP/1.1\r\n\r\n"))
        let response = try TrackingFastPathTests.readAll(channel)
        #expect(response.hasPrefix("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 23\r\n"))
        #expect(response.hasSuffix(method == "GET" ? "\r\n\r\nThis link is not known." : "\r\n\r\n"))
        #expect(await fixture.recorded().isEmpty)
    }

    @Test func connectionCloseClosesAndIgnoresTheRest() async throws {
        let fixture = try Fixture()
        let channel = try Self.channel(fixture)
        let open = "GET /o/\(fixture.token(.open)) HTTP/1.1\r\n"
        try channel.writeInbound(ByteBuffer(string: open + "Connection: close\r\n\r\n" + open + "\r\n"))
        let response = try TrackingFastPathTests.readAll(channel)
        #expect(response.contains("\r\nConnection: close\r\n\r\n"))
        #expect(response.components(separatedBy: "HTTP/1.1 200 OK").count == 2)
        #expect(!channel.isActive)
        #expect(try Self.handedOn(channel).isEmpty)
    }

    @Test func http10KeepsTheConnectionOnlyWhenAsked() async throws {
        let fixture = try Fixture()
        let channel = try Self.channel(fixture)
        try channel.writeInbound(ByteBuffer(string: "GET /o/\(fixture.token(.open)) HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"))
        #expect(try TrackingFastPathTests.readAll(channel).contains("\r\nConnection: keep-alive\r\n\r\n"))
        #expect(channel.isActive)
        try channel.writeInbound(ByteBuffer(string: "GET /o/\(fixture.token(.open)) HTTP/1.0\r\n\r\n"))
        #expect(try TrackingFastPathTests.readAll(channel).contains("\r\nConnection: close\r\n\r\n"))
        #expect(!channel.isActive)
    }

    @Test func anOverlongHeadIsHandedOn() throws {
        let fixture = try Fixture()
        let channel = try Self.channel(fixture)
        let head = "GET /o/\(fixture.token(.open)) HTTP/1.1\r\nX-Long: \(String(repeating: "a", count: TrackingWirePath.maxHeadLength))"
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

    // MARK: In Hummingbird's HTTP/1 pipeline

    @Test func theInstallerPutsItInFrontOfNIOsHandlers() throws {
        let fixture = try Fixture()
        let channel = try TrackingFastPathTests.pipeline(fixture)
        let order = channel.pipeline.debugDescription
        let wire = try #require(order.range(of: "TrackingWirePath"))
        let encoder = try #require(order.range(of: "HTTPResponseEncoder"))
        let decoder = try #require(order.range(of: "ByteToMessageHandler<HTTPDecoder<HTTPPart<HTTPRequestHead"))
        #expect(wire.upperBound <= encoder.lowerBound && wire.upperBound <= decoder.lowerBound)
    }

    @Test func afterHandingOnTheDecoderAndTheRouterAnswerInOrder() async throws {
        let fixture = try Fixture()
        let channel = try TrackingFastPathTests.pipeline(fixture)
        let open = "GET /o/\(fixture.token(.open)) HTTP/1.1\r\nHost: x\r\n\r\n"
        try channel.writeInbound(ByteBuffer(string: open + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + open))
        // The first open is answered in front of the decoder; /healthz goes to the router, and
        // the open after it waits for the router's answer.
        #expect(try TrackingFastPathTests.readAll(channel).hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: image/gif\r\n"))
        var paths: [String?] = []
        while let part = try channel.readInbound(as: HTTPRequestPart.self) {
            if case .head(let head) = part { paths.append(head.path) }
        }
        #expect(paths == ["/healthz", "/o/\(fixture.token(.open))"])
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok, headerFields: [.contentLength: "0"])))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok, headerFields: [.contentLength: "0"])))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        #expect(try TrackingFastPathTests.readAll(channel).components(separatedBy: "HTTP/1.1 200 OK\r\n").count == 3)
        #expect(await fixture.recorded().map(\.type) == [.open])
    }
}
