import Foundation
import TernEngine
import TernStorePostgres
import Yams

/// Everything `tern` reads from `tern.yaml` and `TERN_…` environment variables, read
/// once at start-up into plain values. Every key has a default, so no file is needed.
struct TernConfiguration: Sendable {
    var dataDir = "./tern-data"
    var hostname = "localhost"
    var logLevel = "info"
    var submission = Submission()
    var mx = MX()
    var limits = Limits()
    var http = HTTP()
    var tls = TLS()
    var delivery = Delivery()
    var tracking = Tracking()
    /// Sending domain → its settings (`return_path_domain`).
    var domains: [String: Domain] = [:]
    var bounces = Bounces()
    var complaints = Complaints()
    var inbound = Inbound()
    var sending = Sending()
    var store = StoreSettings()
    var nodes = Nodes()

    /// Where everything is kept.
    struct StoreSettings: Sendable {
        /// nil: SQLite in the data folder (one node). `postgres://user:password@host:port/database`:
        /// PostgreSQL, which several nodes may share.
        var url: String?
        /// Connections each node's pool opens at most (PostgreSQL).
        var maxConnections: Int?
        /// Seconds to wait for the database at start-up before giving up.
        var connectTimeout = 30
    }

    /// How the nodes sharing a store see each other.
    struct Nodes: Sendable {
        /// Seconds between heartbeats; a node silent for three of them is no longer counted as live.
        var heartbeatInterval = 10
    }

    /// Who may send for which domain.
    struct Sending: Sendable {
        /// `auto`: unverified (or unknown) sending domains may send only when every listener is
        /// on loopback (a development set-up); `true` or `false` decide it outright.
        var allowUnverifiedDomains = "auto"
    }

    /// The MX listener, where bounces, complaints, unsubscribe mail and inbound mail arrive.
    struct MX: Sendable {
        /// Empty: no MX listener.
        var listen = ["127.0.0.1:2025"]
        /// The largest message the MX takes (bounces return the original); SMTPCore's default when nil.
        var maxMessageSize: Int?
        /// Recipients accepted per client IP and minute (Postfix's `smtpd_client_recipient_rate_limit`).
        var maxRecipientsPerMinute = 600
        /// The host name return-path MX records must point at; `hostname` by default.
        var hostname: String?
    }

    struct Domain: Sendable {
        /// Where bounces, complaints and unsubscribe mail for this sending domain come back;
        /// `bounces.<domain>` when not set.
        var returnPathDomain: String?
    }

    struct Bounces: Sendable {
        /// Each recipient's copy goes with its own envelope sender (`b-TOKEN@<return-path domain>`).
        var verp = true
    }

    struct Complaints: Sendable {
        /// Feedback-loop addresses registered with mailbox providers, besides `fbl@` every
        /// configured return-path domain.
        var addresses: [String] = []
    }

    /// Mail for customers' domains: which addresses, and where it is posted.
    struct Inbound: Sendable {
        /// `user@example.com`, `example.com` or `*.example.com` → an http(s) URL, or `store`.
        var routes: [String: String] = [:]
        /// The secret that signs webhook posts (base64); the data folder's `webhook.secret` when not set.
        var webhookSecret: String?
        /// Seconds between posting attempts; the last one repeats.
        var retrySchedule: [Int]?
        /// Seconds after arrival when posting stops.
        var maxAge: Int?
        /// Seconds a post may take.
        var timeout: Int?
        /// Attachments up to this many bytes are posted with their content (base64).
        var maxAttachmentSize: Int?
    }

