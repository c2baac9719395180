public import Logging
public import ServiceLifecycle
import Synchronization
public import TernCore

/// Collects opens, clicks and unsubscribes from the tracking endpoints and writes them in
/// batches: a request only appends to memory, and one transaction stores what arrived in
/// the last `flushInterval`. A crash loses at most that window (and what a failing store
/// could not take); a graceful shutdown writes everything first.
public final class EngagementRecorder: Service, Sendable {
    public struct Configuration: Sendable {
        /// How often gathered events are written.
        public var flushInterval: Duration
        /// Events kept while the store cannot take them; beyond this, new events are dropped
        /// (counted, and logged at the next flush) rather than memory growing without bound.
        public var maxPending: Int

        public static let defaultFlushInterval: Duration = .milliseconds(100)
        public static let defaultMaxPending = 100_000

        public init(flushInterval: Duration = Configuration.defaultFlushInterval, maxPending: Int = Configuration.defaultMaxPending) {
            self.flushInterval = flushInterval
            self.maxPending = maxPending
        }
    }

    /// What one flush did.
    public struct FlushResult: Sendable, Equatable {
        /// Events written.
        public var stored: Int
        /// Events kept for the next flush because the store failed.
        public var kept: Int
        /// Events dropped since the last flush because `maxPending` were waiting.
        public var dropped: Int
    }

    private struct Pending {
        var events: [EngagementEvent] = []
        var dropped = 0
    }

    private let store: any EngagementStore
    private let configuration: Configuration
    private let logger: Logger
    private let pending = Mutex(Pending())

    public init(store: any EngagementStore, configuration: Configuration = Configuration(), logger: Logger) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
    }

    /// Takes an event for the next batch; never waits. When `maxPending` events are waiting
    /// already, the event is dropped: in constant time, and logged once per flush, not per
    /// event, as it runs on the event loop answering the request.
    public func record(_ event: EngagementEvent) {
        pending.withLock { pending in
            if pending.events.count < configuration.maxPending {
                pending.events.append(event)
            } else {
                pending.dropped += 1
            }
        }
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: configuration.flushInterval)
            await flush()
        }
        await flush()
    }

    /// Writes what has gathered; on failure it is kept for the next round (as much of it as
    /// `maxPending` allows, the oldest first).
    @discardableResult
    public func flush() async -> FlushResult {
        let (batch, dropped) = pending.withLock { pending -> ([EngagementEvent], Int) in
            defer { pending = Pending() }
            return (pending.events, pending.dropped)
        }
        if dropped > 0 {
            logger.error("engagement events are not being stored fast enough: dropped \(dropped) since the last write")
        }
        guard !batch.isEmpty else { return FlushResult(stored: 0, kept: 0, dropped: dropped) }
        do {
            try await store.recordEngagement(batch)
            return FlushResult(stored: batch.count, kept: 0, dropped: dropped)
        } catch {
            logger.error("cannot store \(batch.count) engagement event(s), keeping them for the next try: \(error)")
            pending.withLock { pending in
                pending.events.insert(contentsOf: batch, at: 0)
                let excess = pending.events.count - configuration.maxPending
                if excess > 0 {
                    pending.events.removeLast(excess)
                    pending.dropped += excess
                }
            }
            return FlushResult(stored: 0, kept: batch.count, dropped: dropped)
        }
    }
}
