public import Foundation
public import Logging
public import SMTPCore
public import ServiceLifecycle
import Synchronization
public import TernCore

/// Each tenant's sending limits, answered on the SMTP path from memory, never from the store.
///
/// A message counts once per recipient, as Postal, Mailgun and SendGrid count sending limits
/// (and as Tern stores a tracked message: one per recipient). Hours and days are clock hours
/// and days in UTC; a window resets at its end.
///
/// - At MAIL FROM, a tenant whose hour or day is used up gets `451 4.7.1` naming the limit
///   and when it resets (counted as `throttled`).
/// - At RCPT TO, a recipient that would pass the hour or day gets the same; one past
///   `max_recipients_per_message` gets `452 4.5.3`, after which the client sends the rest in
///   another transaction (RFC 5321 §4.5.3.1.10).
///
/// Counts come from the store's `tenant_usage` (every node's commits, read every
/// `refreshInterval`) plus what this node committed since. Exact within: the recipients of
/// transactions already past RCPT when the limit is reached (they are counted at their
/// commit), and on several nodes what the other nodes committed in the last interval.
/// Limits changed with `tern tenant set` apply within one interval.
public final class TenantLimiter: Service, Sendable {
    public static let defaultRefreshInterval: Duration = .seconds(1)

    private let store: any Store
    private let refreshInterval: Duration
    private let clock: @Sendable () -> Date
    private let logger: Logger

    private struct State {
        var tenants: [TenantID: Tenant] = [:]
        /// Recipients accepted per tenant and hour (the hour's start in ms): the store's
        /// counts at the last read, plus this node's commits since.
        var counts: [TenantID: [Int64: Int]] = [:]
        /// This node's commits since the read in progress began: added to its result.
        var sinceRead: [TenantID: [Int64: Int]] = [:]
        var reading = false
        /// Refusals not yet added to the store.
        var throttled: [TenantID: Int] = [:]
    }

    private let state = Mutex(State())

    public init(
        store: any Store, refreshInterval: Duration = TenantLimiter.defaultRefreshInterval,
        clock: @escaping @Sendable () -> Date = { Date() }, logger: Logger
    ) {
        self.store = store
        self.refreshInterval = refreshInterval
        self.clock = clock
        self.logger = logger
    }

    /// Reads the tenants and their usage of today (UTC) from the store, and adds the
    /// refusals counted since the last time.
    public func refresh() async throws {
        let now = clock()
        let pending = state.withLock { state in
            state.reading = true
            state.sinceRead = [:]
            defer { state.throttled = [:] }
            return state.throttled
        }
        do {
            try await store.addThrottled(pending, at: now)
        } catch {
            state.withLock { state in
                for (tenant, count) in pending { state.throttled[tenant, default: 0] += count }
            }
            throw error
        }
        let tenants: [Tenant]
        let usage: [TenantUsage]
        do {
            tenants = try await store.tenants()
            usage = try await store.tenantUsage(since: Self.dayStart(of: now))
        } catch {
            state.withLock { $0.reading = false }
            throw error
        }
        state.withLock { state in
            state.tenants = Dictionary(uniqueKeysWithValues: tenants.map { ($0.id, $0) })
            var counts: [TenantID: [Int64: Int]] = [:]
            for row in usage {
                counts[row.tenant, default: [:]][row.hour.millisecondsSince1970] = row.messages
            }
            for (tenant, hours) in state.sinceRead {
                for (hour, count) in hours { counts[tenant, default: [:]][hour, default: 0] += count }
            }
            state.counts = counts
            state.sinceRead = [:]
            state.reading = false
        }
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await refresh()
            } catch {
                logger.warning("could not read the tenants' usage: \(error)")
            }
            try? await Task.sleep(for: refreshInterval)
        }
        try? await store.addThrottled(state.withLock { state in
            defer { state.throttled = [:] }
            return state.throttled
        }, at: clock())
    }

    /// nil when `tenant` may start a message now; otherwise the reply, counted as throttled.
    public func refusalAtMail(of tenant: TenantID) -> SMTPReply? {
        let now = clock()
        return state.withLock { state in
            guard let reached = Self.reached(tenant, adding: 0, state, now: now) else { return nil }
            state.throttled[tenant, default: 0] += 1
            return reached
        }
    }

    /// nil when `tenant` may add a recipient to a message that has `accepted` already.
    public func refusalAtRecipient(of tenant: TenantID, accepted: Int) -> SMTPReply? {
        let now = clock()
        return state.withLock { state in
            if let perMessage = state.tenants[tenant]?.limits.maxRecipientsPerMessage, accepted >= perMessage {
                return SMTPReply(
                    code: 452, EnhancedStatusCode(class: 4, subject: 5, detail: 3),
                    "Too many recipients: tenant \(state.tenants[tenant]?.name ?? "?") sends to at most \(perMessage) per message")
            }
            guard let reached = Self.reached(tenant, adding: accepted, state, now: now) else { return nil }
            state.throttled[tenant, default: 0] += 1
            return reached
        }
    }

    /// Counts committed messages (each recipient once) for their tenants.
    public func committed(_ messages: [QueuedMessage]) {
        state.withLock { state in
            for message in messages {
                let hour = TenantUsage.hourMilliseconds(of: message.receivedAt)
                state.counts[message.tenant, default: [:]][hour, default: 0] += message.recipients.count
                if state.reading { state.sinceRead[message.tenant, default: [:]][hour, default: 0] += message.recipients.count }
            }
        }
    }

    /// The refusal when `adding` more recipients (and then one) would pass an hour's or a
    /// day's limit of `tenant`.
    private static func reached(_ tenant: TenantID, adding: Int, _ state: State, now: Date) -> SMTPReply? {
        guard let known = state.tenants[tenant] else { return nil }
        let limits = known.limits
        let hour = TenantUsage.hourMilliseconds(of: now)
        let hours = state.counts[tenant] ?? [:]
        let code = EnhancedStatusCode(class: 4, subject: 7, detail: 1)
        if let perHour = limits.maxMessagesPerHour, (hours[hour] ?? 0) + adding >= perHour {
            let reset = Date(millisecondsSince1970: hour + 3_600_000)
            return SMTPReply(
                code: 451, code,
                "Tenant \(known.name) reached max_messages_per_hour (\(perHour)); it resets at \(Self.format(reset))")
        }
        if let perDay = limits.maxMessagesPerDay {
            let dayStart = Self.dayStart(of: now).millisecondsSince1970
            let today = hours.reduce(0) { $0 + ($1.key >= dayStart ? $1.value : 0) }
            if today + adding >= perDay {
                let reset = Date(millisecondsSince1970: dayStart + 86_400_000)
                return SMTPReply(
                    code: 451, code,
                    "Tenant \(known.name) reached max_messages_per_day (\(perDay)); it resets at \(Self.format(reset))")
            }
        }
        return nil
    }

    /// Midnight UTC of the day that holds `date`.
    static func dayStart(of date: Date) -> Date {
        let ms = date.millisecondsSince1970
        let day: Int64 = 86_400_000
        return Date(millisecondsSince1970: ms - ((ms % day) + day) % day)
    }

    private static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
