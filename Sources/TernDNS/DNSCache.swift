/// A bounded TTL cache of lookup outcomes, pure: every call takes the current time, so tests need no clock.
///
/// Positive answers live for the smallest TTL of the records used (the RRset and any CNAMEs leading to it,
/// RFC 2181 §5.2); negative ones (NXDOMAIN, NODATA) for the SOA's negative TTL, `min(SOA TTL, SOA MINIMUM)`
/// (RFC 2308 §5), and are not cached at all without an SOA. Both are capped. When full, expired entries go
/// first, then the least recently used.
public struct DNSCache: Sendable {
    /// What a lookup concluded.
    public enum Outcome: Hashable, Sendable {
        /// Records, or none (NODATA).
        case answer(DNSAnswer)
        /// NXDOMAIN.
        case nameDoesNotExist
    }

    public struct Key: Hashable, Sendable {
        public var name: DNSName
        public var type: DNSRecordType
        public init(name: DNSName, type: DNSRecordType) {
            self.name = name
            self.type = type
        }
    }

    struct Entry: Sendable {
        var outcome: Outcome
        var expires: ContinuousClock.Instant
        var lastUsed: UInt64
    }

    public static let defaultCapacity = 10_000
    /// RFC 2308 §5 suggests one to three hours; one keeps a newly fixed domain from bouncing for long.
    public static let defaultMaxNegativeTTL: Duration = .seconds(3600)
    /// Positive answers are kept at most a day, whatever the zone says (RFC 8767 §4 suggests a cap of 7 days).
    public static let defaultMaxTTL: Duration = .seconds(86_400)

    public let capacity: Int
    public let maxTTL: Duration
    public let maxNegativeTTL: Duration
    var entries: [Key: Entry] = [:]
    var tick: UInt64 = 0

    public init(capacity: Int = defaultCapacity, maxTTL: Duration = defaultMaxTTL, maxNegativeTTL: Duration = defaultMaxNegativeTTL) {
        self.capacity = max(0, capacity)
        self.maxTTL = maxTTL
        self.maxNegativeTTL = maxNegativeTTL
    }

    public var count: Int { entries.count }

    /// The cached outcome, if still fresh at `now`.
    public mutating func lookup(_ key: Key, now: ContinuousClock.Instant) -> Outcome? {
        guard var entry = entries[key] else { return nil }
        guard now < entry.expires else {
            entries[key] = nil
            return nil
        }
        tick += 1
        entry.lastUsed = tick
        entries[key] = entry
        return entry.outcome
    }

    /// Stores an outcome for `ttl` seconds, capped by `maxTTL` (or `maxNegativeTTL` for negative outcomes).
    /// A zero TTL stores nothing (RFC 1035 §3.2.1: use only for the transaction in progress).
    public mutating func insert(_ outcome: Outcome, for key: Key, ttl: UInt32, now: ContinuousClock.Instant) {
        guard capacity > 0, ttl > 0 else { return }
        let isNegative: Bool = switch outcome {
        case .nameDoesNotExist: true
        case .answer(let answer): answer.isNoData
        }
        let lifetime = min(Duration.seconds(Int64(ttl)), isNegative ? maxNegativeTTL : maxTTL)
        guard lifetime > .zero else { return }
        if entries[key] == nil, entries.count >= capacity { evict(now: now) }
        tick += 1
        entries[key] = Entry(outcome: outcome, expires: now + lifetime, lastUsed: tick)
    }

    public mutating func removeAll() { entries.removeAll() }

    /// Drops expired entries; if that frees nothing, the least recently used eighth (at least one), so the
    /// sorting cost is paid once per many inserts.
    mutating func evict(now: ContinuousClock.Instant) {
        entries = entries.filter { now < $0.value.expires }
        guard entries.count >= capacity else { return }
        let victims = entries.sorted { $0.value.lastUsed < $1.value.lastUsed }.prefix(max(1, capacity / 8))
        for victim in victims { entries[victim.key] = nil }
    }
}
