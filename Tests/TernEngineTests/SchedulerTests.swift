import Foundation
import TernCore
@testable import TernEngine
import Testing

// MARK: Helpers

private let t0 = Date(timeIntervalSince1970: 1_700_000_000)

private func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

private func rid(_ value: Int) -> RecipientID { RecipientID(rawValue: Int64(value)) }
private func mid(_ value: Int) -> MessageID { MessageID(rawValue: Int64(value)) }

private func config(
    activeLimit: Int = 10_000, newMailReserve: Int = 2_000, totalConcurrency: Int = 100,
    recipientsPerJob: Int = 50, loadBatchLimit: Int = 1_000, maximumAge: Duration = .seconds(3 * 24 * 3600),
    jitter: Double = 0
) -> DeliverySchedulerConfiguration {
    DeliverySchedulerConfiguration(
        activeLimit: activeLimit, newMailReserve: newMailReserve, totalConcurrency: totalConcurrency,
        recipientsPerJob: recipientsPerJob, loadBatchLimit: loadBatchLimit,
        retry: RetrySchedule(maximumAge: maximumAge, jitter: jitter))
}

private func due(
    _ recipient: Int, message: Int, domain: String = "example.net", attempts: Int = 0,
    queuedAt: Date = t0, nextAttemptAt: Date = t0, lastReason: String? = nil
) -> ScheduledRecipient {
    ScheduledRecipient(
        id: rid(recipient), messageID: mid(message), domain: domain, firstQueuedAt: queuedAt, attempts: attempts,
        nextAttemptAt: nextAttemptAt, lastReason: lastReason)
}

private func results(_ job: DeliveryJob, _ outcome: DeliveryAttemptOutcome) -> [DeliveryAttemptResult] {
    job.recipients.map { DeliveryAttemptResult(recipient: $0, outcome: outcome) }
}

private let refused = DeliveryAttemptOutcome.deferred(reason: "connect to mx.example.net: refused", kind: .destination)
private let greylisted = DeliveryAttemptOutcome.deferred(reason: "450 4.7.1 try later", kind: .recipient)

/// A store holding due recipients, answering load requests the way the delivery loop will.
private struct FakeStore {
    var new: [ScheduledRecipient] = []
    var retry: [ScheduledRecipient] = []

    mutating func answer(_ request: LoadRequest) -> [ScheduledRecipient] {
        let newPart = Array(new.prefix(request.newLimit))
        new.removeFirst(newPart.count)
        let retryPart = Array(retry.prefix(request.retryLimit))
        retry.removeFirst(retryPart.count)
        return newPart + retryPart
    }

    /// Answers load requests until the scheduler stops asking; returns every job started.
    mutating func drain(_ scheduler: inout DeliveryScheduler, _ actions: DeliveryScheduler.Actions, now: Date)
        -> [DeliveryJob]
    {
        var actions = actions
        var started = actions.start
        while let request = actions.needMore {
            actions = scheduler.loaded(answer(request), now: now)
            started += actions.start
        }
        return started
    }
}

// MARK: Retry schedule

@Suite struct SchedulerRetryTests {
    @Test(arguments: [
        (1, 60), (2, 300), (3, 900), (4, 1800), (5, 3600), (6, 7200), (7, 7200), (40, 7200), (0, 60),
    ])
    func defaultDelays(attempt: Int, seconds: Int64) {
        #expect(RetrySchedule().delay(afterAttempt: attempt) == .seconds(seconds))
    }

