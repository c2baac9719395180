import Logging
import NIOCore
import TernDNS
import TernEngine

/// Outbound delivery (`delivery.*`); the defaults are the engine's.
struct DeliverySettings: Sendable, Equatable, SettingsSection {
    var enabled = true
    /// `host:port` name servers; empty means the system's (`/etc/resolv.conf`).
    var dnsServers: [String] = []
    /// The port used for MX hosts (25; tests point it at high loopback ports).
    var smtpPort = SMTPTransport.Configuration.defaultSMTPPort
    /// Domain (lower-case) or `*` → next hop, skipping MX lookup.
    var routes: [String: DeliveryRoute] = [:]
    /// Retries, maximum age and per-destination concurrency.
    var scheduler = DeliverySchedulerConfiguration()
    var connectTimeout = SMTPTransport.Configuration.defaultConnectTimeout
    /// The name in our EHLO; `hostname` when nil.
    var heloName: String?
    /// How long a claimed recipient stays leased to this node while it is delivered.
    var lease = DeliveryService.Configuration.defaultLease
    /// Keep SMTP sessions open after a delivery for the next message to the same host.
    var connectionCache = SMTPTransport.Configuration.defaultConnectionCache
    /// The limits of kept sessions.
    var connectionReuse = SMTPConnectionPool.Configuration()

    static var settings: [Setting<Self>] {
        [
            .bool("delivery.enabled", \.enabled),
            .list("delivery.dns_servers", \.dnsServers),
            .int("delivery.smtp_port", \.smtpPort, minimum: 1),
            .custom("delivery.routes", shape: .mapping) { settings, source, key in
                guard let routes = try source.map(key) else { return }
                settings.routes = [:]
                for (domain, value) in routes {
                    settings.routes[domain.lowercased()] = try DeliveryRoute(parsing: value, key: "\(key).\(domain)")
                }
            },
            .retrySchedule("delivery.retry_schedule", \.scheduler.retry),
            .seconds("delivery.max_age", \.scheduler.retry.maximumAge),
            .int("delivery.initial_concurrency", \.scheduler.concurrency.initial, minimum: 1),
            .int("delivery.max_concurrency", \.scheduler.concurrency.maximum, minimum: 1),
            .seconds("delivery.connect_timeout", \.connectTimeout),
            .optionalString("delivery.helo_name", \.heloName),
            .seconds("delivery.lease", \.lease, minimum: 5),
            .bool("delivery.connection_cache", \.connectionCache),
            .seconds("delivery.connection_cache_idle_timeout", \.connectionReuse.idleTimeout),
            .int("delivery.connection_reuse_count_limit", \.connectionReuse.maxMessagesPerConnection, minimum: 1),
            .seconds("delivery.connection_reuse_time_limit", \.connectionReuse.maxLifetime),
            .int("delivery.connection_cache_max_idle_per_host", \.connectionReuse.maxIdlePerNextHop, minimum: 1),
            .int("delivery.connection_cache_max_idle", \.connectionReuse.maxIdle, minimum: 1),
        ]
    }

    func validate() throws {
        guard scheduler.concurrency.initial <= scheduler.concurrency.maximum else {
            throw ConfigurationError(description: "'delivery.initial_concurrency' must not be above 'delivery.max_concurrency'")
        }
    }
}

extension TernConfiguration {
    func dnsResolver(group: any EventLoopGroup) throws -> DNSResolver {
        var resolverConfiguration = DNSResolver.Configuration()
        if !delivery.dnsServers.isEmpty {
            guard let configured = DNSResolver.Configuration(servers: delivery.dnsServers) else {
                throw ConfigurationError(
                    description: "'delivery.dns_servers' must list host:port name servers, got \(delivery.dnsServers)")
            }
            resolverConfiguration = configured
        }
        return DNSResolver(
            configuration: resolverConfiguration, eventLoopGroup: group, logger: Logger(label: "tern.dns"),
            now: { ContinuousClock.now })
    }

    func transportConfiguration() -> SMTPTransport.Configuration {
        SMTPTransport.Configuration(
            heloName: delivery.heloName ?? hostname, smtpPort: delivery.smtpPort, routes: delivery.routes,
            connectTimeout: delivery.connectTimeout, connectionCache: delivery.connectionCache,
            connectionReuse: delivery.connectionReuse)
    }

    func deliveryConfiguration(node: String) -> DeliveryService.Configuration {
        DeliveryService.Configuration(scheduler: delivery.scheduler, node: node, lease: delivery.lease)
    }
}

extension DeliveryRoute {
    /// `host:port`, optionally followed by ` tls=opportunistic|required|verify`.
    init(parsing text: String, key: String) throws {
        let words = text.split(separator: " ", omittingEmptySubsequences: true)
        guard let first = words.first else { throw ConfigurationError(description: "'\(key)' is empty") }
        let address = try ListenAddress(String(first), key: key)
        var tls = DeliveryRoute.TLS.opportunistic
        for word in words.dropFirst() {
            guard word.hasPrefix("tls="), let value = DeliveryRoute.TLS(rawValue: String(word.dropFirst(4))) else {
                throw ConfigurationError(description: "'\(key)': unknown option '\(word)' (tls=opportunistic, tls=required or tls=verify)")
            }
            tls = value
        }
        self.init(host: address.host, port: address.port, tls: tls)
    }
}
