public import DKIM
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
    private let state = Mutex<(domains: [String: SendingDomain], signers: [String: [DKIMSigner]], returnPaths: Set<String>)>(([:], [:], []))

    public init(store: any DomainStore, refreshInterval: Duration = DomainDirectory.defaultRefreshInterval, logger: Logger) {
        self.store = store
        self.refreshInterval = refreshInterval
        self.logger = logger
    }

    /// Reads the domains from the store now.
    public func reload() async {
        do {
            let domains = try await store.domains()
            let old = state.withLock { $0 }
            var signers: [String: [DKIMSigner]] = [:]
            for domain in domains {
                // Keys are parsed once per change, not per message.
                if let previous = old.domains[domain.name], previous.signingKeys == domain.signingKeys {
                    signers[domain.name] = old.signers[domain.name]
                    continue
                }
                signers[domain.name] = domain.signingKeys.compactMap { key in
                    do {
                        return try DKIMSigner(domain: domain.name, selector: key.selector, key: try DKIMPrivateKey(pemRepresentation: key.privateKeyPEM))
                    } catch {
                        logger.error("DKIM key \(key.selector) of \(domain.name) cannot sign: \(error)")
                        return nil
                    }
                }
            }
            let byName = Dictionary(uniqueKeysWithValues: domains.map { ($0.name, $0) })
            let returnPaths = Set(domains.map { $0.returnPathDomain ?? "bounces." + $0.name })
            state.withLock { $0 = (byName, signers, returnPaths) }
        } catch {
            logger.error("cannot read the sending domains: \(error)")
        }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.refreshInterval)
                // A shutdown ends the sleep early; the store is not read for it.
                if Task.isCancelled { break }
                await self.reload()
            }
        }
    }

    /// The domain `name` belongs to: itself, or the nearest parent that is a sending domain
    /// (mail from `news.example.com` belongs to `example.com`, as DMARC's relaxed alignment has it).
    public func owner(of name: String) -> SendingDomain? {
        let domains = state.withLock { $0.domains }
        var candidate = Substring(name.lowercased())
        while !candidate.isEmpty {
            if let domain = domains[String(candidate)] { return domain }
            guard let dot = candidate.firstIndex(of: ".") else { return nil }
            candidate = candidate[candidate.index(after: dot)...]
        }
        return nil
    }

    /// The return-path domain the store gives the sending domain `name` belongs to, if any.
    public func returnPathDomain(for name: String) -> String? {
        owner(of: name)?.returnPathDomain
    }

    /// What the sending domain `name` belongs to tracks, when the store says.
    public func trackingFeatures(for name: String) -> TrackingFeatures? {
        owner(of: name)?.track.flatMap(TrackingFeatures.init(list:))
    }

    /// The inbound route the store gives the domain `name` (exactly), if any.
    public func inboundRoute(for name: String) -> InboundAddressBook.InboundRoute? {
        guard let domain = state.withLock({ $0.domains[name.lowercased()] }), let route = domain.inboundRoute else { return nil }
        return InboundAddressBook.InboundRoute(
            pattern: name, webhookURL: route.lowercased() == "store" ? nil : route, tenant: domain.tenant)
    }

    /// Whether `name` is the return-path domain of a sending domain in the store.
    public func isReturnPathDomain(_ name: String) -> Bool {
        state.withLock { $0.returnPaths.contains(name.lowercased()) }
    }

    /// The signers of the sending domain mail from `name` belongs to (`d=` is that domain,
    /// which aligns with a `From` in it or below it); empty when it has no keys.
    public func signers(for name: String) -> [DKIMSigner] {
        guard let owner = owner(of: name) else { return [] }
        return state.withLock { $0.signers[owner.name] ?? [] }
    }
}
