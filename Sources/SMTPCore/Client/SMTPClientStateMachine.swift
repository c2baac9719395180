/// One SMTP client session: greeting, EHLO (HELO fallback), optional STARTTLS, then any number of
/// mail transactions, then QUIT. Pure: the channel handler feeds it events (replies, timeouts,
/// TLS, connection loss) and performs the `Action` each returns.
///
/// Every message ends with exactly one outcome per recipient. A recipient is `sent` only after a
/// 2xx reply to the end of data; anything that breaks the conversation before then defers it.
/// - SeeAlso: RFC 5321 §3, §4.1.1, §4.5.3.2; RFC 2920 (PIPELINING); RFC 3207 (STARTTLS)
public struct SMTPClientStateMachine: Sendable {
    public enum Action: Sendable, Hashable {
        /// Nothing to send; keep waiting (re-arm the timer with `pendingTimeout`).
        case wait
        /// Write these commands in one flush (one pipelined group, RFC 2920 §3.1).
        case sendCommands([SMTPCommand])
        /// 220 to STARTTLS: start TLS on the connection, then call `tlsEstablished()` or `tlsFailed(_:)`.
        /// Nothing read before the handshake may be used (RFC 3207 §4.2).
        case startTLS
        /// 354: write the content dot-stuffed and ended with `CRLF.CRLF`, then call `contentSent()`.
        case sendContent
        /// 354 with no accepted recipient (pipelining): write only `.CRLF` (RFC 2920 §3.1).
        case sendEndOfDataOnly
        /// The session can take a message.
        case sessionReady(SMTPServerCapabilities)
        /// The session could not be set up. Write QUIT and wait for the close when `sendQuit`,
        /// otherwise close now.
        case sessionFailed(SMTPClientError, sendQuit: Bool)
        /// The message's transaction ended: one outcome per recipient, in envelope order.
        case deliveryCompleted([SMTPDeliveryOutcome], closeConnection: Bool)
        /// Close the connection.
        case closeConnection
    }

    struct Transaction: Sendable {
        enum Step: Sendable, Hashable {
            case rset
            case mail
            case rcpt(Int)
            case data
        }

        enum Phase: Sendable, Hashable {
            /// Waiting for replies to commands.
            case commands
            /// Writing content after 354.
            case content
            /// Content written; waiting for the reply to the end of data.
            case endOfData
            /// Wrote `.CRLF` after a 354 with no accepted recipient.
            case abortingData
        }

        var envelope: SMTPOutgoingEnvelope
        var parameters: SMTPMailParameters
        var awaiting: [Step]
        var unsent: [Step]
        var outcomes: [SMTPDeliveryOutcome?]
        var accepted: [Bool]
        var mailAccepted = false
        var phase = Phase.commands

        var hasAcceptedRecipient: Bool { accepted.contains(true) }

        var currentStage: SMTPDeliveryOutcome.Stage {
            switch phase {
            case .commands:
                switch awaiting.first {
                case .rset, .mail, nil: .mail
                case .rcpt: .rcpt
                case .data: .data
                }
            case .content, .endOfData: .endOfData
            case .abortingData: .data
            }
        }
    }

    enum State: Sendable {
        case initial
        case awaitingGreeting
        case awaitingEHLO
        case awaitingHELO
        case awaitingStartTLS(SMTPServerCapabilities)
        case tlsHandshake
        case ready
        case transaction(Transaction)
        case quitting
        case closed
    }

    public let configuration: SMTPClientConfiguration
    /// The host name recorded in outcomes.
    public let remoteHost: String
    private var state = State.initial
    public private(set) var capabilities = SMTPServerCapabilities(isExtended: false)
    public private(set) var tlsActive = false
    /// MAIL was accepted and the transaction did not reach the end-of-data reply: RSET first.
    private var needsReset = false

    public init(configuration: SMTPClientConfiguration, remoteHost: String) {
        self.configuration = configuration
        self.remoteHost = remoteHost
    }

