import Foundation
import SMTPCore
import SMTPNIO
import TernCore
import TernEngine

/// Mail for customers' domains (`inbound.*`): which addresses, and where it is posted.
struct InboundSettings: Sendable, Equatable, SettingsSection {
    /// `user@example.com`, `example.com` or `*.example.com` → an http(s) URL, or `store`.
    var routes: [String: String] = [:]
    /// The secret that signs webhook posts (base64); the one kept in the store when nil.
    var webhookSecret: String?
    /// When failed posts are tried again, and until when (counted from arrival).
    var retry = InboundWebhooks.Configuration.defaultRetry
    /// How long a post may take.
    var timeout = InboundWebhooks.Configuration.defaultTimeout
    /// Attachments up to this many bytes are posted with their content (base64).
    var maxAttachmentSize = InboundPayload.defaultMaxAttachmentContentBytes

    static var settings: [Setting<Self>] {
        [
            .mapping("inbound.routes", \.routes),
            .optionalString("inbound.webhook_secret", \.webhookSecret),
            .retrySchedule("inbound.retry_schedule", \.retry),
            .seconds("inbound.max_age", \.retry.maximumAge),
            .seconds("inbound.timeout", \.timeout),
            .int("inbound.max_attachment_size", \.maxAttachmentSize, minimum: 0),
        ]
    }
}

/// One sending domain's entry under `domains:`.
struct DomainSettings: Sendable, Equatable, SettingsSection {
    /// Where bounces, complaints and unsubscribe mail for this sending domain come back;
    /// `bounces.<domain>` when nil.
    var returnPathDomain: String?

    static var settings: [Setting<Self>] {
        [.optionalString("return_path_domain", \.returnPathDomain)]
    }
}

/// `bounces.*`
struct BounceSettings: Sendable, Equatable, SettingsSection {
    /// Each recipient's copy goes with its own envelope sender (`b-TOKEN@<return-path domain>`).
    var verp = true

    static var settings: [Setting<Self>] {
        [.bool("bounces.verp", \.verp)]
    }
}

/// `complaints.*`
struct ComplaintSettings: Sendable, Equatable, SettingsSection {
    /// Feedback-loop addresses registered with mailbox providers, besides `fbl@` every
    /// configured return-path domain.
    var addresses: [String] = []

    static var settings: [Setting<Self>] {
        [.list("complaints.addresses", \.addresses)]
    }
}

/// Who may send for which domain (`sending.*`).
struct SendingSettings: Sendable, Equatable, SettingsSection {
    /// `auto`: unverified (or unknown) sending domains may send only when every listener is
    /// on loopback (a development set-up); `true` or `false` decide it outright.
    var allowUnverifiedDomains = "auto"

    static var settings: [Setting<Self>] {
        [
            .custom("sending.allow_unverified_domains") { settings, source, key in
                guard let value = try source.string(key) else { return }
                guard ["auto", "true", "false"].contains(value.lowercased()) else {
                    throw ConfigurationError(description: "'\(key)' must be auto, true or false, got '\(value)'")
                }
                settings.allowUnverifiedDomains = value.lowercased()
            }
        ]
    }
}

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
        return InboundWebhooks.Configuration(
            secret: secret, retry: inbound.retry, timeout: inbound.timeout, maxAttachmentContentBytes: inbound.maxAttachmentSize)
    }
}

extension TernConfiguration {
    /// Whether unverified sending domains may send: as configured, or (`auto`) only when every
    /// listener is on loopback, so that a development set-up works without DNS.
    func allowsUnverifiedDomains() -> Bool {
        switch sending.allowUnverifiedDomains {
        case "true": return true
        case "false": return false
        default:
            let listeners = submissionListeners().map(\.host) + mxListeners().map(\.host) + [http.listen.host]
            return listeners.allSatisfy(Self.isLoopbackHost)
        }
    }

    static func isLoopbackHost(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