    /// Engagement tracking: what is tracked by default and per credential, and how
    /// machine traffic is told apart.
    struct Tracking: Sendable {
        /// For every credential without its own entry: `opens,clicks,unsubscribe`, `all` or `none`.
        var track = "none"
        /// Credential name → the same list form.
        var credentials: [String: String] = [:]
        /// A JSON file of engagement rules (see README), replacing or extending the built-in ones.
        var rulesFile: String?
        /// The token signing secret (base64, 32 bytes or more); nil: the one kept in the store.
        var secret: String?
        /// Earlier signing secrets (base64) whose tokens still verify after a rotation.
        var previousSecrets: [String] = []
        /// The body placeholder replaced by the unsubscribe URL.
        var placeholder = MessageTracker.defaultPlaceholder
    }

    /// Outbound delivery; `nil` values mean the engine's named defaults.
    struct Delivery: Sendable {
        var enabled = true
        /// `host:port` name servers; empty means the system's (`/etc/resolv.conf`).
        var dnsServers: [String] = []
        /// The port used for MX hosts (25; tests point it at high loopback ports).
        var smtpPort = 25
        /// Domain (or `*`) → `host:port` next hop, skipping MX lookup; ` tls=verify` or
        /// ` tls=required` after it asks for a verified or at least encrypted connection.
        var routes: [String: String] = [:]
        /// Seconds between attempts; the last one repeats.
        var retrySchedule: [Int]?
        /// Seconds after which a message that could not be delivered fails.
        var maxAge: Int?
        var initialConcurrency: Int?
        var maxConcurrency: Int?
        var connectTimeout: Int?
        /// The name in our EHLO; the configured `hostname` by default.
        var heloName: String?
        /// Seconds a claimed recipient stays leased to this node while it is delivered.
        var lease: Int?
        /// Keep SMTP sessions open after a delivery for the next message to the same host.
        var connectionCache = true
        /// Seconds an idle kept session stays open.
        var connectionCacheIdleTimeout: Int?
        /// Messages sent on one session at most.
        var connectionReuseCountLimit: Int?
        /// Seconds after its opening that a session is no longer reused.
        var connectionReuseTimeLimit: Int?
        /// Idle sessions kept per host (and address, port, TLS policy), and in all.
        var connectionCacheMaxIdlePerHost: Int?
        var connectionCacheMaxIdle: Int?
    }

    struct Submission: Sendable {
        var listen = ["127.0.0.1:2587"]
        var tlsListen = ["127.0.0.1:2465"]
        /// Allow AUTH before STARTTLS, for loopback clients only.
        var allowInsecureAuth = false
    }

    /// SMTP limits; the defaults are SMTPCore's named defaults.
    struct Limits: Sendable {
        var maxMessageSize: Int?
        var maxRecipients: Int?
        var maxCommandLine: Int?
        var maxTextLine: Int?
        var maxErrors: Int?
        var commandTimeout: Int?
        var dataTimeout: Int?
        var maxConnections: Int?
        var maxConnectionsPerIP: Int?
    }

    struct HTTP: Sendable {
        var listen = "127.0.0.1:8025"
        var publicURL = "http://127.0.0.1:8025"
        /// Event loops of the HTTP server; nil: half of the cores (`HTTPEventLoops`).
        var eventLoops: Int?
        /// Seconds a connection may wait for a whole request head; `HTTPConnectionLimits`' default when nil.
        var idleTimeout: Int?
        var maxConnections: Int?
        var maxConnectionsPerIP: Int?
    }

    struct TLS: Sendable {
        var certificate: String?
        var key: String?
    }

    var databasePath: String { (dataDir as NSString).appendingPathComponent("tern.sqlite") }
}

/// A configuration problem, reported with the key and the source it came from.
struct ConfigurationError: Error, CustomStringConvertible {
    var description: String
}

