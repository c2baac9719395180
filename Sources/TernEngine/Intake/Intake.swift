import DKIM
import Foundation
import MailMessage
public import Logging
public import NIOCore
public import SMTPCore
public import SMTPNIO
public import TernCore

/// Postfix's cleanup: takes what a session received, adds the trace headers, gives
/// the message and its recipients their ids, applies tracking (`MessageTracker`), and
/// commits it through the group committer.
/// The SMTP server answers 250 only when `commit` has called back with success.
public struct Intake: SMTPServerBackend {
    private let credentials: CredentialDirectory
    private let committer: GroupCommitter
    private let traceHeaders: TraceHeaders
    private let tracker: MessageTracker?
    private let senders: (policy: SenderPolicy, domains: DomainDirectory)?
    private let limiter: TenantLimiter?
    private let logger: Logger

    /// Without a `tracker`, messages are queued as received (plus the trace headers); without
    /// `senders`, any sender may send (the server must then not check senders either).
    public init(
        credentials: CredentialDirectory, committer: GroupCommitter, hostname: String, tracker: MessageTracker? = nil,
        senders: (policy: SenderPolicy, domains: DomainDirectory)? = nil, limiter: TenantLimiter? = nil, logger: Logger
    ) {
        self.limiter = limiter
        self.credentials = credentials
        self.committer = committer
        self.traceHeaders = TraceHeaders(hostname: hostname)
        self.tracker = tracker
        self.senders = senders
        self.logger = logger
    }

    /// The envelope sender's domain against the credential's domains and the sending domains,
    /// then the tenant's hourly and daily limits.
    public func checkSender(_ reversePath: SMTPReversePath, identity: SMTPIdentity?, clientAddress: SocketAddress?) -> SMTPReply? {
        if let senders, case .mailbox(let mailbox) = reversePath, let domain = mailbox.domain,
            let refusal = senders.policy.refusal(
                domain: domain, what: "Sender", credential: credential(of: identity), owner: senders.domains.owner(of: domain))
        {
            logger.notice("refused MAIL FROM:<\(mailbox)> of \(identity?.credentialName ?? "?"): \(refusal.lines.joined())")
            return refusal
        }
        guard let limiter, let tenant = tenant(of: identity), let refusal = limiter.refusalAtMail(of: tenant) else { return nil }
        logger.info("throttled MAIL FROM:<\(reversePath)> of \(identity?.credentialName ?? "?"): \(refusal.lines.joined())")
        return refusal
    }

    /// The tenant's limits: recipients per message, and the hour's and day's messages.
    public func checkRecipient(
        _ recipient: SMTPMailbox, reversePath: SMTPReversePath, accepted: Int, identity: SMTPIdentity?, clientAddress: SocketAddress?
    ) -> SMTPReply? {
        guard let limiter, let tenant = tenant(of: identity) else { return nil }
        return limiter.refusalAtRecipient(of: tenant, accepted: accepted)
    }

    /// The tenant a session's mail belongs to: its credential's (found moments ago, at AUTH or
    /// from the client's network); `default` on a server that takes mail without an identity;
    /// nil for a credential removed since, or an operator's (which sends no mail).
    func tenant(of identity: SMTPIdentity?) -> TenantID? {
        guard let identity else { return .default }
        return credentials.cachedCredential(named: identity.credentialName)?.scope.tenant
    }

    /// The credential of a session's identity, as the sender policy sees it.
    private func credential(of identity: SMTPIdentity?) -> SenderPolicy.Sender {
        guard let identity else { return .anonymous }
        guard let credential = credentials.cachedCredential(named: identity.credentialName) else {
            return .unknownCredential(identity.credentialName)
        }
        return .credential(credential)
    }

    public func identity(forClientAddress address: SocketAddress?) async -> SMTPIdentity? {
        guard let ip = address?.ipAddress.flatMap(IPAddress.init) else { return nil }
        guard let credential = await credentials.credential(forClientAddress: ip) else { return nil }
        return SMTPIdentity(credentialName: credential.name, method: .clientNetwork)
    }

