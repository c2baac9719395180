public import Foundation
public import TernCore

/// Decides which queued recipients are delivered when, over how many parallel sessions
/// per destination, and when a deferred recipient is tried again or given up: Postfix's
/// qmgr as a pure state machine.
///
/// It does no IO and reads no clock: every event carries `now` and returns ``Actions``
/// for the delivery loop to perform. Its state is memory only; the store keeps each
/// recipient's attempt count and next attempt time, so after a restart everything comes
/// back through ``loaded(_:storeNextRetryAt:now:)``.
///
/// - **Active set.** At most `activeLimit` recipients are held (waiting for their time,
///   ready, or in flight). When there is room the scheduler asks for more with
///   ``Actions/needMore``, one load at a time; `newMailReserve` of the room is kept for
///   new mail, so a deferred backlog cannot fill it.
/// - **Jobs.** Ready recipients are grouped per message and destination, up to
///   `recipientsPerJob`, and started as ``DeliveryJob``s.
/// - **Fairness.** Each destination keeps a new-mail queue and a retry queue (Postfix's
///   incoming and deferred queues). Destinations with work wait in two round-robin rings,
///   one per queue, and free delivery slots alternate between the rings, so new mail gets
///   at least every other slot however large the retry backlog, and one large destination
///   takes one turn per round like any other.
/// - **Concurrency.** Per destination, see ``DestinationConcurrencyPolicy``.
/// - **Retries and expiry.** See ``RetrySchedule``. A recipient that comes due past its
///   maximum age fails without an attempt, with its last reason.
///
/// Every operation costs O(log n) per recipient (hash tables, heaps, FIFO queues).
/// - SeeAlso: Postfix SCHEDULER_README and qmgr(8).
public struct DeliveryScheduler: Sendable {
    /// What the delivery loop should do after an event.
    public struct Actions: Sendable, Equatable {
        /// Deliveries to start now.
        public var start: [DeliveryJob] = []
        /// Recipients to write back to the store as deferred. They have left the active set.
        public var deferrals: [RecipientDeferral] = []
        /// Recipients to mark failed: past the maximum age. They have left the active set.
        public var expiries: [RecipientExpiry] = []
        /// Recipients not taken because the active set is full (or an answer held more than
        /// was asked for): release their claim in the store; they will be loaded again.
        public var notAdmitted: [RecipientID] = []
        /// Load due recipients from the store and answer with ``DeliveryScheduler/loaded(_:storeNextRetryAt:now:)``.
        public var needMore: LoadRequest?
        /// Call ``DeliveryScheduler/tick(now:)`` at this time at the latest (nil: only
        /// when another event comes).
        public var wakeUpAt: Date?

        public init() {}
    }

    public let configuration: DeliverySchedulerConfiguration
    /// The live nodes sharing the queue: each may open `concurrency.maximum / liveNodes`
    /// parallel deliveries per destination (at least one), so that together they keep to the limit.
    public private(set) var liveNodes = 1
    /// Mixed into the retry jitter so that schedulers (nodes, restarts) spread differently.
    private let jitterSalt: UInt64

    // MARK: State

    private enum QueueClass: Hashable, Sendable {
        case new
        case retry
    }

    private struct ActiveRecipient: Sendable {
        enum Phase: Sendable {
            case waiting
            case ready
            case inFlight(DeliveryJob.ID)
        }

        var messageID: MessageID
        var destination: DestinationKey
        var firstQueuedAt: Date
        var attempts: Int
        var lastReason: String?
        var queueClass: QueueClass
        var dueAt: Date
        var phase: Phase
    }

    /// Recipients of one message to one destination waiting to be started together.
    private struct PendingJob: Sendable {
        var messageID: MessageID
        var destination: DestinationKey
        var queueClass: QueueClass
        var recipients: [RecipientID]

        var groupKey: GroupKey { GroupKey(destination: destination, messageID: messageID, queueClass: queueClass) }
    }

    private struct GroupKey: Hashable, Sendable {
        var destination: DestinationKey
        var messageID: MessageID
        var queueClass: QueueClass
    }

    private struct RunningJob: Sendable {
        var destination: DestinationKey
        var remaining: Int
        /// The destination's decrease generation when the job started.
        var generation: UInt64
        /// The reason of a destination-level deferral in this job, if any.
        var trouble: String?
    }

