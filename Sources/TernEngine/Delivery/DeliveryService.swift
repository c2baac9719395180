import Foundation
public import Logging
public import ServiceLifecycle
import SMTPCore
public import TernCore

/// Postfix's qmgr + smtp(8) loop: claims due recipients from the store, lets the
/// scheduler decide what to start, runs each job on the transport in a child task,
/// and stores every outcome. Holds at most the scheduler's active set in memory.
public struct DeliveryService: Service {
    public struct Configuration: Sendable {
        public var scheduler: DeliverySchedulerConfiguration
        /// This node's name in the store's leases.
        public var node: String
        /// How long a claim holds; renewed every third of it while delivery runs.
        public var lease: Duration
        /// How often to look for new mail when nothing else wakes the loop.
        public var pollInterval: Duration
        /// Each recipient's copy goes with an envelope sender of its own, so that a bounce
        /// names the recipient (nil: the client's envelope sender is kept). Each job then
        /// carries one recipient.
        public var returnPath: VERPReturnPath?
        /// The number of live nodes sharing the queue (read at every tick), which divide the
        /// per-destination concurrency maximum between them; nil: this node alone.
        public var liveNodes: (@Sendable () -> Int)?

        public static let defaultLease: Duration = .seconds(300)
        public static let defaultPollInterval: Duration = .milliseconds(200)

        public init(
            scheduler: DeliverySchedulerConfiguration = DeliverySchedulerConfiguration(), node: String,
            lease: Duration = Configuration.defaultLease, pollInterval: Duration = Configuration.defaultPollInterval,
            returnPath: VERPReturnPath? = nil
        ) {
            self.scheduler = scheduler
            self.node = node
            self.lease = lease
            self.pollInterval = pollInterval
            self.returnPath = returnPath
        }
    }

    private let store: any DeliveryStore
    private let transport: any DeliveryTransport
    private let configuration: Configuration
    private let logger: Logger

    public init(store: any DeliveryStore, transport: any DeliveryTransport, configuration: Configuration, logger: Logger) {
        self.store = store
        self.transport = transport
        self.configuration = configuration
        self.logger = logger
    }

    private enum Event: Sendable {
        case finished(DeliveryJob, [RecipientID: TransportOutcome])
        case timer
        case destinationKeys([String: DestinationKey?])
    }

    public func run() async throws {
        try await run(clock: ContinuousClock())
    }

