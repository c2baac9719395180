import Logging
import NIOCore
import NIOSSL
import SMTPCore
import Synchronization

/// Whether a session is ready for a message, as its handler last saw it: published on the
/// event loop after every change, read from any thread without a hop to the loop.
final class SMTPClientReadiness: Sendable {
    private let ready = Atomic<Bool>(false)

    var isReady: Bool { ready.load(ordering: .acquiring) }

    func publish(_ isReady: Bool) {
        ready.store(isReady, ordering: .releasing)
    }
}

/// Runs one `SMTPClientStateMachine` on one channel: reads replies, performs the machine's
/// actions, keeps one timer armed with the machine's `pendingTimeout`, and starts TLS.
///
/// All methods run on the channel's event loop.
final class SMTPClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var machine: SMTPClientStateMachine
    private var decoder: SMTPReplyDecoder
    private var input = ByteBuffer()
    private let tls: SMTPClientTLS?
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var timer: Scheduled<Void>?
    /// When the timer fires (it may fire before `deadline`, then it re-arms).
    private var timerDeadline: NIODeadline?
    /// When the pending wait times out; nil when nothing is awaited.
    private var deadline: NIODeadline?
    private var channelClosed = false
    /// From `.startTLS` until the first reply over TLS: an error now is a failed handshake.
    private var handshaking = false

    private let readyPromise: EventLoopPromise<SMTPServerCapabilities>
    private var readyPending = true
    private var contentRequest: EventLoopPromise<Bool>?
    /// The whole content, stuffed and terminated, to write on the 354 without a round trip
    /// to the sending task.
    private var preparedContent: ByteBuffer?
    private var completion: EventLoopPromise<[SMTPDeliveryOutcome]>?
    /// `isReadyForMessage`, published for `SMTPClientConnection` after every change.
    let readiness = SMTPClientReadiness()

    init(machine: SMTPClientStateMachine, tls: SMTPClientTLS?, eventLoop: any EventLoop, logger: Logger) {
        self.machine = machine
        self.decoder = SMTPReplyDecoder(
            maxLineLength: machine.configuration.maxReplyLineLength,
            maxLines: machine.configuration.maxReplyLines
        )
        self.tls = tls
        self.logger = logger
        self.readyPromise = eventLoop.makePromise()
    }

    var ready: EventLoopFuture<SMTPServerCapabilities> { readyPromise.futureResult }
    var tlsActive: Bool { machine.tlsActive }
    /// Open, between messages, and not closing: `startMessage` would start a transaction.
    var isReadyForMessage: Bool {
        guard let context, context.channel.isActive, !channelClosed else { return false }
        return machine.isReadyForMessage && completion == nil
    }

    // MARK: Channel events

    func handlerRemoved(context: ChannelHandlerContext) {
        // The context holds this handler: drop ours so the pair can be freed.
        timer?.cancel()
        timer = nil
        timerDeadline = nil
        self.context = nil
        // A channel that never became active (connection refused) never ran `channelInactive`:
        // whoever waits on a promise must still get an answer.
        let removed = SMTPClientError(
            .connectionClosed,
            reply: SMTPReply(code: 421, EnhancedStatusCode(class: 4, subject: 4, detail: 1), "No connection to \(machine.remoteHost)"),
            isRemoteReply: false
        )
        if readyPending {
            readyPending = false
            readyPromise.fail(removed)
        }
        contentRequest?.succeed(false)
        contentRequest = nil
        completion?.fail(removed)
        completion = nil
        readiness.publish(false)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        perform(machine.connectionEstablished())
    }

    private var started = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        input.writeBuffer(&bytes)
        decodeReplies()
    }

    private func decodeReplies() {
        while !machine.isClosed {
            let reply: SMTPReply?
            do {
                reply = try decoder.decode(buffer: &input)
            } catch {
                logger.notice("Bad reply from SMTP server", metadata: ["smtp.error": "\(error)"])
                input.clear()
                perform(machine.protocolError("\(error)"))
                return
            }
            guard let reply else { break }
            handshaking = false
            logger.trace("SMTP reply", metadata: ["smtp.reply": "\(reply.code) \(reply.text)"])
            perform(machine.replyReceived(reply))
        }
        input.discardReadBytes()
    }

    func channelInactive(context: ChannelHandlerContext) {
        channelClosed = true
        timer?.cancel()
        timer = nil
        timerDeadline = nil
        perform(machine.connectionClosed())
        // Nothing may be scheduled after the close: a pending timer would keep this handler
        // (and the session's buffers) alive until it fires.
        timer?.cancel()
        timer = nil
        timerDeadline = nil
        let closed = SMTPClientError(
            .connectionClosed,
            reply: SMTPReply(code: 421, EnhancedStatusCode(class: 4, subject: 4, detail: 2), "Connection to \(machine.remoteHost) closed"),
            isRemoteReply: false
        )
        if readyPending {
            readyPending = false
            readyPromise.fail(closed)
        }
        contentRequest?.succeed(false)
        contentRequest = nil
        completion?.fail(closed)
        completion = nil
        readiness.publish(false)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if handshaking {
            handshaking = false
            logger.notice("TLS handshake with SMTP server failed", metadata: ["smtp.error": "\(error)"])
            perform(machine.tlsFailed("\(error)"))
        } else {
            logger.debug("SMTP client connection error", metadata: ["smtp.error": "\(error)"])
            context.close(promise: nil)
        }
    }

    // MARK: Requests from SMTPClientConnection

    /// Starts a transaction. The first future says whether content is wanted (354), the second
    /// brings the outcomes.
    ///
    /// With `preparedContent` (already dot-stuffed and ended with `.CRLF`), the handler writes
    /// it itself on the 354 and the first future answers false: nothing is left to write.
    func startMessage(
        _ envelope: SMTPOutgoingEnvelope, preparedContent: ByteBuffer? = nil
    ) throws(SMTPClientError) -> (EventLoopFuture<Bool>, EventLoopFuture<[SMTPDeliveryOutcome]>) {
        guard let context, machine.isReadyForMessage, completion == nil else {
            throw SMTPClientError(
                .notReady,
                reply: SMTPReply(code: 421, EnhancedStatusCode(class: 4, subject: 4, detail: 2), "Connection to \(machine.remoteHost) is not ready for a message"),
                isRemoteReply: false
            )
        }
        let contentRequest = context.eventLoop.makePromise(of: Bool.self)
        let completion = context.eventLoop.makePromise(of: [SMTPDeliveryOutcome].self)
        self.contentRequest = contentRequest
        self.completion = completion
        self.preparedContent = preparedContent
        perform(machine.startTransaction(envelope))
        return (contentRequest.futureResult, completion.futureResult)
    }

    /// Writes a piece of dot-stuffed content; each completed write restarts the data-block timer.
    ///
    /// With `isEnd` (the piece holding `.CRLF`), the machine learns at once that the content is
    /// complete: the server's reply may arrive before the write's promise completes.
    func writeContent(_ buffer: ByteBuffer, isEnd: Bool) -> EventLoopFuture<Void> {
        guard let context, context.channel.isActive else {
            return (self.context?.eventLoop ?? readyPromise.futureResult.eventLoop).makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: promise)
        if isEnd {
            perform(machine.contentSent())
            return promise.futureResult
        }
        return promise.futureResult.assumeIsolated().map { self.armTimer() }.nonisolated()
    }

    /// The content could not be read: the message cannot end properly, so the connection is dropped.
    func abortContent() {
        context?.close(promise: nil)
    }

    func quit() -> EventLoopFuture<Void> {
        guard let context else { return readyPromise.futureResult.eventLoop.makeSucceededVoidFuture() }
        perform(machine.quit())
        return context.channel.closeFuture
    }

    // MARK: Actions

    private func perform(_ action: SMTPClientStateMachine.Action) {
        guard let context else { return }
        switch action {
        case .wait:
            break
        case .sendCommands(let commands):
            var buffer = context.channel.allocator.buffer(capacity: 64 * commands.count)
            for command in commands {
                buffer.writeSMTPCommand(command)
                logger.trace("SMTP command", metadata: ["smtp.command": "\(command.verb)"])
            }
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        case .startTLS:
            startTLS(context: context)
        case .sendContent:
            if let prepared = preparedContent {
                preparedContent = nil
                contentRequest?.succeed(false)
                contentRequest = nil
                _ = writeContent(prepared, isEnd: true)
            } else {
                contentRequest?.succeed(true)
                contentRequest = nil
            }
        case .sendEndOfDataOnly:
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: ".\r\n")), promise: nil)
        case .sessionReady(let capabilities):
            if readyPending {
                readyPending = false
                readyPromise.succeed(capabilities)
            }
        case .sessionFailed(let error, let sendQuit):
            logger.debug("SMTP session failed", metadata: ["smtp.error": "\(error)"])
            if readyPending {
                readyPending = false
                readyPromise.fail(error)
            }
            if sendQuit {
                var buffer = context.channel.allocator.buffer(capacity: 8)
                buffer.writeSMTPCommand(.quit)
                context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            } else {
                context.close(promise: nil)
            }
        case .deliveryCompleted(let outcomes, let closeConnection):
            preparedContent = nil
            contentRequest?.succeed(false)
            contentRequest = nil
            // Published before the sender learns the outcomes: it may hand the session back
            // (and check that it is ready) before this method returns.
            let completion = self.completion
            self.completion = nil
            readiness.publish(!closeConnection && isReadyForMessage)
            completion?.succeed(outcomes)
            if closeConnection { context.close(promise: nil) }
        case .closeConnection:
            context.close(promise: nil)
        }
        armTimer()
        readiness.publish(isReadyForMessage)
    }

    /// RFC 3207 §4.2: TLS starts right after the 220; anything the server sent after it is
    /// discarded unread (it could be injected before the handshake), and the session is dropped.
    private func startTLS(context: ChannelHandlerContext) {
        guard let tls else {
            perform(machine.tlsFailed("no TLS configuration"))
            return
        }
        guard input.readableBytes == 0 else {
            input.clear()
            perform(machine.tlsFailed("server sent data after its 220 to STARTTLS"))
            return
        }
        do {
            let name = machine.remoteHost
            let serverHostname = name.isEmpty || name.contains(":") || name.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : name
            let handler = try NIOSSLClientHandler(context: tls.context, serverHostname: serverHostname)
            try context.pipeline.syncOperations.addHandler(handler, position: .first)
        } catch {
            perform(machine.tlsFailed("\(error)"))
            return
        }
        // The TLS handler holds the EHLO until the handshake is done; a failed handshake
        // arrives in `errorCaught` before any reply.
        handshaking = true
        perform(machine.tlsEstablished())
    }

    /// Sets the deadline to the machine's `pendingTimeout` from now. The timer is re-armed only
    /// when the deadline moves earlier; when it fires early it re-arms itself for the deadline.
    /// That saves a cancel and a schedule for nearly every reply and content write.
    private func armTimer() {
        guard !channelClosed, let context, let timeout = machine.pendingTimeout else {
            deadline = nil
            return
        }
        let newDeadline = NIODeadline.now() + TimeAmount(timeout)
        deadline = newDeadline
        if timer != nil, let timerDeadline, timerDeadline <= newDeadline { return }
        schedule(at: newDeadline, context: context)
    }

    private func schedule(at when: NIODeadline, context: ChannelHandlerContext) {
        timer?.cancel()
        timerDeadline = when
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: when) {
            self.timer = nil
            self.timerDeadline = nil
            guard !self.channelClosed, let deadline = self.deadline, let context = self.context else { return }
            if deadline > NIODeadline.now() {
                self.schedule(at: deadline, context: context)
                return
            }
            self.deadline = nil
            self.logger.debug("SMTP client timeout")
            self.perform(self.machine.timeoutFired())
        }
    }
}