    struct Destination: Sendable {
        var window: Double
        var inFlight = 0
        var consecutiveFailures = 0
        /// Bumped by every decrease: jobs started before it do not decrease again.
        var generation: UInt64 = 0
        var deadUntil: Date?
        var lastTrouble: String?
        var newJobs = SchedulerFIFO<UInt64>()
        var retryJobs = SchedulerFIFO<UInt64>()
        var inNewRing = false
        var inRetryRing = false

        init(window: Int) { self.window = Double(window) }

        var limit: Int { max(1, Int(window)) }
        var isIdle: Bool {
            inFlight == 0 && deadUntil == nil && newJobs.isEmpty && retryJobs.isEmpty && !inNewRing && !inRetryRing
        }
    }

    private struct StoreFeed: Sendable {
        var mayHaveNew = true
        var mayHaveRetry = true
        var pending: LoadRequest?
        /// The earliest next attempt time of deferred recipients in the store, when known.
        var nextRetryAt: Date?
        var rescanAt: Date?
    }

    private var recipients: [RecipientID: ActiveRecipient] = [:]
    private var activeNew = 0
    private var activeRetry = 0
    private var waiting = SchedulerHeap<SchedulerTimer<RecipientID>>()
    private(set) var destinations: [DestinationKey: Destination] = [:]
    private var deadTimers = SchedulerHeap<SchedulerTimer<DestinationKey>>()
    private var pendingJobs: [UInt64: PendingJob] = [:]
    private var openJobs: [GroupKey: UInt64] = [:]
    private var running: [DeliveryJob.ID: RunningJob] = [:]
    private var newRing = SchedulerFIFO<DestinationKey>()
    private var retryRing = SchedulerFIFO<DestinationKey>()
    private var preferNew = true
    private var store = StoreFeed()
    private var serial: UInt64 = 0
    public private(set) var nextWakeUp: Date?

    public init(
        configuration: DeliverySchedulerConfiguration = DeliverySchedulerConfiguration(),
        random: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator()
    ) {
        self.configuration = configuration
        var random = random
        self.jitterSalt = random.next()
    }

    // MARK: Reading

    /// Recipients held in memory: waiting, ready or in flight.
    public var activeCount: Int { activeNew + activeRetry }
    /// Jobs started and not yet finished.
    public var runningJobCount: Int { running.count }
    /// A load was asked for and not yet answered.
    public var isLoading: Bool { store.pending != nil }

    /// The end of the destination's cool-down, if it is dead.
    public func deadUntil(_ destination: DestinationKey) -> Date? {
        destinations[destination]?.deadUntil
    }

    // MARK: Events

    /// The answer to ``Actions/needMore``: the recipients the store claimed (up to each
    /// limit, or up to the total in any mix), and, if known, the earliest next attempt time
    /// of the deferred recipients it still holds. Those beyond the total, or beyond the
    /// room for their kind, come back in ``Actions/notAdmitted``.
    public mutating func loaded(_ due: [ScheduledRecipient], storeNextRetryAt: Date? = nil, now: Date) -> Actions {
        guard let request = store.pending else {
            preconditionFailure("loaded(_:) without a load request: \(store)")
        }
        store.pending = nil
        var actions = Actions()
        advance(to: now, into: &actions)
        var newCount = 0
        var retryCount = 0
        for recipient in due {
            guard newCount + retryCount < request.total else {
                actions.notAdmitted.append(recipient.id)  // more than asked for
                continue
            }
            if recipient.isNew { newCount += 1 } else { retryCount += 1 }
            admit(recipient, now: now, into: &actions)
        }
        // Fewer than asked for: the store has no more of the kinds it fell short of.
        if newCount + retryCount < request.total {
            if newCount < request.newLimit {
                store.mayHaveNew = false
            }
            if retryCount < request.retryLimit {
                store.mayHaveRetry = false
                store.nextRetryAt = storeNextRetryAt
            }
        }
        if !store.mayHaveNew || !store.mayHaveRetry {
            store.rescanAt = now.addingTimeInterval(configuration.storeRescanInterval.schedulerTimeInterval)
        }
        return finish(now: now, actions)
    }

    /// The load asked for could not be done: look again after the rescan interval.
    public mutating func loadFailed(now: Date) -> Actions {
        guard store.pending != nil else {
            preconditionFailure("loadFailed(now:) without a load request: \(store)")
        }
        store.pending = nil
        store.mayHaveNew = false
        store.mayHaveRetry = false
        store.rescanAt = now.addingTimeInterval(configuration.storeRescanInterval.schedulerTimeInterval)
        var actions = Actions()
        advance(to: now, into: &actions)
        return finish(now: now, actions)
    }

