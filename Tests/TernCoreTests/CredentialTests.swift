import Foundation
import Testing
@testable import TernCore

@Suite struct CredentialTests {
    let hasher = SecretHasher(rounds: 1 << 10)

    @Test func hashVerifiesOnlyTheSameSecret() throws {
        let stored = try hasher.hash("correct horse")
        #expect(stored.hasPrefix("scrypt$1024$8$1$"))
        #expect(!stored.contains("correct horse"))
        #expect(hasher.verify("correct horse", against: stored))
        #expect(!hasher.verify("correct horsE", against: stored))
        #expect(!hasher.verify("", against: stored))
    }

    @Test func saltMakesHashesDiffer() throws {
        #expect(try hasher.hash("same") != hasher.hash("same"))
    }

    @Test(arguments: ["", "plain", "scrypt$1024$8$1$AAAA", "scrypt$x$8$1$AAAA$AAAA", "scrypt$1024$8$1$!!$AAAA", "bcrypt$1024$8$1$AAAA$AAAA", "scrypt$99999999$8$1$AAAA$AAAA"])
    func malformedHashesNeverMatch(stored: String) {
        #expect(!hasher.verify("anything", against: stored))
    }

    @Test func issueMakesVerifiableSecrets() throws {
        let (credential, issued) = try Credential.issue(name: "app", networks: [], hasher: hasher)
        #expect(issued.username == "app")
        #expect(issued.password.count == 24)
        #expect(hasher.verify(issued.password, against: credential.passwordHash))
        let key = try #require(APIKey(parsing: Substring(issued.apiKey)))
        #expect(key.keyID == credential.apiKeyID)
        #expect(hasher.verify(key.secret, against: credential.apiKeyHash))
        let json = String(decoding: try JSONEncoder().encode(issued), as: UTF8.self)
        #expect(json.contains("\"api_key\""))
    }

    @Test(arguments: ["", "tern_", "tern_short_secretsecretsecret", "tern_ABCDEFGHIJKL_short", "tern_ABCDEFGHIJK!_0123456789abcdef", "xern_ABCDEFGHIJKL_0123456789abcdef", "tern_ABCDEFGHIJKL"])
    func rejectsMalformedAPIKeys(text: String) {
        #expect(APIKey(parsing: Substring(text)) == nil)
    }

    @Test(arguments: [("app", true), ("app-1.example@x", true), ("", false), ("a b", false), ("é", false), (String(repeating: "a", count: 65), false)])
    func credentialNames(name: String, valid: Bool) {
        #expect(Credential.isValidName(name) == valid)
    }

    @Test func identifiersRoundTripAsHex() throws {
        let id = MessageID(rawValue: 0x1234)
        #expect(id.description == "0000000000001234")
        #expect(MessageID("0000000000001234") == id)
        #expect(MessageID("123") == nil)
        #expect(MessageID("ffffffffffffffff") == nil)
        #expect(MessageID.random().rawValue > 0)
    }

    @Test func countersFromEventCounts() {
        let counters = Counters(eventCounts: [.outbound: 3, .sent: 2, .deferred: 7, .complaint: 1, .open: 4])
        #expect(counters == Counters(outbound: 3, sent: 2, deferred: 7, complaints: 1, opens: 4))
        #expect(counters.values.map(\.name) == Counters.names)
    }
}
