import Foundation
import NIOSSL
import SMTPCore
import SMTPNIO
import TernCore
import TernEngine

extension TernConfiguration {
    /// The return-path domain of each configured sending domain.
    /// With `directory`, the return-path domains of the sending domains in the store count too.
    func returnPaths(_ directory: DomainDirectory? = nil) -> ReturnPaths {
        var overrides: [String: String] = [:]
        for (name, domain) in domains {
            if let returnPath = domain.returnPathDomain, !returnPath.isEmpty { overrides[name] = returnPath }
        }
        guard let directory else { return ReturnPaths(overrides: overrides) }
        return ReturnPaths(overrides: overrides, lookup: { directory.returnPathDomain(for: $0) })
    }

    /// The addresses the MX takes mail for: every configured sending domain's return-path
    /// domain, the feedback addresses, VERP and unsubscribe addresses with valid tokens,
    /// and the inbound routes.
    func inboundAddressBook(keys: TrackingKeys, directory: DomainDirectory) throws -> InboundAddressBook {
        let returnPaths = self.returnPaths()
        var routes: [InboundAddressBook.InboundRoute] = []
        for (pattern, target) in inbound.routes {
            let trimmed = target.trimmingCharacters(in: .whitespaces)
            if trimmed.lowercased() == "store" {
                routes.append(.init(pattern: pattern, webhookURL: nil))
                continue
            }
            guard let url = URL(string: trimmed), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
                url.host != nil
            else {
                throw ConfigurationError(description: "'inbound.routes.\(pattern)' must be an http(s) URL or 'store', got '\(target)'")
            }
            routes.append(.init(pattern: pattern, webhookURL: trimmed))
        }
        for address in complaints.addresses where !address.contains("@") {
            throw ConfigurationError(description: "'complaints.addresses' entries must be addresses, got '\(address)'")
        }
        return InboundAddressBook(
            keys: keys, returnPathDomains: Set(domains.keys.map { returnPaths.domain(forSendingDomain: $0) }),
            feedbackAddresses: complaints.addresses, routes: routes, isReturnPathDomain: { directory.isReturnPathDomain($0) },
            storedRoute: { directory.inboundRoute(for: $0) })
    }

    func mxListeners() throws -> [SMTPListenerAddress] {
        try mx.listen.map { try ListenAddress($0, key: "smtp.mx.listen") }
            .map { SMTPListenerAddress(host: $0.host, port: $0.port, implicitTLS: false) }
    }

    /// The MX: the submission limits, its own message size, no AUTH, no identity, every RCPT checked.
    func mxServerConfiguration(tlsContext: NIOSSLContext) throws -> SMTPServerConfiguration {
        var configuration = try smtpServerConfiguration(tlsContext: tlsContext)
        if let size = mx.maxMessageSize { configuration.limits.maxMessageSize = size }
        configuration.requireIdentity = false
        configuration.offerAuth = false
        configuration.checkRecipients = true
        configuration.checkSenders = false
        return configuration
    }
}

extension TernConfiguration {
    /// The webhook poster: `inbound.webhook_secret` (base64) or the one shared in the store, and the
    /// retry schedule, counted from each message's arrival.
    func inboundWebhooksConfiguration(store: any NodeStore, folder: DataFolder) async throws -> InboundWebhooks.Configuration {
        var secret: [UInt8]
        if let text = inbound.webhookSecret {
            guard let data = Data(base64Encoded: text.trimmingCharacters(in: .whitespaces)), data.count >= 16 else {
                throw ConfigurationError(description: "'inbound.webhook_secret' must be base64 of at least 16 bytes")
            }
            secret = [UInt8](data)
        } else {
            secret = try await store.sharedSecret(
                named: SharedSecretName.webhooks, proposed: folder.earlierWebhookSecret() ?? DataFolder.newSecret())
        }
        var retry = InboundWebhooks.Configuration.defaultRetry
        if let schedule = inbound.retrySchedule, let last = schedule.last {
            retry.delays = schedule.dropLast().map { .seconds($0) }
            retry.repeatingDelay = .seconds(last)
        }
        if let maxAge = inbound.maxAge { retry.maximumAge = .seconds(maxAge) }
        var configuration = InboundWebhooks.Configuration(secret: secret, retry: retry)
        if let timeout = inbound.timeout { configuration.timeout = .seconds(timeout) }
        if let size = inbound.maxAttachmentSize { configuration.maxAttachmentContentBytes = size }
        return configuration
    }
}

extension TernConfiguration {
    /// Whether unverified sending domains may send: as configured, or (`auto`) only when every
    /// listener is on loopback, so that a development set-up works without DNS.
    func allowsUnverifiedDomains() throws -> Bool {
        switch sending.allowUnverifiedDomains {
        case "true": return true
        case "false": return false
        default:
            let listeners = try submissionListeners().map(\.host) + mxListeners().map(\.host)
                + [try ListenAddress(http.listen, key: "http.listen").host]
            return listeners.allSatisfy(Self.isLoopbackHost)
        }
    }

    static func isLoopbackHost(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
