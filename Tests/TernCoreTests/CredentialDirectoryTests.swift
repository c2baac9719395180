import Foundation
import Synchronization
import Testing
@testable import TernCore

/// Credentials kept in memory, counting how often the directory reads them.
final class CountingCredentialStore: Sendable {
    private let state = Mutex<(credentials: [Credential], reads: [ContinuousClock.Instant])>(([], []))

    var reads: Int { state.withLock { $0.reads.count } }
    /// When each read happened.
    var readTimes: [ContinuousClock.Instant] { state.withLock { $0.reads } }

    func add(_ credential: Credential) { state.withLock { $0.credentials.append(credential) } }

    func remove(named name: String) { state.withLock { $0.credentials.removeAll { $0.name == name } } }

    func load() -> [Credential] {
        state.withLock { state in
            state.reads.append(.now)
            return state.credentials
        }
    }
}

/// A real (cheap) scrypt check that counts how often it runs.
final class CountingVerifier: SecretVerifier {
    let hasher: SecretHasher
    private let checks = Mutex(0)

    init(hasher: SecretHasher) { self.hasher = hasher }

    var count: Int { checks.withLock { $0 } }

    func verify(_ secret: String, against stored: String) -> Bool {
        checks.withLock { $0 += 1 }
        return hasher.verify(secret, against: stored)
    }
}

@Suite struct CredentialDirectoryTests {
    let hasher = SecretHasher(rounds: 1 << 10)
    let store = CountingCredentialStore()
    let client = IPAddress("192.0.2.1")

    func directory(
        verifier: CountingVerifier? = nil, refreshInterval: Duration = .seconds(600),
        minimumReloadInterval: Duration = .milliseconds(50), throttle: AuthFailureThrottle.Limits = .init()
    ) -> CredentialDirectory {
        let store = self.store
        return CredentialDirectory(
            hasher: hasher, verifier: verifier, refreshInterval: refreshInterval, minimumReloadInterval: minimumReloadInterval,
            throttle: throttle, loading: { store.load() })
    }

    func issue(_ name: String) throws -> (Credential, IssuedCredential) {
        try Credential.issue(name: name, networks: [], hasher: hasher)
    }

    @Test func aCredentialAddedAfterTheFirstLoadWorksOnTheVeryNextAttempt() async throws {
        let directory = directory()
        #expect(await directory.authenticate(username: "alice", password: "nothing", client: client) == .refused)
        let (alice, secrets) = try issue("alice")
        store.add(alice)
        #expect(await directory.authenticate(username: "alice", password: secrets.password, client: client) == .authenticated(alice))

        let (bob, bobSecrets) = try issue("bob")
        store.add(bob)
        #expect(await directory.authenticate(apiKey: Substring(bobSecrets.apiKey), client: client) == .authenticated(bob))
    }

    @Test func aCredentialRemovedAndAddedAgainWorksAtOnceWithItsNewSecret() async throws {
        let directory = directory()
        let (old, oldSecrets) = try issue("alice")
        store.add(old)
        #expect(await directory.authenticate(username: "alice", password: oldSecrets.password, client: client) == .authenticated(old))
        store.remove(named: "alice")
        let (new, newSecrets) = try issue("alice")
        store.add(new)
        #expect(await directory.authenticate(username: "alice", password: newSecrets.password, client: client) == .authenticated(new))
        #expect(await directory.authenticate(username: "alice", password: oldSecrets.password, client: client) == .refused)
    }

    @Test func aRemovedCredentialStopsWorkingWithinTheRefreshInterval() async throws {
        let directory = directory(refreshInterval: .milliseconds(200))
        let (alice, secrets) = try issue("alice")
        store.add(alice)
        #expect(await directory.authenticate(username: "alice", password: secrets.password, client: client) == .authenticated(alice))
        store.remove(named: "alice")
        try await Task.sleep(for: .milliseconds(300))
        #expect(await directory.authenticate(username: "alice", password: secrets.password, client: client) == .refused)
    }

    @Test func aBurstOfMissesCausesFewStoreReads() async throws {
        let interval = Duration.milliseconds(100)
        let directory = directory(minimumReloadInterval: interval)
        let started = ContinuousClock.now
        // Distinct clients and users, so that none is throttled: every attempt is a miss.
        await withDiscardingTaskGroup { group in
            for index in 0..<200 {
                group.addTask {
                    let client = IPAddress("10.0.\(index / 256).\(index % 256)")
                    _ = await directory.authenticate(username: "guess\(index)", password: "x", client: client)
                }
            }
        }
        let elapsed = started.duration(to: .now)
        // One read per interval at most, plus the first: whatever the number of misses.
        #expect(store.reads <= 2 + Int(elapsed / interval))
        #expect(store.reads < 20)
    }

    @Test func missesInARowAreSpacedByTheMinimumInterval() async throws {
        let interval = Duration.milliseconds(200)
        let directory = directory(minimumReloadInterval: interval)
        for index in 0..<4 {
            _ = await directory.authenticate(username: "guess\(index)", password: "x", client: IPAddress("10.0.0.\(index)"))
        }
        // Each miss read the store, after waiting for the interval since the read before.
        let times = store.readTimes
        #expect(times.count == 4)
        for (earlier, later) in zip(times, times.dropFirst()) {
            #expect(earlier.duration(to: later) >= interval - .milliseconds(1))
        }
    }

