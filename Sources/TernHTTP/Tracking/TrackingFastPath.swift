import Foundation
import HTTPTypes
public import NIOCore
import NIOHTTP1
public import NIOHTTPTypes
import TernCore

/// Answers opens (`GET`/`HEAD /o/TOKEN`) and clicks on links held in memory (`GET`/`HEAD
/// /c/TOKEN`) on the event loop, in Hummingbird's HTTP/1 pipeline, with no task per request.
/// Everything else, and a click whose links must be read from the store, goes on to Hummingbird
/// untouched, where `TrackingRoutes` answers the same requests the same way.
///
/// Responses on a connection keep the order of its requests (RFC 9112 §9.3.2): a request is
/// answered here only when no request handed to Hummingbird is still unanswered; while one is,
/// the following requests are handed on too.
public final class TrackingFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    private let routes: TrackingRoutes
    private let serverName: String?
    private var state = State()
    /// Whether the HTTP/1 request being read keeps the connection open, as NIO's decoder saw it
    /// (the HTTP version is gone after the conversion to HTTP types). nil: not known here.
    private var keepAlive: KeepAliveProbe?
    private var needsFlush = false
    private var dateCache = HTTPDateCache()
    /// The client's address, read once per connection.
    private var clientIP: String??

    /// - Parameter serverName: the `Server` header, as Hummingbird sends it.
    public init(routes: TrackingRoutes, serverName: String? = nil) {
        self.routes = routes
        self.serverName = serverName
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        // Watch the HTTP/1 heads right after NIO's decoder, for their version and `Connection`.
        let operations = context.pipeline.syncOperations
        guard let decoder = try? operations.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self) else { return }
        let probe = KeepAliveProbe()
        if (try? operations.addHandler(probe, position: .after(decoder.handler))) != nil {
            keepAlive = probe
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        keepAlive = nil
    }

    // MARK: Requests

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if state.reading == .closed { return }  // nothing after a response that closes
        switch unwrapInboundIn(data) {
        case .head(let head):
            let closes = closesConnection(head)
            if let answer = state.intercepts ? answer(head, context: context) : nil {
                state.answering(answer, closes: closes)
            } else {
                state.forwarding(closes: closes)
                context.fireChannelRead(data)
            }
        case .body:
            if state.forwardsParts { context.fireChannelRead(data) }
        case .end:
            if state.forwardsParts { context.fireChannelRead(data); state.requestForwarded(); return }
            guard let (answer, closes) = state.requestRead() else { return }
            write(answer, closes: closes, context: context)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context)
        context.fireChannelReadComplete()
    }

    // MARK: Responses from Hummingbird

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { state.forwardedAnswered() }
        context.write(data, promise: promise)
    }

    public func flush(context: ChannelHandlerContext) {
        needsFlush = false
        context.flush()
    }

    // MARK: Answering

    /// The response to an open or a click, or nil when Hummingbird is to answer the request.
    private func answer(_ head: HTTPRequest, context: ChannelHandlerContext) -> Answer? {
        guard head.method == .get || head.method == .head, let path = head.path else { return nil }
        let endpoint: EngagementKind
        if path.hasPrefix("/o/") {
            endpoint = .open
        } else if path.hasPrefix("/c/") {
            endpoint = .click
        } else {
            return nil
        }
        var text = path.utf8.dropFirst(3)
        if let end = text.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) { text = text[..<end] }
        guard !text.isEmpty, !text.contains(UInt8(ascii: "/")) else { return nil }  // not a route of ours
        let token = Substring(text)
        let withBody = head.method != .head

        switch endpoint {
        case .open:
            guard let token = routes.verified(.open, token) else { return .notFound(withBody: withBody) }
            routes.recorder.record(event(.open, token, head, context: context))
            return .pixel(withBody: withBody)
        case .click:
            guard let token = routes.verified(.click, token) else { return .notFound(withBody: withBody) }
            // Not held in memory: Hummingbird's route reads the store.
            guard let target = routes.links.cachedTarget(of: token.messageID, index: token.linkIndex) else { return nil }
            guard let target else { return .notFound(withBody: withBody) }
            routes.recorder.record(event(.click, token, head, context: context, target: target))
            return .redirect(TrackingRoutes.locationValue(target))
        }
    }

    private func event(
        _ kind: EngagementKind, _ token: TrackingToken, _ head: HTTPRequest, context: ChannelHandlerContext, target: String? = nil
    ) -> EngagementEvent {
        routes.engagement(
            kind, token, method: head.method, userAgent: head.headerFields[.userAgent],
            clientIP: clientIP(context), at: routes.now(), target: target)
    }

    private func clientIP(_ context: ChannelHandlerContext) -> String? {
        if let clientIP { return clientIP }
        let ip = context.channel.remoteAddress?.ipAddress
        clientIP = .some(ip)
        return ip
    }

    private func write(_ answer: Answer, closes: Bool, context: ChannelHandlerContext) {
        var fields: HTTPFields
        let status: HTTPResponse.Status
        var body: ByteBuffer?
        switch answer {
        case .pixel(let withBody):
            status = .ok
            fields = Self.pixelFields
            if withBody { body = context.channel.allocator.buffer(bytes: TrackingRoutes.pixel) }
        case .redirect(let location):
            status = .found
            fields = [.location: location, .cacheControl: "no-store", .contentLength: "0"]
        case .notFound(let withBody):
            status = .notFound
            fields = Self.notFoundFields
            if withBody { body = context.channel.allocator.buffer(string: Self.notFoundText) }
        }
        fields[.date] = dateCache.date(at: Date())
        if let serverName { fields[.server] = serverName }
        if closes { fields[.connection] = "close" }
        context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
        if let body { context.write(wrapOutboundOut(.body(body)), promise: nil) }
        if closes {
            let written = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
            needsFlush = false
            let channel = context.channel
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.write(wrapOutboundOut(.end(nil)), promise: nil)
            needsFlush = true
        }
    }

    private func flushIfNeeded(_ context: ChannelHandlerContext) {
        guard needsFlush else { return }
        needsFlush = false
        context.flush()
    }

    /// Whether the connection closes after the response to `head`: `Connection: close`, or an
    /// HTTP/1.0 request that did not ask to keep it (RFC 9112 §9.3).
    private func closesConnection(_ head: HTTPRequest) -> Bool {
        if let keepAlive = keepAlive?.lastHeadKeepsAlive { return !keepAlive }
        guard let connection = head.headerFields[.connection] else { return false }
        return connection.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == "close" }
    }

    static let pixelFields: HTTPFields = {
        var fields = TrackingRoutes.pixelHeaders
        fields[.contentLength] = String(TrackingRoutes.pixel.count)
        return fields
    }()

    static let notFoundText = "This link is not known."
    static let notFoundFields: HTTPFields = [
        .contentType: "text/plain; charset=utf-8", .contentLength: String(notFoundText.utf8.count),
    ]
}

