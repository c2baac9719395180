import Testing
import MailMessage

@testable import MailReports

/// Dispatch between the readers, and the layouts the corpus does not hold.
struct ReportParserTests {
    static func parse(_ text: String) -> DeliveryReport {
        ReportParser.parse(Array(text.utf8))
    }

    static func dsn(_ status: String, partType: String = "message/delivery-status", reportType: String = "delivery-status") -> String {
        """
        From: MAILER-DAEMON@mx.example.org\r
        Subject: Delivery report\r
        Content-Type: multipart/report; report-type=\(reportType); boundary="b"\r
        \r
        --b\r
        Content-Type: text/plain\r
        \r
        Report.\r
        --b\r
        Content-Type: \(partType)\r
        \r
        \(status)\r
        --b--\r

        """
    }

    @Test func positiveDSNIsDelivered() {
        let report = Self.parse(Self.dsn("Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; a@example.net\r\nAction: delivered\r\nStatus: 2.0.0"))
        #expect(report.kind == .delivered)
        #expect(report.recipients.map(\.action) == [.delivered])
        #expect(report.recipients.first?.bounceClass == nil)
        #expect(report.recipients.first?.suppress == false)
    }

    @Test func failedWinsOverDelayed() {
        let report = Self.parse(Self.dsn("""
        Final-Recipient: rfc822; a@example.net\r
        Action: delayed\r
        Status: 4.4.1\r
        \r
        Final-Recipient: rfc822; b@example.net\r
        Action: failed\r
        Status: 5.1.1
        """))
        #expect(report.kind == .bounce)
        #expect(report.recipients.map(\.action) == [.delayed, .failed])
    }

    @Test func deliveryStatusLabelledAsText() {
        let report = Self.parse(Self.dsn("Final-Recipient: rfc822; a@example.net\r\nAction: failed\r\nStatus: 5.1.1", partType: "text/plain"))
        #expect(report.kind == .bounce)
        #expect(report.format == "rfc3464")
        #expect(report.recipients.map(\.address) == ["a@example.net"])
    }

    @Test func emptyDeliveryStatusFallsBackToTheText() {
        let text = """
        From: MAILER-DAEMON@mx.example.org\r
        Subject: Undelivered Mail Returned to Sender\r
        Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r
        \r
        --b\r
        Content-Type: text/plain\r
        \r
        This is the mail system at host mx.example.org.\r
        \r
        <a@example.net>: host mx.example.net[192.0.2.1] said: 550 5.1.1 unknown\r
        --b\r
        Content-Type: message/delivery-status\r
        \r
        Reporting-MTA: dns; mx.example.org\r
        --b--\r

        """
        let report = Self.parse(text)
        #expect(report.kind == .bounce)
        #expect(report.format == "postfix")
        #expect(report.recipients.map(\.status) == ["5.1.1"])
    }

    @Test func globalReportType() {
        let report = Self.parse(Self.dsn("Final-Recipient: utf-8; \\x{E9}l\\x{E8}ve@example.net\r\nAction: failed\r\nStatus: 5.1.1",
                                         partType: "message/global-delivery-status", reportType: "global-delivery-status"))
        #expect(report.format == "rfc6533")
        #expect(report.recipients.map(\.address) == ["\u{E9}l\u{E8}ve@example.net"])
    }

    @Test func complaintWithoutAnyFields() {
        // A feedback-report part with nothing ARF in it is not a complaint.
        let text = """
        From: someone@example.net\r
        Subject: hello\r
        Content-Type: multipart/report; report-type=feedback-report; boundary="b"\r
        \r
        --b\r
        Content-Type: text/plain\r
        \r
        Hi.\r
        --b\r
        Content-Type: message/feedback-report\r
        \r
        Nothing: here\r
        --b--\r

        """
        #expect(Self.parse(text).kind == .unknown)
    }

    @Test func authFailureReportDoesNotSuppress() {
        let text = """
        From: dmarc@example.net\r
        Subject: auth failure\r
        Content-Type: multipart/report; report-type=feedback-report; boundary="b"\r
        \r
        --b\r
        Content-Type: message/feedback-report\r
        \r
        Feedback-Type: auth-failure\r
        User-Agent: Example/1.0\r
        Version: 1\r
        Original-Rcpt-To: <a@example.net>\r
        Auth-Failure: dmarc\r
        --b--\r

        """
        let report = Self.parse(text)
        #expect(report.kind == .complaint)
        #expect(report.feedback?.feedbackType == "auth-failure")
        #expect(report.recipients.map(\.suppress) == [false])
    }

