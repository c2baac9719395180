import NIOCore
import TernHTTP

/// The HTTP listener (`http.*`): tracking, the API and metrics.
struct HTTPSettings: Sendable, Equatable, SettingsSection {
    var listen = ListenAddress(host: "127.0.0.1", port: 8025)
    /// The base of tracking and unsubscribe links.
    var publicURL = "http://127.0.0.1:8025"
    /// Event loops of the HTTP server; nil: half of the cores (`HTTPEventLoops`).
    var eventLoops: Int?
    /// The request-head deadline and the connection caps, total and per client address.
    var connections = HTTPConnectionLimits()

    static var settings: [Setting<Self>] {
        [
            .listenAddress("http.listen", \.listen),
            .string("http.public_url", \.publicURL),
            .optionalInt("http.event_loops", \.eventLoops, minimum: 1),
            .custom("http.idle_timeout") { settings, source, key in
                if let value = try source.int(key, minimum: 1) { settings.connections.idleTimeout = .seconds(Int64(value)) }
            },
            .int("http.max_connections", \.connections.maxConnections, minimum: 1),
            .int("http.max_connections_per_ip", \.connections.maxConnectionsPerIP, minimum: 1),
        ]
    }
}

/// The certificate of STARTTLS and implicit TLS (`tls.*`); a self-signed one is generated when nil.
struct TLSSettings: Sendable, Equatable, SettingsSection {
    /// PEM file paths.
    var certificate: String?
    var key: String?

    static var settings: [Setting<Self>] {
        [
            .optionalString("tls.certificate", \.certificate),
            .optionalString("tls.key", \.key),
        ]
    }

    func validate() throws {
        if (certificate == nil) != (key == nil) {
            throw ConfigurationError(description: "tls.certificate and tls.key must be given together")
        }
    }
}