    @Test func backoffSequenceUntilExpiry() {
        var scheduler = DeliveryScheduler(configuration: config())
        var now = t0
        var attempts = 0
        var times: [Double] = []
        var lastReason: String?
        while true {
            var actions = scheduler.recipientsDue(
                [due(1, message: 1, attempts: attempts, nextAttemptAt: now, lastReason: lastReason)], now: now)
            guard let job = actions.start.first else {
                Issue.record("no job started at \(now)")
                return
            }
            times.append(now.timeIntervalSince(t0))
            actions = scheduler.attemptsFinished(results(job, greylisted), now: now)
            if let expiry = actions.expiries.first {
                #expect(expiry == RecipientExpiry(
                    recipient: rid(1), messageID: mid(1), reason: "450 4.7.1 try later", attempts: attempts + 1))
                #expect(actions.deferrals.isEmpty)
                break
            }
            guard let deferral = actions.deferrals.first else {
                Issue.record("no deferral at \(now)")
                return
            }
            #expect(deferral.attempts == attempts + 1 && deferral.attempted)
            #expect(deferral.reason == "450 4.7.1 try later")
            attempts = deferral.attempts
            lastReason = deferral.reason
            now = deferral.nextAttemptAt
            #expect(scheduler.activeCount == 0)
        }
        let steps = zip(times.dropFirst(), times).map { $0 - $1 }
        #expect(steps.prefix(7).map { $0.rounded() } == [60, 300, 900, 1800, 3600, 7200, 7200])
        // 0, 60, 360, 1260, 3060, 6660, then every 2h while the next one is within 3 days.
        #expect(times.count == 41)
        #expect(abs(times.last! - Double(6660 + 35 * 7200)) < 0.001)
        #expect(times.last! + 7200 >= 3 * 24 * 3600)
    }

    @Test func dueRecipientPastMaximumAgeFailsWithoutAttempt() {
        var scheduler = DeliveryScheduler(configuration: config(maximumAge: .seconds(3600)))
        let actions = scheduler.recipientsDue(
            [due(1, message: 1, attempts: 4, nextAttemptAt: at(3600), lastReason: "421 4.3.2 busy")], now: at(3600))
        #expect(actions.start.isEmpty)
        #expect(actions.expiries == [
            RecipientExpiry(recipient: rid(1), messageID: mid(1), reason: "421 4.3.2 busy", attempts: 4)
        ])
        #expect(scheduler.activeCount == 0)
    }

    @Test func heldUntilNextAttemptTimeThenExpiresIfPastMaximumAge() {
        var scheduler = DeliveryScheduler(configuration: config(maximumAge: .seconds(600)))
        var actions = scheduler.recipientsDue(
            [
                due(1, message: 1, attempts: 1, nextAttemptAt: at(300)),
                due(2, message: 2, attempts: 1, nextAttemptAt: at(900), lastReason: "timeout"),
            ], now: t0)
        #expect(actions.start.isEmpty)
        #expect(scheduler.nextWakeUp == at(300))
        #expect(actions.wakeUpAt == at(300))
        actions = scheduler.tick(now: at(299))
        #expect(actions.start.isEmpty)
        actions = scheduler.tick(now: at(300))
        #expect(actions.start.map(\.recipients) == [[rid(1)]])
        #expect(actions.wakeUpAt == at(900))
        actions = scheduler.tick(now: at(900))
        #expect(actions.start.isEmpty)
        #expect(actions.expiries.map(\.reason) == ["timeout"])
    }

    @Test func jitterOnlyLengthensAndIsBounded() {
        var scheduler = DeliveryScheduler(configuration: config(jitter: 0.1), random: SplitMix64(seed: 42))
        var delays: [Double] = []
        for index in 1...200 {
            var actions = scheduler.recipientsDue([due(index, message: index, domain: "d\(index).example")], now: t0)
            actions = scheduler.attemptsFinished(results(actions.start[0], greylisted), now: t0)
            delays.append(actions.deferrals[0].nextAttemptAt.timeIntervalSince(t0))
        }
        #expect(delays.allSatisfy { $0 >= 60 && $0 < 66 })
        #expect(Set(delays).count > 150)
    }

    @Test func recipientsOfOneMessageComeBackTogether() {
        var scheduler = DeliveryScheduler(configuration: config(jitter: 0.5), random: SplitMix64(seed: 7))
        var actions = scheduler.recipientsDue([due(1, message: 1), due(2, message: 1), due(3, message: 2)], now: t0)
        #expect(actions.start.count == 2)
        var deferrals: [RecipientDeferral] = []
        for job in actions.start {
            actions = scheduler.attemptsFinished(results(job, greylisted), now: t0)
            deferrals += actions.deferrals
        }
        let next = Dictionary(uniqueKeysWithValues: deferrals.map { ($0.recipient, $0.nextAttemptAt) })
        #expect(next.count == 3)
        #expect(next[rid(1)] == next[rid(2)])
        #expect(next[rid(1)] != next[rid(3)])
    }
}

// MARK: Concurrency

