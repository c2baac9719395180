import Foundation

/// When a deferred recipient is tried again, and for how long at most.
///
/// The delay after attempt *n* is `delays[n-1]`, and `repeatingDelay` once the list is
/// used up: by default 1m, 5m, 15m, 30m, 1h, then every 2h. A recipient whose next
/// attempt would fall at or after `firstQueuedAt + maximumAge` fails instead (expired),
/// with the reason of the deferral that ended it.
/// - SeeAlso: RFC 5321 §4.5.4.1 (retry at least 30 minutes apart, give up after 4–5 days);
///   Postfix's `minimal_backoff_time`, `maximal_backoff_time`, `maximal_queue_lifetime`.
public struct RetrySchedule: Sendable, Equatable {
    /// The delays after the first attempts, in order.
    public var delays: [Duration]
    /// The delay after every later attempt.
    public var repeatingDelay: Duration
    /// How long a recipient may stay queued in all.
    public var maximumAge: Duration
    /// Random extra delay, as a fraction of the delay (0.1: up to 10% later), so that
    /// recipients deferred together do not all come back in the same second. Only ever
    /// lengthens a delay. 0 turns it off.
    public var jitter: Double

    public static let defaultDelays: [Duration] = [
        .seconds(60), .seconds(5 * 60), .seconds(15 * 60), .seconds(30 * 60), .seconds(60 * 60),
    ]
    public static let defaultRepeatingDelay: Duration = .seconds(2 * 60 * 60)
    public static let defaultMaximumAge: Duration = .seconds(3 * 24 * 60 * 60)
    public static let defaultJitter = 0.1

    public init(
        delays: [Duration] = RetrySchedule.defaultDelays,
        repeatingDelay: Duration = RetrySchedule.defaultRepeatingDelay,
        maximumAge: Duration = RetrySchedule.defaultMaximumAge,
        jitter: Double = RetrySchedule.defaultJitter
    ) {
        precondition(repeatingDelay > .zero, "repeatingDelay must be positive")
        precondition(delays.allSatisfy { $0 >= .zero }, "delays must not be negative")
        precondition(jitter >= 0 && jitter <= 1, "jitter is a fraction between 0 and 1")
        self.delays = delays
        self.repeatingDelay = repeatingDelay
        self.maximumAge = maximumAge
        self.jitter = jitter
    }

    /// The delay (without jitter) before the attempt that follows attempt number `attempt` (1-based).
    public func delay(afterAttempt attempt: Int) -> Duration {
        let index = max(attempt, 1) - 1
        return index < delays.count ? delays[index] : repeatingDelay
    }
}

/// How many deliveries may run in parallel to one destination, and how that adapts.
///
/// Postfix's qmgr model: a destination starts at `initial` parallel deliveries. Each
/// delivery that reaches the remote without destination-level trouble raises the window
/// by `increasePerSuccess` up to `maximum`. Destination-level trouble (421, connection
/// refused or timed out, TLS failure, 4xx greeting, no DNS answer) multiplies it by
/// `decreaseFactor` (never below 1), at most once per cohort: deliveries that were
/// started before the last decrease do not decrease it again, since they met the same
/// trouble. That is TCP's additive-increase/multiplicative-decrease; Postfix's default
/// 1/N feedback comes to about the same over a cohort.
///
/// After `deadAfterConsecutiveFailures` deliveries in a row with destination-level
/// trouble (by default one failed cohort at the initial window) the destination is
/// *dead* for `deadCoolDown`: its recipients are deferred without an attempt. A success
/// (from a delivery still in flight) revives it; after the cool-down it starts afresh.
/// - SeeAlso: Postfix SCHEDULER_README, "Concurrency scheduling".
public struct DestinationConcurrencyPolicy: Sendable, Equatable {
    public var initial: Int
    public var maximum: Int
    public var increasePerSuccess: Double
    public var decreaseFactor: Double
    public var deadAfterConsecutiveFailures: Int
    public var deadCoolDown: Duration

    public static let defaultInitial = 5
    public static let defaultMaximum = 20
    public static let defaultIncreasePerSuccess = 1.0
    public static let defaultDecreaseFactor = 0.5
    public static let defaultDeadAfterConsecutiveFailures = 5
    public static let defaultDeadCoolDown: Duration = .seconds(5 * 60)