    /// The session can take a message now.
    public var isReadyForMessage: Bool {
        if case .ready = state { true } else { false }
    }

    /// The session is over (or never started): no more events matter.
    public var isClosed: Bool {
        if case .closed = state { true } else { false }
    }

    /// How long to wait for the next event before calling `timeoutFired()`; nil: no timer.
    ///
    /// The handler re-arms its timer with this after every event.
    public var pendingTimeout: Duration? {
        let timeouts = configuration.timeouts
        switch state {
        case .initial, .closed: return nil
        case .awaitingGreeting: return timeouts.greeting
        case .awaitingEHLO, .awaitingHELO, .awaitingStartTLS, .tlsHandshake, .quitting: return timeouts.command
        case .ready: return timeouts.idle
        case .transaction(let transaction):
            switch transaction.phase {
            case .commands:
                switch transaction.awaiting.first {
                case .rset, nil: return timeouts.command
                case .mail: return timeouts.mail
                case .rcpt: return timeouts.rcpt
                case .data: return timeouts.dataInitiation
                }
            case .content: return timeouts.dataBlock
            case .endOfData, .abortingData: return timeouts.dataTermination
            }
        }
    }

    // MARK: Events

    /// The TCP connection is up; the greeting comes next (RFC 5321 §3.1).
    public mutating func connectionEstablished() -> Action {
        guard case .initial = state else { preconditionFailure("connectionEstablished in \(state)") }
        state = .awaitingGreeting
        return .wait
    }

    /// A complete reply arrived.
    public mutating func replyReceived(_ received: SMTPReply) -> Action {
        let reply = capabilities.enhancedStatusCodes ? received.extractingEnhancedStatusCode() : received
        switch state {
        case .initial, .closed:
            return .wait

        case .awaitingGreeting:
            // RFC 5321 §3.1, §4.3.2: 220, or 554 (and 421 in practice) to refuse.
            switch reply.code {
            case 220:
                state = .awaitingEHLO
                return .sendCommands([.ehlo(domain: configuration.localHostname)])
            case 400..<600:
                return failSession(.greetingRefused, reply, isRemote: true, sendQuit: reply.code != 421)
            default:
                return failSession(.protocolViolation, Self.localReply(421, 4, 5, 0, "Unexpected greeting \(reply.code) from \(remoteHost)"), isRemote: false, sendQuit: true)
            }

        case .awaitingEHLO:
            switch reply.code {
            case 250:
                capabilities = SMTPServerCapabilities(ehloReply: received)
                return afterHello()
            case 500..<600:
                // RFC 5321 §3.2: an old server that does not know EHLO.
                state = .awaitingHELO
                return .sendCommands([.helo(domain: configuration.localHostname)])
            default:
                return failSession(.helloRefused, reply, isRemote: true, sendQuit: reply.code != 421)
            }

        case .awaitingHELO:
            guard reply.code == 250 else {
                return failSession(.helloRefused, reply, isRemote: true, sendQuit: reply.code != 421)
            }
            capabilities = SMTPServerCapabilities(heloReply: received)
            return afterHello()

        case .awaitingStartTLS(let offered):
            if reply.code == 220 {
                state = .tlsHandshake
                return .startTLS
            }
            if reply.code == 421 {
                return failSession(.tlsRequired, reply, isRemote: true, sendQuit: false)
            }
            if configuration.tlsPolicy == .required {
                return failSession(
                    .tlsRequired,
                    Self.localReply(454, 4, 7, 4, "TLS is required, but \(remoteHost) refused STARTTLS: \(reply.code) \(reply.text)"),
                    isRemote: false, sendQuit: true
                )
            }
            // Opportunistic: carry on in clear with what EHLO offered.
            capabilities = offered
            state = .ready
            return .sessionReady(offered)

        case .tlsHandshake:
            return failSession(.protocolViolation, Self.localReply(421, 4, 5, 0, "Reply from \(remoteHost) during the TLS handshake"), isRemote: false, sendQuit: false)

        case .ready:
            if reply.code == 421 {
                state = .closed
                return .closeConnection
            }
            return failSession(.protocolViolation, Self.localReply(421, 4, 5, 0, "Unexpected reply from \(remoteHost)"), isRemote: false, sendQuit: false)

        case .transaction(var transaction):
            return transactionReply(reply, &transaction)

        case .quitting:
            state = .closed
            return .closeConnection
        }
    }