@Suite struct SchedulerConcurrencyTests {
    /// A scheduler holding `count` one-recipient messages for example.net, and the jobs started.
    private func loaded(count: Int, configuration: DeliverySchedulerConfiguration = config())
        -> (DeliveryScheduler, [DeliveryJob])
    {
        var scheduler = DeliveryScheduler(configuration: configuration)
        let actions = scheduler.recipientsDue((1...count).map { due($0, message: $0) }, now: t0)
        return (scheduler, actions.start)
    }

    @Test func startsAtInitialAndRisesByOnePerSuccessUpToMaximum() {
        var (scheduler, started) = loaded(count: 500)
        #expect(started.count == 5)
        #expect(scheduler.concurrencyLimit(for: "example.net") == 5)
        var inFlight = started
        var limits: [Int] = []
        for _ in 0..<20 {
            let job = inFlight.removeFirst()
            let actions = scheduler.attemptsFinished(results(job, .sent), now: t0)
            inFlight += actions.start
            limits.append(scheduler.concurrencyLimit(for: "example.net"))
            #expect(scheduler.inFlightCount(for: "example.net") == inFlight.count)
            #expect(inFlight.count == scheduler.concurrencyLimit(for: "example.net"))
        }
        #expect(Array(limits.prefix(5)) == [6, 7, 8, 9, 10])
        #expect(limits.last == 20)
    }

    @Test func liveNodesDivideTheMaximum() {
        // Default policy: initial 5, maximum 20. Two nodes: 10 each; three: 6; twenty-one: 1.
        var (scheduler, started) = loaded(count: 500)
        scheduler.setLiveNodes(2)
        #expect(scheduler.nodeMaximum == 10)
        var inFlight = started
        for _ in 0..<30 {
            let job = inFlight.removeFirst()
            inFlight += scheduler.attemptsFinished(results(job, .sent), now: t0).start
        }
        #expect(scheduler.concurrencyLimit(for: "example.net") == 10)
        #expect(inFlight.count == 10)
        // A third node: the window shrinks at once, and nothing starts until in-flight drops below 6.
        scheduler.setLiveNodes(3)
        #expect(scheduler.concurrencyLimit(for: "example.net") == 6)
        for _ in 0..<4 {
            let job = inFlight.removeFirst()
            #expect(scheduler.attemptsFinished(results(job, .sent), now: t0).start.isEmpty)
        }
        let job = inFlight.removeFirst()
        inFlight += scheduler.attemptsFinished(results(job, .sent), now: t0).start
        #expect(inFlight.count == 6)
        #expect(scheduler.concurrencyLimit(for: "example.net") == 6)
        // Many nodes: never below one each; a node leaving lets the window grow again.
        scheduler.setLiveNodes(21)
        #expect(scheduler.nodeMaximum == 1)
        scheduler.setLiveNodes(1)
        #expect(scheduler.nodeMaximum == 20)
    }

    @Test func permanentFailureAndRecipientDeferralCountAsReachingTheDestination() {
        var (scheduler, started) = loaded(count: 50)
        _ = scheduler.attemptsFinished(results(started[0], .failed), now: t0)
        #expect(scheduler.concurrencyLimit(for: "example.net") == 6)
        _ = scheduler.attemptsFinished(results(started[1], greylisted), now: t0)
        #expect(scheduler.concurrencyLimit(for: "example.net") == 7)
    }

    @Test func destinationTroubleHalvesOncePerCohort() {
        var (scheduler, started) = loaded(count: 50)
        var actions = scheduler.attemptsFinished(results(started[0], refused), now: t0)
        #expect(scheduler.concurrencyLimit(for: "example.net") == 2)
        #expect(actions.start.isEmpty)  // 4 still in flight, above the new limit
        #expect(actions.deferrals.count == 1)
        // The rest of the same cohort met the same trouble: no further decrease.
        actions = scheduler.attemptsFinished(results(started[1], refused), now: t0)
        #expect(scheduler.concurrencyLimit(for: "example.net") == 2)
        actions = scheduler.attemptsFinished(results(started[2], .sent), now: t0)
        #expect(scheduler.concurrencyLimit(for: "example.net") == 3)
        actions = scheduler.attemptsFinished(results(started[3], .sent), now: t0)
        #expect(scheduler.concurrencyLimit(for: "example.net") == 4)
        #expect(actions.start.count == 2)  // up to 4: one left of the cohort, one started at limit 3
        // A job started after the decrease does decrease again.
        actions = scheduler.attemptsFinished(results(actions.start[0], refused), now: t0)
        #expect(scheduler.concurrencyLimit(for: "example.net") == 2)
    }

