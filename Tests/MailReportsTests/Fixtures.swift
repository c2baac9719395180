import Foundation
import Testing
import MailReports

/// The report corpus in `Fixtures/` and `Fixtures/expected.json`, which says what each one is.
enum Fixtures {
    /// What one fixture must read as. Every key is checked: a null means "must be absent".
    struct Expectation: Decodable, Sendable, CustomTestStringConvertible {
        struct Recipient: Decodable, Sendable {
            var address: String
            var action: String
            var status: String?
            /// `hard`, `soft` or null.
            var `class`: String?
            var suppress: Bool
            /// A piece of text the diagnostic must contain (null: no diagnostic at all).
            var diagnosticContains: String?
            var originalRecipient: String?
            var remoteMTA: String?
        }

        var file: String
        var kind: String
        var format: String
        var recipients: [Recipient]
        var messageID: String?
        var ternID: String?
        var returnPath: String?
        var reportingMTA: String?
        var originalEnvelopeID: String?
        /// For complaints: `Feedback-Type`.
        var feedbackType: String?
        /// What the fixture stands for (a producer, a quirk), for people.
        var about: String

        var testDescription: String { file }
    }

    static var directory: URL {
        get throws {
            guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
                throw FixtureError(hint: "no Fixtures folder in the test bundle")
            }
            return url
        }
    }

    static func files() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".eml") }.sorted()
    }

    static func bytes(_ file: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory.appendingPathComponent(file)))
    }

    /// The table, read once; a broken table fails every test that uses it.
    static let expectations: [Expectation] = {
        do {
            let data = try Data(contentsOf: directory.appendingPathComponent("expected.json"))
            return try JSONDecoder().decode([Expectation].self, from: data)
        } catch {
            Issue.record("Fixtures/expected.json: \(error)")
            return []
        }
    }()

    struct FixtureError: Error, CustomStringConvertible {
        var hint: String
        var description: String { hint }
    }
}