    public func cachedIdentity(forClientAddress address: SocketAddress?) -> SMTPIdentityLookup {
        guard let ip = address?.ipAddress.flatMap(IPAddress.init) else { return .known(nil) }
        guard case .fresh(let credential) = credentials.cachedCredential(forClientAddress: ip) else { return .needsLookup }
        return .known(credential.map { SMTPIdentity(credentialName: $0.name, method: .clientNetwork) })
    }

    /// A throttled attempt is refused with `454 4.7.0` and logged once per burst.
    public func authenticate(username: String, password: String, clientAddress: SocketAddress?) async throws -> SMTPIdentity? {
        let client = clientAddress?.ipAddress.flatMap(IPAddress.init)
        switch await credentials.authenticate(username: username, password: password, client: client) {
        case .authenticated(let credential):
            guard credential.scope.tenant != nil else {
                logger.notice("authentication refused for \(username) from \(clientAddress?.ipAddress ?? "?"): an operator credential does not send mail")
                return nil
            }
            return SMTPIdentity(credentialName: credential.name, method: .authPlain)
        case .refused:
            logger.notice("authentication failed for \(username) from \(clientAddress?.ipAddress ?? "?")")
            return nil
        case .throttled(let refusal):
            if refusal.startsBurst {
                logger.warning("SMTP AUTH throttled for \(refusal.retryAfterSeconds) s: too many failed attempts, \(refusal.key) (last: \(username) from \(clientAddress?.ipAddress ?? "?"))")
            }
            let subject: String
            if case .client(let address) = refusal.key { subject = "from \(address)" } else { subject = "for this user" }
            throw SMTPBackendRefusal(.authenticationThrottled(subject, retryAfterSeconds: refusal.retryAfterSeconds))
        }
    }

    /// Hands the message to the group committer without a task of its own: the SMTP
    /// session's event loop hears back through `completion`.
    public func commit(_ received: SMTPReceivedMessage, completion: @escaping @Sendable (Result<String, any Error>) -> Void) {
        guard let tenant = tenant(of: received.identity) else {
            let name = received.identity?.credentialName ?? "?"
            logger.notice("refused message of \(name): the credential no longer exists or does not send mail")
            completion(.failure(SMTPBackendRefusal(SMTPReply(code: 550, SenderPolicy.refused, "credential \(name) may not send mail"))))
            return
        }
        let (message, fromHeaderDomain) = prepared(received, tenant: tenant, now: Date())
        if let senders, let from = fromHeaderDomain {
            if let refusal = senders.policy.refusal(
                domain: from, what: "From", credential: credential(of: received.identity), owner: senders.domains.owner(of: from))
            {
                logger.notice("refused message from \(from) of \(received.identity?.credentialName ?? "?"): \(refusal.lines.joined())")
                completion(.failure(SMTPBackendRefusal(refusal)))
                return
            }
        }
        let id = message.id
        let signers = senders?.domains.signers(for: message.fromDomain) ?? []
        guard !signers.isEmpty else {
            commit(tracker?.track(message) ?? [message], id: id, completion: completion)
            return
        }
        // The batch owns the only reference to each content, so that the signature goes in
        // front in place, without a second copy of a large message.
        let batch = SigningBatch(consume message, tracker: tracker)
        // RSA signing takes about a millisecond: off the event loop, in parallel with other sessions.
        let logger = self.logger
        Self.signing.async { [self] in
            for index in batch.messages.indices { Self.sign(&batch.messages[index], by: signers, logger: logger) }
            commit(batch.messages, id: id, completion: completion)
        }
    }

    /// The messages of one submission while they are signed, owned by nothing else.
    final class SigningBatch: @unchecked Sendable {
        /// Touched by one thread at a time: built on the event loop, then handed to the
        /// signing queue, which alone uses it after that.
        var messages: [QueuedMessage]

