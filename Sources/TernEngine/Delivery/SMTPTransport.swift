public import Logging
public import NIOCore
import SMTPCore
import SMTPNIO
public import TernCore
public import TernDNS

/// A fixed next hop for a domain (Postfix's `relayhost`/transport map), skipping MX lookup.
public struct DeliveryRoute: Sendable, Hashable {
    public enum TLS: String, Sendable, Hashable {
        /// STARTTLS when offered, unverified (RFC 7435 opportunistic security).
        case opportunistic
        /// STARTTLS must succeed; the certificate is not verified.
        case required
        /// STARTTLS must succeed with a certificate valid for the host.
        case verify
    }

    public var host: String
    public var port: Int
    public var tls: TLS

    public init(host: String, port: Int, tls: TLS = .opportunistic) {
        self.host = host
        self.port = port
        self.tls = tls
    }
}

/// smtp(8): delivers a request to the domain's route or MX hosts, trying the next host
/// on connection failure or a refused greeting, and reports one outcome per recipient.
///
/// Sessions are reused across requests through `connectionPool` (Postfix's connection cache):
/// run it as a service next to the delivery, so that idle sessions expire and are QUIT at shutdown.
public struct SMTPTransport: DeliveryTransport {
    public struct Configuration: Sendable {
        /// Our name in EHLO.
        public var heloName: String
        /// The port used for MX hosts (25; tests use high loopback ports).
        public var smtpPort: Int
        /// Domain (lower-case) or `*` → next hop.
        public var routes: [String: DeliveryRoute]
        public var connectTimeout: Duration
        /// Keep sessions open after a delivery for the next message to the same next hop.
        public var connectionCache: Bool
        /// The limits of kept sessions: idle time, messages and lifetime per session, how many.
        public var connectionReuse: SMTPConnectionPool.Configuration

        public static let defaultSMTPPort = 25
        /// The SMTP client connection's own default: one number for both.
        public static let defaultConnectTimeout = SMTPClientConnection.defaultConnectTimeout
        public static let defaultConnectionCache = true

        public init(
            heloName: String, smtpPort: Int = Configuration.defaultSMTPPort, routes: [String: DeliveryRoute] = [:],
            connectTimeout: Duration = Configuration.defaultConnectTimeout,
            connectionCache: Bool = Configuration.defaultConnectionCache,
            connectionReuse: SMTPConnectionPool.Configuration = SMTPConnectionPool.Configuration()
        ) {
            self.heloName = heloName
            self.smtpPort = smtpPort
            self.routes = routes
            self.connectTimeout = connectTimeout
            self.connectionCache = connectionCache
            self.connectionReuse = connectionReuse
        }
    }

    private let configuration: Configuration
    private let resolver: any DNSResolving
    private let group: any EventLoopGroup
    private let logger: Logger
    private let opportunisticTLS: SMTPClientTLS?
    private let verifyingTLS: SMTPClientTLS?
    /// Idle sessions kept for reuse; `nil` when the configuration keeps none.
    public let connectionPool: SMTPConnectionPool?

    public init(configuration: Configuration, resolver: any DNSResolving, group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.resolver = resolver
        self.group = group
        self.logger = logger
        self.opportunisticTLS = try? SMTPClientTLS(verifyCertificate: false)
        self.verifyingTLS = try? SMTPClientTLS(verifyCertificate: true)
        self.connectionPool = configuration.connectionCache && configuration.connectionReuse.allowsReuse
            ? SMTPConnectionPool(configuration: configuration.connectionReuse, logger: logger) : nil
    }

    /// Where to connect, in order.
    private struct Target {
        var host: String
        var address: SocketAddress?
        var port: Int
        var tls: DeliveryRoute.TLS
        /// The MX preference; hosts of equal preference are interchangeable (RFC 5321 §5.1).
        var preference: Int

        var nextHop: SMTPNextHop {
            SMTPNextHop(host: host, address: address?.ipAddress, port: port, tls: tls)
        }
    }

    /// How one attempt at one host ended.
    private enum Attempt {
        /// The message was handed over (or refused): one outcome per recipient.
        case completed([SMTPDeliveryOutcome])
        /// No session, or it ended before the message could start: try the next host.
        case unusable(String)
    }

    public func deliver(_ request: DeliveryRequest) async -> [RecipientID: TransportOutcome] {
        let targets: [Target]
        switch await self.targets(for: request.destination) {
        case .success(let found):
            targets = found
        case .failure(let error):
            let details = ["text": error.description, "enhanced_code": error.enhancedStatus]
            if error.isPermanent {
                var failed = details
                failed["bounce_class"] = TransportOutcome.bounceClass(enhancedCode: error.enhancedStatus)
                return Self.all(request, .failed(details: failed))
            }
            return Self.all(request, .deferred(reason: error.description, kind: .destination, details: details))
        }

        let message: SMTPOutgoingMessage
        do {
            message = try await Self.outgoing(request)
        } catch {
            let reason = "message content unavailable: \(error)"
            return Self.all(request, .deferred(reason: reason, kind: .recipient, details: ["text": reason]))
        }
        var lastError = "no mail exchanger for \(request.destination)"
        for target in preferringIdleSessions(targets) {
            switch await attempt(message, to: target) {
            case .completed(let outcomes):
                return Self.map(outcomes, request)
            case .unusable(let error):
                lastError = error
            }
        }
        return Self.all(request, .deferred(reason: lastError, kind: .destination, details: ["text": lastError]))
    }

