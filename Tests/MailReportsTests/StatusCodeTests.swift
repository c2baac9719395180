import Testing

@testable import MailReports

/// Enhanced status codes (RFC 3463) and basic reply codes (RFC 5321) in report text.
struct StatusCodeTests {
    static let parsing: [(String, String?)] = [
        ("5.1.1", "5.1.1"),
        ("  4.4.7", "4.4.7"),
        ("5.0.0 (permanent failure)", "5.0.0"),
        ("5.1.10", "5.1.10"),
        ("5.7.26", "5.7.26"),
        ("2.0.0", "2.0.0"),
        ("5.001.002", "5.1.2"),
        ("3.1.1", nil), // class 3 does not exist
        ("5.1", nil),
        ("5.1.", nil),
        ("5.1.1234", nil),
        ("5.1.1a", nil),
        ("5.1.1.1", nil), // an address, not a code
        ("x5.1.1", nil),
        ("", nil),
    ]

    @Test(arguments: parsing)
    func parses(text: String, expected: String?) {
        #expect(EnhancedStatusCode(parsing: text)?.description == expected)
    }

    static let inText: [(String, String?)] = [
        ("550 5.1.1 <a@example.net>: Recipient address rejected", "5.1.1"),
        ("550-5.1.1 The email account that you tried to reach does not exist", "5.1.1"),
        ("Sorry, no mailbox here by that name. vpopmail (#5.1.1)", "5.1.1"),
        ("<mail.corp.example.org #5.1.1 smtp;550 5.1.1 User unknown>", "5.1.1"),
        ("host mx.example.net[192.0.2.5] said: 550 5.2.2 full", "5.2.2"), // the IP is skipped
        ("connect to 10.5.1.1:25: timed out", nil),
        ("host 5.1.1.1 refused", nil),
        ("This mailbox is disabled (554.30)", nil),
        ("version v2.4.5", nil),
        ("nothing here", nil),
    ]

    @Test(arguments: inText)
    func findsInText(text: String, expected: String?) {
        #expect(EnhancedStatusCode.first(in: text)?.description == expected)
    }

    static let replyCodes: [(String, Int?)] = [
        ("550 5.1.1 user unknown", 550),
        ("550-5.7.1 blocked", 550),
        ("host mx[192.0.2.1] said: 452 4.2.2 full", 452),
        ("Remote Server returned '554 5.7.1 denied'", 554),
        ("smtp;550 no", 550),
        ("<<< 550 MAILBOX NOT FOUND", 550),
        ("(#550) rejected", 550),
        ("x550 rejected", nil),
        ("250 2.1.0 Ok", nil), // success codes are not failures
        ("port 5500 closed", nil),
        ("554.30", nil),
        ("1550 x", nil),
        ("at 10:55:16 +0500", nil),
        ("error 599 x", nil), // the second digit of a reply code is 0–5
        ("", nil),
    ]

    @Test(arguments: replyCodes)
    func findsReplyCodes(text: String, expected: Int?) {
        #expect(ReplyCode.first(in: text) == expected)
    }
}