    /// The store may hold new mail: intake commits without telling the scheduler, so the
    /// delivery loop's timer says this at every poll that found nothing else to do.
    public mutating func newMailQueued(now: Date) -> Actions {
        store.mayHaveNew = true
        var actions = Actions()
        advance(to: now, into: &actions)
        return finish(now: now, actions)
    }

    /// Outcomes of recipients in started jobs: one recipient, a whole job, or several.
    /// A job's slot is freed, and its destination's concurrency adjusted, once every
    /// recipient in it has an outcome. Outcomes for recipients not in flight (unknown,
    /// or reported twice) are ignored.
    public mutating func attemptsFinished(_ results: [DeliveryAttemptResult], now: Date) -> Actions {
        var actions = Actions()
        advance(to: now, into: &actions)
        for result in results {
            guard let entry = recipients[result.recipient], case .inFlight(let jobID) = entry.phase,
                running[jobID] != nil
            else { continue }
            remove(result.recipient)
            switch result.outcome {
            case .sent, .failed:
                break
            case .deferred(let reason, let kind):
                if kind == .destination {
                    running[jobID]!.trouble = reason
                }
                deferAfterAttempt(result.recipient, entry, reason: reason, now: now, into: &actions)
            }
            running[jobID]!.remaining -= 1
            if running[jobID]!.remaining == 0 {
                let job = running.removeValue(forKey: jobID)!
                jobFinished(job, now: now, into: &actions)
            }
        }
        return finish(now: now, actions)
    }

    /// Time passed: recipients and cool-downs that come due, store rescans.
    public mutating func tick(now: Date) -> Actions {
        var actions = Actions()
        advance(to: now, into: &actions)
        return finish(now: now, actions)
    }

    // MARK: Admission

    private var retryCapacity: Int { configuration.activeLimit - configuration.newMailReserve }

    /// Takes `due` into the active set if there is room (else into `notAdmitted`); a
    /// recipient already held is ignored.
    mutating func admit(_ due: ScheduledRecipient, now: Date, into actions: inout Actions) {
        guard recipients[due.id] == nil else { return }  // held already: never twice
        let fits =
            activeCount < configuration.activeLimit && (due.isNew || activeRetry < retryCapacity)
        guard fits else {
            actions.notAdmitted.append(due.id)
            if due.isNew { store.mayHaveNew = true } else { store.mayHaveRetry = true }
            return
        }
        let queueClass: QueueClass = due.isNew ? .new : .retry
        recipients[due.id] = ActiveRecipient(
            messageID: due.messageID, destination: due.destination, firstQueuedAt: due.firstQueuedAt,
            attempts: due.attempts, lastReason: due.lastReason, queueClass: queueClass,
            dueAt: due.nextAttemptAt, phase: .waiting)
        if due.isNew { activeNew += 1 } else { activeRetry += 1 }
        if due.nextAttemptAt > now {
            waiting.push(SchedulerTimer(time: due.nextAttemptAt, sequence: nextSerial(), key: due.id))
        } else {
            becomeDue(due.id, now: now, into: &actions)
        }
    }

    private mutating func remove(_ id: RecipientID) {
        guard let entry = recipients.removeValue(forKey: id) else { return }
        switch entry.queueClass {
        case .new: activeNew -= 1
        case .retry: activeRetry -= 1
        }
    }

    private func expiresAt(_ entry: ActiveRecipient) -> Date {
        entry.firstQueuedAt.addingTimeInterval(configuration.retry.maximumAge.schedulerTimeInterval)
    }

    /// A held recipient's time has come: expire it, defer it (dead destination), or queue it.
    private mutating func becomeDue(_ id: RecipientID, now: Date, into actions: inout Actions) {
        guard let entry = recipients[id], case .waiting = entry.phase else {
            preconditionFailure("becomeDue for a recipient not waiting: \(String(describing: recipients[id]))")
        }
        if now >= expiresAt(entry) {
            remove(id)
            actions.expiries.append(
                RecipientExpiry(
                    recipient: id, messageID: entry.messageID,
                    reason: entry.lastReason ?? "maximum queue age reached", attempts: entry.attempts))
            return
        }
        if let destination = destinations[entry.destination], let deadUntil = destination.deadUntil {
            deferWithoutAttempt(
                id, entry, until: deadUntil, reason: Self.deadReason(entry.destination, destination.lastTrouble),
                now: now, into: &actions)
            return
        }
        enqueueReady(id, entry)
    }

