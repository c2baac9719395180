import Foundation
public import Logging
public import NIOCore
public import SMTPCore
public import SMTPNIO
public import TernCore

/// The MX listener's backend: takes mail only for the addresses of `InboundAddressBook`,
/// commits it to the store before the 250 (one transaction per SMTP transaction, split by
/// purpose and route), and tells the report reader and the webhook poster.
///
/// No AUTH and no relaying: a session never gains an identity, and every RCPT is checked.
/// - SeeAlso: RFC 5321 §4.4 (`Return-Path` and `Received` at final delivery), §3.6.2
public struct InboundIntake: SMTPServerBackend {
    private let addresses: InboundAddressBook
    private let store: any InboundStore
    private let traceHeaders: TraceHeaders
    private let rateLimiter: ClientRateLimiter?
    private let committed: @Sendable ([InboundMessage]) -> Void
    private let logger: Logger

    /// `committed` hears every committed batch (to wake the readers); `rateLimiter` limits
    /// accepted recipients per client IP.
    public init(
        addresses: InboundAddressBook, store: any InboundStore, hostname: String, rateLimiter: ClientRateLimiter?,
        logger: Logger, committed: @escaping @Sendable ([InboundMessage]) -> Void = { _ in }
    ) {
        self.addresses = addresses
        self.store = store
        self.traceHeaders = TraceHeaders(hostname: hostname)
        self.rateLimiter = rateLimiter
        self.logger = logger
        self.committed = committed
    }

    static let relayDenied = EnhancedStatusCode(class: 5, subject: 7, detail: 1)
    static let rateLimited = EnhancedStatusCode(class: 4, subject: 7, detail: 1)

    public func cachedIdentity(forClientAddress address: SocketAddress?) -> SMTPIdentityLookup { .known(nil) }

    public func identity(forClientAddress address: SocketAddress?) async -> SMTPIdentity? { nil }

    public func authenticate(username: String, password: String, clientAddress: SocketAddress?) async -> SMTPIdentity? { nil }

    public func checkRecipient(
        _ recipient: SMTPMailbox, reversePath: SMTPReversePath, accepted: Int, identity: SMTPIdentity?, clientAddress: SocketAddress?
    ) -> SMTPReply? {
        guard let domain = recipient.domain, addresses.destination(localPart: recipient.localPart, domain: domain) != nil else {
            logger.info("refused <\(recipient)> from \(clientAddress?.ipAddress ?? "?"): not a domain of this MX")
            return SMTPReply(code: 550, Self.relayDenied, "<\(recipient)>: relay access denied, not a domain of this server")
        }
        if let rateLimiter, let ip = clientAddress?.ipAddress, !rateLimiter.take(ip) {
            logger.notice("rate limit: deferred <\(recipient)> from \(ip)")
            return SMTPReply(
                code: 450, Self.rateLimited,
                "Too many recipients from \(ip) (more than \(rateLimiter.ratePerMinute) a minute), try again later")
        }
        return nil
    }

    /// `InboundStore.commitInbound` is async, so the commit runs in a task of its own, one per
    /// SMTP transaction (the MX is not intake's hot path).
    public func commit(_ received: SMTPReceivedMessage, completion: @escaping @Sendable (Result<String, any Error>) -> Void) {
        Task {
            do {
                completion(.success(try await commitInbound(received)))
            } catch {
                completion(.failure(error))
            }
        }
    }

    private func commitInbound(_ received: SMTPReceivedMessage) async throws -> String {
        let messages = inboundMessages(received, now: Date())
        guard let first = messages.first else {
            // Every recipient was checked at RCPT; only a change of configuration since could get here.
            throw SMTPBackendRefusal(SMTPReply(code: 550, Self.relayDenied, "No recipient of this server"))
        }
        do {
            try await store.commitInbound(messages)
        } catch let error as StoreError where error.code == .insufficientStorage {
            logger.error("could not store inbound message \(first.id): \(error)")
            throw SMTPBackendRefusal(
                SMTPReply(code: 452, EnhancedStatusCode(class: 4, subject: 3, detail: 1), "Insufficient system storage, try again later"))
        } catch {
            logger.error("could not store inbound message \(first.id): \(error)")
            throw SMTPBackendRefusal(
                SMTPReply(code: 451, EnhancedStatusCode(class: 4, subject: 3, detail: 0), "Could not store the message, try again later"))
        }
        for message in messages {
            logger.info("received \(message.id) (\(message.purpose.rawValue)) from <\(message.mailFrom)> for \(message.recipients.joined(separator: ", "))")
        }
        committed(messages)
        return first.id.description
    }

    /// One message per purpose and route, each with the trace fields of final delivery in front.
    func inboundMessages(_ received: SMTPReceivedMessage, now: Date) -> [InboundMessage] {
        var groups: [(key: String, purpose: InboundPurpose, url: String?, tenant: TenantID?, recipients: [String])] = []
        for mailbox in received.recipients {
            guard let domain = mailbox.domain,
                let destination = addresses.destination(localPart: mailbox.localPart, domain: domain)
            else { continue }
            let recipient = mailbox.description
            var key = "report"
            var url: String?
            var tenant: TenantID?
            if case .inbound(let route) = destination {
                key = "inbound:" + route.pattern
                url = route.webhookURL
                tenant = route.tenant
            }
            if let index = groups.firstIndex(where: { $0.key == key }) {
                groups[index].recipients.append(recipient)
            } else {
                groups.append((key, destination.purpose, url, tenant, [recipient]))
            }
        }
        let clientIP = received.clientAddress?.ipAddress
        return groups.map { group in
            let id = InboundMessageID.next()
            var prefix = "Return-Path: <\(TraceHeaders.sanitize(received.reversePath.description, emptyAs: ""))>\r\n"
            prefix += traceHeaders.receivedField(TraceHeaders.Received(
                heloName: received.heloName, clientIP: clientIP, protocolName: received.protocolName, queueID: id.description,
                singleRecipient: group.recipients.count == 1 ? group.recipients[0] : nil, date: now))
            var content = Array(prefix.utf8)
            content.append(contentsOf: received.content.readableBytesView)
            return InboundMessage(
                id: id, receivedAt: now, clientIP: clientIP, heloName: received.heloName, mailFrom: received.reversePath.description,
                recipients: group.recipients, purpose: group.purpose, webhookURL: group.url, content: content,
                tenant: group.tenant)
        }
    }
}
