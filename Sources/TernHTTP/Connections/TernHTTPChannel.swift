public import HummingbirdCore
public import Logging
public import NIOCore
import NIOEmbedded
import NIOHTTP1
public import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Every HTTP connection's pipeline, built here rather than by Hummingbird's `HTTP1Channel`
/// so that the tracking fast path is put in front of NIO's HTTP/1 handlers by construction,
/// not found by type afterwards:
///
///     TrackingFastPath → NIO's HTTP/1 encoder and decoder → HTTP1ToHTTPServerCodec
///       → RouterProgress → HTTPConnectionStateHandler → NIOAsyncChannel (the router)
///
/// A connection over `HTTPConnectionLimits`' caps is closed as it arrives; the fast path
/// closes one that waits too long (`HTTPConnectionDeadline`), whichever way it is answered.
public struct TernHTTPChannel: HTTPChannelHandler {
    public typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    public let responder: HTTPChannelHandler.Responder
    let routes: TrackingRoutes
    let serverName: String?
    let limits: HTTPConnectionLimits
    let admission: HTTPConnectionAdmission

    init(
        responder: @escaping HTTPChannelHandler.Responder, routes: TrackingRoutes, serverName: String?,
        limits: HTTPConnectionLimits, admission: HTTPConnectionAdmission
    ) {
        self.responder = responder
        self.routes = routes
        self.serverName = serverName
        self.limits = limits
        self.admission = admission
    }

    /// Hummingbird's `Application(server:)` with these connections.
    public static func server(routes: TrackingRoutes, serverName: String?, limits: HTTPConnectionLimits) -> HTTPServerBuilder {
        let admission = HTTPConnectionAdmission(limits: limits)
        return HTTPServerBuilder { responder in
            TernHTTPChannel(responder: responder, routes: routes, serverName: serverName, limits: limits, admission: admission)
        }
    }

    /// Over a cap, the error the set-up fails with (the connection is closed; nothing is answered).
    struct TooManyConnections: Error {}

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let client = channel.remoteAddress?.ipAddress
        guard admission.admit(client) else {
            logger.debug("http connection from \(client ?? "?") closed: too many connections")
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(TooManyConnections())
        }
        let admission = admission
        channel.closeFuture.whenComplete { _ in admission.release(client) }
        return channel.eventLoop.makeCompletedFuture {
            try Self.addHandlers(to: channel, routes: routes, serverName: serverName, idleTimeout: limits.idleTimeout, logger: logger)
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    public func handle(value: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: value, logger: logger)
    }

    /// Builds the pipeline of one connection (see the type's comment) up to the router's `NIOAsyncChannel`.
    static func addHandlers(
        to channel: any Channel, routes: TrackingRoutes, serverName: String?, idleTimeout: TimeAmount, logger: Logger
    ) throws {
        let operations = channel.pipeline.syncOperations
        let fastPath = TrackingFastPath(routes: routes, serverName: serverName, idleTimeout: idleTimeout)
        try operations.addHandler(fastPath, position: .first)
        // As Hummingbird's `HTTP1Channel` sets them up.
        let decoder = HTTP1Channel.Configuration.DecoderConfiguration()
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderFieldSize = decoder.maxHeaderFieldSize
        decoderLimits.maxHeaderListSize = decoder.maxHeaderListSize
        decoderLimits.maxHeaderFieldCount = decoder.maxHeaderFieldCount
        try operations.configureHTTPServerPipeline(
            position: .last, withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
            withEncoderConfiguration: .init(), withDecoderLimitConfiguration: decoderLimits)
        try operations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
        try operations.addHandler(RouterProgress(fastPath: fastPath))
        // Graceful shutdown (quiescing); the fast path keeps the connection's time limits.
        try operations.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
    }

    /// The fast path is not where it must be: opens and clicks would all go to the router.
    public struct FastPathMissing: Error, CustomStringConvertible {
        public var description: String
    }

    /// Builds a connection's pipeline as `setup` does, on a channel of its own, and checks
    /// that the fast path answers an open (a bad token: nothing is recorded) before NIO's
    /// decoder sees it; throws `FastPathMissing` otherwise. `tern serve` calls it at start-up.
    /// - Parameter pipeline: builds the pipeline instead of `addHandlers` (tests: one that changed).
    public static func checkFastPath(
        routes: TrackingRoutes, serverName: String?, pipeline: ((any Channel) throws -> Void)? = nil
    ) throws {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        if let pipeline {
            try pipeline(channel)
        } else {
            try addHandlers(to: channel, routes: routes, serverName: serverName, idleTimeout: .seconds(60), logger: Logger(label: "tern.http"))
        }
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(string: "GET /o/- HTTP/1.1\r\nHost: tern\r\n\r\n"))
        var response = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) { response.writeBuffer(&part) }
        let text = String(buffer: response)
        guard text.hasPrefix("HTTP/1.1 404 Not Found\r\n"), text.hasSuffix("\r\n\r\n" + TrackingFastPath.notFoundText) else {
            throw FastPathMissing(description: "the tracking fast path did not answer a probe open (got \(text.debugDescription)); the HTTP pipeline is not as TernHTTPChannel.addHandlers builds it")
        }
    }
}

/// Reports to the fast path what the router reads and answers, for the connection's deadline.
final class RouterProgress: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    enum Part {
        case head, body, end
    }

    private let fastPath: TrackingFastPath

    init(fastPath: TrackingFastPath) {
        self.fastPath = fastPath
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let now = context.eventLoop.now
        switch unwrapInboundIn(data) {
        case .head: fastPath.routerRead(.head, now: now)
        case .body: fastPath.routerRead(.body, now: now)
        case .end: fastPath.routerRead(.end, now: now)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { fastPath.routerAnswered(now: context.eventLoop.now) }
        context.write(data, promise: promise)
    }
}

@available(*, unavailable)
extension RouterProgress: Sendable {}