    private mutating func enqueueReady(_ id: RecipientID, _ entry: ActiveRecipient) {
        recipients[id]!.phase = .ready
        let key = GroupKey(destination: entry.destination, messageID: entry.messageID, queueClass: entry.queueClass)
        let perJob = configuration.recipientsPerJob
        if let open = openJobs[key] {
            pendingJobs[open]!.recipients.append(id)
            if pendingJobs[open]!.recipients.count >= perJob {
                openJobs.removeValue(forKey: key)
            }
            return
        }
        let pendingID = nextSerial()
        pendingJobs[pendingID] = PendingJob(
            messageID: entry.messageID, destination: entry.destination, queueClass: entry.queueClass,
            recipients: [id])
        if perJob > 1 {
            openJobs[key] = pendingID
        }
        if destinations[entry.destination] == nil {
            destinations[entry.destination] = Destination(window: initialWindow)
        }
        let index = destinations.index(forKey: entry.destination)!
        switch entry.queueClass {
        case .new: destinations.values[index].newJobs.append(pendingID)
        case .retry: destinations.values[index].retryJobs.append(pendingID)
        }
        enterRings(entry.destination)
    }

    /// Puts the destination in the ring of each queue it has work in.
    private mutating func enterRings(_ key: DestinationKey) {
        guard let index = destinations.index(forKey: key) else { return }
        if !destinations.values[index].newJobs.isEmpty && !destinations.values[index].inNewRing {
            destinations.values[index].inNewRing = true
            newRing.append(key)
        }
        if !destinations.values[index].retryJobs.isEmpty && !destinations.values[index].inRetryRing {
            destinations.values[index].inRetryRing = true
            retryRing.append(key)
        }
    }

    private mutating func collectIfIdle(_ key: DestinationKey) {
        if let destination = destinations[key], destination.isIdle {
            destinations.removeValue(forKey: key)
        }
    }

    // MARK: Deferral

    /// Lengthens a retry delay by up to the configured jitter, so that retries spread out.
    /// The factor depends only on the message and the attempt count (and a per-scheduler
    /// salt): recipients of one message deferred together come back together, in one job.
    private func jittered(_ delay: TimeInterval, message: MessageID, attempts: Int) -> TimeInterval {
        let jitter = configuration.retry.jitter
        guard jitter > 0 else { return delay }
        // SplitMix64's finaliser over the inputs: a well-spread fraction in [0, 1).
        var mixed = jitterSalt ^ UInt64(bitPattern: message.rawValue) &+ UInt64(truncatingIfNeeded: attempts) &* 0x9E37_79B9_7F4A_7C15
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        mixed ^= mixed >> 31
        let fraction = Double(mixed >> 11) / Double(1 << 53)
        return delay * (1 + jitter * fraction)
    }

    private mutating func noteStoreRetry(at time: Date) {
        store.nextRetryAt = min(store.nextRetryAt ?? time, time)
    }

    private mutating func deferAfterAttempt(
        _ id: RecipientID, _ entry: ActiveRecipient, reason: String, now: Date, into actions: inout Actions
    ) {
        let attempts = entry.attempts + 1
        let delay = jittered(
            configuration.retry.delay(afterAttempt: attempts).schedulerTimeInterval, message: entry.messageID, attempts: attempts)
        let next = now.addingTimeInterval(delay)
        if next >= expiresAt(entry) {
            actions.expiries.append(
                RecipientExpiry(recipient: id, messageID: entry.messageID, reason: reason, attempts: attempts))
        } else {
            actions.deferrals.append(
                RecipientDeferral(
                    recipient: id, messageID: entry.messageID, nextAttemptAt: next, attempts: attempts,
                    reason: reason, attempted: true))
            noteStoreRetry(at: next)
        }
    }

    /// Defers a held recipient of a dead destination: no attempt is counted, and it comes
    /// back after the cool-down, or after its current backoff step if that is later.
    private mutating func deferWithoutAttempt(
        _ id: RecipientID, _ entry: ActiveRecipient, until deadUntil: Date, reason: String, now: Date,
        into actions: inout Actions
    ) {
        remove(id)
        let backoff = configuration.retry.delay(afterAttempt: max(entry.attempts, 1)).schedulerTimeInterval
        let next = now.addingTimeInterval(
            jittered(max(backoff, deadUntil.timeIntervalSince(now)), message: entry.messageID, attempts: entry.attempts))
        if next >= expiresAt(entry) {
            actions.expiries.append(
                RecipientExpiry(recipient: id, messageID: entry.messageID, reason: reason, attempts: entry.attempts))
        } else {
            actions.deferrals.append(
                RecipientDeferral(
                    recipient: id, messageID: entry.messageID, nextAttemptAt: next, attempts: entry.attempts,
                    reason: reason, attempted: false))
            noteStoreRetry(at: next)
        }
    }

