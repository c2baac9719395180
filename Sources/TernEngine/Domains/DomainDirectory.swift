import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization
public import TernCore

/// The sending domains, read from the store and kept in memory for intake (which asks on
/// the event loop, without waiting): which domains exist, which are verified, and their
/// settings. Reloaded every `refreshInterval`, so `tern domain add` and `verify` in another
/// process (or on another node) take effect within it.
public final class DomainDirectory: Service, Sendable {
    public static let defaultRefreshInterval: Duration = .seconds(2)

    private let store: any DomainStore
    private let refreshInterval: Duration
    private let logger: Logger
    private let state = Mutex<[String: SendingDomain]>([:])

    public init(store: any DomainStore, refreshInterval: Duration = DomainDirectory.defaultRefreshInterval, logger: Logger) {
        self.store = store
        self.refreshInterval = refreshInterval
        self.logger = logger
    }

    /// Reads the domains from the store now.
    public func reload() async {
        do {
            let domains = try await store.domains()
            state.withLock { $0 = Dictionary(uniqueKeysWithValues: domains.map { ($0.name, $0) }) }
        } catch {
            logger.error("cannot read the sending domains: \(error)")
        }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.refreshInterval)
                await self.reload()
            }
        }
    }

    /// The domain `name` belongs to: itself, or the nearest parent that is a sending domain
    /// (mail from `news.example.com` belongs to `example.com`, as DMARC's relaxed alignment has it).
    public func owner(of name: String) -> SendingDomain? {
        let domains = state.withLock { $0 }
        var candidate = Substring(name.lowercased())
        while !candidate.isEmpty {
            if let domain = domains[String(candidate)] { return domain }
            guard let dot = candidate.firstIndex(of: ".") else { return nil }
            candidate = candidate[candidate.index(after: dot)...]
        }
        return nil
    }
}