    @Test func neverBelowOne() {
        var configuration = config()
        configuration.concurrency = DestinationConcurrencyPolicy(decreaseFactor: 0.1)
        var (scheduler, started) = loaded(count: 50, configuration: configuration)
        _ = scheduler.attemptsFinished(results(started[0], refused), now: t0)
        #expect(scheduler.concurrencyLimit(for: "example.net") == 1)
        #expect(scheduler.concurrencyLimit(for: "other.example") == 5)
    }

    @Test func deadAfterRepeatedTroubleDefersWithoutAttemptThenRecovers() {
        var (scheduler, started) = loaded(count: 12)
        var later: [DeliveryJob] = []
        for job in started.prefix(4) {
            later += scheduler.attemptsFinished(results(job, refused), now: t0).start
            #expect(scheduler.deadUntil("example.net") == nil)
        }
        #expect(later.count == 1)  // limit 2 after the first failure
        var actions = scheduler.attemptsFinished(results(started[4], refused), now: t0)
        #expect(scheduler.deadUntil("example.net") == at(300))
        // The fifth failure's own recipient: deferred after an attempt. The 6 waiting:
        // deferred without one, until the cool-down ends (it is longer than the first backoff).
        #expect(actions.deferrals.filter(\.attempted).map(\.recipient) == [started[4].recipients[0]])
        let skipped = actions.deferrals.filter { !$0.attempted }
        #expect(skipped.count == 6)
        #expect(skipped.allSatisfy { $0.nextAttemptAt == at(300) && $0.attempts == 0 })
        #expect(skipped[0].reason.contains("refused"))
        #expect(scheduler.activeCount == 1)  // the later job, still in flight
        #expect(actions.wakeUpAt == at(300))

        // New arrivals during the cool-down are deferred too, with no attempt.
        actions = scheduler.recipientsDue([due(100, message: 100, attempts: 6)], now: at(100))
        #expect(actions.start.isEmpty)
        #expect(actions.deferrals.map(\.nextAttemptAt) == [at(100 + 7200)])  // backoff is longer here
        #expect(actions.deferrals.map(\.attempted) == [false])

        // After the cool-down it starts afresh.
        actions = scheduler.tick(now: at(300))
        #expect(scheduler.deadUntil("example.net") == nil)
        actions = scheduler.recipientsDue((200..<210).map { due($0, message: $0) }, now: at(300))
        #expect(actions.start.count == 4)  // initial 5, one still in flight
    }

    @Test func successWhileDeadRevives() {
        var (scheduler, started) = loaded(count: 6)
        #expect(started.count == 5)
        var later: [DeliveryJob] = []
        for job in started.prefix(4) {
            later += scheduler.attemptsFinished(results(job, refused), now: t0).start
        }
        // Limit 2 after the cohort's first failure: the sixth starts once in flight drops below it.
        #expect(later.count == 1)
        _ = scheduler.attemptsFinished(results(later[0], refused), now: t0)
        #expect(scheduler.deadUntil("example.net") == at(300))
        // The job started before it died succeeds: alive again.
        var actions = scheduler.attemptsFinished(results(started[4], .sent), now: at(10))
        #expect(scheduler.deadUntil("example.net") == nil)
        actions = scheduler.recipientsDue([due(60, message: 60)], now: at(10))
        #expect(actions.start.count == 1)
        #expect(actions.deferrals.isEmpty)
        // Its stale cool-down timer changes nothing.
        actions = scheduler.tick(now: at(300))
        #expect(scheduler.inFlightCount(for: "example.net") == 1)
    }
}

// MARK: Active set and loading

