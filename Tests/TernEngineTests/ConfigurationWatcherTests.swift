import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import TernCore
import TernStoreSQLite
@testable import TernEngine

@Suite struct ConfigurationWatcherTests {
    /// A tenant added by another process (another connection to the file) makes the running
    /// server reload; nothing else does.
    @Test func aChangeInAnotherProcessTriggersTheReloads() async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: path)
        let reloads = Atomic(0)
        // The generation the directories were loaded at, given to the watcher: no race with
        // its first read however slow the machine. Mail does not change it.
        let loaded = try await store.configurationGeneration()
        let watcher = ConfigurationWatcher(
            store: store, pollInterval: .milliseconds(20), reloads: [{ reloads.add(1, ordering: .relaxed) }],
            loadedGeneration: loaded, logger: Logger(label: "test"))
        let task = Task { try await watcher.run() }
        try await store.commitAndWait([message(1)])
        #expect(try await store.configurationGeneration() == loaded)
        #expect(reloads.load(ordering: .relaxed) == 0)
        let cli = try SQLiteStore(path: path)
        _ = try await cli.addTenant(named: "acme", limits: .none, createdAt: Date())
        try await cli.close()
        let deadline = ContinuousClock.now + .seconds(10)
        while reloads.load(ordering: .relaxed) == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(reloads.load(ordering: .relaxed) == 1)
        task.cancel()
        _ = try? await task.value
        try await store.close()
    }
}
