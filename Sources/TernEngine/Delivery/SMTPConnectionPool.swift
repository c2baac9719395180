public import Logging
import SMTPNIO
public import ServiceLifecycle
import Synchronization

/// Where a session goes: the same host name, address, port and TLS policy give sessions that
/// can stand in for each other. The address is `nil` for a route's host (resolved at connect).
public struct SMTPNextHop: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var address: String?
    public var port: Int
    public var tls: DeliveryRoute.TLS

    public init(host: String, address: String?, port: Int, tls: DeliveryRoute.TLS) {
        self.host = host
        self.address = address
        self.port = port
        self.tls = tls
    }

    public var description: String { "\(host)[\(address ?? host)]:\(port)" }
}

/// The bookkeeping of Postfix's SMTP connection cache (scache(8)), without IO or clock: which
/// idle sessions are kept for which next hop, which to hand out (most recently used first), and
/// which are due to be closed. `SMTPConnectionPool` runs it for real sessions.
struct SMTPConnectionCache<Key: Hashable & Sendable, Connection: Sendable>: Sendable {
    typealias Instant = ContinuousClock.Instant

    /// A session lent to one delivery, with what counts against its limits.
    struct Lease: Sendable {
        var connection: Connection
        var key: Key
        var openedAt: Instant
        /// Transactions started on the session so far.
        var uses: Int
    }

    /// What to do with a session handed back.
    struct CheckIn: Sendable {
        /// The session was kept for reuse.
        var kept: Bool
        /// Sessions to close (QUIT): the one handed back when not kept, and idle ones it pushed out.
        var close: [Connection]
    }

    private struct Entry: Sendable {
        var lease: Lease
        var idleSince: Instant
    }

    let limits: SMTPConnectionPool.Configuration
    /// Idle sessions per next hop, least recently used first.
    private var idle: [Key: [Entry]] = [:]
    private(set) var idleCount = 0
    private(set) var isShutDown = false

    init(limits: SMTPConnectionPool.Configuration) {
        self.limits = limits
    }

    func hasIdle(_ key: Key) -> Bool { idle[key]?.isEmpty == false }

    /// Takes the most recently used idle session for `key`; `close` holds the ones found expired.
    mutating func checkOut(_ key: Key, now: Instant) -> (lease: Lease?, close: [Connection]) {
        guard var entries = idle[key] else { return (nil, []) }
        var close: [Connection] = []
        var found: Lease?
        while let entry = entries.popLast() {
            idleCount -= 1
            if isExpired(entry, now: now) {
                close.append(entry.lease.connection)
            } else {
                found = entry.lease
                break
            }
        }
        idle[key] = entries.isEmpty ? nil : entries
        return (found, close)
    }

    /// Hands a session back after a successful transaction. It is kept unless it reached its
    /// use or time limit or the cache is shut down; a full next hop or a full cache makes room
    /// by closing its least recently used session.
    mutating func checkIn(_ lease: Lease, now: Instant) -> CheckIn {
        guard !isShutDown, lease.uses < limits.maxMessagesPerConnection,
            now - lease.openedAt < limits.maxLifetime,
            limits.maxIdlePerNextHop > 0, limits.maxIdle > 0
        else { return CheckIn(kept: false, close: [lease.connection]) }
        var close: [Connection] = []
        if let entries = idle[lease.key], entries.count >= limits.maxIdlePerNextHop {
            close.append(removeLeastRecentlyUsed(of: lease.key))
        } else if idleCount >= limits.maxIdle, let oldest = oldestIdleKey() {
            close.append(removeLeastRecentlyUsed(of: oldest))
        }
        idle[lease.key, default: []].append(Entry(lease: lease, idleSince: now))
        idleCount += 1
        return CheckIn(kept: true, close: close)
    }

    /// Removes and returns the idle sessions past their idle time or lifetime.
    mutating func expire(now: Instant) -> [Connection] {
        var close: [Connection] = []
        for (key, entries) in idle {
            let (expired, kept) = entries.reduce(into: ([Connection](), [Entry]())) { result, entry in
                if isExpired(entry, now: now) { result.0.append(entry.lease.connection) } else { result.1.append(entry) }
            }
            guard !expired.isEmpty else { continue }
            close += expired
            idleCount -= expired.count
            idle[key] = kept.isEmpty ? nil : kept
        }
        return close
    }

    /// Empties the cache for good: every idle session is returned to be closed, and sessions
    /// handed back later are not kept.
    mutating func shutDown() -> [Connection] {
        isShutDown = true
        let close = idle.values.flatMap { $0.map(\.lease.connection) }
        idle = [:]
        idleCount = 0
        return close
    }

    private func isExpired(_ entry: Entry, now: Instant) -> Bool {
        now - entry.idleSince >= limits.idleTimeout || now - entry.lease.openedAt >= limits.maxLifetime
    }

    private mutating func removeLeastRecentlyUsed(of key: Key) -> Connection {
        guard var entries = idle[key], !entries.isEmpty else { preconditionFailure("no idle session for \(key)") }
        let removed = entries.removeFirst()
        idle[key] = entries.isEmpty ? nil : entries
        idleCount -= 1
        return removed.lease.connection
    }

    private func oldestIdleKey() -> Key? {
        idle.compactMap { key, entries in entries.first.map { (key, $0.idleSince) } }.min { $0.1 < $1.1 }?.0
    }
}