    /// The TLS handshake after STARTTLS finished; everything learnt before it is forgotten.
    /// - SeeAlso: RFC 3207 §4.2
    public mutating func tlsEstablished() -> Action {
        guard case .tlsHandshake = state else { preconditionFailure("tlsEstablished in \(state)") }
        tlsActive = true
        capabilities = SMTPServerCapabilities(isExtended: false)
        state = .awaitingEHLO
        return .sendCommands([.ehlo(domain: configuration.localHostname)])
    }

    /// The TLS handshake failed (or the certificate was refused). The connection cannot be used.
    ///
    /// Also valid while waiting for the EHLO reply over TLS: a handler may write EHLO as soon as
    /// TLS is set up, before the handshake ends.
    public mutating func tlsFailed(_ hint: String) -> Action {
        switch state {
        case .tlsHandshake: break
        case .awaitingEHLO where tlsActive: break
        default: return .wait
        }
        return failSession(.tlsFailed, Self.localReply(454, 4, 7, 5, "TLS handshake with \(remoteHost) failed: \(hint)"), isRemote: false, sendQuit: false)
    }

    /// Starts a transaction for `envelope`. Checks SIZE and SMTPUTF8 first: a message the server
    /// cannot take ends at once with permanent outcomes and nothing sent.
    /// - SeeAlso: RFC 1870 §6, RFC 6531 §3.2, RFC 2920 §3.1
    public mutating func startTransaction(_ envelope: SMTPOutgoingEnvelope) -> Action {
        guard case .ready = state else {
            let reply = Self.localReply(421, 4, 4, 2, "Connection to \(remoteHost) is not ready for a message")
            return .deliveryCompleted(envelope.recipients.map { outcome($0, .deferred, reply, isRemote: false, .beforeMail) }, closeConnection: false)
        }
        guard !envelope.recipients.isEmpty else { return .deliveryCompleted([], closeConnection: false) }
        if envelope.needsSMTPUTF8 && !capabilities.smtpUTF8 {
            let reply = Self.localReply(550, 5, 6, 7, "SMTPUTF8 is required, but was not offered by host \(remoteHost)")
            return .deliveryCompleted(envelope.recipients.map { outcome($0, .failed, reply, isRemote: false, .beforeMail) }, closeConnection: false)
        }
        if let limit = capabilities.maxMessageSize, envelope.contentSize > limit {
            let reply = Self.localReply(552, 5, 3, 4, "Message size \(envelope.contentSize) exceeds size limit \(limit) of server \(remoteHost)")
            return .deliveryCompleted(envelope.recipients.map { outcome($0, .failed, reply, isRemote: false, .beforeMail) }, closeConnection: false)
        }
        let parameters = SMTPMailParameters(
            size: capabilities.size ? envelope.contentSize : nil,
            body: envelope.needsEightBitMIME && capabilities.eightBitMIME ? .eightBitMIME : nil,
            smtpUTF8: envelope.needsSMTPUTF8
        )
        var steps: [Transaction.Step] = needsReset ? [.rset] : []
        steps.append(.mail)
        steps.append(contentsOf: envelope.recipients.indices.map { .rcpt($0) })
        steps.append(.data)
        var transaction = Transaction(
            envelope: envelope, parameters: parameters, awaiting: [], unsent: [],
            outcomes: Array(repeating: nil, count: envelope.recipients.count),
            accepted: Array(repeating: false, count: envelope.recipients.count)
        )
        if configuration.usePipelining && capabilities.pipelining {
            transaction.awaiting = steps
            state = .transaction(transaction)
            return .sendCommands(steps.map { command(for: $0, transaction) })
        }
        transaction.awaiting = [steps[0]]
        transaction.unsent = Array(steps.dropFirst())
        state = .transaction(transaction)
        return .sendCommands([command(for: steps[0], transaction)])
    }

