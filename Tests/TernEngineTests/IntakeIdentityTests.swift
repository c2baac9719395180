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
        // A refresh interval far longer than the test: what it checks does not depend on how
        // fast a loaded machine runs it.
        let directory = CredentialDirectory(store: store, refreshInterval: .seconds(600))
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

        // A removed credential is not served from a snapshot older than the refresh interval
        // (a short one here; it can only have passed, however slow the machine).
        let shortLived = CredentialDirectory(store: store, refreshInterval: .milliseconds(200))
        let intake2 = Intake(credentials: shortLived, committer: committer, hostname: "mx.test", logger: Logger(label: "test"))
        #expect(await intake2.identity(forClientAddress: inside) == apps)
        #expect(try await store.removeCredential(named: "apps"))
        try await Task.sleep(for: .milliseconds(300))
        #expect(intake2.cachedIdentity(forClientAddress: inside) == .needsLookup)
        #expect(await intake2.identity(forClientAddress: inside) == nil)
        #expect(intake2.cachedIdentity(forClientAddress: inside) != .known(apps))
        try await store.close()
    }
}
