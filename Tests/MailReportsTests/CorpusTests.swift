import Testing

@testable import MailReports

/// Every fixture read against `Fixtures/expected.json`, field by field.
struct CorpusTests {
    @Test func everyFixtureHasExactlyOneExpectation() throws {
        let files = try Fixtures.files()
        let listed = Fixtures.expectations.map(\.file)
        #expect(Set(files) == Set(listed), "files without expectations: \(Set(files).subtracting(listed).sorted()); expectations without files: \(Set(listed).subtracting(files).sorted())")
        #expect(listed.count == Set(listed).count, "a fixture is listed twice")
    }

    @Test func corpusCoversEnoughOfEachKind() {
        let kinds = Dictionary(grouping: Fixtures.expectations, by: \.kind).mapValues(\.count)
        #expect(kinds["bounce", default: 0] >= 30, "\(kinds)")
        #expect(kinds["complaint", default: 0] >= 5, "\(kinds)")
        #expect(kinds["auto_reply", default: 0] >= 4, "\(kinds)")
        #expect(kinds["delay", default: 0] >= 3, "\(kinds)")
        // Both line endings, as mail is stored.
        let endings = Fixtures.expectations.compactMap { try? Fixtures.bytes($0.file) }.map { $0.contains(13) }
        #expect(endings.contains(true) && endings.contains(false))
    }

    @Test(arguments: Fixtures.expectations)
    func fixture(_ expected: Fixtures.Expectation) throws {
        let report = ReportParser.parse(try Fixtures.bytes(expected.file))
        #expect(report.kind.rawValue == expected.kind)
        #expect(report.format == expected.format)
        #expect(report.reportingMTA == expected.reportingMTA)
        #expect(report.originalEnvelopeID == expected.originalEnvelopeID)
        #expect(report.returned?.messageID == expected.messageID)
        #expect(report.returned?.ternID == expected.ternID)
        #expect(report.returned?.returnPath == expected.returnPath)
        #expect(report.feedback?.feedbackType == expected.feedbackType)
        if expected.kind == "complaint" {
            #expect(report.feedback?.originalRcptTo == expected.recipients.map(\.address))
        }

        try #require(report.recipients.count == expected.recipients.count,
                     "recipients: \(report.recipients.map { "\($0.address) \($0.action.rawValue) \($0.status ?? "-")" })")
        for (got, want) in zip(report.recipients, expected.recipients) {
            #expect(got.address == want.address)
            #expect(got.action.rawValue == want.action, "\(want.address)")
            #expect(got.status == want.status, "\(want.address): diagnostic \(got.diagnostic ?? "none")")
            #expect(got.bounceClass?.rawValue == want.class, "\(want.address): diagnostic \(got.diagnostic ?? "none")")
            #expect(got.suppress == want.suppress, "\(want.address)")
            #expect(got.originalRecipient == want.originalRecipient, "\(want.address)")
            #expect(got.remoteMTA == want.remoteMTA, "\(want.address)")
            if let piece = want.diagnosticContains {
                #expect(got.diagnostic?.contains(piece) == true, "\(want.address): diagnostic \(got.diagnostic ?? "none")")
            } else {
                #expect(got.diagnostic == nil, "\(want.address)")
            }
        }
    }
}
