public import Logging
public import NIOCore
import NIOPosix
public import SMTPCore
import Synchronization

/// An SMTP client session with one server: connect, send any number of messages, quit.
///
/// `connect` returns once the greeting, EHLO (or HELO) and, per policy, STARTTLS are done.
/// `send` runs one transaction and returns one outcome per recipient; it throws only when the
/// message could not be started (the session is closed or busy: nothing was sent, so another
/// connection may take it) or when the content itself could not be read. An idle session sends
/// QUIT after `SMTPClientTimeouts.idle`.
/// - SeeAlso: RFC 5321 §3, RFC 2920, RFC 3207
public final class SMTPClientConnection: Sendable {
    /// Time allowed for the TCP connection.
    public static let defaultConnectTimeout = Duration.seconds(30)
    /// Content is written in pieces of at most this many octets.
    public static let defaultContentWriteSize = 64 * 1024

    /// The host name outcomes carry (the MX name or the route's host).
    public let remoteHost: String
    /// What the server advertised in its last EHLO reply (after STARTTLS when TLS is used).
    public let capabilities: SMTPServerCapabilities
    /// The session runs over TLS.
    public let tlsActive: Bool
    let channel: any Channel
    private let handler: NIOLoopBound<SMTPClientHandler>
    private let readiness: SMTPClientReadiness

    private init(
        remoteHost: String, capabilities: SMTPServerCapabilities, tlsActive: Bool, channel: any Channel,
        handler: NIOLoopBound<SMTPClientHandler>, readiness: SMTPClientReadiness
    ) {
        self.remoteHost = remoteHost
        self.capabilities = capabilities
        self.tlsActive = tlsActive
        self.channel = channel
        self.handler = handler
        self.readiness = readiness
    }

    /// Connects to `host:port`. A name is resolved by the system resolver (`/etc/hosts`, then
    /// DNS) on NIO's resolver thread, never on the caller's: the caller may be an event loop.
    public static func connect(
        host: String,
        port: Int,
        configuration: SMTPClientConfiguration,
        tls: SMTPClientTLS? = nil,
        group: any EventLoopGroup,
        connectTimeout: Duration = defaultConnectTimeout,
        logger: Logger
    ) async throws(SMTPClientError) -> SMTPClientConnection {
        if let address = try? SocketAddress(ipAddress: host, port: port) {
            return try await connect(
                to: address, remoteHost: host, configuration: configuration, tls: tls, group: group,
                connectTimeout: connectTimeout, logger: logger)
        }
        return try await connect(
            remoteHost: host, describedAs: "\(host):\(port)", configuration: configuration, tls: tls, group: group,
            connectTimeout: connectTimeout, logger: logger
        ) { $0.connect(host: host, port: port) }
    }

    /// Connects to `address`; `remoteHost` is the name recorded in outcomes and checked against
    /// the certificate when the TLS context verifies.
    public static func connect(
        to address: SocketAddress,
        remoteHost: String,
        configuration: SMTPClientConfiguration,
        tls: SMTPClientTLS? = nil,
        group: any EventLoopGroup,
        connectTimeout: Duration = defaultConnectTimeout,
        logger: Logger
    ) async throws(SMTPClientError) -> SMTPClientConnection {
        try await connect(
            remoteHost: remoteHost, describedAs: "\(address)", configuration: configuration, tls: tls, group: group,
            connectTimeout: connectTimeout, logger: logger
        ) { $0.connect(to: address) }
    }

    private static func connect(
        remoteHost: String,
        describedAs peer: String,
        configuration: SMTPClientConfiguration,
        tls: SMTPClientTLS?,
        group: any EventLoopGroup,
        connectTimeout: Duration,
        logger: Logger,
        connecting: (ClientBootstrap) -> EventLoopFuture<any Channel>
    ) async throws(SMTPClientError) -> SMTPClientConnection {
        var configuration = configuration
        if tls == nil && configuration.tlsPolicy == .opportunistic {
            configuration.tlsPolicy = .disabled
        }
        var logger = logger
        logger[metadataKey: "smtp.server"] = "\(remoteHost) \(peer)"
        let machine = SMTPClientStateMachine(configuration: configuration, remoteHost: remoteHost)
        let sessionLogger = logger
        // The handler is kept from the initializer: the session may end (and the pipeline be
        // torn down) before `connect` returns, e.g. after a 421 greeting.
        let installed = Mutex<(NIOLoopBound<SMTPClientHandler>, EventLoopFuture<SMTPServerCapabilities>, SMTPClientReadiness)?>(nil)
        let channel: any Channel
        do {
            let bootstrap = ClientBootstrap(group: group)
                .connectTimeout(TimeAmount(connectTimeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = SMTPClientHandler(machine: machine, tls: tls, eventLoop: channel.eventLoop, logger: sessionLogger)
                        try channel.pipeline.syncOperations.addHandler(handler)
                        let bound = NIOLoopBound(handler, eventLoop: channel.eventLoop)
                        let ready = handler.ready
                        let readiness = handler.readiness
                        installed.withLock { $0 = (bound, ready, readiness) }
                    }
                }
            channel = try await connecting(bootstrap).get()
        } catch {
            throw SMTPClientError(.connectionClosed, reply: Self.noAnswer("Cannot connect to \(remoteHost) (\(peer)): \(error)"), isRemoteReply: false)
        }
        guard let started = installed.withLock({ $0 }) else {
            channel.close(promise: nil)
            throw SMTPClientError(.connectionClosed, reply: Self.noAnswer("Connection to \(remoteHost) closed at once"), isRemoteReply: false)
        }
        do {
            let capabilities = try await started.1.get()
            let tlsActive = try await channel.eventLoop.submit { started.0.value.tlsActive }.get()
            logger.debug("SMTP session ready", metadata: ["smtp.tls": "\(tlsActive)"])
            return SMTPClientConnection(
                remoteHost: remoteHost, capabilities: capabilities, tlsActive: tlsActive, channel: channel, handler: started.0,
                readiness: started.2)
        } catch let error as SMTPClientError {
            _ = try? await channel.closeFuture.get()
            throw error
        } catch {
            channel.close(promise: nil)
            throw SMTPClientError(.connectionClosed, reply: Self.noAnswer("Connection to \(remoteHost) failed: \(error)"), isRemoteReply: false)
        }
    }

