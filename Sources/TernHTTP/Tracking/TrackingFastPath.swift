import Foundation
import HTTPTypes
public import NIOCore
public import NIOHTTP1
import TernCore

/// Answers opens (`GET`/`HEAD /o/TOKEN`) and clicks on links held in memory (`GET`/`HEAD
/// /c/TOKEN`) on the event loop, with no task per request. It sits right after NIO's HTTP/1
/// decoder, before Hummingbird converts requests to HTTP types, and its responses go straight
/// to NIO's encoder. Everything else, and a click whose links must be read from the store, goes
/// on to Hummingbird untouched, where `TrackingRoutes` answers the same requests the same way.
/// Most opens and clicks never get here: `TrackingWirePath`, in front of the decoder, answers
/// them from the bytes; this handler answers those of connections it has handed on.
///
/// Responses on a connection keep the order of its requests (RFC 9112 §9.3.2): a request is
/// answered here only when no request handed to Hummingbird is still unanswered; while one is,
/// the following requests are handed on too.
///
/// Install it with `TrackingFastPath.Installer` in `HTTP1Channel.Configuration.additionalChannelHandlers`.
public final class TrackingFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias InboundOut = HTTPServerRequestPart
    public typealias OutboundIn = HTTPServerResponsePart
    public typealias OutboundOut = HTTPServerResponsePart

    private let routes: TrackingRoutes
    private let serverName: String?
    private var state = State()
    private var needsFlush = false
    private var dateCache = HTTPDateCache()
    /// The second `pixelHeaders` carries the `Date` of.
    private var pixelHeadersSecond = Int.min
    /// The pixel's headers, built once per connection; only `Date` changes, once a second.
    private var pixelHeaders = HTTPHeaders()
    /// The client's address, read once per connection.
    private var clientIP: String??

    /// - Parameter serverName: the `Server` header, as Hummingbird sends it.
    public init(routes: TrackingRoutes, serverName: String? = nil) {
        self.routes = routes
        self.serverName = serverName
    }

    // MARK: Requests

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if state.reading == .closed { return }  // nothing after a response that closes
        switch unwrapInboundIn(data) {
        case .head(let head):
            let closes = !head.isKeepAlive
            if let answer = state.intercepts ? answer(head, context: context) : nil {
                state.answering(answer, closes: closes, http10: head.version.minor == 0 && head.version.major == 1)
            } else {
                state.forwarding(closes: closes)
                context.fireChannelRead(data)
            }
        case .body:
            if state.forwardsParts { context.fireChannelRead(data) }
        case .end:
            if state.forwardsParts { context.fireChannelRead(data); state.requestForwarded(); return }
            guard let (answer, connection) = state.requestRead() else { return }
            write(answer, connection: connection, context: context)
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
    private func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) -> Answer? {
        let method: HTTPRequest.Method
        switch head.method {
        case .GET: method = .get
        case .HEAD: method = .head
        default: return nil
        }
        return Self.answer(
            routes: routes, method: method, target: head.uri, userAgent: head.headers.first(name: "user-agent"),
            clientIP: clientIP(context))
    }

    /// The response to a `GET` or `HEAD` of `target` when it is an open or a click on a link
    /// held in memory (the event recorded), nil when Hummingbird is to answer it. Both fast
    /// paths (this one and `TrackingWirePath`) answer through here.
    static func answer(
        routes: TrackingRoutes, method: HTTPRequest.Method, target path: String, userAgent: @autoclosure () -> String?,
        clientIP: @autoclosure () -> String?
    ) -> Answer? {
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
        let withBody = method != .head

        switch endpoint {
        case .open:
            guard let token = routes.verified(.open, token) else { return .notFound(withBody: withBody) }
            routes.recorder.record(routes.engagement(
                .open, token, method: method, userAgent: userAgent(), clientIP: clientIP(), at: routes.now()))
            return .pixel(withBody: withBody)
        case .click:
            guard let token = routes.verified(.click, token) else { return .notFound(withBody: withBody) }
            // Not held in memory: Hummingbird's route reads the store.
            guard let target = routes.links.cachedTarget(of: token.messageID, index: token.linkIndex) else { return nil }
            guard let target else { return .notFound(withBody: withBody) }
            routes.recorder.record(routes.engagement(
                .click, token, method: method, userAgent: userAgent(), clientIP: clientIP(), at: routes.now(), target: target))
            return .redirect(TrackingRoutes.locationValue(target))
        }
    }

    private func clientIP(_ context: ChannelHandlerContext) -> String? {
        if let clientIP { return clientIP }
        let ip = context.channel.remoteAddress?.ipAddress
        clientIP = .some(ip)
        return ip
    }

    private func write(_ answer: Answer, connection: ConnectionHeader, context: ChannelHandlerContext) {
        let now = Date()
        var headers: HTTPHeaders
        let status: HTTPResponseStatus
        var body: ByteBuffer?
        switch answer {
        case .pixel(let withBody):
            status = .ok
            headers = pixelHeaders(at: now)
            if withBody { body = Self.pixelBody }
        case .redirect(let location):
            status = .found
            headers = HTTPHeaders()
            headers.reserveCapacity(6)
            headers.add(name: "Location", value: location)
            headers.add(name: "Cache-Control", value: "no-store")
            headers.add(name: "Content-Length", value: "0")
            addDateAndServer(to: &headers, at: now)
        case .notFound(let withBody):
            status = .notFound
            headers = Self.notFoundHeaders
            addDateAndServer(to: &headers, at: now)
            if withBody { body = Self.notFoundBody }
        }
        switch connection {
        case .none: break
        case .close: headers.add(name: "Connection", value: "close")
        case .keepAlive: headers.add(name: "Connection", value: "keep-alive")
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if let body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        if connection == .close {
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

    /// The pixel's headers, with a `Date` of the current second.
    private func pixelHeaders(at now: Date) -> HTTPHeaders {
        let second = Int(now.timeIntervalSince1970.rounded(.down))
        if second != pixelHeadersSecond {
            pixelHeadersSecond = second
            var headers = Self.pixelHeaders
            addDateAndServer(to: &headers, at: now)
            pixelHeaders = headers
        }
        return pixelHeaders
    }

    private func addDateAndServer(to headers: inout HTTPHeaders, at now: Date) {
        headers.add(name: "Date", value: dateCache.date(at: now))
        if let serverName { headers.add(name: "Server", value: serverName) }
    }

    private func flushIfNeeded(_ context: ChannelHandlerContext) {
        guard needsFlush else { return }
        needsFlush = false
        context.flush()
    }

    static let pixelBody = ByteBuffer(bytes: TrackingRoutes.pixel)

    /// The pixel's headers but `Date` and `Server`, as `TrackingRoutes` sends them.
    static let pixelHeaders: HTTPHeaders = {
        var headers = HTTPHeaders(TrackingRoutes.pixelHeaders.map { ($0.name.rawName, $0.value) })
        headers.add(name: "Content-Length", value: String(TrackingRoutes.pixel.count))
        return headers
    }()

    static let notFoundText = "This link is not known."
    static let notFoundBody = ByteBuffer(string: notFoundText)
    static let notFoundHeaders: HTTPHeaders = [
        "Content-Type": "text/plain; charset=utf-8", "Content-Length": String(notFoundText.utf8.count),
    ]
}

@available(*, unavailable)
extension TrackingFastPath: Sendable {}

extension TrackingFastPath {
    /// Puts a `TrackingFastPath` right after NIO's HTTP/1 request decoder and a
    /// `TrackingWirePath` in front of NIO's HTTP/1 handlers (after TLS, if any), then leaves
    /// the pipeline. Hummingbird adds its `additionalChannelHandlers` after the conversion to
    /// HTTP types; this is how the fast paths get below it.
    public final class Installer: ChannelInboundHandler, RemovableChannelHandler {
        public typealias InboundIn = Never

        private let routes: TrackingRoutes
        private let serverName: String?

        /// - Parameter serverName: the `Server` header, as Hummingbird sends it.
        public init(routes: TrackingRoutes, serverName: String? = nil) {
            self.routes = routes
            self.serverName = serverName
        }

        public func handlerAdded(context: ChannelHandlerContext) {
            let operations = context.pipeline.syncOperations
            if let decoder = try? operations.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self) {
                try? operations.addHandler(
                    TrackingFastPath(routes: routes, serverName: serverName), position: .after(decoder.handler))
                // In front of the encoder too: its responses are bytes already.
                let first = (try? operations.context(handlerType: HTTPResponseEncoder.self)) ?? decoder
                try? operations.addHandler(
                    TrackingWirePath(routes: routes, serverName: serverName), position: .before(first.handler))
            }
            operations.removeHandler(context: context, promise: nil)
        }
    }

    /// Which `Connection` header the response carries.
    enum ConnectionHeader: Equatable {
        /// None: HTTP/1.1 keeps the connection by default.
        case none
        /// `close`, and the connection closes after the response.
        case close
        /// `keep-alive`, for an HTTP/1.0 request that asked to keep it (RFC 9112 §C.2.2).
        case keepAlive

        /// The header of a response to a request that `closes` the connection, or is HTTP/1.0.
        init(closes: Bool, http10: Bool) {
            self = closes ? .close : http10 ? .keepAlive : .none
        }
    }

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
            case answering(Answer, ConnectionHeader)
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

        mutating func answering(_ answer: Answer, closes: Bool, http10: Bool) {
            precondition(intercepts, "answering a request in \(self)")
            reading = .answering(answer, ConnectionHeader(closes: closes, http10: http10))
        }

        mutating func forwarding(closes: Bool) {
            reading = .forwarding
            unanswered += 1
            if closes { closing = true }
        }

        mutating func requestForwarded() {
            reading = .idle
        }

        /// The answer to write, at the end of a request answered here, and its `Connection` header.
        mutating func requestRead() -> (Answer, ConnectionHeader)? {
            guard case .answering(let answer, let connection) = reading else { return nil }
            reading = connection == .close ? .closed : .idle
            return (answer, connection)
        }

        mutating func forwardedAnswered() {
            if unanswered > 0 { unanswered -= 1 }
        }
    }
}

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