    public init(
        initial: Int = DestinationConcurrencyPolicy.defaultInitial,
        maximum: Int = DestinationConcurrencyPolicy.defaultMaximum,
        increasePerSuccess: Double = DestinationConcurrencyPolicy.defaultIncreasePerSuccess,
        decreaseFactor: Double = DestinationConcurrencyPolicy.defaultDecreaseFactor,
        deadAfterConsecutiveFailures: Int = DestinationConcurrencyPolicy.defaultDeadAfterConsecutiveFailures,
        deadCoolDown: Duration = DestinationConcurrencyPolicy.defaultDeadCoolDown
    ) {
        precondition(initial >= 1 && maximum >= initial, "need 1 <= initial <= maximum")
        precondition(increasePerSuccess >= 0, "increasePerSuccess must not be negative")
        precondition(decreaseFactor > 0 && decreaseFactor <= 1, "decreaseFactor must be in (0, 1]")
        precondition(deadAfterConsecutiveFailures >= 1, "deadAfterConsecutiveFailures must be at least 1")
        self.initial = initial
        self.maximum = maximum
        self.increasePerSuccess = increasePerSuccess
        self.decreaseFactor = decreaseFactor
        self.deadAfterConsecutiveFailures = deadAfterConsecutiveFailures
        self.deadCoolDown = deadCoolDown
    }
}

/// Every limit of the ``DeliveryScheduler``.
public struct DeliverySchedulerConfiguration: Sendable, Equatable {
    /// Recipients held in memory at most (waiting, ready and in flight), however large
    /// the queue is. Postfix: `qmgr_message_recipient_limit`.
    public var activeLimit: Int
    /// Part of `activeLimit` that only new mail (never attempted) may use, so that a
    /// deferred backlog can never fill the active set and keep new mail out.
    public var newMailReserve: Int
    /// Deliveries (jobs) in flight at most, over all destinations. Postfix: `default_process_limit`.
    public var totalConcurrency: Int
    /// Recipients of one message to one destination in one job at most.
    /// Postfix: `smtp_destination_recipient_limit`.
    public var recipientsPerJob: Int
    /// Recipients asked of the store in one load at most.
    public var loadBatchLimit: Int
    /// How often to look in the store again after it said it had nothing more: for mail
    /// queued by other nodes, claims of dead workers whose lease ran out, missed notices.
    public var storeRescanInterval: Duration
    public var retry: RetrySchedule
    public var concurrency: DestinationConcurrencyPolicy

    public static let defaultActiveLimit = 10_000
    public static let defaultNewMailReserve = 2_000
    public static let defaultTotalConcurrency = 100
    public static let defaultRecipientsPerJob = 50
    public static let defaultLoadBatchLimit = 1_000
    public static let defaultStoreRescanInterval: Duration = .seconds(60)

    public init(
        activeLimit: Int = DeliverySchedulerConfiguration.defaultActiveLimit,
        newMailReserve: Int = DeliverySchedulerConfiguration.defaultNewMailReserve,
        totalConcurrency: Int = DeliverySchedulerConfiguration.defaultTotalConcurrency,
        recipientsPerJob: Int = DeliverySchedulerConfiguration.defaultRecipientsPerJob,
        loadBatchLimit: Int = DeliverySchedulerConfiguration.defaultLoadBatchLimit,
        storeRescanInterval: Duration = DeliverySchedulerConfiguration.defaultStoreRescanInterval,
        retry: RetrySchedule = RetrySchedule(),
        concurrency: DestinationConcurrencyPolicy = DestinationConcurrencyPolicy()
    ) {
        precondition(activeLimit >= 1, "activeLimit must be at least 1")
        precondition(newMailReserve >= 0 && newMailReserve < activeLimit, "need 0 <= newMailReserve < activeLimit")
        precondition(totalConcurrency >= 1, "totalConcurrency must be at least 1")
        precondition(recipientsPerJob >= 1, "recipientsPerJob must be at least 1")
        precondition(loadBatchLimit >= 1, "loadBatchLimit must be at least 1")
        precondition(storeRescanInterval > .zero, "storeRescanInterval must be positive")
        self.activeLimit = activeLimit
        self.newMailReserve = newMailReserve
        self.totalConcurrency = totalConcurrency
        self.recipientsPerJob = recipientsPerJob
        self.loadBatchLimit = loadBatchLimit
        self.storeRescanInterval = storeRescanInterval
        self.retry = retry
        self.concurrency = concurrency
    }
}

extension Duration {
    /// Seconds as a `TimeInterval`, for `Date` arithmetic.
    var schedulerTimeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
