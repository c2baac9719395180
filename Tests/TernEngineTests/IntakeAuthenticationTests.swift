import Foundation
import Logging
import NIOCore
import SMTPCore
import SMTPNIO
import Testing
import TernCore
import TernStoreSQLite
@testable import TernEngine

/// SMTP AUTH through intake: a credential added to the store after the directory's first
/// load is found at once, and throttled attempts become `454 4.7.0` refusals.
@Suite struct IntakeAuthenticationTests {
    @Test func throttledAttemptsAre454AndNameTheClient() async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: path)
        let hasher = SecretHasher(rounds: 1 << 10)
        let directory = CredentialDirectory(
            store: store, hasher: hasher, refreshInterval: .seconds(600),
            throttle: .init(maxFailuresPerClient: 2, maxFailuresPerUser: 10, window: .seconds(120)))
        let intake = Intake(
            credentials: directory, committer: GroupCommitter(store: store, logger: Logger(label: "test")),
            hostname: "mx.test", logger: Logger(label: "test"))
        let client = try SocketAddress(ipAddress: "192.0.2.1", port: 40000)

        #expect(try await intake.authenticate(username: "app", password: "guess", clientAddress: client) == nil)
        let (credential, secrets) = try Credential.issue(name: "app", networks: [], hasher: hasher)
        try await store.addCredential(credential)
        #expect(try await intake.authenticate(username: "app", password: secrets.password, clientAddress: client)?.credentialName == "app")

        #expect(try await intake.authenticate(username: "app", password: "guess", clientAddress: client) == nil)
        do {
            _ = try await intake.authenticate(username: "app", password: secrets.password, clientAddress: client)
            Issue.record("not throttled after 2 failures")
        } catch let refusal as SMTPBackendRefusal {
            #expect(refusal.reply.code == 454)
            #expect(refusal.reply.enhancedStatusCode?.description == "4.7.0")
            let text = refusal.reply.lines.joined()
            #expect(text.contains("Too many failed authentication attempts from 192.0.2.1; try again in "), "\(text)")
        }
        try await store.close()
    }
}
