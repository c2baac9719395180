import Foundation
import Logging
import ServiceLifecycle
import Testing
import TernCore
import TernStoreSQLite
@testable import TernEngine

@Suite struct NodeRegistryTests {
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
            let now = Date()
            try await store.heartbeat(other("fresh", heartbeatAt: now.addingTimeInterval(-5)))
            try await store.heartbeat(other("silent", heartbeatAt: now.addingTimeInterval(-120)))
            try await store.heartbeat(other("stopped", heartbeatAt: now, state: .stopped))
            let registry = NodeRegistry(
                store: store, configuration: .init(node: "me", hostname: "here", detail: "smtp 127.0.0.1:2587", interval: .seconds(10)),
                logger: Logger(label: "test"))
            #expect(registry.liveNodes == 1)
            try await registry.register()
            // This node and "fresh": "silent" missed three heartbeats, "stopped" said it stopped.
            #expect(registry.liveNodes == 2)
            let me = try #require(try await store.nodes(deliveriesSince: now).first { $0.node.id == "me" })
            #expect(me.node.state == .running)
            #expect(me.node.hostname == "here")
            #expect(me.node.detail == "smtp 127.0.0.1:2587")
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
                try await Task.sleep(for: .milliseconds(100))
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            let nodes = try await store.nodes(deliveriesSince: Date())
            #expect(nodes.map(\.node.id) == ["me"])
            #expect(nodes.first?.node.state == .stopped)
        }
    }
}