@Suite struct SchedulerLoadingTests {
    @Test func asksForMoreSharingRoomAndKeepingTheNewMailReserve() {
        var scheduler = DeliveryScheduler(configuration: config(activeLimit: 100, newMailReserve: 20))
        var actions = scheduler.tick(now: t0)
        #expect(actions.needMore == LoadRequest(newLimit: 50, retryLimit: 50))
        // One load at a time.
        #expect(scheduler.tick(now: t0).needMore == nil)
        actions = scheduler.loaded(
            (1...50).map { due($0, message: $0, attempts: 2) } + (51...60).map { due($0, message: $0) }, now: t0)
        #expect(scheduler.activeCount == 60)
        // New mail ran out; retries may fill up to 80.
        #expect(actions.needMore == LoadRequest(newLimit: 0, retryLimit: 30))
        actions = scheduler.loaded((61...95).map { due($0, message: $0, attempts: 2) }, now: t0)
        #expect(actions.notAdmitted == (91...95).map(rid))  // more than asked for
        #expect(scheduler.activeCount == 90)
        #expect(actions.needMore == nil)  // retries at their share; no new mail known
        #expect(actions.wakeUpAt == at(60))  // look again after the rescan interval

        actions = scheduler.newMailQueued(now: at(1))
        #expect(actions.needMore == LoadRequest(newLimit: 10, retryLimit: 0))
        actions = scheduler.loaded((101...110).map { due($0, message: $0) }, now: at(1))
        #expect(scheduler.activeCount == 100)
        #expect(actions.needMore == nil)
        // Unsolicited recipients beyond the limit are not taken.
        actions = scheduler.recipientsDue([due(200, message: 200)], now: at(1))
        #expect(actions.notAdmitted == [rid(200)])
    }

    @Test func roomFreedByOutcomesIsRefilled() {
        var scheduler = DeliveryScheduler(
            configuration: config(activeLimit: 10, newMailReserve: 2, recipientsPerJob: 1))
        var store = FakeStore(new: (1...1000).map { due($0, message: $0) })
        var jobs = store.drain(&scheduler, scheduler.tick(now: t0), now: t0)
        #expect(scheduler.activeCount == 10)
        #expect(jobs.count == 5)
        var delivered = 0
        while !jobs.isEmpty {
            let job = jobs.removeFirst()
            delivered += 1
            #expect(scheduler.activeCount <= 10)
            jobs += store.drain(&scheduler, scheduler.attemptsFinished(results(job, .sent), now: t0), now: t0)
        }
        #expect(delivered == 1000)
        #expect(scheduler.activeCount == 0)
    }

    @Test func storeTimesAndRescanBringLoadsBack() {
        var scheduler = DeliveryScheduler(configuration: config())
        var actions = scheduler.tick(now: t0)
        #expect(actions.needMore != nil)
        actions = scheduler.loaded([due(1, message: 1)], storeNextRetryAt: at(30), now: t0)
        #expect(actions.needMore == nil)
        #expect(actions.wakeUpAt == at(30))
        actions = scheduler.tick(now: at(30))
        #expect(actions.needMore == LoadRequest(newLimit: 0, retryLimit: 1_000))
        actions = scheduler.loaded([], now: at(30))
        #expect(actions.wakeUpAt == at(90))  // rescan after an empty answer
        // A deferral made here tells the scheduler when the store has work again.
        actions = scheduler.attemptsFinished(
            [DeliveryAttemptResult(recipient: rid(1), outcome: greylisted)], now: at(40))
        #expect(actions.deferrals.map(\.nextAttemptAt) == [at(100)])
        #expect(actions.wakeUpAt == at(90))
        actions = scheduler.tick(now: at(90))
        #expect(actions.needMore == LoadRequest(newLimit: 1_000, retryLimit: 1_000))
    }

    @Test func storeWithoutNewRetrySplitFillsWithinTheTotal() {
        var scheduler = DeliveryScheduler(configuration: config(activeLimit: 100, newMailReserve: 20))
        let request = scheduler.tick(now: t0).needMore
        #expect(request == LoadRequest(newLimit: 50, retryLimit: 50))
        // A store that claims in due order returns only retries, up to the total.
        let actions = scheduler.loaded((1...100).map { due($0, message: $0, attempts: 1) }, now: t0)
        #expect(scheduler.activeCount == 80)  // the retry share; the reserve stays for new mail
        #expect(actions.notAdmitted == (81...100).map(rid))
        #expect(actions.needMore == LoadRequest(newLimit: 20, retryLimit: 0))
    }

    @Test func claimedStoreRowsBridge() {
        let row = DueRecipient(
            id: rid(7), messageID: mid(8), address: "Bob@Example.NET", mailFrom: "a@example.com", attempts: 2,
            queuedAt: t0, nextAttemptAt: at(60), eightBitMIME: false, smtpUTF8: false, size: 100)
        let scheduled = ScheduledRecipient(row, lastReason: "450 busy")
        #expect(scheduled == due(7, message: 8, attempts: 2, nextAttemptAt: at(60), lastReason: "450 busy"))
        #expect(!scheduled.isNew)
    }

