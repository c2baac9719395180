public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization
public import TernCore

/// This node's entry among the nodes sharing the store: registered at start, its heartbeat
/// refreshed every `interval`, marked stopped at a clean shutdown. Between heartbeats it
/// counts the live nodes (running, heard from within `timeout`), which divide the
/// per-destination concurrency between them.
public final class NodeRegistry: Service, Sendable {
    public struct Configuration: Sendable {
        public var node: String
        public var hostname: String
        /// Free text shown by `tern nodes`: version, listeners.
        public var detail: String
        public var interval: Duration
        /// A node not heard from for this long is not counted as live.
        public var timeout: Duration

        public static let defaultInterval: Duration = .seconds(10)

        public init(
            node: String, hostname: String, detail: String, interval: Duration = Configuration.defaultInterval,
            timeout: Duration? = nil
        ) {
            self.node = node
            self.hostname = hostname
            self.detail = detail
            self.interval = interval
            self.timeout = timeout ?? interval * 3
        }
    }

    private let store: any NodeStore
    private let configuration: Configuration
    private let logger: Logger
    private let now: @Sendable () -> Date
    private let startedAt: Date
    private let live = Atomic<Int>(1)

    /// - Parameter now: the wall clock heartbeats are stamped and judged with.
    public init(
        store: any NodeStore, configuration: Configuration, logger: Logger, now: @escaping @Sendable () -> Date = Date.init
    ) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.now = now
        self.startedAt = now()
    }

    /// The live nodes at the last heartbeat, this one included (at least 1).
    public var liveNodes: Int { live.load(ordering: .relaxed) }

    /// Registers the node and counts the live ones; run before the services that use the count.
    /// Throws when the store refuses the heartbeat or the read of the nodes.
    public func register() async throws {
        try await store.heartbeat(record(state: .running))
        try await countLiveNodes()
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.configuration.interval)
                if Task.isCancelled { break }
                do {
                    try await self.store.heartbeat(self.record(state: .running))
                } catch {
                    self.logger.warning("cannot write this node's heartbeat: \(error)")
                }
                do {
                    try await self.countLiveNodes()
                } catch {
                    self.logger.warning("cannot read the nodes, still counting \(self.liveNodes) live: \(error)")
                }
            }
        }
        // The other nodes take the whole share at their next heartbeat. A cancelled task's
        // store calls may be refused, so the last write runs in a task of its own.
        let store = self.store
        let stopped = record(state: .stopped)
        let logger = self.logger
        await Task {
            do {
                try await store.heartbeat(stopped)
            } catch {
                logger.notice("cannot mark this node stopped: \(error); the others stop counting it once its heartbeat is old")
            }
        }.value
    }

    private func record(state: NodeState) -> NodeRecord {
        NodeRecord(
            id: configuration.node, hostname: configuration.hostname, startedAt: startedAt, heartbeatAt: now(),
            state: state, detail: configuration.detail)
    }

    /// Counts the live nodes into `liveNodes`; a failed read leaves the last count.
    private func countLiveNodes() async throws {
        let now = now()
        let nodes = try await store.nodes(deliveriesSince: now)
        let timeout = configuration.timeout.schedulerTimeInterval
        let count = max(1, nodes.filter { $0.node.id == configuration.node || $0.node.isLive(now: now, timeout: timeout) }.count)
        let before = live.exchange(count, ordering: .relaxed)
        if before != count {
            logger.info("\(count) live node(s) share the queue")
        }
    }
}