    /// Sends on an idle session to `target` when there is one, else on a new one.
    ///
    /// A kept session may have been closed by the server while idle, or answer 421 to the next
    /// command: when it fails before the message content was sent, the message is sent once more
    /// on a new connection. After the content, never: the server may have taken the message.
    private func attempt(_ message: SMTPOutgoingMessage, to target: Target) async -> Attempt {
        let nextHop = target.nextHop
        if let pool = connectionPool, var lease = await pool.checkOut(nextHop) {
            do {
                let outcomes = try await lease.connection.send(message)
                lease.uses += 1
                guard Self.mayRetryOnNewConnection(after: outcomes) else {
                    await release(lease, after: outcomes)
                    return .completed(outcomes)
                }
                logger.info(
                    "reused session to \(nextHop) failed before the message was sent: \(outcomes.first?.description ?? ""); trying a new connection")
            } catch {
                logger.info("reused session to \(nextHop) failed before the message was sent: \(error); trying a new connection")
            }
            await lease.connection.close()
        }

        let openedAt = ContinuousClock.now
        let connection: SMTPClientConnection
        do {
            connection = try await connect(target)
        } catch {
            logger.info("cannot deliver to \(target.host): \(error); trying the next host if any")
            return .unusable(error.description)
        }
        do {
            let outcomes = try await connection.send(message)
            await release(SMTPConnectionPool.Lease(connection: connection, key: nextHop, openedAt: openedAt, uses: 1), after: outcomes)
            return .completed(outcomes)
        } catch {
            await connection.close()
            return .unusable("\(target.host): \(error)")
        }
    }

    /// Keeps the session for the next message after a successful transaction; QUIT otherwise.
    private func release(_ lease: SMTPConnectionPool.Lease, after outcomes: [SMTPDeliveryOutcome]) async {
        if let pool = connectionPool, Self.mayKeepSession(after: outcomes) {
            await pool.checkIn(lease)
        } else {
            await lease.connection.quit()
        }
    }

    /// A session is kept only when its last reply was a 2xx to the end of data: never after a
    /// refusal, a 421 or a broken conversation.
    static func mayKeepSession(after outcomes: [SMTPDeliveryOutcome]) -> Bool {
        outcomes.contains { $0.status == .sent }
    }

    /// A reused session failed before the content was sent: every recipient deferred while
    /// waiting for RSET, MAIL or RCPT, by a lost connection, a timeout or a 421. The server
    /// cannot have taken the message, so trying again on a new connection delivers it once.
    /// - SeeAlso: RFC 5321 §3.8, §4.1.1.4
    static func mayRetryOnNewConnection(after outcomes: [SMTPDeliveryOutcome]) -> Bool {
        !outcomes.isEmpty
            && outcomes.allSatisfy { outcome in
                guard outcome.status == .deferred, !outcome.isRemoteReply || outcome.code == 421 else { return false }
                switch outcome.stage {
                case .connection, .beforeMail, .mail, .rcpt: return true
                case .data, .endOfData: return false
                }
            }
    }

    /// Among the most preferred hosts, one with an idle session goes first.
    private func preferringIdleSessions(_ targets: [Target]) -> [Target] {
        guard let pool = connectionPool, let first = targets.first else { return targets }
        let preferred = targets.prefix { $0.preference == first.preference }
        guard let index = preferred.firstIndex(where: { pool.hasIdle($0.nextHop) }), index != targets.startIndex else { return targets }
        var ordered = targets
        ordered.insert(ordered.remove(at: index), at: ordered.startIndex)
        return ordered
    }

    private func connect(_ target: Target) async throws(SMTPClientError) -> SMTPClientConnection {
        var client = SMTPClientConfiguration(localHostname: configuration.heloName)
        if connectionPool != nil {
            // The pool closes idle sessions; the session's own idle QUIT is only a backstop.
            client.timeouts.idle = max(client.timeouts.idle, configuration.connectionReuse.idleTimeout * 2)
        }
        let tls: SMTPClientTLS?
        switch target.tls {
        case .opportunistic:
            client.tlsPolicy = .opportunistic
            tls = opportunisticTLS
        case .required:
            client.tlsPolicy = .required
            tls = opportunisticTLS
        case .verify:
            client.tlsPolicy = .required
            tls = verifyingTLS
        }
        if let address = target.address {
            return try await SMTPClientConnection.connect(
                to: address, remoteHost: target.host, configuration: client, tls: tls, group: group,
                connectTimeout: configuration.connectTimeout, logger: logger)
        }
        return try await SMTPClientConnection.connect(
            host: target.host, port: target.port, configuration: client, tls: tls, group: group,
            connectTimeout: configuration.connectTimeout, logger: logger)
    }