    /// What an attempt answered, and the scrypt checks and store reads it took.
    func cost(
        of attempt: () async -> CredentialDirectory.Authentication, verifier: CountingVerifier
    ) async -> (CredentialDirectory.Authentication, Int, Int) {
        let (checks, reads) = (verifier.count, store.reads)
        let result = await attempt()
        return (result, verifier.count - checks, store.reads - reads)
    }

    @Test func aWrongSecretCostsTheSameWhetherOrNotTheUserExists() async throws {
        let verifier = CountingVerifier(hasher: hasher)
        let directory = directory(verifier: verifier)
        let (alice, secrets) = try issue("alice")
        store.add(alice)
        let key = try #require(APIKey(parsing: Substring(secrets.apiKey)))
        let unknownKey = APIKey(keyID: "ABCDEFGHIJKL", secret: key.secret).text
        let wrongSecret = APIKey(keyID: key.keyID, secret: String(repeating: "x", count: 32)).text

        // One scrypt check and one store read each.
        #expect(await cost(of: { await directory.authenticate(username: "nobody", password: "guess", client: client) }, verifier: verifier) == (.refused, 1, 1))
        #expect(await cost(of: { await directory.authenticate(username: "alice", password: "guess", client: client) }, verifier: verifier) == (.refused, 1, 1))
        #expect(await cost(of: { await directory.authenticate(apiKey: Substring(unknownKey), client: client) }, verifier: verifier) == (.refused, 1, 1))
        #expect(await cost(of: { await directory.authenticate(apiKey: Substring(wrongSecret), client: client) }, verifier: verifier) == (.refused, 1, 1))
        // A malformed key is refused by its public form alone.
        #expect(await cost(of: { await directory.authenticate(apiKey: "tern_x", client: client) }, verifier: verifier) == (.refused, 0, 0))
        // The right secret: checked once, then remembered; wrong ones never are.
        #expect(await cost(of: { await directory.authenticate(username: "alice", password: secrets.password, client: client) }, verifier: verifier) == (.authenticated(alice), 1, 0))
        #expect(await cost(of: { await directory.authenticate(username: "alice", password: secrets.password, client: client) }, verifier: verifier) == (.authenticated(alice), 0, 0))
        #expect(await cost(of: { await directory.authenticate(username: "alice", password: "guess", client: client) }, verifier: verifier) == (.refused, 1, 1))
    }

    @Test func aWrongSecretCostsTheSameAfterTheSnapshotAged() async throws {
        let verifier = CountingVerifier(hasher: hasher)
        let directory = directory(verifier: verifier, refreshInterval: .milliseconds(100))
        let (alice, _) = try issue("alice")
        store.add(alice)
        for username in ["alice", "nobody", "alice"] {
            try await Task.sleep(for: .milliseconds(150))
            #expect(await cost(of: { await directory.authenticate(username: username, password: "guess", client: client) }, verifier: verifier) == (.refused, 1, 1))
        }
    }

    @Test func throttledAttemptsRunNoVerification() async throws {
        let verifier = CountingVerifier(hasher: hasher)
        let directory = directory(
            verifier: verifier, throttle: .init(maxFailuresPerClient: 3, maxFailuresPerUser: 5, window: .seconds(300)))
        let (alice, secrets) = try issue("alice")
        store.add(alice)
        let firstFailure = ContinuousClock.now
        for _ in 0..<3 {
            #expect(await directory.authenticate(username: "alice", password: "guess", client: client) == .refused)
        }
        #expect(verifier.count == 3)
        guard case .throttled(let refusal) = await directory.authenticate(username: "alice", password: "guess", client: client) else {
            Issue.record("not throttled after 3 failures")
            return
        }
        // The wait is what is left of the window that opened at the first failure (however
        // slowly the three scrypt checks ran on this machine).
        let elapsed = Int((ContinuousClock.now - firstFailure).components.seconds)
        #expect(refusal.key == .client("192.0.2.1") && refusal.startsBurst)
        #expect(refusal.retryAfterSeconds <= 300 && refusal.retryAfterSeconds >= 300 - elapsed - 1, "\(refusal.retryAfterSeconds) s after \(elapsed) s")
        // The right password too, from that client, and unchecked.
        guard case .throttled(let again) = await directory.authenticate(username: "alice", password: secrets.password, client: client) else {
            Issue.record("the right password got through a throttled client")
            return
        }
        #expect(!again.startsBurst)
        #expect(verifier.count == 3)
        // Another client may still log in as alice: 3 failures are below the user's limit of 5.
        #expect(await directory.authenticate(username: "alice", password: secrets.password, client: IPAddress("192.0.2.2")) == .authenticated(alice))
        // The API key (a key of its own) is throttled per client as well.
        guard case .throttled = await directory.authenticate(apiKey: Substring(secrets.apiKey), client: client) else {
            Issue.record("API key attempts from a throttled client were checked")
            return
        }
    }
}
