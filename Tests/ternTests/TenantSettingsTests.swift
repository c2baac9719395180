import Foundation
import Testing
import TernCore
import TernStoreSQLite
@testable import tern

@Suite struct TenantSettingsTests {
    /// `tenants:` adds the tenants it names and sets the limits it names; a limit it does not
    /// name keeps the value `tern tenant set` gave it.
    @Test func fileLimitsAreWrittenToTheStoreAtStart() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tern-tenants-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: folder + "/tern.sqlite")
        let configuration = try TernConfiguration.load(
            yaml: """
                tenants:
                  acme:
                    max_messages_per_hour: 100
                  default:
                    max_recipients_per_message: 50
                """, origin: "test.yaml", environment: [:])
        try await configuration.applyTenantSettings(to: store)
        #expect(try await store.tenant(named: "acme")?.limits == TenantLimits(maxMessagesPerHour: 100))
        #expect(try await store.tenant(named: "default")?.limits == TenantLimits(maxRecipientsPerMessage: 50))
        let acme = try #require(try await store.tenant(named: "acme"))
        try await store.setLimits(TenantLimits(maxMessagesPerHour: 5, maxMessagesPerDay: 1000), of: acme.id)
        try await configuration.applyTenantSettings(to: store)
        #expect(try await store.tenant(named: "acme")?.limits == TenantLimits(maxMessagesPerHour: 100, maxMessagesPerDay: 1000))
        #expect(try await store.tenants().count == 2)
        try await store.close()
    }

    @Test func badTenantNamesAndLimitsAreRefused() async throws {
        #expect(throws: (any Error).self) {
            _ = try TernConfiguration.load(yaml: "tenants:\n  acme:\n    max_messages_per_hour: 0\n", origin: "test.yaml", environment: [:])
        }
        #expect(throws: (any Error).self) {
            _ = try TernConfiguration.load(yaml: "tenants:\n  acme:\n    max_mesages_per_hour: 5\n", origin: "test.yaml", environment: [:])
        }
    }
}
