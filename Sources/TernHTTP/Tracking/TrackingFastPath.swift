import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import TernCore

/// Answers opens (`GET`/`HEAD /o/TOKEN`) and clicks on links held in memory (`GET`/`HEAD
/// /c/TOKEN`) straight from the connection's bytes, in front of NIO's HTTP/1 decoder, each
/// response written as one buffer: no task, no parser callbacks and no encoder per request.
/// It is the first handler of every HTTP connection (`TernHTTPChannel` puts it there).
///
/// It reads only a strict subset of HTTP/1.1 (RFC 9112): `GET` or `HEAD` of `/o/…` or
/// `/c/…`, HTTP/1.0 or 1.1, CRLF line ends, well-formed field lines, and no body (no
/// `Content-Length`, `Transfer-Encoding`, `Expect` or `Upgrade`). At the first request it
/// does not answer itself (anything else, a click whose links must be read from the store,
/// or anything it is unsure of) it hands that request and every byte after it, for the rest
/// of the connection, to the decoder and the router, where `TrackingRoutes` answers the same
/// requests the same way. Every request it answered was answered before that, so responses
/// keep the order of their requests (RFC 9112 §9.3.2).
///
/// Backpressure: while the channel is not writable (a client that sends requests and does not
/// read the answers) it answers nothing more and asks for no more bytes; it resumes when the
/// channel is writable again. What it holds per connection is bounded by the channel's write
/// buffer watermark and `maxPendingBytes`.
///
/// It also keeps the connection's `HTTPConnectionDeadline` for both ways of answering; the
/// router's side reports through `RouterProgress`.
final class TrackingFastPath: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Mode {
        /// Requests are read here.
        case reading
        /// Everything goes to the decoder.
        case handingOn
        /// A response that closes the connection was written, or the connection timed out: the rest is ignored.
        case closed
    }

    private let routes: TrackingRoutes
    private var mode = Mode.reading
    /// Bytes read and not answered yet: a head not complete, or requests waiting for the
    /// channel to become writable.
    private var pending: ByteBuffer?
    /// `answerPending` is running (a flush inside it may report writability).
    private var answering = false
    /// A `read` was held back while the channel was not writable or requests read were unanswered.
    private var readHeld = false
    /// `pending` starts with a whole request not answered yet (the channel was not writable):
    /// nothing more is read until it is.
    private var backlog = false
    private var needsFlush = false
    private var responses: TrackingResponses
    /// The client's address, read once per connection.
    private var clientIP: String??
    private var deadline: HTTPConnectionDeadline?
    private var timer: Scheduled<Void>?
    private let idleTimeout: TimeAmount

    /// A request head longer than this is left to the decoder (and its limits).
    static let maxHeadLength = 8192
    /// Bytes read ahead and not answered, at most; a client that gets further ahead is closed.
    /// Reads stop while requests read are unanswered, so only the reads of one event-loop turn
    /// pile up here.
    static let maxPendingBytes = 1 << 20

    init(routes: TrackingRoutes, serverName: String?, idleTimeout: TimeAmount = HTTPConnectionLimits.defaultIdleTimeout) {
        self.routes = routes
        self.responses = TrackingResponses(serverName: serverName)
        self.idleTimeout = idleTimeout
    }

    // MARK: Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch mode {
        case .handingOn:
            context.fireChannelRead(data)
            return
        case .closed:
            return
        case .reading:
            break
        }
        var input = unwrapInboundIn(data)
        if var pending = pending.take() {
            pending.writeBuffer(&input)
            input = pending
        }
        guard input.readableBytes <= Self.maxPendingBytes else {
            close(context)
            return
        }
        pending = input
        answerPending(context: context)
        if !context.channel.isWritable { flushIfNeeded(context) }  // what is written must go out to become writable again
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context)
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // During `answerPending` (a flush of its own), its loop sees the change itself.
        if context.channel.isWritable, !answering {
            answerPending(context: context)
            flushIfNeeded(context)
            resumeReading(context)
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimer()
        // Bytes of a head that never completed go to the decoder, which reports them as it would
        // have; requests left unanswered (a client that did not read) are dropped.
        if mode == .reading, !backlog, let partial = pending.take() {
            mode = .handingOn
            context.fireChannelRead(wrapInboundOut(partial))
        }
        context.fireChannelInactive()
    }

    /// Answers the requests read, in order, while the channel is writable; stops at a head
    /// not complete yet, and hands on from the first request not answered here.
    private func answerPending(context: ChannelHandlerContext) {
        answering = true
        defer { answering = false }
        backlog = false
        while mode == .reading, var input = pending.take() {
            guard context.channel.isWritable else {
                pending = input
                backlog = true
                return
            }
            let head: RawRequestHead
            switch RawRequestHead.parse(input.readableBytesView) {
            case .complete(let complete):
                head = complete
            case .incomplete where input.readableBytes < Self.maxHeadLength:
                pending = input  // wait for the rest of the head
                return
            case .incomplete, .notOurs:
                handOn(input, context: context)
                return
            }
            guard let answer = answer(head, context: context) else {
                handOn(input, context: context)
                return
            }
            input.moveReaderIndex(forwardBy: head.length)
            if input.readableBytes > 0 { pending = input }
            let connection = ConnectionHeader(closes: head.closes, http10: head.http10)
            write(answer, connection: connection, context: context)
            deadline?.answered(now: context.eventLoop.now)
        }
    }

    /// From here on the decoder reads this connection, starting with `input`.
    private func handOn(_ input: ByteBuffer, context: ChannelHandlerContext) {
        mode = .handingOn
        flushIfNeeded(context)
        context.fireChannelRead(wrapInboundOut(input))
        resumeReading(context)
    }

    // MARK: Reading and writing

    func read(context: ChannelHandlerContext) {
        if mode == .reading, backlog || !context.channel.isWritable {
            readHeld = true  // asked again once the backlog is answered
            return
        }
        context.read()
    }

    private func resumeReading(_ context: ChannelHandlerContext) {
        guard readHeld, mode != .closed, mode == .handingOn || (!backlog && context.channel.isWritable) else { return }
        readHeld = false
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)  // the router's responses, encoded
    }

    private func write(_ answer: Answer, connection: ConnectionHeader, context: ChannelHandlerContext) {
        let response = responses.response(answer, connection: connection, now: Date(), allocator: context.channel.allocator)
        if connection == .close {
            mode = .closed
            pending = nil
            let channel = context.channel
            needsFlush = false
            context.writeAndFlush(wrapOutboundOut(response)).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.write(wrapOutboundOut(response), promise: nil)
            needsFlush = true
        }
    }

    private func flushIfNeeded(_ context: ChannelHandlerContext) {
        guard needsFlush else { return }
        needsFlush = false
        context.flush()
    }

    private func close(_ context: ChannelHandlerContext) {
        mode = .closed
        pending = nil
        cancelTimer()
        context.close(promise: nil)
    }

    // MARK: Answering

    private func answer(_ head: RawRequestHead, context: ChannelHandlerContext) -> Answer? {
        Self.answer(
            routes: routes, method: head.isHead ? .head : .get, target: head.target,
            userAgent: head.userAgent, clientIP: clientIP(context))
    }

    /// The response to a `GET` or `HEAD` of `target` when it is an open or a click on a link
    /// held in memory (the event recorded), nil when the router is to answer it.
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
            // Not held in memory: the router's route reads the store.
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

    // MARK: The connection's deadline

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startTimer(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer()
    }

    func channelActive(context: ChannelHandlerContext) {
        startTimer(context)
        context.fireChannelActive()
    }

    /// The router read a part of a request handed on.
    func routerRead(_ part: RouterProgress.Part, now: NIODeadline) {
        switch part {
        case .head: deadline?.routerReadHead(now: now)
        case .body: deadline?.routerReadBody(now: now)
        case .end: deadline?.routerReadEnd()
        }
    }

    /// The router's response to a request ended.
    func routerAnswered(now: NIODeadline) {
        deadline?.routerAnswered(now: now)
    }

    private func startTimer(_ context: ChannelHandlerContext) {
        guard deadline == nil else { return }
        let now = context.eventLoop.now
        deadline = HTTPConnectionDeadline(timeout: idleTimeout, now: now)
        schedule(at: now + idleTimeout, context: context)
    }

    private func schedule(at time: NIODeadline, context: ChannelHandlerContext) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: time) { [self] in
            timer = nil
            guard mode != .closed, let state = deadline else { return }
            let now = context.eventLoop.now
            // While the router works on a request, look again a timeout later.
            guard let due = state.deadline else { return schedule(at: now + idleTimeout, context: context) }
            if now >= due { close(context) } else { schedule(at: due, context: context) }
        }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
    }
}

@available(*, unavailable)
extension TrackingFastPath: Sendable {}

extension TrackingFastPath {
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

    /// What is answered here.
    enum Answer: Equatable {
        case pixel(withBody: Bool)
        case redirect(String)
        case notFound(withBody: Bool)
    }

    /// The pixel's headers but `Date` and `Server`, as `TrackingRoutes` sends them.
    static let pixelHeaders: HTTPHeaders = {
        var headers = HTTPHeaders(TrackingRoutes.pixelHeaders.map { ($0.name.rawName, $0.value) })
        headers.add(name: "Content-Length", value: String(TrackingRoutes.pixel.count))
        return headers
    }()

    static let notFoundText = "This link is not known."
    static let notFoundHeaders: HTTPHeaders = [
        "Content-Type": "text/plain; charset=utf-8", "Content-Length": String(notFoundText.utf8.count),
    ]
}