    /// The content and its `CRLF.CRLF` have been written.
    public mutating func contentSent() -> Action {
        guard case .transaction(var transaction) = state, transaction.phase == .content else { return .wait }
        transaction.phase = .endOfData
        state = .transaction(transaction)
        return .wait
    }

    /// No event within `pendingTimeout`.
    /// - SeeAlso: RFC 5321 §4.5.3.2
    public mutating func timeoutFired() -> Action {
        switch state {
        case .initial, .closed:
            return .wait
        case .awaitingGreeting:
            return failSession(.timeout, Self.localReply(421, 4, 4, 2, "Timed out waiting for the greeting from \(remoteHost)"), isRemote: false, sendQuit: false)
        case .awaitingEHLO, .awaitingHELO, .awaitingStartTLS, .tlsHandshake:
            return failSession(.timeout, Self.localReply(421, 4, 4, 2, "Timed out in the session setup with \(remoteHost)"), isRemote: false, sendQuit: false)
        case .ready:
            state = .quitting
            return .sendCommands([.quit])
        case .transaction(let transaction):
            let reply = Self.localReply(421, 4, 4, 2, "Timed out waiting for \(remoteHost) \(Self.describe(transaction.currentStage))")
            return abandon(transaction, reply: reply)
        case .quitting:
            state = .closed
            return .closeConnection
        }
    }

    /// The server's bytes broke the reply grammar.
    public mutating func protocolError(_ hint: String) -> Action {
        let reply = Self.localReply(421, 4, 5, 0, "Protocol error from \(remoteHost): \(hint)")
        switch state {
        case .initial, .closed:
            return .wait
        case .transaction(let transaction):
            return abandon(transaction, reply: reply)
        case .ready, .quitting:
            state = .closed
            return .closeConnection
        case .awaitingGreeting, .awaitingEHLO, .awaitingHELO, .awaitingStartTLS, .tlsHandshake:
            return failSession(.protocolViolation, reply, isRemote: false, sendQuit: false)
        }
    }

    /// The connection is gone. Pending recipients are deferred: never sent without a 2xx to the end of data.
    public mutating func connectionClosed() -> Action {
        switch state {
        case .initial, .closed, .ready, .quitting:
            state = .closed
            return .wait
        case .awaitingGreeting, .awaitingEHLO, .awaitingHELO, .awaitingStartTLS, .tlsHandshake:
            return failSession(.connectionClosed, Self.localReply(421, 4, 4, 2, "Connection closed by \(remoteHost) during the session setup"), isRemote: false, sendQuit: false)
        case .transaction(let transaction):
            let reply = Self.localReply(421, 4, 4, 2, "Connection lost with \(remoteHost) \(Self.describe(transaction.currentStage))")
            return abandon(transaction, reply: reply)
        }
    }

    /// End the session: QUIT when idle (RFC 5321 §4.1.1.10), close otherwise.
    public mutating func quit() -> Action {
        switch state {
        case .ready:
            state = .quitting
            return .sendCommands([.quit])
        case .initial, .quitting, .closed:
            return .wait
        case .awaitingGreeting, .awaitingEHLO, .awaitingHELO, .awaitingStartTLS, .tlsHandshake:
            return failSession(.connectionClosed, Self.localReply(421, 4, 4, 2, "Session with \(remoteHost) ended by the client"), isRemote: false, sendQuit: false)
        case .transaction(let transaction):
            return abandon(transaction, reply: Self.localReply(421, 4, 4, 2, "Session with \(remoteHost) ended by the client"))
        }
    }