extension TernConfiguration {
    /// Every key the file may set. The environment variable of a key is `TERN_` followed
    /// by the key upper-cased with `.` as `_`, e.g. `TERN_SMTP_SUBMISSION_LISTEN`.
    static let keys: [String] = [
        "data_dir", "hostname", "log_level",
        "smtp.submission.listen", "smtp.submission.tls_listen", "smtp.submission.allow_insecure_auth",
        "smtp.mx.listen", "smtp.mx.max_message_size", "smtp.mx.max_recipients_per_minute", "smtp.mx.hostname",
        "smtp.limits.max_message_size", "smtp.limits.max_recipients", "smtp.limits.max_command_line",
        "smtp.limits.max_text_line", "smtp.limits.max_errors", "smtp.limits.command_timeout",
        "smtp.limits.data_timeout", "smtp.limits.max_connections", "smtp.limits.max_connections_per_ip",
        "http.listen", "http.public_url", "http.event_loops", "http.idle_timeout", "http.max_connections",
        "http.max_connections_per_ip",
        "tls.certificate", "tls.key",
        "delivery.enabled", "delivery.dns_servers", "delivery.smtp_port", "delivery.routes",
        "delivery.retry_schedule", "delivery.max_age", "delivery.initial_concurrency", "delivery.max_concurrency",
        "delivery.connect_timeout", "delivery.helo_name", "delivery.lease",
        "delivery.connection_cache", "delivery.connection_cache_idle_timeout", "delivery.connection_reuse_count_limit",
        "delivery.connection_reuse_time_limit", "delivery.connection_cache_max_idle_per_host",
        "delivery.connection_cache_max_idle",
        "tracking.track", "tracking.credentials", "tracking.rules_file", "tracking.secret", "tracking.previous_secrets",
        "tracking.placeholder",
        "domains", "bounces.verp", "complaints.addresses",
        "inbound.routes", "inbound.webhook_secret", "inbound.retry_schedule", "inbound.max_age", "inbound.timeout",
        "inbound.max_attachment_size", "sending.allow_unverified_domains",
        "store.url", "store.max_connections", "store.connect_timeout", "nodes.heartbeat_interval",
    ]

    /// Keys whose value is a mapping with free-form keys (domains), not more configuration keys.
    static let mapKeys: Set<String> = ["delivery.routes", "tracking.credentials", "inbound.routes"]

    /// Keys whose value maps free-form names (domains) to mappings of these settings.
    static let tableKeys: [String: Set<String>] = ["domains": ["return_path_domain"]]

