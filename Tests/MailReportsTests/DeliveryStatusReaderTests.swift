import Testing

@testable import MailReports

/// `message/delivery-status` bodies as MTAs write them, tidy or not (RFC 3464 §2).
struct DeliveryStatusReaderTests {
    static func read(_ text: String) -> DeliveryStatus {
        DeliveryStatusReader.read(Array(text.utf8), maxRecipients: 100)
    }

    static func summary(_ status: DeliveryStatus) -> [String] {
        status.recipients.map { "\($0.address) \($0.action.rawValue) \($0.status ?? "-")" }
    }

    static let layouts: [(String, String, [String])] = [
        ("tidy", """
        Reporting-MTA: dns; mx.example.org

        Final-Recipient: rfc822; a@example.net
        Action: failed
        Status: 5.1.1

        Final-Recipient: rfc822; b@example.net
        Action: delayed
        Status: 4.4.1
        """, ["a@example.net failed 5.1.1", "b@example.net delayed 4.4.1"]),
        ("no empty lines at all", """
        Reporting-MTA: dns; mx.example.org
        Final-Recipient: rfc822; a@example.net
        Action: failed
        Status: 5.1.1
        Final-Recipient: rfc822; b@example.net
        Action: failed
        Status: 5.2.2
        """, ["a@example.net failed 5.1.1", "b@example.net failed 5.2.2"]),
        ("Original before Final, no empty lines", """
        Reporting-MTA: dns; mx.example.org
        Original-Recipient: rfc822;a@example.net
        Final-Recipient: rfc822;a@example.net
        Action: failed
        Status: 5.1.1
        Original-Recipient: rfc822;b@example.net
        Final-Recipient: rfc822;b@example.net
        Action: failed
        Status: 5.1.2
        """, ["a@example.net failed 5.1.1", "b@example.net failed 5.1.2"]),
        ("Final then Original (Postfix), then a new Original", """
        Final-Recipient: rfc822; a@example.net
        Original-Recipient: rfc822; a@example.net
        Action: failed
        Status: 5.1.1
        Original-Recipient: rfc822; b@example.net
        Final-Recipient: rfc822; b@example.net
        Action: failed
        Status: 5.1.1
        """, ["a@example.net failed 5.1.1", "b@example.net failed 5.1.1"]),
        ("Action first (Amazon SES)", """
        Reporting-MTA: dns; a8-30.smtp-out.example.com

        Action: failed
        Final-Recipient: rfc822; a@example.net
        Diagnostic-Code: smtp; 550 5.1.1 user unknown
        Status: 5.1.1
        Action: failed
        Final-Recipient: rfc822; b@example.net
        Status: 5.2.2
        """, ["a@example.net failed 5.1.1", "b@example.net failed 5.2.2"]),
        ("no per-message group", """
        Final-Recipient: rfc822; a@example.net
        Action: failed
        Status: 5.1.1
        """, ["a@example.net failed 5.1.1"]),
        ("empty line first", "\n\nReporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.0.0\n",
         ["a@example.net failed 5.0.0"]),
        ("only Original-Recipient", "Original-Recipient: rfc822; a@example.net\nAction: failed\n", ["a@example.net failed -"]),
        ("no recipient at all", "Reporting-MTA: dns; x\n\nAction: failed\nStatus: 5.1.1\n", []),
        ("extension field before a group", "Reporting-MTA: dns; x\n\nX-Display-Name: A\nFinal-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1\n",
         ["a@example.net failed 5.1.1"]),
    ]

    @Test(arguments: layouts)
    func groups(name: String, text: String, expected: [String]) {
        #expect(Self.summary(Self.read(text)) == expected, "\(name)")
    }

    @Test func perMessageFields() {
        let status = Self.read("""
        Original-Envelope-Id: 0190f3c2a1b2c3d4 (ours)
        Reporting-MTA: dns; mx.example.org.
        Arrival-Date: Tue, 3 Mar 2026 10:15:02 +0000

        Final-Recipient: rfc822; a@example.net
        Action: failed
        Status: 5.1.1
        """)
        #expect(status.originalEnvelopeID == "0190f3c2a1b2c3d4")
        #expect(status.reportingMTA == "mx.example.org")
        #expect(status.arrivalDate == "Tue, 3 Mar 2026 10:15:02 +0000")
    }

    static let statuses: [(String, String?, String?, ReportAction, String?)] = [
        // (Action, Status, Diagnostic-Code) → (action, status)
        ("failed", "5.1.1", "smtp; 550 5.1.1 unknown", .failed, "5.1.1"),
        ("failed", "5.0.0", "smtp; 550 5.1.1 unknown", .failed, "5.1.1"), // X.0.0 refined by the diagnostic
        ("failed", "5.0.0", "smtp; 450 4.2.2 full", .failed, "5.0.0"), // not across classes
        ("failed", "5.2.2", "smtp; 550 5.1.1 unknown", .failed, "5.2.2"), // a specific Status stands
        ("failed", nil, "smtp; 550 5.1.1 unknown", .failed, "5.1.1"),
        ("failed", nil, "smtp; 550 user unknown", .failed, "5.1.1"), // derived from the wording
        ("failed", nil, "smtp; 550 something", .failed, "5.0.0"), // derived from the reply code
        ("failed", nil, nil, .failed, nil),
        ("FAILED (permanent)", "5.1.1", nil, .failed, "5.1.1"),
        ("Delayed", "4.4.1", nil, .delayed, "4.4.1"),
        ("delivered", "2.0.0", nil, .delivered, "2.0.0"),
        ("relayed", "2.0.0", nil, .relayed, "2.0.0"),
        ("expanded", "2.0.0", nil, .expanded, "2.0.0"),
        ("", "4.4.7", nil, .delayed, "4.4.7"), // no action: from the status class
        ("bogus", "2.0.0", nil, .delivered, "2.0.0"),
        ("bogus", "5.1.1", nil, .failed, "5.1.1"),
        ("", nil, "smtp; 450 4.2.0 greylisted", .delayed, "4.2.0"),
    ]

    @Test(arguments: statuses)
    func actionAndStatus(action: String, status: String?, diagnostic: String?, expectedAction: ReportAction, expectedStatus: String?) {
        var text = "Final-Recipient: rfc822; a@example.net\n"
        if !action.isEmpty { text += "Action: \(action)\n" }
        if let status { text += "Status: \(status)\n" }
        if let diagnostic { text += "Diagnostic-Code: \(diagnostic)\n" }
        let recipient = Self.read(text).recipients.first
        #expect(recipient?.action == expectedAction)
        #expect(recipient?.status == expectedStatus)
    }

    @Test func classification() {
        let status = Self.read("""
        Final-Recipient: rfc822; hard@example.net
        Action: failed
        Status: 5.1.1

        Final-Recipient: rfc822; delayed@example.net
        Action: delayed
        Status: 5.1.1

        Final-Recipient: rfc822; ok@example.net
        Action: delivered
        Status: 2.0.0
        """)
        #expect(status.recipients.map(\.bounceClass) == [.hard, .soft, nil])
        #expect(status.recipients.map(\.suppress) == [true, false, false])
    }

    @Test func recipientLimit() {
        let text = (0..<50).map { "Final-Recipient: rfc822; r\($0)@example.net\nAction: failed\nStatus: 5.1.1\n" }.joined(separator: "\n")
        #expect(DeliveryStatusReader.read(Array(text.utf8), maxRecipients: 7).recipients.count == 7)
    }
}
