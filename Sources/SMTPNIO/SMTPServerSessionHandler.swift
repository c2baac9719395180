import Logging
import NIOCore
import NIOSSL
import SMTPCore

/// One SMTP server session on one channel: owns the input buffer, the framer and the state
/// machine, performs the machine's actions and calls the backend.
///
/// While a backend call is in flight, no further input is decoded and no further reads are
/// requested, so replies to pipelined commands go out in order (RFC 2920 §3).
final class SMTPServerSessionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = Never
    typealias OutboundIn = Never
    typealias OutboundOut = ByteBuffer

    /// Input held while a backend call is in flight before reads are paused.
    static let maxBufferedInput = 64 * 1024

    private let configuration: SMTPServerConfiguration
    private let backend: any SMTPServerBackend
    private let registry: SMTPSessionRegistry
    private let implicitTLS: Bool
    private var logger: Logger

    private var machine: SMTPServerStateMachine?
    private var framer: SMTPServerFramer
    private var input = ByteBuffer()
    private var clientAddress: SocketAddress?
    private var boundIdentity: SMTPIdentity?
    private var authenticatedIdentity: SMTPIdentity?
    /// Waiting for the backend (or for the greeting's identity lookup): decode nothing.
    private var waitingForBackend = true
    private var readPending = false
    private var needsFlush = false
    private var closing = false
    private var admitted = false
    /// When the session times out: the command or data timeout after the current record (a
    /// line, see `SMTPServerFramer.recordsRead`) began, that is after the last one was read
    /// whole or the last reply was sent. Octets that do not finish a record do not move it.
    /// Nil while the backend works (no timeout then).
    private var deadline: NIODeadline?
    /// The timer, armed for `timerDeadline` (≤ `deadline`). Moving the deadline later does
    /// not re-arm it: it fires, sees the later deadline and re-arms itself once. That saves
    /// a cancel and a schedule for every command.
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?

    init(
        configuration: SMTPServerConfiguration,
        backend: any SMTPServerBackend,
        registry: SMTPSessionRegistry,
        implicitTLS: Bool,
        logger: Logger
    ) {
        self.configuration = configuration
        self.backend = backend
        self.registry = registry
        self.implicitTLS = implicitTLS
        self.logger = logger
        self.framer = SMTPServerFramer(
            mode: .command(maxLineLength: configuration.limits.maxCommandLineLength),
            maxTextLineLength: configuration.limits.maxTextLineLength
        )
    }

    private var identity: SMTPIdentity? { authenticatedIdentity ?? boundIdentity }

    // MARK: Channel events

    func channelActive(context: ChannelHandlerContext) {
        clientAddress = context.channel.remoteAddress
        logger[metadataKey: "smtp.client"] = "\(clientAddress?.description ?? "unknown")"
        switch registry.admit(context.channel) {
        case .admitted:
            admitted = true
        case .tooManyConnections:
            logger.notice("Refusing SMTP connection: too many connections")
            sendAndClose([.tooManyConnections], context: context)
            context.fireChannelActive()
            return
        case .shuttingDown:
            sendAndClose([.shuttingDown], context: context)
            context.fireChannelActive()
            return
        }
        machine = SMTPServerStateMachine(configuration: .init(
            hostname: configuration.hostname,
            limits: configuration.limits,
            startTLSAvailable: configuration.tlsContext != nil,
            isTLS: implicitTLS,
            offerAuth: configuration.offerAuth,
            allowInsecureAuth: configuration.allowInsecureAuth,
            clientIsLoopback: clientAddress?.isLoopback ?? false,
            requireIdentity: configuration.requireIdentity,
            checkRecipients: configuration.checkRecipients,
            checkSenders: configuration.checkSenders
        ))
        logger.debug("SMTP session started")
        scheduleTimeout(context: context)

        let backend = self.backend
        let address = clientAddress
        if case .known(let identity) = backend.cachedIdentity(forClientAddress: address) {
            identityKnown(identity, context: context)
        } else {
            context.eventLoop.makeFutureWithTask {
                await backend.identity(forClientAddress: address)
            }.assumeIsolated().whenComplete { result in
                guard !self.closing else { return }
                self.identityKnown(try? result.get(), context: context)
            }
        }
        context.fireChannelActive()
    }

    /// Greets, once the identity bound to the client address is known.
    private func identityKnown(_ identity: SMTPIdentity?, context: ChannelHandlerContext) {
        waitingForBackend = false
        boundIdentity = identity
        guard let action = machine?.connectionEstablished(hasBoundIdentity: identity != nil) else { return }
        perform(action, context: context)
        resume(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        cancelTimeout()
        machine?.connectionClosed()
        if admitted {
            admitted = false
            registry.release(context.channel)
        }
        logger.debug("SMTP session closed")
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !closing else { return }
        input.writeBuffer(&bytes)
        if !waitingForBackend {
            processInput(context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context: context)
        context.fireChannelReadComplete()
    }

    /// Input goes on being read (and buffered, up to `maxBufferedInput`) while the session
    /// waits for the backend: turning reading off and on again for every greeting and every
    /// commit would cost two `epoll_ctl` calls each.
    func read(context: ChannelHandlerContext) {
        if closing || input.readableBytes > Self.maxBufferedInput {
            readPending = true
        } else {
            context.read()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is SMTPServerShutdownEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        guard !closing, let action = machine?.shutdownRequested() else { return }
        perform(action, context: context)
        flushIfNeeded(context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("SMTP session error: \(error)")
        closing = true
        context.close(promise: nil)
    }

    // MARK: Input

    /// Decodes and handles frames until input runs out, the session waits for the backend, or
    /// closes. A record read whole starts the deadline of the next one.
    private func processInput(context: ChannelHandlerContext) {
        var recordRead = false
        while !waitingForBackend, !closing, let mode = machine?.framingMode {
            framer.mode = mode
            let recordsBefore = framer.recordsRead
            let frame: SMTPServerFramer.Frame?
            do {
                frame = try framer.decode(buffer: &input)
            } catch {
                closing = true
                context.close(promise: nil)
                return
            }
            if framer.recordsRead != recordsBefore { recordRead = true }
            guard let frame, let action = machine?.frameReceived(frame) else { break }
            perform(action, context: context)
        }
        if recordRead, !waitingForBackend { scheduleTimeout(context: context) }
        if input.readableBytes == 0 {
            input.clear()
        } else if input.readerIndex > 16 * 1024 {
            input.discardReadBytes()
        }
        flushIfNeeded(context: context)
    }

    /// After a backend call: answer (the next record's deadline starts), decode what is
    /// buffered, read more.
    private func resume(context: ChannelHandlerContext) {
        guard !closing else { return }
        scheduleTimeout(context: context)
        processInput(context: context)
        if readPending, !waitingForBackend, !closing {
            readPending = false
            context.read()
        }
    }

    // MARK: Actions

    private func perform(_ action: SMTPServerStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .reply(let reply):
            send(reply, context: context)
        case .replyAndClose(let replies):
            sendAndClose(replies, context: context)
        case .replyAndStartTLS(let reply):
            startTLS(reply, context: context)
        case .verifyCredentials(let credentials):
            verify(credentials, context: context)
        case .commitMessage(let message):
            commit(message, context: context)
        case .checkRecipient(let forwardPath, let reversePath, let accepted):
            let refusal = backend.checkRecipient(
                forwardPath, reversePath: reversePath, accepted: accepted, identity: identity, clientAddress: clientAddress)
            if let action = machine?.recipientChecked(forwardPath, refusal: refusal) { perform(action, context: context) }
        case .checkSender(let reversePath):
            let refusal = backend.checkSender(reversePath, identity: identity, clientAddress: clientAddress)
            if let action = machine?.senderChecked(refusal: refusal) { perform(action, context: context) }
        }
    }

    private func send(_ reply: SMTPReply, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        buffer.writeSMTPReply(reply)
        context.write(wrapOutboundOut(buffer), promise: nil)
        needsFlush = true
    }

    private func flushIfNeeded(context: ChannelHandlerContext) {
        guard needsFlush else { return }
        needsFlush = false
        context.flush()
    }

    private func sendAndClose(_ replies: [SMTPReply], context: ChannelHandlerContext) {
        closing = true
        cancelTimeout()
        var buffer = context.channel.allocator.buffer(capacity: 64 * replies.count)
        for reply in replies { buffer.writeSMTPReply(reply) }
        needsFlush = false
        input.clear()
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// RFC 3207 §4.2: reply 220, then start TLS; anything the client sent after STARTTLS
    /// in plaintext is discarded (CVE-2011-0411).
    private func startTLS(_ reply: SMTPReply, context: ChannelHandlerContext) {
        guard let tlsContext = configuration.tlsContext else {
            preconditionFailure("STARTTLS accepted without a TLS context")
        }
        send(reply, context: context)
        flushIfNeeded(context: context)
        if input.readableBytes > 0 {
            logger.notice("Discarding \(input.readableBytes) octets pipelined after STARTTLS")
        }
        input.clear()
        framer = SMTPServerFramer(
            mode: .command(maxLineLength: configuration.limits.maxCommandLineLength),
            maxTextLineLength: configuration.limits.maxTextLineLength
        )
        authenticatedIdentity = nil
        do {
            try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext), position: .first)
        } catch {
            logger.error("Could not start TLS: \(error)")
            closing = true
            context.close(promise: nil)
        }
    }

    private func verify(_ credentials: SMTPCredentials, context: ChannelHandlerContext) {
        pauseForBackend(context: context)
        let backend = self.backend
        let address = clientAddress
        let username = credentials.username
        context.eventLoop.makeFutureWithTask {
            try await backend.authenticate(username: credentials.username, password: credentials.password, clientAddress: address)
        }.assumeIsolated().whenComplete { result in
            self.waitingForBackend = false
            guard !self.closing else { return }
            let action: SMTPServerStateMachine.Action?
            switch result {
            case .success(.some(var identity)):
                identity.method = credentials.mechanism == .plain ? .authPlain : .authLogin
                self.authenticatedIdentity = identity
                self.logger.info("SMTP AUTH succeeded", metadata: ["smtp.username": "\(username)", "smtp.credential": "\(identity.credentialName)"])
                action = self.machine?.credentialsVerified(true)
            case .success(.none):
                self.logger.notice("SMTP AUTH failed", metadata: ["smtp.username": "\(username)"])
                action = self.machine?.credentialsVerified(false)
            case .failure(let refusal as SMTPBackendRefusal):
                // The backend logs what it refuses (once per burst when throttling), not each attempt.
                self.logger.debug("SMTP AUTH refused", metadata: ["smtp.username": "\(username)", "smtp.reply": "\(refusal.reply.code)"])
                action = self.machine?.credentialsRefused(refusal.reply)
            case .failure(let error):
                self.logger.error("SMTP AUTH could not be checked: \(error)", metadata: ["smtp.username": "\(username)"])
                action = self.machine?.credentialsRefused(.temporaryAuthenticationFailure)
            }
            guard let action else { return }
            self.perform(action, context: context)
            self.resume(context: context)
        }
    }

    private func commit(_ message: SMTPIncomingMessage, context: ChannelHandlerContext) {
        pauseForBackend(context: context)
        let received = SMTPReceivedMessage(
            clientAddress: clientAddress,
            heloName: message.heloName,
            protocolName: message.protocolName,
            tls: message.tls,
            identity: identity,
            reversePath: message.reversePath,
            recipients: message.recipients,
            eightBitMIME: message.parameters.body == .eightBitMIME,
            smtpUTF8: message.parameters.smtpUTF8,
            content: message.content
        )
        let committed = context.eventLoop.makePromise(of: String.self)
        backend.commit(received) { committed.completeWith($0) }
        committed.futureResult.assumeIsolated().whenComplete { result in
            self.waitingForBackend = false
            guard !self.closing else { return }
            let action: SMTPServerStateMachine.Action?
            switch result {
            case .success(let queueID):
                self.logger.info("Message accepted", metadata: [
                    "smtp.queueID": "\(queueID)", "smtp.recipients": "\(received.recipients.count)",
                    "smtp.size": "\(received.content.readableBytes)",
                ])
                action = self.machine?.messageCommitted(queueID: queueID)
            case .failure(let refusal as SMTPBackendRefusal):
                self.logger.info("Message refused by backend", metadata: ["smtp.reply": "\(refusal.reply.code)"])
                action = self.machine?.messageRefused(refusal.reply)
            case .failure(let error):
                self.logger.error("Message commit failed: \(error)")
                action = self.machine?.messageCommitFailed()
            }
            if let action { self.perform(action, context: context) }
            self.resume(context: context)
        }
    }

    private func pauseForBackend(context: ChannelHandlerContext) {
        waitingForBackend = true
        suspendTimeout()
        flushIfNeeded(context: context)
    }

    // MARK: Timeouts

    /// Starts the deadline of the next record: the data timeout inside DATA or BDAT content,
    /// the command timeout otherwise.
    private func scheduleTimeout(context: ChannelHandlerContext) {
        guard !closing else {
            cancelTimeout()
            return
        }
        let limits = configuration.limits
        let duration = machine?.isReceivingContent == true ? limits.dataTimeout : limits.commandTimeout
        let newDeadline = context.eventLoop.now + TimeAmount(duration)
        deadline = newDeadline
        if let timerDeadline, timerDeadline <= newDeadline { return }
        armTimer(at: newDeadline, context: context)
    }

    /// No timeout until the next `scheduleTimeout`; an armed timer finds no deadline and stops.
    private func suspendTimeout() {
        deadline = nil
    }

    private func cancelTimeout() {
        deadline = nil
        timer?.cancel()
        timer = nil
        timerDeadline = nil
    }

    private func armTimer(at when: NIODeadline, context: ChannelHandlerContext) {
        timer?.cancel()
        timerDeadline = when
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: when) {
            self.timerFired(context: context)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        timerDeadline = nil
        guard !closing, let deadline else { return }
        if deadline > context.eventLoop.now {
            armTimer(at: deadline, context: context)
            return
        }
        timedOut(context: context)
    }

    private func timedOut(context: ChannelHandlerContext) {
        deadline = nil
        logger.notice("SMTP session timed out")
        guard let action = machine?.timedOut() else {
            closing = true
            context.close(promise: nil)
            return
        }
        perform(action, context: context)
        flushIfNeeded(context: context)
    }
}