    @Test func loadFailureRetriesAfterRescanInterval() {
        var scheduler = DeliveryScheduler(configuration: config())
        _ = scheduler.tick(now: t0)
        var actions = scheduler.loadFailed(now: t0)
        #expect(actions.needMore == nil)
        #expect(actions.wakeUpAt == at(60))
        actions = scheduler.tick(now: at(60))
        #expect(actions.needMore != nil)
    }
}

// MARK: Jobs and fairness

@Suite struct SchedulerFairnessTests {
    @Test func groupsRecipientsPerMessageAndDestination() {
        var scheduler = DeliveryScheduler(configuration: config())
        let actions = scheduler.recipientsDue(
            (1...120).map { due($0, message: 1, domain: "a.example") }
                + [due(500, message: 1, domain: "b.example"), due(501, message: 1, domain: "B.example")]
                + [due(600, message: 2, domain: "a.example")],
            now: t0)
        let summary = actions.start.map { "\($0.destination) \($0.messageID.rawValue) \($0.recipients.count)" }
        #expect(summary == ["a.example 1 50", "b.example 1 2", "a.example 1 50", "a.example 1 20", "a.example 2 1"])
    }

    @Test func roundRobinAcrossDestinations() {
        var scheduler = DeliveryScheduler(configuration: config(totalConcurrency: 4))
        var actions = scheduler.recipientsDue(
            (1...40).map { due($0, message: $0, domain: "big.example") }
                + (1...3).map { due(100 + $0, message: 100 + $0, domain: "small\($0).example") },
            now: t0)
        #expect(actions.start.map(\.destination) == ["big.example", "small1.example", "small2.example", "small3.example"])
        var running = actions.start
        actions = scheduler.recipientsDue(
            (4...6).map { due(100 + $0, message: 100 + $0, domain: "small\($0).example") }, now: t0)
        #expect(actions.start.isEmpty)  // every slot busy
        // Each free slot goes round: big takes one turn per round, like any other.
        var order: [DestinationKey] = []
        for _ in 0..<5 {
            actions = scheduler.attemptsFinished(results(running.removeFirst(), .sent), now: t0)
            #expect(actions.start.count == 1)
            order += actions.start.map(\.destination)
            running += actions.start
        }
        #expect(order == ["big.example", "small4.example", "small5.example", "small6.example", "big.example"])
    }

    @Test func largeDeferredBacklogDoesNotDelayNewMail() {
        var scheduler = DeliveryScheduler(configuration: config())
        // 100,000 deferred recipients due now, over 1,000 destinations.
        var store = FakeStore(
            retry: (1...100_000).map {
                due($0, message: $0, domain: "d\($0 % 1_000).example", attempts: 3, queuedAt: at(-3600))
            })
        var running = store.drain(&scheduler, scheduler.tick(now: t0), now: t0)
        #expect(running.count == 100)  // every delivery slot busy with retries
        #expect(running.allSatisfy { !$0.isNew })
        #expect(scheduler.activeCount == 8_000)  // retries stop at their share of the active set
        #expect(store.retry.count == 92_000)

        // New mail arrives: there is room for it at once, and it gets the next free slot.
        var actions = scheduler.newMailQueued(now: at(1))
        store.new = [due(1_000_001, message: 1_000_001, domain: "fresh.example", queuedAt: at(1), nextAttemptAt: at(1))]
        running += store.drain(&scheduler, actions, now: at(1))
        #expect(scheduler.activeCount == 8_001)
        actions = scheduler.attemptsFinished(results(running.removeFirst(), .sent), now: at(2))
        #expect(actions.start.map(\.messageID) == [mid(1_000_001)])
        #expect(actions.start.first?.isNew == true)
    }

    @Test func newMailForABusyDestinationGoesBeforeItsBacklog() {
        var scheduler = DeliveryScheduler(configuration: config())
        var actions = scheduler.recipientsDue(
            (1...1_000).map { due($0, message: $0, domain: "big.example", attempts: 2) }, now: t0)
        var running = actions.start
        #expect(running.count == 5)
        actions = scheduler.recipientsDue([due(5_000, message: 5_000, domain: "big.example")], now: t0)
        #expect(actions.start.isEmpty)  // window full
        actions = scheduler.attemptsFinished(results(running.removeFirst(), .sent), now: t0)
        // Window 6 now: two slots; the new message takes the first.
        #expect(actions.start.map(\.isNew) == [true, false])
        #expect(actions.start.first?.messageID == mid(5_000))
    }