    static func environmentName(of key: String) -> String {
        "TERN_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    /// Reads the file (if any), then the environment on top of it.
    static func load(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> TernConfiguration {
        var source = ConfigurationSource()
        if let path {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ConfigurationError(description: "cannot read configuration file \(path)")
            }
            try source.addYAML(text, origin: path)
        }
        for key in keys {
            if let value = environment[environmentName(of: key)] {
                source.values[key] = .init(value: .scalar(value), origin: environmentName(of: key))
            }
        }
        return try TernConfiguration(source)
    }

    init(_ source: ConfigurationSource) throws {
        self.init()
        if let value = try source.string("data_dir") { dataDir = value }
        if let value = try source.string("hostname") { hostname = value }
        if let value = try source.string("log_level") { logLevel = value }
        if let value = try source.list("smtp.submission.listen") { submission.listen = value }
        if let value = try source.list("smtp.submission.tls_listen") { submission.tlsListen = value }
        if let value = try source.bool("smtp.submission.allow_insecure_auth") { submission.allowInsecureAuth = value }
        if let value = try source.list("smtp.mx.listen") { mx.listen = value }
        mx.maxMessageSize = try source.int("smtp.mx.max_message_size", minimum: 1)
        if let value = try source.int("smtp.mx.max_recipients_per_minute", minimum: 1) { mx.maxRecipientsPerMinute = value }
        mx.hostname = try source.string("smtp.mx.hostname")
        if let value = try source.string("sending.allow_unverified_domains") {
            guard ["auto", "true", "false"].contains(value.lowercased()) else {
                throw ConfigurationError(description: "'sending.allow_unverified_domains' must be auto, true or false, got '\(value)'")
            }
            sending.allowUnverifiedDomains = value.lowercased()
        }
        for (name, settings) in try source.table("domains") ?? [:] {
            domains[name.lowercased()] = Domain(returnPathDomain: settings["return_path_domain"])
        }
        if let value = try source.bool("bounces.verp") { bounces.verp = value }
        if let value = try source.list("complaints.addresses") { complaints.addresses = value }
        if let value = try source.map("inbound.routes") { inbound.routes = value }
        inbound.webhookSecret = try source.string("inbound.webhook_secret")
        inbound.retrySchedule = try source.seconds("inbound.retry_schedule")
        inbound.maxAge = try source.int("inbound.max_age", minimum: 1)
        inbound.timeout = try source.int("inbound.timeout", minimum: 1)
        inbound.maxAttachmentSize = try source.int("inbound.max_attachment_size", minimum: 0)
        limits.maxMessageSize = try source.int("smtp.limits.max_message_size", minimum: 1)
        limits.maxRecipients = try source.int("smtp.limits.max_recipients", minimum: 1)
        limits.maxCommandLine = try source.int("smtp.limits.max_command_line", minimum: 512)
        limits.maxTextLine = try source.int("smtp.limits.max_text_line", minimum: 1000)
        limits.maxErrors = try source.int("smtp.limits.max_errors", minimum: 1)
        limits.commandTimeout = try source.int("smtp.limits.command_timeout", minimum: 1)
        limits.dataTimeout = try source.int("smtp.limits.data_timeout", minimum: 1)
        limits.maxConnections = try source.int("smtp.limits.max_connections", minimum: 1)
        limits.maxConnectionsPerIP = try source.int("smtp.limits.max_connections_per_ip", minimum: 1)
        if let value = try source.string("http.listen") { http.listen = value }
        if let value = try source.string("http.public_url") { http.publicURL = value }
        http.eventLoops = try source.int("http.event_loops", minimum: 1)
        http.idleTimeout = try source.int("http.idle_timeout", minimum: 1)
        http.maxConnections = try source.int("http.max_connections", minimum: 1)
        http.maxConnectionsPerIP = try source.int("http.max_connections_per_ip", minimum: 1)
        tls.certificate = try source.string("tls.certificate")
        tls.key = try source.string("tls.key")
        if let value = try source.bool("delivery.enabled") { delivery.enabled = value }
        if let value = try source.list("delivery.dns_servers") { delivery.dnsServers = value }
        if let value = try source.int("delivery.smtp_port", minimum: 1) { delivery.smtpPort = value }
        if let value = try source.map("delivery.routes") { delivery.routes = value }
        delivery.retrySchedule = try source.seconds("delivery.retry_schedule")
        delivery.maxAge = try source.int("delivery.max_age", minimum: 1)
        delivery.initialConcurrency = try source.int("delivery.initial_concurrency", minimum: 1)
        delivery.maxConcurrency = try source.int("delivery.max_concurrency", minimum: 1)
        delivery.connectTimeout = try source.int("delivery.connect_timeout", minimum: 1)
        delivery.heloName = try source.string("delivery.helo_name")
        delivery.lease = try source.int("delivery.lease", minimum: 5)
        if let value = try source.bool("delivery.connection_cache") { delivery.connectionCache = value }
        delivery.connectionCacheIdleTimeout = try source.int("delivery.connection_cache_idle_timeout", minimum: 1)
        delivery.connectionReuseCountLimit = try source.int("delivery.connection_reuse_count_limit", minimum: 1)
        delivery.connectionReuseTimeLimit = try source.int("delivery.connection_reuse_time_limit", minimum: 1)
        delivery.connectionCacheMaxIdlePerHost = try source.int("delivery.connection_cache_max_idle_per_host", minimum: 1)
        delivery.connectionCacheMaxIdle = try source.int("delivery.connection_cache_max_idle", minimum: 1)
        if let value = try source.string("tracking.track") { tracking.track = value }
        if let value = try source.map("tracking.credentials") { tracking.credentials = value }
        tracking.rulesFile = try source.string("tracking.rules_file")
        tracking.secret = try source.string("tracking.secret")
        if let value = try source.list("tracking.previous_secrets") { tracking.previousSecrets = value }
        if let value = try source.string("tracking.placeholder"), !value.isEmpty { tracking.placeholder = value }
        store.url = try source.string("store.url").flatMap { $0.isEmpty ? nil : $0 }
        store.maxConnections = try source.int("store.max_connections", minimum: 1)
        if let value = try source.int("store.connect_timeout", minimum: 1) { store.connectTimeout = value }
        if let value = try source.int("nodes.heartbeat_interval", minimum: 1) { nodes.heartbeatInterval = value }
        if let url = store.url {
            do {
                _ = try PostgresStoreURL(parsing: url)
            } catch {
                throw ConfigurationError(description: "\(error) (\(source.values["store.url"]?.origin ?? "store.url"))")
            }
        }
        if (tls.certificate == nil) != (tls.key == nil) {
            throw ConfigurationError(description: "tls.certificate and tls.key must be given together")
        }
    }
}

/// Flattened configuration values (`smtp.submission.listen` → value), with where each came from.
struct ConfigurationSource {
    enum Value {
        case scalar(String)
        case list([String])
        case map([String: String])
        /// Free-form names, each with a mapping of settings (`domains:`).
        case table([String: [String: String]])
        case null
    }

