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
        /// Events kept while the store cannot take them; beyond this, the oldest are dropped
        /// (and the drop logged) rather than memory growing without bound.
        public var maxPending: Int

        public static let defaultFlushInterval: Duration = .milliseconds(100)
        public static let defaultMaxPending = 100_000

        public init(flushInterval: Duration = Configuration.defaultFlushInterval, maxPending: Int = Configuration.defaultMaxPending) {
            self.flushInterval = flushInterval
            self.maxPending = maxPending
        }
    }

    private let store: any EngagementStore
    private let configuration: Configuration
    private let logger: Logger
    private let pending = Mutex<[EngagementEvent]>([])

    public init(store: any EngagementStore, configuration: Configuration = Configuration(), logger: Logger) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
    }

    /// Takes an event for the next batch; never waits.
    public func record(_ event: EngagementEvent) {
        let dropped = pending.withLock { events -> Int in
            events.append(event)
            let excess = events.count - configuration.maxPending
            guard excess > 0 else { return 0 }
            events.removeFirst(excess)
            return excess
        }
        if dropped > 0 {
            logger.error("engagement events are not being stored fast enough: dropped \(dropped)")
        }
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: configuration.flushInterval)
            await flush()
        }
        await flush()
    }

    /// Writes what has gathered; on failure it is kept for the next round.
    public func flush() async {
        let batch = pending.withLock { events -> [EngagementEvent] in
            defer { events = [] }
            return events
        }
        guard !batch.isEmpty else { return }
        do {
            try await store.recordEngagement(batch)
        } catch {
            logger.error("cannot store \(batch.count) engagement event(s), keeping them for the next try: \(error)")
            pending.withLock { events in events.insert(contentsOf: batch, at: 0) }
        }
    }
}