@available(*, unavailable)
extension TrackingFastPath: Sendable {}

extension TrackingFastPath {
    /// What is answered here, once the request has been read.
    enum Answer: Equatable {
        case pixel(withBody: Bool)
        case redirect(String)
        case notFound(withBody: Bool)
    }

    /// Who answers the request being read, and how many requests handed to Hummingbird are
    /// still unanswered (their response `.end` has not come back through this handler).
    struct State {
        enum Reading: Equatable {
            /// Between requests.
            case idle
            /// Hummingbird answers it: its parts go on.
            case forwarding
            /// Answered here once read; its parts stop here.
            case answering(Answer, closes: Bool)
            /// The connection closes after a response: nothing more is answered here.
            case closed
        }

        private(set) var reading = Reading.idle
        private(set) var unanswered = 0
        /// A request handed on asked to close the connection; Hummingbird closes it after answering.
        private var closing = false

        /// Whether a request starting now may be answered here.
        var intercepts: Bool { reading == .idle && unanswered == 0 && !closing }

        var forwardsParts: Bool { reading == .forwarding }

        mutating func answering(_ answer: Answer, closes: Bool) {
            precondition(intercepts, "answering a request in \(self)")
            reading = .answering(answer, closes: closes)
        }

        mutating func forwarding(closes: Bool) {
            reading = .forwarding
            unanswered += 1
            if closes { closing = true }
        }

        mutating func requestForwarded() {
            reading = .idle
        }

        /// The answer to write, at the end of a request answered here.
        mutating func requestRead() -> (Answer, closes: Bool)? {
            guard case .answering(let answer, let closes) = reading else { return nil }
            reading = closes ? .closed : .idle
            return (answer, closes)
        }

        mutating func forwardedAnswered() {
            if unanswered > 0 { unanswered -= 1 }
        }
    }
}

/// Notes whether each HTTP/1 request head keeps its connection open (its version and its
/// `Connection` header), for `TrackingFastPath` after the conversion to HTTP types.
final class KeepAliveProbe: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    var lastHeadKeepsAlive: Bool?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) { lastHeadKeepsAlive = head.isKeepAlive }
        context.fireChannelRead(data)
    }
}

@available(*, unavailable)
extension KeepAliveProbe: Sendable {}

/// The `Date` header value (IMF-fixdate), formatted once a second.
/// - SeeAlso: RFC 9110 §5.6.7
struct HTTPDateCache {
    private var second = Int.min
    private var value = ""

    mutating func date(at date: Date) -> String {
        let now = Int(date.timeIntervalSince1970.rounded(.down))
        if now != second {
            second = now
            value = Self.imfFixdate(secondsSince1970: now)
        }
        return value
    }

    static func imfFixdate(secondsSince1970 seconds: Int) -> String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        let weekday = ((days % 7) + 11) % 7  // 1970-01-01 was a Thursday
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : String(n) }
        return "\(weekdays[weekday]), \(two(day)) \(months[month - 1]) \(year) "
            + "\(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60)) GMT"
    }

    private static let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
}