    struct Entry {
        var value: Value
        var origin: String
    }

    var values: [String: Entry] = [:]

    mutating func addYAML(_ text: String, origin: String) throws {
        let document: Any?
        do {
            document = try Yams.load(yaml: text)
        } catch {
            throw ConfigurationError(description: "\(origin): not valid YAML: \(error)")
        }
        guard let document else { return }
        guard let root = document as? [String: Any] else {
            throw ConfigurationError(description: "\(origin): the top level must be a mapping of keys")
        }
        try flatten(root, prefix: "", origin: origin)
    }

    private mutating func flatten(_ mapping: [String: Any], prefix: String, origin: String) throws {
        for (name, value) in mapping {
            let key = prefix.isEmpty ? name : "\(prefix).\(name)"
            if let settings = TernConfiguration.tableKeys[key] {
                values[key] = Entry(value: .table(try table(value, key: key, settings: settings, origin: origin)), origin: origin)
                continue
            }
            if let nested = value as? [String: Any], !TernConfiguration.mapKeys.contains(key) {
                try flatten(nested, prefix: key, origin: origin)
                continue
            }
            guard TernConfiguration.keys.contains(key) else {
                throw ConfigurationError(description: "\(origin): unknown configuration key '\(key)'")
            }
            switch value {
            case let map as [String: Any]:
                values[key] = Entry(value: .map(map.mapValues { "\($0)" }), origin: origin)
            case let list as [Any]:
                values[key] = Entry(value: .list(list.map { "\($0)" }), origin: origin)
            case is NSNull:
                values[key] = Entry(value: .null, origin: origin)
            default:
                values[key] = Entry(value: .scalar("\(value)"), origin: origin)
            }
        }
    }

    private func table(_ value: Any, key: String, settings: Set<String>, origin: String) throws -> [String: [String: String]] {
        if value is NSNull { return [:] }
        guard let names = value as? [String: Any] else {
            throw ConfigurationError(description: "\(origin): '\(key)' must map names to their settings")
        }
        var table: [String: [String: String]] = [:]
        for (name, entry) in names {
            if entry is NSNull {
                table[name] = [:]
                continue
            }
            guard let mapping = entry as? [String: Any] else {
                throw ConfigurationError(description: "\(origin): '\(key).\(name)' must be a mapping of settings")
            }
            for setting in mapping.keys where !settings.contains(setting) {
                throw ConfigurationError(
                    description: "\(origin): unknown setting '\(setting)' in '\(key).\(name)' (known: \(settings.sorted().joined(separator: ", ")))")
            }
            table[name] = mapping.mapValues { "\($0)" }
        }
        return table
    }

