import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import TernCore
import TernStoreSQLite
@testable import TernEngine

@Suite struct NodeRegistryTests {
    /// Years before the real clock: a registry that read the real clock would see every node as silent.
    static let now = Date(timeIntervalSince1970: 1_600_000_000)

    func withStore(_ body: (SQLiteStore) async throws -> Void) async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: path)
        do {
            try await body(store)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    func other(_ id: String, heartbeatAt: Date, state: NodeState = .running) -> NodeRecord {
        NodeRecord(id: id, hostname: "other", startedAt: heartbeatAt, heartbeatAt: heartbeatAt, state: state, detail: "")
    }

    @Test func countsOnlyNodesRunningAndHeardFromWithinTheTimeout() async throws {
        try await withStore { store in
            let now = Self.now
            try await store.heartbeat(other("fresh", heartbeatAt: now.addingTimeInterval(-5)))
            try await store.heartbeat(other("silent", heartbeatAt: now.addingTimeInterval(-120)))
            try await store.heartbeat(other("stopped", heartbeatAt: now, state: .stopped))
            let registry = NodeRegistry(
                store: store, configuration: .init(node: "me", hostname: "here", detail: "smtp 127.0.0.1:2587", interval: .seconds(10)),
                logger: Logger(label: "test"), now: { now })
            #expect(registry.liveNodes == 1)
            try await registry.register()
            // This node and "fresh": "silent" missed three heartbeats, "stopped" said it stopped.
            #expect(registry.liveNodes == 2)
            let me = try #require(try await store.nodes(deliveriesSince: now).first { $0.node.id == "me" })
            #expect(me.node.state == .running)
            #expect(me.node.hostname == "here")
            #expect(me.node.detail == "smtp 127.0.0.1:2587")
            #expect(me.node.heartbeatAt == now)
            #expect(me.node.startedAt == now)
        }
    }

    @Test func theTimeoutIsMeasuredOnTheInjectedClock() async throws {
        try await withStore { store in
            let clock = Mutex(Self.now)
            try await store.heartbeat(other("fresh", heartbeatAt: Self.now))
            let registry = NodeRegistry(
                store: store, configuration: .init(node: "me", hostname: "here", detail: "", interval: .seconds(10)),
                logger: Logger(label: "test"), now: { clock.withLock { $0 } })
            try await registry.register()
            #expect(registry.liveNodes == 2)
            // 31 s on: "fresh" is past the 30 s timeout, this node is counted whatever its heartbeat.
            clock.withLock { $0 = Self.now.addingTimeInterval(31) }
            try await registry.register()
            #expect(registry.liveNodes == 1)
        }
    }

    @Test func aFailedReadOfTheNodesFailsRegistration() async throws {
        try await withStore { sqlite in
            let store = FlakyNodeStore(sqlite)
            store.failReads.store(true, ordering: .relaxed)
            let registry = NodeRegistry(
                store: store, configuration: .init(node: "me", hostname: "here", detail: ""),
                logger: Logger(label: "test"), now: { Self.now })
            await #expect(throws: FlakyNodeStore.ReadRefused.self) { try await registry.register() }
        }
    }

    @Test func aFailedReadBetweenHeartbeatsKeepsTheLastCountAndIsLogged() async throws {
        try await withStore { sqlite in
            let store = FlakyNodeStore(sqlite)
            let log = RecordedLog()
            try await store.heartbeat(other("fresh", heartbeatAt: Self.now))
            let registry = NodeRegistry(
                store: store, configuration: .init(node: "me", hostname: "here", detail: "", interval: .milliseconds(5)),
                logger: Logger(label: "test") { _ in log }, now: { Self.now })
            try await registry.register()
            #expect(registry.liveNodes == 2)
            store.failReads.store(true, ordering: .relaxed)
            let group = ServiceGroup(services: [registry], logger: Logger(label: "test"))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                let warned = try await poll {
                    log.messages.contains { $0.level == .warning && $0.text.hasPrefix("cannot read the nodes, still counting 2 live") }
                }
                #expect(warned, "\(log.messages)")
                #expect(registry.liveNodes == 2)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
    }

    @Test func aCleanStopMarksTheNodeStopped() async throws {
        try await withStore { store in
            let registry = NodeRegistry(
                store: store, configuration: .init(node: "me", hostname: "here", detail: "", interval: .seconds(3600)),
                logger: Logger(label: "test"))
            try await registry.register()
            let group = ServiceGroup(services: [registry], logger: Logger(label: "test"))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            let nodes = try await store.nodes(deliveriesSince: Date())
            #expect(nodes.map(\.node.id) == ["me"])
            #expect(nodes.first?.node.state == .stopped)
        }
    }
}

/// A `NodeStore` whose reads of the nodes can be made to fail.
final class FlakyNodeStore: NodeStore {
    struct ReadRefused: Error {}

    let base: any NodeStore
    let failReads = Atomic(false)

    init(_ base: any NodeStore) { self.base = base }

    func heartbeat(_ node: NodeRecord) async throws { try await base.heartbeat(node) }

    func nodes(deliveriesSince since: Date) async throws -> [NodeStatus] {
        if failReads.load(ordering: .relaxed) { throw ReadRefused() }
        return try await base.nodes(deliveriesSince: since)
    }

    func removeNode(_ id: String) async throws -> Bool { try await base.removeNode(id) }
    func nodeNumber(of id: String) async throws -> Int { try await base.nodeNumber(of: id) }
    func sharedSecret(named name: String, proposed: [UInt8]) async throws -> [UInt8] {
        try await base.sharedSecret(named: name, proposed: proposed)
    }
}

/// A log handler that keeps every message with its level.
struct RecordedLog: LogHandler {
    private let box = Box()
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    var messages: [(level: Logger.Level, text: String)] { box.messages.withLock { $0 } }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        box.messages.withLock { $0.append((event.level, event.message.description)) }
    }

    private final class Box: Sendable {
        let messages = Mutex<[(level: Logger.Level, text: String)]>([])
    }
}