    /// A routed domain's destination is its next hop; any other domain's is the set of its MX
    /// host names, so that domains one provider hosts share one concurrency limit. nil when
    /// the MX lookup fails (the delivery itself then reports why).
    public func destinationKey(forDomain domain: String) async -> DestinationKey? {
        if let route = route(for: domain) {
            return DestinationKey("route:\(route.host):\(route.port)")
        }
        var random = SystemRandomNumberGenerator()
        guard let exchangers = try? await resolver.mailExchangers(for: domain, using: &random), !exchangers.isEmpty else {
            return nil
        }
        let hosts = Set(exchangers.map { $0.host.description.lowercased() }).sorted()
        return DestinationKey("mx:" + hosts.joined(separator: ","))
    }

    /// The domain's fixed next hop, or the catch-all one (`*`), if configured.
    private func route(for domain: String) -> DeliveryRoute? {
        configuration.routes[domain] ?? configuration.routes["*"]
    }

    private func targets(for destination: String) async -> Result<[Target], MailRoutingError> {
        if let route = route(for: destination) {
            return .success([Target(host: route.host, address: nil, port: route.port, tls: route.tls, preference: 0)])
        }
        var random = SystemRandomNumberGenerator()
        do {
            let exchangers = try await resolver.mailExchangers(for: destination, using: &random)
            var targets: [Target] = []
            for exchanger in exchangers {
                for address in exchanger.addresses {
                    guard let socket = try? SocketAddress(ipAddress: address.description, port: configuration.smtpPort) else { continue }
                    targets.append(Target(
                        host: exchanger.host.description, address: socket, port: configuration.smtpPort, tls: .opportunistic,
                        preference: Int(exchanger.preference)))
                }
            }
            return .success(targets)
        } catch {
            return .failure(error)
        }
    }

    /// Content up to this size is read whole before the transaction (one store read) and
    /// written by the connection's handler on the 354; larger content streams in pieces.
    static let wholeContentLimit = DeliveryContent.defaultPieceSize

    static func outgoing(_ request: DeliveryRequest) async throws -> SMTPOutgoingMessage {
        // The addresses were parsed at intake and stored as text: split, not parsed again.
        let envelope = SMTPOutgoingEnvelope(
            reversePath: request.reversePath, recipients: request.recipients.map { SMTPMailbox(validated: $0.address) },
            contentSize: request.content.size, needsEightBitMIME: request.eightBitMIME, needsSMTPUTF8: request.smtpUTF8)
        guard request.content.size <= wholeContentLimit else {
            return SMTPOutgoingMessage(envelope: envelope, content: .chunks(SMTPContentChunks(request.content.pieces())))
        }
        return SMTPOutgoingMessage(envelope: envelope, content: .buffer(try await request.content.whole()))
    }

    static func map(_ outcomes: [SMTPDeliveryOutcome], _ request: DeliveryRequest) -> [RecipientID: TransportOutcome] {
        var result: [RecipientID: TransportOutcome] = [:]
        for (recipient, outcome) in zip(request.recipients, outcomes) {
            var details = [
                "remote_host": outcome.remoteHost, "code": String(outcome.code), "text": outcome.text,
                "tls": outcome.tlsUsed ? "true" : "false", "stage": "\(outcome.stage)",
                "remote_reply": outcome.isRemoteReply ? "true" : "false",
            ]
            if let enhanced = outcome.enhancedStatusCode?.description ?? Self.leadingEnhancedCode(outcome.text) {
                details["enhanced_code"] = enhanced
            }
            switch outcome.status {
            case .sent:
                result[recipient.id] = .sent(details: details)
            case .failed:
                details["bounce_class"] = TransportOutcome.bounceClass(enhancedCode: details["enhanced_code"])
                result[recipient.id] = .failed(details: details)
            case .deferred:
                let kind: DeferralKind = outcome.stage == .rcpt || outcome.stage == .endOfData || outcome.stage == .data ? .recipient : .destination
                result[recipient.id] = .deferred(reason: "\(outcome.code) \(outcome.text)", kind: kind, details: details)
            }
        }
        return result
    }

    /// Many servers start their text with an RFC 3463 code without advertising
    /// ENHANCEDSTATUSCODES (`550 5.1.1 user unknown`): take it when it is well formed.
    static func leadingEnhancedCode(_ text: String) -> String? {
        guard let word = text.split(separator: " ", maxSplits: 1).first else { return nil }
        let parts = word.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, ["2", "4", "5"].contains(parts[0]),
            parts[1].count <= 3, parts[2].count <= 3,
            parts.dropFirst().allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) })
        else { return nil }
        return String(word)
    }

    static func all(_ request: DeliveryRequest, _ outcome: TransportOutcome) -> [RecipientID: TransportOutcome] {
        Dictionary(uniqueKeysWithValues: request.recipients.map { ($0.id, outcome) })
    }
}