    func string(_ key: String) throws -> String? {
        guard let entry = values[key] else { return nil }
        switch entry.value {
        case .scalar(let text): return text
        case .null: return nil
        case .list, .map, .table: throw ConfigurationError(description: "\(entry.origin): '\(key)' must be a single value")
        }
    }

    func table(_ key: String) throws -> [String: [String: String]]? {
        guard let entry = values[key] else { return nil }
        switch entry.value {
        case .table(let table): return table
        case .null: return [:]
        case .scalar, .list, .map:
            throw ConfigurationError(description: "\(entry.origin): '\(key)' must map names to their settings")
        }
    }

    /// A list of whole seconds, each at least 1 (a retry schedule).
    func seconds(_ key: String) throws -> [Int]? {
        guard let items = try list(key) else { return nil }
        return try items.map { text in
            guard let seconds = Int(text), seconds > 0 else {
                throw ConfigurationError(description: "'\(key)' must list whole seconds, got '\(text)'")
            }
            return seconds
        }
    }

    /// A list, from a YAML sequence, a single value, or a comma-separated string.
    func list(_ key: String) throws -> [String]? {
        guard let entry = values[key] else { return nil }
        switch entry.value {
        case .list(let items): return items
        case .null: return []
        case .map, .table: throw ConfigurationError(description: "\(entry.origin): '\(key)' must be a list, not a mapping")
        case .scalar(let text):
            return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }

    /// A mapping, from YAML or from `a=b,c=d` in the environment.
    func map(_ key: String) throws -> [String: String]? {
        guard let entry = values[key] else { return nil }
        switch entry.value {
        case .map(let map): return map
        case .null: return [:]
        case .list, .table: throw ConfigurationError(description: "\(entry.origin): '\(key)' must be a mapping, not a list")
        case .scalar(let text):
            var map: [String: String] = [:]
            for pair in text.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, !parts[0].isEmpty else {
                    throw ConfigurationError(description: "\(entry.origin): '\(key)' must look like 'a=b,c=d', got '\(text)'")
                }
                map[parts[0]] = parts[1]
            }
            return map
        }
    }

    func int(_ key: String, minimum: Int) throws -> Int? {
        guard let text = try string(key), let entry = values[key] else { return nil }
        guard let value = Int(text), value >= minimum else {
            throw ConfigurationError(description: "\(entry.origin): '\(key)' must be a whole number of at least \(minimum), got '\(text)'")
        }
        return value
    }

    func bool(_ key: String) throws -> Bool? {
        guard let text = try string(key), let entry = values[key] else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw ConfigurationError(description: "\(entry.origin): '\(key)' must be true or false, got '\(text)'")
        }
    }
}

/// `host:port`, `[v6]:port`, or `:port` (all interfaces) for listeners.
struct ListenAddress: Sendable, CustomStringConvertible {
    var host: String
    var port: Int

    init(_ text: String, key: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var host: Substring
        var portText: Substring
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]") else {
                throw ConfigurationError(description: "'\(key)': cannot read address '\(text)'")
            }
            host = trimmed[trimmed.index(after: trimmed.startIndex)..<close]
            portText = trimmed[trimmed.index(after: close)...].dropFirst()
        } else {
            guard let colon = trimmed.lastIndex(of: ":") else {
                throw ConfigurationError(description: "'\(key)': '\(text)' needs a port (host:port)")
            }
            host = trimmed[..<colon]
            portText = trimmed[trimmed.index(after: colon)...]
        }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw ConfigurationError(description: "'\(key)': '\(text)' has no valid port")
        }
        self.host = host.isEmpty ? "0.0.0.0" : String(host)
        self.port = port
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