/// Postfix's SMTP connection cache (`smtp_connection_cache_on_demand`): a session that
/// delivered a message stays open for a while, and the next delivery to the same next hop sends
/// its message on it instead of opening a new connection (RFC 5321 §3.3: any number of
/// transactions per session).
///
/// A `Service`: it closes idle sessions as they expire, and QUITs all of them on graceful
/// shutdown; run it in the same `ServiceGroup` as, and shut it down after, the delivery that uses it.
public final class SMTPConnectionPool: Service, Sendable {
    public struct Configuration: Sendable, Hashable {
        /// An idle session is closed (QUIT) after this (Postfix's `smtp_connection_cache_time_limit`, 2 s).
        public var idleTimeout: Duration
        /// A session is closed after this many messages (`smtp_connection_reuse_count_limit`).
        public var maxMessagesPerConnection: Int
        /// A session is not reused once open this long (`smtp_connection_reuse_time_limit`, 300 s).
        public var maxLifetime: Duration
        /// Idle sessions kept for one next hop.
        public var maxIdlePerNextHop: Int
        /// Idle sessions kept in all.
        public var maxIdle: Int
        /// How long a QUIT may take before the connection is simply closed.
        public var quitTimeout: Duration

        public static let defaultIdleTimeout: Duration = .seconds(5)
        public static let defaultMaxMessagesPerConnection = 100
        public static let defaultMaxLifetime: Duration = .seconds(300)
        public static let defaultMaxIdlePerNextHop = 20
        public static let defaultMaxIdle = 100
        public static let defaultQuitTimeout: Duration = .seconds(5)

        public init(
            idleTimeout: Duration = Configuration.defaultIdleTimeout,
            maxMessagesPerConnection: Int = Configuration.defaultMaxMessagesPerConnection,
            maxLifetime: Duration = Configuration.defaultMaxLifetime,
            maxIdlePerNextHop: Int = Configuration.defaultMaxIdlePerNextHop,
            maxIdle: Int = Configuration.defaultMaxIdle,
            quitTimeout: Duration = Configuration.defaultQuitTimeout
        ) {
            self.idleTimeout = idleTimeout
            self.maxMessagesPerConnection = maxMessagesPerConnection
            self.maxLifetime = maxLifetime
            self.maxIdlePerNextHop = maxIdlePerNextHop
            self.maxIdle = maxIdle
            self.quitTimeout = quitTimeout
        }

        /// Whether any session would ever be kept.
        public var allowsReuse: Bool {
            maxMessagesPerConnection > 1 && maxIdlePerNextHop > 0 && maxIdle > 0 && idleTimeout > .zero && maxLifetime > .zero
        }

        /// How often expired idle sessions are looked for: they close at most this late.
        var sweepInterval: Duration {
            max(.milliseconds(10), min(idleTimeout / 2, .seconds(1)))
        }
    }

    typealias Lease = SMTPConnectionCache<SMTPNextHop, SMTPClientConnection>.Lease

    public let configuration: Configuration
    private let cache: Mutex<SMTPConnectionCache<SMTPNextHop, SMTPClientConnection>>
    private let logger: Logger

    public init(configuration: Configuration = Configuration(), logger: Logger) {
        self.configuration = configuration
        self.cache = Mutex(SMTPConnectionCache(limits: configuration))
        self.logger = logger
    }

    func hasIdle(_ nextHop: SMTPNextHop) -> Bool { cache.withLock { $0.hasIdle(nextHop) } }

    /// An idle session to `nextHop` that is still ready for a message, most recently used
    /// first; those found closed or expired on the way are closed.
    func checkOut(_ nextHop: SMTPNextHop) async -> Lease? {
        while true {
            let (lease, expired) = cache.withLock { $0.checkOut(nextHop, now: .now) }
            await quit(expired)
            guard let lease else { return nil }
            if lease.connection.isReadyForMessage {
                logger.debug("reusing SMTP session", metadata: ["smtp.server": "\(nextHop)", "smtp.uses": "\(lease.uses)"])
                return lease
            }
            logger.debug("idle SMTP session was closed", metadata: ["smtp.server": "\(nextHop)"])
            await lease.connection.close()
        }
    }

    /// Hands back a session whose last transaction succeeded: kept for reuse when it is still
    /// ready and within its limits, otherwise ended with QUIT.
    func checkIn(_ lease: Lease) async {
        guard lease.connection.isReadyForMessage else {
            await lease.connection.close()
            return
        }
        let result = cache.withLock { $0.checkIn(lease, now: .now) }
        await quit(result.close)
    }

    /// Closes the idle sessions past their idle time or lifetime.
    func closeExpired() async {
        await quit(cache.withLock { $0.expire(now: .now) })
    }

    /// QUITs every idle session; sessions handed back later are QUIT rather than kept.
    public func shutdown() async {
        let idle = cache.withLock { $0.shutDown() }
        if !idle.isEmpty { logger.debug("closing \(idle.count) idle SMTP session(s)") }
        await quit(idle)
    }

    /// Closes expired sessions until graceful shutdown (or cancellation), then QUITs the rest.
    public func run() async throws {
        let interval = configuration.sweepInterval
        await cancelWhenGracefulShutdown {
            while true {
                do {
                    try await Task.sleep(for: interval)
                } catch {
                    return
                }
                await self.closeExpired()
            }
        }
        await shutdown()
    }

    /// QUIT on every connection at once, each closed outright after `quitTimeout` (or at once
    /// when the task is cancelled).
    private func quit(_ connections: [SMTPClientConnection]) async {
        guard !connections.isEmpty else { return }
        let timeout = configuration.quitTimeout
        await withDiscardingTaskGroup { group in
            for connection in connections {
                group.addTask {
                    await withTaskGroup(of: Void.self) { race in
                        race.addTask { await connection.quit() }
                        race.addTask {
                            try? await Task.sleep(for: timeout)
                            await connection.close()
                        }
                        await race.next()
                        race.cancelAll()
                    }
                }
            }
        }
    }
}