    @Test func plainTextNeedsABounceLookForGenericReading() {
        // A person's message that happens to contain an `<address>:` line is not a bounce…
        let person = "From: pat@example.net\r\nSubject: list\r\n\r\n<a@example.net>: 550 user unknown\r\n"
        #expect(Self.parse(person).kind == .unknown)
        // …but the same text from a mail system is.
        let system = "From: postmaster@example.net\r\nSubject: list\r\n\r\n<a@example.net>: 550 user unknown\r\n"
        let report = Self.parse(system)
        #expect(report.kind == .bounce)
        #expect(report.format == "text")
        #expect(report.recipients.map(\.status) == ["5.1.1"])
    }

    @Test func ourOwnAddressesAreNeverTheFailedRecipient() {
        let text = """
        From: MAILER-DAEMON@example.net\r
        To: b-abc@bounces.example.com\r
        Subject: failure notice\r
        \r
        Delivery to the following recipients failed.\r
        \r
        b-abc@bounces.example.com\r
        MAILER-DAEMON@example.net\r
        real@example.net\r
        \r
        """
        #expect(Self.parse(text).recipients.map(\.address) == ["real@example.net"])
    }

    @Test func xFailedRecipientsAsLastResort() {
        let text = "From: Mail Delivery System <Mailer-Daemon@example.org>\r\nX-Failed-Recipients: a@example.net, b@example.net\r\nSubject: oops\r\n\r\nNo details.\r\n"
        let report = Self.parse(text)
        #expect(report.kind == .bounce)
        #expect(report.recipients.map(\.address) == ["a@example.net", "b@example.net"])
        #expect(report.recipients.map(\.bounceClass) == [.soft, .soft]) // nothing said why: kept
    }

    @Test func htmlOnlyBounce() {
        let text = """
        From: postmaster@example.org\r
        Subject: Undeliverable: hello\r
        Content-Type: text/html\r
        \r
        <html><body><p>Delivery has failed to these recipients or groups:</p>\r
        <p><a href="mailto:gone@example.org">gone@example.org</a><br>The email address you entered couldn&#39;t be found.</p>\r
        <p>Remote Server returned &#39;550 5.1.1 User unknown&#39;</p></body></html>\r

        """
        let report = Self.parse(text)
        #expect(report.kind == .bounce)
        #expect(report.recipients.map(\.address) == ["gone@example.org"])
        #expect(report.recipients.map(\.status) == ["5.1.1"])
    }

    @Test func parseTakesAParsedMessage() {
        let bytes = Array(Self.dsn("Final-Recipient: rfc822; a@example.net\r\nAction: failed\r\nStatus: 5.1.1").utf8)
        #expect(ReportParser.parse(MailMessage(bytes)) == ReportParser.parse(bytes))
    }

    @Test func recipientLimitHoldsForEveryReader() {
        let limits = ReportLimits(maxRecipients: 3)
        let many = (0..<20).map { "Final-Recipient: rfc822; r\($0)@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n" }.joined(separator: "\r\n")
        #expect(ReportParser.parse(Array(Self.dsn(many).utf8), limits: limits).recipients.count == 3)
        let qmail = "From: MAILER-DAEMON@example.net\r\nSubject: failure notice\r\n\r\nHi. This is the qmail-send program at example.net.\r\n\r\n"
            + (0..<20).map { "<r\($0)@example.net>:\r\nno mailbox here by that name\r\n\r\n" }.joined()
        #expect(ReportParser.parse(Array(qmail.utf8), limits: limits).recipients.count == 3)
    }

    static let nothing: [String] = ["", "\r\n", "\r\n\r\n", "Subject: x", "From: MAILER-DAEMON@example.org\r\n\r\n", "\u{0}\u{0}\u{0}"]

    @Test(arguments: nothing)
    func nothingToReadIsUnknown(text: String) {
        let report = Self.parse(text)
        #expect(report.kind == .unknown)
        #expect(report.recipients.isEmpty)
    }
}
