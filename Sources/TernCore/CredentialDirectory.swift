import Foundation
import Crypto
import Synchronization

/// Answers "who is this?" for SMTP AUTH, client networks and API keys, with a short
/// cache in front of the store so that busy listeners do not read it (or run scrypt)
/// for every connection. Credentials added or removed by `tern credential` in another
/// process are seen within `refreshInterval`.
public actor CredentialDirectory {
    private let store: any Store
    private let hasher: SecretHasher
    private let refreshInterval: Duration
    private let clock = ContinuousClock()

    private var snapshot: [Credential] = []
    private var loadedAt: ContinuousClock.Instant?
    /// A copy of `snapshot` and its load time for callers that cannot wait (the SMTP
    /// greeting on the event loop); they use it only while it is fresh.
    private let shared = Mutex<(credentials: [Credential], loadedAt: ContinuousClock.Instant?)>(([], nil))
    /// Digests of secrets that verified, per credential and hash, so that a repeated AUTH
    /// or API call skips scrypt. Keyed by the stored hash: a changed credential misses.
    private var verified: Set<String> = []

    public static let defaultRefreshInterval: Duration = .seconds(2)

    public init(store: any Store, hasher: SecretHasher = SecretHasher(), refreshInterval: Duration = defaultRefreshInterval) {
        self.store = store
        self.hasher = hasher
        self.refreshInterval = refreshInterval
    }

    /// The credential bound to a network that contains `address`, if any.
    public func credential(forClientAddress address: IPAddress) async -> Credential? {
        await currentCredentials().first { credential in
            credential.networks.contains { $0.contains(address) }
        }
    }

    /// An answer given without waiting, from a load younger than the refresh interval.
    public enum CachedLookup: Sendable, Equatable {
        case fresh(Credential?)
        /// The last load is too old (or there was none): ask the actor.
        case stale
    }

    /// `credential(forClientAddress:)` answered from the last load, without waiting.
    public nonisolated func cachedCredential(forClientAddress address: IPAddress) -> CachedLookup {
        let now = clock.now
        return shared.withLock { shared in
            guard let loadedAt = shared.loadedAt, loadedAt.duration(to: now) < refreshInterval else { return .stale }
            return .fresh(shared.credentials.first { credential in
                credential.networks.contains { $0.contains(address) }
            })
        }
    }

    /// The credential named `name` in the last load, however old, without waiting: for a
    /// session whose identity was established moments ago (from that same load, or a later one).
    public nonisolated func cachedCredential(named name: String) -> Credential? {
        shared.withLock { shared in shared.credentials.first { $0.name == name } }
    }

    /// The credential whose SMTP username and password these are.
    public func authenticate(username: String, password: String) async -> Credential? {
        guard let credential = await currentCredentials().first(where: { $0.name == username }) else { return nil }
        return await verify(password, hash: credential.passwordHash) ? credential : nil
    }

    /// The credential an API key (`tern_<id>_<secret>`) belongs to.
    public func authenticate(apiKey text: Substring) async -> Credential? {
        guard let key = APIKey(parsing: text),
            let credential = await currentCredentials().first(where: { $0.apiKeyID == key.keyID })
        else { return nil }
        return await verify(key.secret, hash: credential.apiKeyHash) ? credential : nil
    }

    private func verify(_ secret: String, hash: String) async -> Bool {
        let cacheKey = Self.cacheKey(secret: secret, hash: hash)
        if verified.contains(cacheKey) { return true }
        let hasher = self.hasher
        let ok = await Task.detached(priority: .medium) { hasher.verify(secret, against: hash) }.value
        if ok {
            if verified.count > 10_000 { verified.removeAll() }
            verified.insert(cacheKey)
        }
        return ok
    }

    private static func cacheKey(secret: String, hash: String) -> String {
        let digest = SHA256.hash(data: Array((hash + "\u{0}" + secret).utf8))
        return digest.map { String($0, radix: 16) }.joined()
    }

    private func currentCredentials() async -> [Credential] {
        let now = clock.now
        if let loadedAt, loadedAt.duration(to: now) < refreshInterval { return snapshot }
        if let fresh = try? await store.credentials() {
            snapshot = fresh
            loadedAt = now
            shared.withLock { $0 = (fresh, now) }
        }
        return snapshot
    }
}
