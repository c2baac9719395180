public import Logging
public import ServiceLifecycle
public import TernCore

/// Makes a change made with the CLI (a tenant, credential, sending domain, key or limit, in
/// another process or on another node) work on a running server at once: polls the store's
/// configuration generation, a one-row read, and when it has grown runs every reload (the
/// directories that answer the SMTP path from memory). The directories' own periodic
/// reloads stay, for a store that was unreachable at the moment of a change.
public final class ConfigurationWatcher: Service, Sendable {
    public static let defaultPollInterval: Duration = .milliseconds(100)

    private let store: any TenantStore
    private let pollInterval: Duration
    private let reloads: [@Sendable () async -> Void]
    private let logger: Logger
    /// The generation the server's directories were loaded at; nil: read at the start of `run()`.
    private let loadedGeneration: Int64?

    public init(
        store: any TenantStore, pollInterval: Duration = ConfigurationWatcher.defaultPollInterval,
        reloads: [@Sendable () async -> Void], loadedGeneration: Int64? = nil, logger: Logger
    ) {
        self.loadedGeneration = loadedGeneration
        self.store = store
        self.pollInterval = pollInterval
        self.reloads = reloads
        self.logger = logger
    }

    public func run() async throws {
        var seen = loadedGeneration
        if seen == nil { seen = try? await store.configurationGeneration() }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: pollInterval)
            guard let generation = try? await store.configurationGeneration(), generation != seen else { continue }
            seen = generation
            logger.debug("configuration generation \(generation): reloading")
            for reload in reloads { await reload() }
        }
    }
}