        init(_ message: consuming QueuedMessage, tracker: MessageTracker?) {
            if let tracker {
                messages = tracker.track(message)
            } else {
                messages = [message]
            }
        }
    }

    /// Where DKIM signatures are computed.
    static let signing = DispatchQueue(label: "tern.dkim", attributes: .concurrent)

    /// Puts a `DKIM-Signature` field from each signer in front of `message` (the last
    /// signer's on top). The body is hashed where it lies, and the fields are inserted in
    /// place (intake reserves room for them). A message that cannot be signed is queued
    /// unsigned, and the reason logged.
    static func sign(_ message: inout QueuedMessage, by signers: [DKIMSigner], logger: Logger) {
        var fields = ""
        for signer in signers {
            do {
                fields = try signer.sign(message: message.content, timestamp: message.receivedAt) + fields
            } catch {
                logger.warning("message \(message.id) is not signed by \(signer.selector)._domainkey.\(signer.domain): \(error)")
            }
        }
        guard !fields.isEmpty else { return }
        message.content.insert(contentsOf: fields.utf8, at: 0)
    }

    private func commit(_ messages: [QueuedMessage], id: MessageID, completion: @escaping @Sendable (Result<String, any Error>) -> Void) {
        let logger = self.logger
        let limiter = self.limiter
        committer.commit(messages) { result in
            switch result {
            case .success:
                limiter?.committed(messages)
                logger.debug("queued \(id) as \(messages.count) message(s)")
                completion(.success(id.description))
            case .failure(let error as StoreError) where error.code == .insufficientStorage:
                logger.error("could not queue message \(id): \(error)")
                completion(.failure(SMTPBackendRefusal(
                    SMTPReply(code: 452, EnhancedStatusCode(class: 4, subject: 3, detail: 1), "Insufficient system storage, try again later"))))
            case .failure(let error):
                logger.error("could not queue message \(id): \(error)")
                completion(.failure(SMTPBackendRefusal(
                    SMTPReply(code: 451, EnhancedStatusCode(class: 4, subject: 3, detail: 0), "Could not queue the message, try again later"))))
            }
        }
    }

    /// The envelope sender's domain, lower-cased; empty for the null reverse path.
    static func domain(of reversePath: SMTPReversePath) -> String {
        guard case .mailbox(let mailbox) = reversePath else { return "" }
        return mailbox.domain?.lowercased() ?? ""
    }

    /// The message to commit (ids, trace headers, one recipient row per forward path), and
    /// the domain of its `From` field (nil without one).
    func prepared(_ received: SMTPReceivedMessage, tenant: TenantID, now: Date) -> (message: QueuedMessage, fromHeaderDomain: String?) {
        let id = MessageID.next()
        let clientIP = received.clientAddress?.ipAddress
        let stamped = traceHeaders.stamp(
            received.content.readableBytesView,
            received: TraceHeaders.Received(
                heloName: received.heloName, clientIP: clientIP, protocolName: received.protocolName,
                queueID: id.description,
                singleRecipient: received.recipients.count == 1 ? received.recipients[0].description : nil, date: now))
        let fromHeaderDomain = stamped.from.flatMap(MailMessage.domain(ofAddressField:))
        let message = QueuedMessage(
            id: id, messageIDHeader: stamped.messageID, mailFrom: received.reversePath.description,
            recipients: received.recipients.map { QueuedRecipient(id: .next(), address: $0.description) },
            content: stamped.content, credential: received.identity?.credentialName, clientIP: clientIP,
            receivedAt: now, eightBitMIME: received.eightBitMIME || stamped.content.contains { $0 >= 0x80 },
            smtpUTF8: received.smtpUTF8,
            fromDomain: fromHeaderDomain ?? Self.domain(of: received.reversePath), tenant: tenant)
        return (message, fromHeaderDomain)
    }
}
