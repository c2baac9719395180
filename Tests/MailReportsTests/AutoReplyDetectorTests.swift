import Testing

@testable import MailReports

/// Automatic replies are never bounces; bounces that look like automatic replies still are.
struct AutoReplyDetectorTests {
    static func report(_ header: String, body: String = "I am away.\r\n") -> DeliveryReport {
        ReportParser.parse(Array((header + "\r\n" + body).utf8))
    }

    static let autoReplies: [(String, String)] = [
        ("From: a@example.net\r\nSubject: Re: hello\r\nAuto-Submitted: auto-replied\r\n", "rfc3834"),
        ("From: a@example.net\r\nSubject: Re: hello\r\nAuto-Submitted: Auto-Replied (vacation)\r\n", "rfc3834"),
        ("From: a@example.net\r\nSubject: Re: hello\r\nX-Autoreply: yes\r\n", "autoreply-header"),
        ("From: a@example.net\r\nSubject: Re: hello\r\nX-Autorespond: Thanks\r\n", "autoreply-header"),
        ("From: a@example.net\r\nSubject: Re: hello\r\nPrecedence: auto_reply\r\n", "autoreply-header"),
        ("From: a@example.net\r\nSubject: Re: hello\r\nX-POST-MessageClass: 9; Autoresponder\r\n", "autoreply-header"),
        ("From: a@example.net\r\nSubject: Out of Office: hello\r\n", "autoreply-subject"),
        ("From: a@example.net\r\nSubject: Automatic reply: hello\r\n", "autoreply-subject"),
        ("From: a@example.net\r\nSubject: AUTO: hello\r\n", "autoreply-subject"),
        ("From: a@example.net\r\nSubject: [Auto-Reply] hello\r\n", "autoreply-subject"),
        ("From: a@example.net\r\nSubject: Vacation notice\r\n", "autoreply-subject"),
        ("From: a@example.net\r\nSubject: =?utf-8?Q?R=C3=A9ponse_automatique_:_hello?=\r\n", "autoreply-subject"),
        ("From: a@example.net\r\nSubject: Automatic reply: hello\r\nAuto-Submitted: auto-generated\r\n", "autoreply-subject"),
    ]

    @Test(arguments: autoReplies)
    func recognises(header: String, format: String) {
        let report = Self.report(header, body: "Your message could not be delivered: delivery failed, user unknown.\r\n")
        #expect(report.kind == .autoReply)
        #expect(report.format == format)
        #expect(report.recipients.isEmpty)
    }

    static let notAutoReplies: [String] = [
        // A mail system's bounce with Auto-Submitted: auto-replied (Postfix, Exim do this).
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\nSubject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\n",
        // A bounce whose original subject was an automatic-reply-like one.
        "From: postmaster@example.org\r\nSubject: Undeliverable: Vacation plans\r\n",
        // auto-generated alone is no auto-reply.
        "From: alerts@example.org\r\nSubject: Your report\r\nAuto-Submitted: auto-generated\r\n",
        "From: a@example.net\r\nSubject: Re: vacation photos? no, the vacation subject must lead\r\nX-Autoreply: no\r\n",
    ]

    @Test(arguments: notAutoReplies)
    func rejects(header: String) {
        let report = Self.report(header, body: "<a@example.net>: host x said: 550 5.1.1 User unknown\r\n")
        #expect(report.kind != .autoReply)
    }

    @Test func aDSNWithAutoSubmittedIsABounce() {
        let text = """
        From: MAILER-DAEMON@example.org\r
        Subject: Delivery Status Notification (Failure)\r
        Auto-Submitted: auto-replied\r
        Content-Type: multipart/report; report-type=delivery-status; boundary=b\r
        \r
        --b\r
        Content-Type: text/plain\r
        \r
        Out of Office? No: failed.\r
        --b\r
        Content-Type: message/delivery-status\r
        \r
        Reporting-MTA: dns; example.org\r
        \r
        Final-Recipient: rfc822; a@example.net\r
        Action: failed\r
        Status: 5.1.1\r
        --b--\r

        """
        let report = ReportParser.parse(Array(text.utf8))
        #expect(report.kind == .bounce)
        #expect(report.recipients.map(\.address) == ["a@example.net"])
    }

    @Test func repliedMessageID() {
        let report = Self.report("From: a@example.net\r\nSubject: Out of office\r\nIn-Reply-To: <one@example.com> (comment)\r\nReferences: <zero@example.com> <one@example.com>\r\n")
        #expect(report.returned?.messageID == "one@example.com")
        let fromReferences = Self.report("From: a@example.net\r\nSubject: Out of office\r\nReferences: <zero@example.com>\r\n  <one@example.com>\r\n")
        #expect(fromReferences.returned?.messageID == "one@example.com")
    }
}