    // MARK: Transactions

    private mutating func transactionReply(_ reply: SMTPReply, _ transaction: inout Transaction) -> Action {
        if reply.code == 421 {
            // RFC 5321 §3.8: the server is closing the channel.
            return abandon(transaction, reply: reply, isRemote: true)
        }
        switch transaction.phase {
        case .commands:
            break
        case .content:
            // A reply before the end of data: the server gave up on the message.
            let status: SMTPDeliveryOutcome.Status = reply.code >= 500 ? .failed : .deferred
            settleAccepted(&transaction, status, reply, .endOfData)
            return finish(transaction, closeConnection: true)
        case .endOfData:
            // RFC 5321 §4.1.1.4: the reply to the end of data applies to every accepted recipient.
            settleAccepted(&transaction, SMTPDeliveryOutcome.status(for: reply), reply, .endOfData)
            needsReset = false
            return finish(transaction, closeConnection: false)
        case .abortingData:
            needsReset = true
            return finish(transaction, closeConnection: false)
        }

        guard !transaction.awaiting.isEmpty else {
            return abandon(transaction, reply: Self.localReply(421, 4, 5, 0, "Unexpected reply from \(remoteHost)"))
        }
        let step = transaction.awaiting.removeFirst()
        switch step {
        case .rset:
            if reply.isPositiveCompletion { needsReset = false }
        case .mail:
            if reply.isPositiveCompletion {
                transaction.mailAccepted = true
                needsReset = true
            } else {
                let status = Self.errorStatus(for: reply)
                for index in transaction.outcomes.indices where transaction.outcomes[index] == nil {
                    transaction.outcomes[index] = outcome(transaction.envelope.recipients[index], status, reply, isRemote: true, .mail)
                }
            }
        case .rcpt(let index):
            // After a refused MAIL, RCPT replies (503) tell nothing more.
            if transaction.mailAccepted {
                if reply.isPositiveCompletion {
                    transaction.accepted[index] = true
                } else {
                    transaction.outcomes[index] = outcome(
                        transaction.envelope.recipients[index], Self.errorStatus(for: reply), reply, isRemote: true, .rcpt
                    )
                }
            }
        case .data:
            if reply.code == 354 {
                if transaction.mailAccepted && transaction.hasAcceptedRecipient {
                    transaction.phase = .content
                    state = .transaction(transaction)
                    return .sendContent
                }
                transaction.phase = .abortingData
                state = .transaction(transaction)
                return .sendEndOfDataOnly
            }
            settleAccepted(&transaction, Self.errorStatus(for: reply), reply, .data)
            return finish(transaction, closeConnection: false)
        }

        if !transaction.awaiting.isEmpty {
            state = .transaction(transaction)
            return .wait
        }
        // Without pipelining: the next command worth sending.
        while !transaction.unsent.isEmpty {
            let next = transaction.unsent.removeFirst()
            switch next {
            case .rcpt where !transaction.mailAccepted:
                continue
            case .data where !transaction.mailAccepted || !transaction.hasAcceptedRecipient:
                continue
            default:
                transaction.awaiting = [next]
                state = .transaction(transaction)
                return .sendCommands([command(for: next, transaction)])
            }
        }
        return finish(transaction, closeConnection: false)
    }

    /// Gives every accepted recipient without an outcome the same one.
    private func settleAccepted(
        _ transaction: inout Transaction, _ status: SMTPDeliveryOutcome.Status, _ reply: SMTPReply, _ stage: SMTPDeliveryOutcome.Stage
    ) {
        for index in transaction.outcomes.indices where transaction.outcomes[index] == nil && transaction.accepted[index] {
            transaction.outcomes[index] = outcome(transaction.envelope.recipients[index], status, reply, isRemote: true, stage)
        }
    }

