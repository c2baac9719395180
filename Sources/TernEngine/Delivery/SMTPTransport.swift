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
public struct SMTPTransport: DeliveryTransport {
    public struct Configuration: Sendable {
        /// Our name in EHLO.
        public var heloName: String
        /// The port used for MX hosts (25; tests use high loopback ports).
        public var smtpPort: Int
        /// Domain (lower-case) or `*` → next hop.
        public var routes: [String: DeliveryRoute]
        public var connectTimeout: Duration

        public static let defaultSMTPPort = 25
        public static let defaultConnectTimeout: Duration = .seconds(30)

        public init(
            heloName: String, smtpPort: Int = Configuration.defaultSMTPPort, routes: [String: DeliveryRoute] = [:],
            connectTimeout: Duration = Configuration.defaultConnectTimeout
        ) {
            self.heloName = heloName
            self.smtpPort = smtpPort
            self.routes = routes
            self.connectTimeout = connectTimeout
        }
    }

    private let configuration: Configuration
    private let resolver: any DNSResolving
    private let group: any EventLoopGroup
    private let logger: Logger
    private let opportunisticTLS: SMTPClientTLS?
    private let verifyingTLS: SMTPClientTLS?

    public init(configuration: Configuration, resolver: any DNSResolving, group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.resolver = resolver
        self.group = group
        self.logger = logger
        self.opportunisticTLS = try? SMTPClientTLS(verifyCertificate: false)
        self.verifyingTLS = try? SMTPClientTLS(verifyCertificate: true)
    }

    /// Where to connect, in order.
    private struct Target {
        var host: String
        var address: SocketAddress?
        var port: Int
        var tls: DeliveryRoute.TLS
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

        var lastError = "no mail exchanger for \(request.destination)"
        for target in targets {
            let connection: SMTPClientConnection
            do {
                connection = try await connect(target)
            } catch {
                lastError = error.description
                logger.info("cannot deliver to \(target.host): \(error); trying the next host if any")
                continue
            }
            do {
                let outcomes = try await connection.send(Self.outgoing(request))
                await connection.quit()
                return Self.map(outcomes, request)
            } catch {
                lastError = "\(target.host): \(error)"
                await connection.close()
            }
        }
        return Self.all(request, .deferred(reason: lastError, kind: .destination, details: ["text": lastError]))
    }

    private func connect(_ target: Target) async throws(SMTPClientError) -> SMTPClientConnection {
        var client = SMTPClientConfiguration(localHostname: configuration.heloName)
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

    private func targets(for destination: String) async -> Result<[Target], MailRoutingError> {
        if let route = configuration.routes[destination] ?? configuration.routes["*"] {
            return .success([Target(host: route.host, address: nil, port: route.port, tls: route.tls)])
        }
        var random = SystemRandomNumberGenerator()
        do {
            let exchangers = try await resolver.mailExchangers(for: destination, using: &random)
            var targets: [Target] = []
            for exchanger in exchangers {
                for address in exchanger.addresses {
                    guard let socket = try? SocketAddress(ipAddress: address.description, port: configuration.smtpPort) else { continue }
                    targets.append(Target(host: exchanger.host.description, address: socket, port: configuration.smtpPort, tls: .opportunistic))
                }
            }
            return .success(targets)
        } catch {
            return .failure(error)
        }
    }

    static func outgoing(_ request: DeliveryRequest) -> SMTPOutgoingMessage {
        let reversePath: SMTPReversePath = request.mailFrom.isEmpty ? .null : .mailbox(mailbox(request.mailFrom))
        var buffer = ByteBufferAllocator().buffer(capacity: request.content.count)
        buffer.writeBytes(request.content)
        return SMTPOutgoingMessage(
            from: reversePath, to: request.recipients.map { mailbox($0.address) }, content: buffer,
            needsEightBitMIME: request.eightBitMIME ? true : nil, needsSMTPUTF8: request.smtpUTF8)
    }

    static func mailbox(_ address: String) -> SMTPMailbox {
        if case .mailbox(let parsed)? = try? SMTPCommandParser.parsePath("<\(address)>", allowNull: false) {
            return parsed
        }
        guard let at = address.lastIndex(of: "@") else { return SMTPMailbox(localPart: address, domain: nil) }
        return SMTPMailbox(localPart: String(address[..<at]), domain: String(address[address.index(after: at)...]))
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