    private static func deadReason(_ key: DestinationKey, _ trouble: String?) -> String {
        "destination \(key) is not responding: \(trouble ?? "repeated failures")"
    }

    // MARK: Feedback

    /// This node's share of `concurrency.maximum`.
    public var nodeMaximum: Int { max(1, configuration.concurrency.maximum / liveNodes) }

    var initialWindow: Int { min(configuration.concurrency.initial, nodeMaximum) }

    /// Another node came or went: windows above the new share shrink to it (deliveries
    /// already running finish), and grow back on success up to it.
    public mutating func setLiveNodes(_ count: Int) {
        let count = max(1, count)
        guard count != liveNodes else { return }
        liveNodes = count
        let maximum = Double(nodeMaximum)
        for index in destinations.values.indices where destinations.values[index].window > maximum {
            destinations.values[index].window = maximum
        }
    }

    private mutating func jobFinished(_ job: RunningJob, now: Date, into actions: inout Actions) {
        guard let index = destinations.index(forKey: job.destination) else {
            preconditionFailure("a job finished for a destination not held: \(job)")
        }
        let policy = configuration.concurrency
        var becameDead = false
        destinations.values[index].inFlight -= 1
        if let trouble = job.trouble {
            destinations.values[index].consecutiveFailures += 1
            destinations.values[index].lastTrouble = trouble
            if job.generation == destinations.values[index].generation {
                destinations.values[index].window = max(1, destinations.values[index].window * policy.decreaseFactor)
                destinations.values[index].generation &+= 1
            }
            if destinations.values[index].deadUntil == nil
                && destinations.values[index].consecutiveFailures >= policy.deadAfterConsecutiveFailures
            {
                destinations.values[index].deadUntil = now.addingTimeInterval(
                    policy.deadCoolDown.schedulerTimeInterval)
                becameDead = true
            }
        } else {
            destinations.values[index].consecutiveFailures = 0
            destinations.values[index].window = min(
                Double(nodeMaximum), destinations.values[index].window + policy.increasePerSuccess)
            destinations.values[index].deadUntil = nil  // revived, if it was dead; its timer goes stale
        }
        if becameDead, let deadUntil = destinations[job.destination]?.deadUntil {
            deadTimers.push(SchedulerTimer(time: deadUntil, sequence: nextSerial(), key: job.destination))
            deferAllReady(job.destination, until: deadUntil, now: now, into: &actions)
        }
        enterRings(job.destination)
        collectIfIdle(job.destination)
    }

    private mutating func deferAllReady(
        _ key: DestinationKey, until deadUntil: Date, now: Date, into actions: inout Actions
    ) {
        guard let index = destinations.index(forKey: key) else { return }
        let reason = Self.deadReason(key, destinations.values[index].lastTrouble)
        let queued = destinations.values[index].newJobs.removeAll() + destinations.values[index].retryJobs.removeAll()
        for pendingID in queued {
            let pending = pendingJobs.removeValue(forKey: pendingID)!
            if openJobs[pending.groupKey] == pendingID {
                openJobs.removeValue(forKey: pending.groupKey)
            }
            for id in pending.recipients {
                let entry = recipients[id]!
                deferWithoutAttempt(id, entry, until: deadUntil, reason: reason, now: now, into: &actions)
            }
        }
    }

    // MARK: Time

    private mutating func nextSerial() -> UInt64 {
        serial &+= 1
        return serial
    }

    /// Moves time to `now`: cool-downs that end, recipients that come due, store rescans.
    mutating func advance(to now: Date, into actions: inout Actions) {
        while let top = deadTimers.min, top.time <= now {
            _ = deadTimers.popMin()
            guard let index = destinations.index(forKey: top.key),
                destinations.values[index].deadUntil == top.time
            else { continue }
            // The cool-down is over: start afresh, as Postfix does.
            destinations.values[index].deadUntil = nil
            destinations.values[index].consecutiveFailures = 0
            destinations.values[index].window = Double(initialWindow)
            destinations.values[index].generation &+= 1
            collectIfIdle(top.key)
        }
        while let top = waiting.min, top.time <= now {
            _ = waiting.popMin()
            guard let entry = recipients[top.key], case .waiting = entry.phase, entry.dueAt == top.time else {
                continue
            }
            becomeDue(top.key, now: now, into: &actions)
        }
        if let rescanAt = store.rescanAt, rescanAt <= now {
            store.mayHaveNew = true
            store.mayHaveRetry = true
            store.rescanAt = nil
        }
        if !store.mayHaveRetry, let nextRetryAt = store.nextRetryAt, nextRetryAt <= now {
            store.mayHaveRetry = true
            store.nextRetryAt = nil
        }
    }

