public import Foundation

/// Which concurrency bucket each recipient domain falls in. The scheduler limits
/// connections per destination; a destination is the set of hosts that take the domain's
/// mail (its route, or its MX host names), so that domains hosted by one provider share
/// one limit and one back-off, as the hosts they load are the same.
///
/// Finding a key takes a DNS lookup, which must never hold up the delivery loop: a
/// domain not looked up yet is keyed by its own name, and its lookup is handed out
/// (`takeWanted`) to run beside the loop; recipients claimed after the answer get the
/// host-set key. Answers are kept for `lifetime`.
public struct DestinationKeyTable: Sendable {
    private struct Entry: Sendable {
        /// nil: the lookup found no host set (DNS trouble, NXDOMAIN): keyed by the domain.
        var key: DestinationKey?
        var expires: Date
    }

    public let lifetime: TimeInterval
    public let maxEntries: Int
    private var entries: [String: Entry] = [:]
    private var wanted: Set<String> = []
    private var inFlight: Set<String> = []

    public static let defaultLifetime: TimeInterval = 300
    public static let defaultMaxEntries = 50_000

    public init(lifetime: TimeInterval = DestinationKeyTable.defaultLifetime, maxEntries: Int = DestinationKeyTable.defaultMaxEntries) {
        self.lifetime = lifetime
        self.maxEntries = maxEntries
    }

    /// The key for `domain` now; asks for a lookup when there is no fresh answer.
    public mutating func key(forDomain domain: String, now: Date) -> DestinationKey {
        let domain = domain.lowercased()
        if let entry = entries[domain], entry.expires > now {
            return entry.key ?? .domain(domain)
        }
        if !inFlight.contains(domain) { wanted.insert(domain) }
        return entries[domain]?.key ?? .domain(domain)
    }

    /// The domains to look up now; they count as in flight until `store` hears of them.
    public mutating func takeWanted() -> [String] {
        let domains = wanted.sorted()
        wanted.removeAll()
        inFlight.formUnion(domains)
        return domains
    }

    /// Keeps the answers of a lookup round.
    public mutating func store(_ answers: [String: DestinationKey?], now: Date) {
        if entries.count + answers.count > maxEntries {
            entries = entries.filter { $0.value.expires > now }
            if entries.count + answers.count > maxEntries { entries.removeAll() }
        }
        for (domain, key) in answers {
            inFlight.remove(domain)
            entries[domain] = Entry(key: key, expires: now.addingTimeInterval(lifetime))
        }
    }
}