    @Test func freeSlotsAlternateBetweenNewAndRetry() {
        var scheduler = DeliveryScheduler(configuration: config(totalConcurrency: 6))
        let actions = scheduler.recipientsDue(
            (1...10).map { due($0, message: $0, domain: "r\($0).example", attempts: 1) }
                + (11...20).map { due($0, message: $0, domain: "n\($0).example") },
            now: t0)
        #expect(actions.start.map(\.isNew) == [true, false, true, false, true, false])
    }
}

// MARK: Safety

@Suite struct SchedulerSafetyTests {
    @Test func aRecipientIsNeverHandedOutTwiceWhileHeld() {
        var scheduler = DeliveryScheduler(configuration: config(totalConcurrency: 1))
        var actions = scheduler.recipientsDue([due(1, message: 1), due(2, message: 2)], now: t0)
        #expect(actions.start.map(\.recipients) == [[rid(1)]])
        // Offered again, in flight or ready: ignored, not counted twice.
        actions = scheduler.recipientsDue([due(1, message: 1), due(2, message: 2)], now: t0)
        #expect(actions.start.isEmpty && actions.notAdmitted.isEmpty)
        #expect(scheduler.activeCount == 2)
        _ = scheduler.tick(now: t0)
        actions = scheduler.loaded([due(1, message: 1), due(2, message: 2)], now: t0)
        #expect(actions.start.isEmpty)
        #expect(scheduler.activeCount == 2)
        actions = scheduler.attemptsFinished([DeliveryAttemptResult(recipient: rid(1), outcome: .sent)], now: t0)
        #expect(actions.start.map(\.recipients) == [[rid(2)]])
    }

    @Test func everyRecipientStartsExactlyOnceAcrossAChurningRun() {
        var scheduler = DeliveryScheduler(
            configuration: config(activeLimit: 300, newMailReserve: 50, totalConcurrency: 7, recipientsPerJob: 3))
        var store = FakeStore(
            new: (1...3_000).map { due($0, message: $0 / 4, domain: "d\($0 % 13).example") })
        var running = store.drain(&scheduler, scheduler.tick(now: t0), now: t0)
        var seen = Set<RecipientID>()
        var duplicates = 0
        var finished = 0
        while !running.isEmpty {
            let job = running.removeFirst()
            for id in job.recipients where !seen.insert(id).inserted { duplicates += 1 }
            #expect(scheduler.runningJobCount <= 7)
            // Report one by one, and some twice.
            var actions = DeliveryScheduler.Actions()
            for id in job.recipients {
                actions = scheduler.attemptsFinished([DeliveryAttemptResult(recipient: id, outcome: .sent)], now: t0)
                running += store.drain(&scheduler, actions, now: t0)
                finished += 1
            }
            actions = scheduler.attemptsFinished(results(job, refused), now: t0)
            #expect(actions.deferrals.isEmpty)
            running += store.drain(&scheduler, actions, now: t0)
        }
        #expect(duplicates == 0)
        #expect(seen.count == 3_000)
        #expect(finished == 3_000)
        #expect(scheduler.activeCount == 0 && scheduler.runningJobCount == 0)
    }

    @Test func outcomesForUnknownRecipientsAreIgnored() {
        var scheduler = DeliveryScheduler(configuration: config())
        var actions = scheduler.recipientsDue((1...10).map { due($0, message: $0) }, now: t0)
        let before = (scheduler.activeCount, scheduler.runningJobCount, scheduler.concurrencyLimit(for: "example.net"))
        actions = scheduler.attemptsFinished(
            [
                DeliveryAttemptResult(recipient: rid(999), outcome: refused),
                DeliveryAttemptResult(recipient: rid(10), outcome: .sent),  // held, but not in flight
            ], now: t0)
        #expect(actions.start.isEmpty && actions.deferrals.isEmpty && actions.expiries.isEmpty)
        let after = (scheduler.activeCount, scheduler.runningJobCount, scheduler.concurrencyLimit(for: "example.net"))
        #expect(before == after)
    }
}
