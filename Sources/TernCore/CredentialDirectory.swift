import Foundation
import Crypto
import Synchronization

/// Answers "who is this?" for SMTP AUTH, client networks and API keys, from a snapshot of
/// the store's credentials, so that busy listeners neither read the store nor run scrypt for
/// every connection.
///
/// The snapshot is read again when it is older than `refreshInterval` (a removed or changed
/// credential stops working within it) and when a username or API key id is not in it (a
/// credential just added by `tern credential add` works on the very next attempt). Reads are
/// shared by concurrent callers and start at most once per `minimumReloadInterval`, so a
/// guessing client causes a few store reads per second at most, whatever its rate.
/// A wrong secret costs one scrypt whether the user or key exists or not, and failures are
/// throttled per client and per user (`AuthFailureThrottle`) before any scrypt runs.
public actor CredentialDirectory {
    /// Reads every credential: `store.credentials()`.
    private let loadCredentials: @Sendable () async throws -> [Credential]
    private let verifier: any SecretVerifier
    /// Checked against when the user or key is unknown, at the cost of a real one.
    private let unmatchableHash: String
    private let refreshInterval: Duration
    private let minimumReloadInterval: Duration
    private let clock = ContinuousClock()
    private var throttle: AuthFailureThrottle

    private var snapshot: [Credential] = []
    /// When the read behind `snapshot` started.
    private var loadedAt: ContinuousClock.Instant?
    private var lastLoadStart: ContinuousClock.Instant?
    private var loadsStarted = 0
    private var loadApplied = 0
    /// Callers waiting for the next read, which has not started yet (its first caller waits
    /// for `minimumReloadInterval` to pass); nil when no read is waiting to start.
    private var nextLoadWaiters: [CheckedContinuation<Void, Never>]?
    /// A copy of `snapshot` and its load time for callers that cannot wait (the SMTP
    /// greeting on the event loop); they use it only while it is fresh.
    private let shared = Mutex<(credentials: [Credential], loadedAt: ContinuousClock.Instant?)>(([], nil))
    /// Digests of secrets that verified, per credential and hash, so that a repeated AUTH
    /// or API call skips scrypt. Keyed by the stored hash: a changed credential misses.
    /// Wrong secrets are never kept.
    private var verified: Set<String> = []

    public static let defaultRefreshInterval: Duration = .seconds(2)
    public static let defaultMinimumReloadInterval: Duration = .milliseconds(250)

    /// `verifier` checks secrets (default: `hasher`); `hasher` gives the cost of the hash that
    /// unknown users and keys are checked against, which should be that of stored hashes.
    public init(
        store: any Store, hasher: SecretHasher = SecretHasher(), verifier: (any SecretVerifier)? = nil,
        refreshInterval: Duration = defaultRefreshInterval, minimumReloadInterval: Duration = defaultMinimumReloadInterval,
        throttle: AuthFailureThrottle.Limits = AuthFailureThrottle.Limits()
    ) {
        self.init(
            hasher: hasher, verifier: verifier, refreshInterval: refreshInterval, minimumReloadInterval: minimumReloadInterval,
            throttle: throttle, loading: { try await store.credentials() })
    }

    /// Reads credentials with `loading` rather than from a store (tests count the reads).
    public init(
        hasher: SecretHasher = SecretHasher(), verifier: (any SecretVerifier)? = nil,
        refreshInterval: Duration = defaultRefreshInterval, minimumReloadInterval: Duration = defaultMinimumReloadInterval,
        throttle: AuthFailureThrottle.Limits = AuthFailureThrottle.Limits(),
        loading: @escaping @Sendable () async throws -> [Credential]
    ) {
        self.loadCredentials = loading
        self.verifier = verifier ?? hasher
        self.unmatchableHash = hasher.unmatchableHash()
        self.refreshInterval = refreshInterval
        self.minimumReloadInterval = minimumReloadInterval
        self.throttle = AuthFailureThrottle(limits: throttle)
    }

    /// The answer to an SMTP AUTH or an API key.
    public enum Authentication: Sendable, Equatable {
        case authenticated(Credential)
        /// An unknown user or key, or a wrong secret: the two are not told apart.
        case refused
        /// Too many failures lately from this client or for this user: refused unchecked.
        case throttled(AuthFailureThrottle.Refusal)
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

    /// The credential whose SMTP username and password these are, asked from `client`.
    public func authenticate(username: String, password: String, client: IPAddress?) async -> Authentication {
        let attempt: AuthFailureThrottle.Attempt
        switch throttle.begin(client: client.map(AuthFailureThrottle.Key.init(client:)), user: .user(username), now: clock.now) {
        case .refused(let refusal): return .throttled(refusal)
        case .allowed(let allowed): attempt = allowed
        }
        guard let credential = await check(password, hash: \.passwordHash, of: { $0.name == username }) else { return .refused }
        throttle.succeeded(attempt)
        return .authenticated(credential)
    }

    /// The credential an API key (`tern_<id>_<secret>`) belongs to, asked from `client`.
    public func authenticate(apiKey text: Substring, client: IPAddress?) async -> Authentication {
        let key = APIKey(parsing: text)
        let attempt: AuthFailureThrottle.Attempt
        switch throttle.begin(client: client.map(AuthFailureThrottle.Key.init(client:)), user: key.map { .apiKey($0.keyID) }, now: clock.now) {
        case .refused(let refusal): return .throttled(refusal)
        case .allowed(let allowed): attempt = allowed
        }
        // A malformed key is refused by its form alone, which is public: nothing to hide.
        guard let key, let credential = await check(key.secret, hash: \.apiKeyHash, of: { $0.apiKeyID == key.keyID }) else {
            return .refused
        }
        throttle.succeeded(attempt)
        return .authenticated(credential)
    }

    /// The credential `matches` finds, if `secret` is its secret. One scrypt and one store
    /// read either way: an unknown credential is checked against `unmatchableHash`, and after a
    /// wrong secret the store is read again (unless this attempt read it already), and the secret
    /// checked once more only if the hash changed there (removed and added again since).
    private func check(
        _ secret: String, hash: KeyPath<Credential, String>, of matches: (Credential) -> Bool
    ) async -> Credential? {
        let began = clock.now
        guard let credential = await lookup(matches) else {
            _ = await verify(secret, hash: unmatchableHash)
            return nil
        }
        if await verify(secret, hash: credential[keyPath: hash]) { return credential }
        // Unless the lookup read the store for this attempt already (the snapshot was old).
        if !(loadedAt.map { $0 >= began } ?? false) { await reload() }
        guard let current = snapshot.first(where: matches), current[keyPath: hash] != credential[keyPath: hash] else {
            return nil
        }
        return await verify(secret, hash: current[keyPath: hash]) ? current : nil
    }

    private func verify(_ secret: String, hash: String) async -> Bool {
        let cacheKey = Self.cacheKey(secret: secret, hash: hash)
        if verified.contains(cacheKey) { return true }
        let verifier = self.verifier
        let ok = await Task.detached(priority: .medium) { verifier.verify(secret, against: hash) }.value
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

    private var isFresh: Bool {
        guard let loadedAt else { return false }
        return loadedAt.duration(to: clock.now) < refreshInterval
    }

    /// Reads the store again (bounded as a miss is): the configuration changed, so a removed
    /// or changed credential stops working at once rather than within `refreshInterval`.
    public func reloadNow() async {
        await reload()
    }

    private func currentCredentials() async -> [Credential] {
        if !isFresh { await reload() }
        return snapshot
    }

    /// The credential `matches` finds, reading the store again if the snapshot has none.
    private func lookup(_ matches: (Credential) -> Bool) async -> Credential? {
        if isFresh, let found = snapshot.first(where: matches) { return found }
        await reload()
        return snapshot.first(where: matches)
    }

    /// Returns once a read of the store that started after this call has finished (or failed:
    /// the snapshot is then kept). Concurrent callers share the next read, and reads start at
    /// most once per `minimumReloadInterval`: a caller sooner than that waits for it.
    private func reload() async {
        if nextLoadWaiters != nil {
            await withCheckedContinuation { nextLoadWaiters?.append($0) }
            return
        }
        nextLoadWaiters = []
        if let lastLoadStart, clock.now < lastLoadStart + minimumReloadInterval {
            try? await clock.sleep(until: lastLoadStart + minimumReloadInterval)
        }
        let waiters = nextLoadWaiters ?? []
        nextLoadWaiters = nil
        let start = clock.now
        lastLoadStart = start
        loadsStarted += 1
        let number = loadsStarted
        // Reads may overlap when the store is slow: only a newer one than applied is kept.
        if let fresh = try? await loadCredentials(), number > loadApplied {
            loadApplied = number
            snapshot = fresh
            loadedAt = start
            shared.withLock { $0 = (fresh, start) }
        }
        for waiter in waiters { waiter.resume() }
    }
}