    /// The session is open and between messages, so `send` would start a transaction now: no
    /// message in progress, no 421 or timeout seen, no QUIT sent. The server may still close
    /// the connection at any moment; `send` then defers with nothing sent.
    ///
    /// Read without a hop to the event loop: it is what the session's handler last published.
    public var isReadyForMessage: Bool {
        channel.isActive && readiness.isReady
    }

    /// Sends one message and returns one outcome per recipient, in envelope order.
    ///
    /// The content is dot-stuffed as it is written (RFC 5321 §4.5.2). Calls must not overlap.
    public func send(_ message: SMTPOutgoingMessage) async throws -> [SMTPDeliveryOutcome] {
        let handler = self.handler
        let envelope = message.envelope
        let eventLoop = channel.eventLoop
        switch message.content {
        case .buffer(let buffer):
            // Stuffed here and written by the handler itself on the 354: one hop to the event
            // loop, and the outcomes back, with no hop in the middle of the transaction.
            var stuffer = SMTPDotStuffer()
            var output = ByteBuffer()
            output.reserveCapacity(buffer.readableBytes + buffer.readableBytes / 64 + 5)
            stuffer.stuff(buffer, into: &output)
            stuffer.finish(into: &output)
            let prepared = output
            return try await eventLoop.flatSubmit {
                do {
                    return try handler.value.startMessage(envelope, preparedContent: prepared).1
                } catch {
                    return eventLoop.makeFailedFuture(error)
                }
            }.get()
        case .chunks(let chunks):
            let (contentRequested, completed) = try await eventLoop.submit {
                try handler.value.startMessage(envelope)
            }.get()
            if try await contentRequested.get() {
                do {
                    try await writeContent(chunks)
                } catch let error as ContentSourceError {
                    eventLoop.execute { handler.value.abortContent() }
                    _ = try? await completed.get()
                    throw error.underlying
                } catch {
                    // The connection broke; the outcomes say so.
                }
            }
            return try await completed.get()
        }
    }

    /// Ends the session with QUIT and waits for the connection to close.
    public func quit() async {
        let handler = self.handler
        guard channel.isActive else { return }
        _ = try? await channel.eventLoop.flatSubmit { handler.value.quit() }.get()
    }

    /// Closes the connection without QUIT.
    public func close() async {
        _ = try? await channel.close()
    }

    private struct ContentSourceError: Error {
        var underlying: any Error
    }

    private func writeContent<Chunks: AsyncSequence>(_ chunks: Chunks) async throws where Chunks.Element == ByteBuffer {
        let handler = self.handler
        let eventLoop = channel.eventLoop
        var stuffer = SMTPDotStuffer()
        var iterator = chunks.makeAsyncIterator()
        while true {
            let next: ByteBuffer?
            do {
                next = try await iterator.next()
            } catch {
                throw ContentSourceError(underlying: error)
            }
            guard var chunk = next else { break }
            while chunk.readableBytes > 0 {
                let piece = chunk.readSlice(length: min(chunk.readableBytes, Self.defaultContentWriteSize)) ?? ByteBuffer()
                var stuffed = ByteBuffer()
                stuffer.stuff(piece, into: &stuffed)
                let output = stuffed
                try await eventLoop.flatSubmit { handler.value.writeContent(output, isEnd: false) }.get()
            }
        }
        var terminator = ByteBuffer()
        stuffer.finish(into: &terminator)
        let end = terminator
        try await eventLoop.flatSubmit { handler.value.writeContent(end, isEnd: true) }.get()
    }

    private static func noAnswer(_ text: String) -> SMTPReply {
        SMTPReply(code: 421, EnhancedStatusCode(class: 4, subject: 4, detail: 1), text)
    }
}