    /// The loop, its timer (a tick, which writes pending outcomes, at least every
    /// `pollInterval`) and its lease renewals timed by `clock`: tests move one by hand.
    func run<C: Clock<Duration>>(clock: C) async throws {
        // Whatever an earlier run of this node held when it died is free again.
        try await store.releaseLeases(heldBy: configuration.node)
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Event.self) { group in
                var loop = Loop(store: store, configuration: configuration, clock: clock, logger: logger)
                var actions = loop.scheduler.tick(now: Date())
                var timerRunning = false
                var lastRenewal = clock.now
                var tick = true
                let transport = self.transport
                while !Task.isCancelled {
                    // Every `Actions` the scheduler returns is performed: a job whose recipients
                    // are no longer held is finished as deferred at once, and what the scheduler
                    // answers to that (deferrals to write, other jobs to start) goes round again.
                    var wakeUpAt: Date?
                    while true {
                        actions = await loop.perform(actions, flush: tick)
                        tick = false
                        wakeUpAt = [wakeUpAt, actions.wakeUpAt].compactMap { $0 }.min()
                        var followUp = DeliveryScheduler.Actions()
                        for job in actions.start {
                            guard let request = loop.request(for: job) else {
                                followUp.append(loop.scheduler.attemptsFinished(
                                    job.recipients.map {
                                        DeliveryAttemptResult(
                                            recipient: $0, outcome: .deferred(reason: "recipients of the job are no longer held", kind: .recipient))
                                    }, now: Date()))
                                continue
                            }
                            group.addTask { .finished(job, await transport.deliver(request)) }
                        }
                        guard followUp.hasWork else { break }
                        actions = followUp
                    }
                    actions = DeliveryScheduler.Actions()
                    let domains = loop.destinations.takeWanted()
                    if !domains.isEmpty {
                        group.addTask { .destinationKeys(await Self.destinationKeys(of: domains, using: transport)) }
                    }
                    if !timerRunning {
                        timerRunning = true
                        let wait = loop.waitDuration(until: wakeUpAt)
                        group.addTask {
                            try? await clock.sleep(for: wait)
                            return .timer
                        }
                    }
                    guard let event = await group.next() else { break }
                    switch event {
                    case .finished(let job, let outcomes):
                        actions = await loop.finished(job, outcomes)
                    case .destinationKeys(let keys):
                        loop.destinations.store(keys, now: Date())
                        actions = DeliveryScheduler.Actions()
                    case .timer:
                        timerRunning = false
                        tick = true
                        if let liveNodes = configuration.liveNodes { loop.scheduler.setLiveNodes(liveNodes()) }
                        actions = loop.scheduler.tick(now: Date())
                        if actions.needMore == nil, actions.start.isEmpty {
                            // Kept with the tick's own deferrals and expiries, not in their place.
                            actions.append(loop.scheduler.newMailQueued(now: Date()))
                        }
                    }
                    if lastRenewal.duration(to: clock.now) > configuration.lease / 3 {
                        lastRenewal = clock.now
                        await loop.renewLeases()
                    }
                }
                group.cancelAll()
                // Deliveries under way end (as they can, cancelled) and what they did is kept:
                // a recipient the remote accepted must not be sent again after a restart.
                while let event = await group.next() {
                    if case .finished(let job, let outcomes) = event {
                        _ = await loop.finished(job, outcomes)
                    }
                }
                await loop.releaseAll()
            }
        }
    }

    /// Looks the domains' destinations up side by side.
    private static func destinationKeys(of domains: [String], using transport: any DeliveryTransport) async -> [String: DestinationKey?] {
        await withTaskGroup(of: (String, DestinationKey?).self) { group in
            for domain in domains {
                group.addTask { (domain, await transport.destinationKey(forDomain: domain)) }
            }
            var keys: [String: DestinationKey?] = [:]
            for await (domain, key) in group { keys[domain] = key }
            return keys
        }
    }

    /// The loop's state: the scheduler and the claimed recipients it holds.
    private struct Loop<C: Clock<Duration>> {
        let store: any DeliveryStore
        let configuration: Configuration
        let clock: C
        let logger: Logger
        var scheduler: DeliveryScheduler
        var destinations = DestinationKeyTable()
        var held: [RecipientID: DueRecipient] = [:]
        /// What the remote said when it deferred a recipient (host, code, enhanced code, TLS),
        /// kept until the scheduler's deferral or expiry of that recipient is written.
        var lastAttemptDetails: [RecipientID: [String: String]] = [:]
        /// Outcomes not yet written: flushed together (one transaction, one fsync) on the
        /// next tick or when many have gathered. Their recipients stay leased until then.
        var pendingOutcomes: [RecipientOutcome] = []
        /// A load the scheduler asked for, carried out on the next tick rather than after
        /// every finished job, so that claims too are batched.
        var pendingLoad: LoadRequest?
        var lastLoad: C.Instant

        /// Outcomes written at once at most; more are flushed without waiting for the tick.
        static var maxPendingOutcomes: Int { 500 }

        init(store: any DeliveryStore, configuration: Configuration, clock: C, logger: Logger) {
            self.store = store
            self.configuration = configuration
            self.clock = clock
            self.lastLoad = clock.now
            self.logger = logger
            var scheduler = configuration.scheduler
            // VERP gives each recipient an envelope of its own, so a job carries one recipient.
            if configuration.returnPath != nil { scheduler.recipientsPerJob = 1 }
            self.scheduler = DeliveryScheduler(configuration: scheduler)
        }

        /// Carries out everything but starting jobs: loading, deferrals, expiries, releases.
        /// On a tick (`flush`), pending outcomes are written and a pending load is done.
        mutating func perform(_ initial: DeliveryScheduler.Actions, flush: Bool) async -> DeliveryScheduler.Actions {
            var actions = initial
            var start: [DeliveryJob] = []
            if flush, let request = pendingLoad {
                pendingLoad = nil
                await flushOutcomes()
                actions.append(await load(request, now: Date()))
            }
            while true {
                start += actions.start
                let now = Date()
                var outcomes: [RecipientOutcome] = []
                for deferral in actions.deferrals {
                    held[deferral.recipient] = nil
                    var details = lastAttemptDetails.removeValue(forKey: deferral.recipient) ?? [:]
                    details["text"] = deferral.reason
                    details["attempted"] = deferral.attempted ? "true" : "false"
                    outcomes.append(RecipientOutcome(
                        recipientID: deferral.recipient, messageID: deferral.messageID,
                        kind: .deferred(nextAttemptAt: deferral.nextAttemptAt), at: now, details: details))
                }
                for expiry in actions.expiries {
                    held[expiry.recipient] = nil
                    var details = lastAttemptDetails.removeValue(forKey: expiry.recipient) ?? [:]
                    details["remote_code"] = details.removeValue(forKey: "code")
                    details["remote_enhanced_code"] = details.removeValue(forKey: "enhanced_code")
                    details.merge([
                        "text": "delivery time expired after \(expiry.attempts) attempts: \(expiry.reason)",
                        "enhanced_code": "4.4.7", "bounce_class": "soft", "reason": "expired",
                    ]) { _, new in new }
                    outcomes.append(RecipientOutcome(
                        recipientID: expiry.recipient, messageID: expiry.messageID, kind: .failed, at: now, details: details))
                }
                pendingOutcomes += outcomes
                if !actions.notAdmitted.isEmpty {
                    for id in actions.notAdmitted { held[id] = nil }
                    try? await store.releaseLeases(actions.notAdmitted, node: configuration.node)
                }
                guard let request = actions.needMore else { break }
                // Load at once when idle or when the last load is a tick old; otherwise on the next tick.
                let idle = scheduler.runningJobCount == 0 && start.isEmpty
                guard idle || flush || lastLoad.duration(to: clock.now) >= configuration.pollInterval else {
                    pendingLoad = request
                    break
                }
                await flushOutcomes()
                actions = await load(request, now: now)
            }
            if flush || pendingOutcomes.count >= Self.maxPendingOutcomes {
                await flushOutcomes()
            }
            actions.start = start
            actions.deferrals = []
            actions.expiries = []
            actions.notAdmitted = []
            actions.needMore = nil
            return actions
        }

        private mutating func load(_ request: LoadRequest, now: Date) async -> DeliveryScheduler.Actions {
            lastLoad = clock.now
            let claimed: [DueRecipient]
            do {
                claimed = try await store.claimDueRecipients(
                    now: now, newLimit: request.newLimit, retryLimit: request.retryLimit, node: configuration.node,
                    leaseUntil: now.addingTimeInterval(configuration.lease.schedulerTimeInterval))
            } catch {
                logger.error("cannot claim due recipients: \(error)")
                return scheduler.loadFailed(now: now)
            }
            // The suppression hook: never attempted, a final `suppressed` event instead.
            var deliverable = claimed
            if !claimed.isEmpty, let suppressed = try? await store.suppressed(claimed), !suppressed.isEmpty {
                deliverable = claimed.filter { !suppressed.contains($0.id) }
                await record(claimed.filter { suppressed.contains($0.id) }.map {
                    RecipientOutcome(recipientID: $0.id, messageID: $0.messageID, kind: .suppressed, at: now,
                                     details: ["reason": "address is on the suppression list"])
                })
            }
            for recipient in deliverable { held[recipient.id] = recipient }
            let scheduled = deliverable.map { ScheduledRecipient($0, destination: destinations.key(forDomain: $0.domain, now: now)) }
            return scheduler.loaded(scheduled, now: now)
        }

        /// The job as the transport takes it; the content is read from the store while it is sent.
        func request(for job: DeliveryJob) -> DeliveryRequest? {
            let recipients = job.recipients.compactMap { held[$0] }
            guard let first = recipients.first else { return nil }
            var reversePath = SMTPReversePath(validated: first.mailFrom)
            if let returnPath = configuration.returnPath, recipients.count == 1 {
                reversePath = returnPath.envelopeSender(for: first)
            }
            return DeliveryRequest(
                messageID: job.messageID, reversePath: reversePath, destination: first.domain, recipients: recipients,
                content: .stored(job.messageID, size: first.size, in: store), eightBitMIME: first.eightBitMIME,
                smtpUTF8: first.smtpUTF8)
        }

        mutating func finished(_ job: DeliveryJob, _ outcomes: [RecipientID: TransportOutcome]) async -> DeliveryScheduler.Actions {
            let now = Date()
            var final: [RecipientOutcome] = []
            var results: [DeliveryAttemptResult] = []
            for id in job.recipients {
                let outcome = outcomes[id] ?? .deferred(reason: "no outcome from the transport", kind: .destination, details: [:])
                switch outcome {
                case .sent(let details):
                    final.append(RecipientOutcome(recipientID: id, messageID: job.messageID, kind: .sent, at: now, details: details))
                    results.append(DeliveryAttemptResult(recipient: id, outcome: .sent))
                    held[id] = nil
                case .failed(let details):
                    final.append(RecipientOutcome(recipientID: id, messageID: job.messageID, kind: .failed, at: now, details: details))
                    results.append(DeliveryAttemptResult(recipient: id, outcome: .failed))
                    held[id] = nil
                case .deferred(let reason, let kind, let details):
                    if !details.isEmpty { lastAttemptDetails[id] = details }
                    results.append(DeliveryAttemptResult(recipient: id, outcome: .deferred(reason: reason, kind: kind)))
                }
            }
            pendingOutcomes += final
            return scheduler.attemptsFinished(results, now: now)
        }

        mutating func flushOutcomes() async {
            guard !pendingOutcomes.isEmpty else { return }
            let outcomes = pendingOutcomes
            pendingOutcomes = []
            await record(outcomes)
        }

        func record(_ outcomes: [RecipientOutcome]) async {
            guard !outcomes.isEmpty else { return }
            // Each event names the node that delivered it (`tern nodes` counts them).
            var outcomes = outcomes
            for index in outcomes.indices { outcomes[index].details["node"] = configuration.node }
            do {
                try await store.record(outcomes)
            } catch {
                // Not stored: the lease expires and the recipients are tried again later.
                logger.error("cannot store \(outcomes.count) delivery outcome(s): \(error)")
            }
        }

        func renewLeases() async {
            guard !held.isEmpty else { return }
            let until = Date().addingTimeInterval(configuration.lease.schedulerTimeInterval)
            try? await store.renewLeases(Array(held.keys), node: configuration.node, leaseUntil: until)
        }

        /// Writes what is pending and frees every claim, at shutdown. The service's task is
        /// cancelled by then and the store refuses work from a cancelled task, so the writes
        /// run in a task of their own.
        mutating func releaseAll() async {
            let outcomes = pendingOutcomes
            let leased = Array(held.keys)
            pendingOutcomes = []
            held = [:]
            let store = self.store
            let node = configuration.node
            let logger = self.logger
            await Task {
                do {
                    if !outcomes.isEmpty { try await store.record(outcomes) }
                } catch {
                    logger.error("cannot store \(outcomes.count) delivery outcome(s) at shutdown: \(error)")
                }
                try? await store.releaseLeases(leased, node: node)
            }.value
        }

        func waitDuration(until wakeUp: Date?) -> Duration {
            guard let wakeUp else { return configuration.pollInterval }
            let seconds = max(0, wakeUp.timeIntervalSinceNow)
            return min(configuration.pollInterval, .milliseconds(Int64(seconds * 1000)))
        }
    }
}

extension DeliveryScheduler.Actions {
    /// Adds the actions of a later event: lists are joined, the later load request wins,
    /// and the earlier wake-up time.
    mutating func append(_ later: DeliveryScheduler.Actions) {
        start += later.start
        deferrals += later.deferrals
        expiries += later.expiries
        notAdmitted += later.notAdmitted
        needMore = later.needMore ?? needMore
        wakeUpAt = [wakeUpAt, later.wakeUpAt].compactMap { $0 }.min()
    }

    /// Anything for the delivery loop to do but wait.
    var hasWork: Bool {
        !start.isEmpty || !deferrals.isEmpty || !expiries.isEmpty || !notAdmitted.isEmpty || needMore != nil
    }
}
