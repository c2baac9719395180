/// Counts failed SMTP AUTH and API key attempts per client address and per user (or API key
/// id), and refuses further attempts once either has failed too often within a window —
/// before any password hashing, so that a guessing client can neither try many secrets nor
/// spend the server's CPU on scrypt. Like Postfix's anvil (`smtpd_client_auth_rate_limit`),
/// but counting failures only: a successful attempt does not count.
///
/// A fixed window per key: it opens at the key's first failure; once `max…` failures fall
/// into it, attempts are refused until it closes. IPv6 clients are counted by their /64,
/// which one host usually holds whole. Pure: the caller passes the time.
public struct AuthFailureThrottle: Sendable {
    /// The limits; `auth.*` in `tern.yaml`.
    public struct Limits: Sendable, Equatable {
        /// Failures from one client address (an IPv6 /64) within `window`.
        public var maxFailuresPerClient: Int
        /// Failures for one username or API key id within `window`, from anywhere.
        public var maxFailuresPerUser: Int
        public var window: Duration
        /// Keys tracked at most; past it the oldest windows are dropped (memory stays bounded
        /// while a client sprays usernames or addresses).
        public var maxTrackedKeys: Int

        public static let defaultMaxFailuresPerClient = 10
        public static let defaultMaxFailuresPerUser = 10
        public static let defaultWindow: Duration = .seconds(300)
        public static let defaultMaxTrackedKeys = 10_000

        public init(
            maxFailuresPerClient: Int = defaultMaxFailuresPerClient, maxFailuresPerUser: Int = defaultMaxFailuresPerUser,
            window: Duration = defaultWindow, maxTrackedKeys: Int = defaultMaxTrackedKeys
        ) {
            self.maxFailuresPerClient = maxFailuresPerClient
            self.maxFailuresPerUser = maxFailuresPerUser
            self.window = window
            self.maxTrackedKeys = maxTrackedKeys
        }
    }

    /// What failures are counted against.
    public enum Key: Sendable, Hashable, CustomStringConvertible {
        /// A client address (IPv4, or an IPv6 /64), as text.
        case client(String)
        /// An SMTP username, as given.
        case user(String)
        /// The public id of an API key, as given.
        case apiKey(String)

        /// The key of a client address: IPv4-mapped IPv6 as IPv4, other IPv6 as its /64.
        public init(client address: IPAddress) {
            if let v4 = address.ipv4Mapped {
                self = .client(v4.description)
            } else if address.bytes.count == 16 {
                let prefix = IPAddress(bytes: Array(address.bytes[0..<8]) + [UInt8](repeating: 0, count: 8))
                self = .client("\(prefix?.description ?? "?")/64")
            } else {
                self = .client(address.description)
            }
        }

        public var description: String {
            switch self {
            case .client(let address): "client \(address)"
            case .user(let name): "user \(name)"
            case .apiKey(let id): "API key \(id)"
            }
        }
    }

    /// An attempt refused without being checked.
    public struct Refusal: Sendable, Equatable {
        /// The key that is over its limit (the client's when both are).
        public var key: Key
        /// Until the window closes, in whole seconds (at least 1), as `Retry-After` wants it.
        public var retryAfterSeconds: Int
        /// The first refusal of this window: the one to log.
        public var startsBurst: Bool
    }

    /// An attempt let through: counted as a failure until `succeeded(_:)` says otherwise, so
    /// that concurrent attempts cannot all pass the check before any of them has failed.
    public struct Attempt: Sendable {
        var counted: [(key: Key, windowStart: ContinuousClock.Instant)]
    }

    /// `begin`'s answer.
    public enum Decision: Sendable {
        case allowed(Attempt)
        case refused(Refusal)
    }

    struct Window: Sendable {
        var start: ContinuousClock.Instant
        var failures: Int
        var announced: Bool
    }

    public let limits: Limits
    private(set) var windows: [Key: Window] = [:]

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Keys currently tracked (for tests and bounds).
    public var trackedKeys: Int { windows.count }

    /// Lets an attempt by `client` for `user` through (counting it as a failure), or refuses it.
    public mutating func begin(client: Key?, user: Key?, now: ContinuousClock.Instant) -> Decision {
        let keys = [client, user].compactMap { $0 }
        for key in keys {
            guard var window = windows[key] else { continue }
            let end = window.start + limits.window
            if now >= end {
                windows[key] = nil
                continue
            }
            guard window.failures >= limit(of: key) else { continue }
            let startsBurst = !window.announced
            window.announced = true
            windows[key] = window
            return .refused(Refusal(key: key, retryAfterSeconds: Self.wholeSeconds(now.duration(to: end)), startsBurst: startsBurst))
        }
        var counted: [(key: Key, windowStart: ContinuousClock.Instant)] = []
        for key in keys {
            var window = windows[key] ?? Window(start: now, failures: 0, announced: false)
            window.failures += 1
            windows[key] = window
            counted.append((key, window.start))
        }
        if windows.count > limits.maxTrackedKeys { evict(now: now) }
        return .allowed(Attempt(counted: counted))
    }

    /// The attempt was right: it is no failure.
    public mutating func succeeded(_ attempt: Attempt) {
        for (key, start) in attempt.counted {
            guard var window = windows[key], window.start == start else { continue }
            window.failures -= 1
            windows[key] = window.failures > 0 ? window : nil
        }
    }

    private func limit(of key: Key) -> Int {
        if case .client = key { return limits.maxFailuresPerClient }
        return limits.maxFailuresPerUser
    }

    /// Drops closed windows, then the oldest tenth, so that eviction is rare.
    private mutating func evict(now: ContinuousClock.Instant) {
        let window = limits.window
        windows = windows.filter { now < $0.value.start + window }
        guard windows.count > limits.maxTrackedKeys else { return }
        let excess = windows.count - limits.maxTrackedKeys + max(1, limits.maxTrackedKeys / 10)
        for (key, _) in windows.sorted(by: { $0.value.start < $1.value.start }).prefix(excess) { windows[key] = nil }
    }

    static func wholeSeconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return max(1, Int(seconds) + (attoseconds > 0 ? 1 : 0))
    }
}