    /// Starts what can start, asks for more if there is room, and works out the next wake-up.
    mutating func finish(now: Date, _ actions: Actions) -> Actions {
        var actions = actions
        dispatch(into: &actions)
        requestLoad(into: &actions)
        while let top = waiting.min {
            if let entry = recipients[top.key], case .waiting = entry.phase, entry.dueAt == top.time { break }
            _ = waiting.popMin()
        }
        while let top = deadTimers.min, destinations[top.key]?.deadUntil != top.time {
            _ = deadTimers.popMin()
        }
        var wakeUp = [waiting.min?.time, deadTimers.min?.time]
        if store.pending == nil {
            if !store.mayHaveRetry { wakeUp.append(store.nextRetryAt) }
            if !store.mayHaveNew || !store.mayHaveRetry { wakeUp.append(store.rescanAt) }
        }
        nextWakeUp = wakeUp.compactMap { $0 }.min()
        actions.wakeUpAt = nextWakeUp
        return actions
    }

    // MARK: Dispatch

    private mutating func dispatch(into actions: inout Actions) {
        while running.count < configuration.totalConcurrency {
            let queueClass: QueueClass
            if newRing.isEmpty && retryRing.isEmpty {
                break
            } else if retryRing.isEmpty || (preferNew && !newRing.isEmpty) {
                queueClass = .new
            } else {
                queueClass = .retry
            }
            let key = queueClass == .new ? newRing.popFirst()! : retryRing.popFirst()!
            guard let index = destinations.index(forKey: key) else { continue }
            var pendingID: UInt64?
            switch queueClass {
            case .new:
                destinations.values[index].inNewRing = false
                if destinations.values[index].inFlight < destinations.values[index].limit,
                    destinations.values[index].deadUntil == nil
                {
                    pendingID = destinations.values[index].newJobs.popFirst()
                }
            case .retry:
                destinations.values[index].inRetryRing = false
                if destinations.values[index].inFlight < destinations.values[index].limit,
                    destinations.values[index].deadUntil == nil
                {
                    pendingID = destinations.values[index].retryJobs.popFirst()
                }
            }
            guard let pendingID else {
                collectIfIdle(key)
                continue
            }
            destinations.values[index].inFlight += 1
            let generation = destinations.values[index].generation
            let hasRoom = destinations.values[index].inFlight < destinations.values[index].limit
            if hasRoom {
                enterRings(key)
            }
            let pending = pendingJobs.removeValue(forKey: pendingID)!
            if openJobs[pending.groupKey] == pendingID {
                openJobs.removeValue(forKey: pending.groupKey)
            }
            let jobID = DeliveryJob.ID(rawValue: nextSerial())
            for id in pending.recipients {
                recipients[id]!.phase = .inFlight(jobID)
            }
            running[jobID] = RunningJob(
                destination: key, remaining: pending.recipients.count, generation: generation, trouble: nil)
            actions.start.append(
                DeliveryJob(
                    id: jobID, messageID: pending.messageID, destination: key, recipients: pending.recipients,
                    isNew: queueClass == .new))
            preferNew = queueClass == .retry
        }
    }

    // MARK: Loading

    private mutating func requestLoad(into actions: inout Actions) {
        guard store.pending == nil else { return }
        let free = configuration.activeLimit - activeCount
        guard free > 0 else { return }
        let batch = configuration.loadBatchLimit
        var newLimit = store.mayHaveNew ? min(free, batch) : 0
        var retryLimit = store.mayHaveRetry ? min(max(0, retryCapacity - activeRetry), free, batch) : 0
        if newLimit + retryLimit > free {
            // Both kinds wanted and not room for all: share it.
            retryLimit = min(retryLimit, free / 2)
            newLimit = min(newLimit, free - retryLimit)
        }
        guard newLimit + retryLimit > 0 else { return }
        let request = LoadRequest(newLimit: newLimit, retryLimit: retryLimit)
        store.pending = request
        actions.needMore = request
    }
}
