import TernEngine
import TernStorePostgres

/// Where everything is kept (`store.*`).
struct StoreSettings: Sendable, Equatable, SettingsSection {
    /// nil: SQLite in the data folder (one node). `postgres://user:password@host:port/database`:
    /// PostgreSQL, which several nodes may share.
    var url: String?
    /// Connections each node's pool opens at most (PostgreSQL).
    var maxConnections = PostgresStore.defaultMaximumConnections
    /// Seconds to wait for the database at start-up before giving up.
    var connectTimeout = 30

    static var settings: [Setting<Self>] {
        [
            .custom("store.url") { settings, source, key in
                guard let url = try source.string(key), !url.isEmpty else { return }
                do {
                    _ = try PostgresStoreURL(parsing: url)
                } catch {
                    throw ConfigurationError(description: "\(error) (\(source.values[key]?.origin ?? key))")
                }
                settings.url = url
            },
            .int("store.max_connections", \.maxConnections, minimum: 1),
            .int("store.connect_timeout", \.connectTimeout, minimum: 1),
        ]
    }
}

/// How the nodes sharing a store see each other (`nodes.*`).
struct NodeSettings: Sendable, Equatable, SettingsSection {
    /// Between heartbeats; a node silent for three of them is no longer counted as live.
    var heartbeatInterval = NodeRegistry.Configuration.defaultInterval

    static var settings: [Setting<Self>] {
        [.seconds("nodes.heartbeat_interval", \.heartbeatInterval)]
    }
}
