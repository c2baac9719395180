import Foundation
import Logging
import NIOCore
import SMTPNIO
import Testing
import TernCore
import TernStoreSQLite
@testable import TernEngine

/// The greeting's identity lookup: answered on the event loop from a fresh credential
/// snapshot, and sent to the directory (async) when the snapshot is missing or old.
@Suite struct IntakeIdentityTests {
    @Test func answersFromAFreshSnapshotOnly() async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: path)
        let (credential, _) = try Credential.issue(
            name: "apps", networks: [try #require(IPNetwork("127.0.0.0/8"))], hasher: SecretHasher(rounds: 1 << 10))
        try await store.addCredential(credential)
        let directory = CredentialDirectory(store: store, refreshInterval: .seconds(2))
        let committer = GroupCommitter(store: store, logger: Logger(label: "test"))
        let intake = Intake(credentials: directory, committer: committer, hostname: "mx.test", logger: Logger(label: "test"))
        let inside = try SocketAddress(ipAddress: "127.0.0.9", port: 40000)
        let outside = try SocketAddress(ipAddress: "192.0.2.1", port: 40000)
        let apps = SMTPIdentity(credentialName: "apps", method: .clientNetwork)

        #expect(intake.cachedIdentity(forClientAddress: inside) == .needsLookup)
        #expect(await intake.identity(forClientAddress: inside) == apps)
        #expect(intake.cachedIdentity(forClientAddress: inside) == .known(apps))
        #expect(intake.cachedIdentity(forClientAddress: outside) == .known(nil))
        #expect(intake.cachedIdentity(forClientAddress: nil) == .known(nil))

        // A removed credential is not served from a snapshot older than the refresh interval.
        #expect(try await store.removeCredential(named: "apps"))
        try await Task.sleep(for: .milliseconds(2100))
        #expect(intake.cachedIdentity(forClientAddress: inside) == .needsLookup)
        #expect(await intake.identity(forClientAddress: inside) == nil)
        #expect(intake.cachedIdentity(forClientAddress: inside) == .known(nil))
        try await store.close()
    }
}