    private mutating func finish(_ transaction: Transaction, closeConnection: Bool) -> Action {
        let remaining = Self.localReply(451, 4, 3, 0, "No reply from \(remoteHost) for this recipient")
        let outcomes = transaction.outcomes.enumerated().map { index, outcome in
            outcome ?? self.outcome(transaction.envelope.recipients[index], .deferred, remaining, isRemote: false, transaction.currentStage)
        }
        state = closeConnection ? .closed : .ready
        return .deliveryCompleted(outcomes, closeConnection: closeConnection)
    }

    /// Ends a transaction the conversation cannot finish: everything without an outcome is deferred.
    private mutating func abandon(_ transaction: Transaction, reply: SMTPReply, isRemote: Bool = false) -> Action {
        var transaction = transaction
        let stage = transaction.currentStage
        for index in transaction.outcomes.indices where transaction.outcomes[index] == nil {
            transaction.outcomes[index] = outcome(transaction.envelope.recipients[index], .deferred, reply, isRemote: isRemote, stage)
        }
        return finish(transaction, closeConnection: true)
    }

    // MARK: Helpers

    private mutating func afterHello() -> Action {
        if !tlsActive {
            if configuration.tlsPolicy != .disabled && capabilities.startTLS {
                state = .awaitingStartTLS(capabilities)
                return .sendCommands([.startTLS])
            }
            if configuration.tlsPolicy == .required {
                return failSession(
                    .tlsRequired, Self.localReply(454, 4, 7, 4, "TLS is required, but was not offered by host \(remoteHost)"),
                    isRemote: false, sendQuit: true
                )
            }
        }
        state = .ready
        return .sessionReady(capabilities)
    }

    private mutating func failSession(_ code: SMTPClientError.Code, _ reply: SMTPReply, isRemote: Bool, sendQuit: Bool) -> Action {
        state = sendQuit ? .quitting : .closed
        return .sessionFailed(SMTPClientError(code, reply: reply, isRemoteReply: isRemote), sendQuit: sendQuit)
    }

    private func command(for step: Transaction.Step, _ transaction: Transaction) -> SMTPCommand {
        switch step {
        case .rset: .rset
        case .mail: .mail(reversePath: transaction.envelope.reversePath, parameters: transaction.parameters)
        case .rcpt(let index): .rcpt(forwardPath: transaction.envelope.recipients[index])
        case .data: .data
        }
    }

    private func outcome(
        _ recipient: SMTPMailbox, _ status: SMTPDeliveryOutcome.Status, _ reply: SMTPReply, isRemote: Bool, _ stage: SMTPDeliveryOutcome.Stage
    ) -> SMTPDeliveryOutcome {
        SMTPDeliveryOutcome(
            recipient: recipient, status: status, reply: reply, isRemoteReply: isRemote,
            stage: stage, remoteHost: remoteHost, tlsUsed: tlsActive
        )
    }

    /// 5xx fails, anything else that is not a success (4xx, or a code that makes no sense here) defers.
    private static func errorStatus(for reply: SMTPReply) -> SMTPDeliveryOutcome.Status {
        (500..<600).contains(reply.code) ? .failed : .deferred
    }

    private static func localReply(_ code: Int, _ statusClass: Int, _ subject: Int, _ detail: Int, _ text: String) -> SMTPReply {
        SMTPReply(code: code, EnhancedStatusCode(class: statusClass, subject: subject, detail: detail), text)
    }

    private static func describe(_ stage: SMTPDeliveryOutcome.Stage) -> String {
        switch stage {
        case .connection, .beforeMail: "before MAIL FROM"
        case .mail: "in reply to MAIL FROM"
        case .rcpt: "in reply to RCPT TO"
        case .data: "in reply to DATA"
        case .endOfData: "while sending the message or waiting for the reply to the end of data"
        }
    }
}
