import Synchronization

/// A token bucket per client IP, as Postfix's anvil keeps for
/// `smtpd_client_recipient_rate_limit`: each IP may spend `ratePerMinute` tokens a minute,
/// in bursts of up to that many. The table is bounded: beyond `maxClients` the least
/// recently seen client is forgotten (it starts again with a full bucket).
public final class ClientRateLimiter: Sendable {
    public static let defaultMaxClients = 10_000

    public let ratePerMinute: Int
    private let maxClients: Int
    private let state: Mutex<State>

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private struct State {
        var buckets: [String: Bucket] = [:]
    }

    public init(ratePerMinute: Int, maxClients: Int = ClientRateLimiter.defaultMaxClients) {
        precondition(ratePerMinute > 0 && maxClients > 0, "a rate limiter needs a positive rate and table size")
        self.ratePerMinute = ratePerMinute
        self.maxClients = maxClients
        self.state = Mutex(State())
    }

    /// Spends one token of `client`'s bucket; false when it is empty.
    public func take(_ client: String, now: ContinuousClock.Instant = .now) -> Bool {
        let capacity = Double(ratePerMinute)
        let perSecond = capacity / 60
        return state.withLock { state in
            var bucket = state.buckets[client] ?? Bucket(tokens: capacity, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(capacity, bucket.tokens + max(0, seconds) * perSecond)
            bucket.updated = now
            let allowed = bucket.tokens >= 1
            if allowed { bucket.tokens -= 1 }
            if state.buckets[client] == nil, state.buckets.count >= maxClients,
                let oldest = state.buckets.min(by: { $0.value.updated < $1.value.updated })?.key
            {
                state.buckets[oldest] = nil
            }
            state.buckets[client] = bucket
            return allowed
        }
    }
}
