import Testing

@testable import MailReports

/// The hard/soft rules of ``BounceClassifier``, one row per rule and per known trap.
struct BounceClassifierTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var code: Int?
        var enhanced: String?
        var text: String?
        var expected: BounceClass
        var reason: BounceReason
        var testDescription: String { "\(code.map(String.init) ?? "-") \(enhanced ?? "-") \(text ?? "-")" }
    }

    static let rows: [Row] = [
        // Rule 1: not failures, transient failures.
        Row(code: 250, enhanced: "2.0.0", text: "ok", expected: .soft, reason: .other),
        Row(code: 450, enhanced: "4.2.0", text: "Greylisted", expected: .soft, reason: .temporary),
        Row(code: 452, enhanced: "4.2.2", text: "Mailbox full", expected: .soft, reason: .mailboxFull),
        Row(code: 450, enhanced: "4.1.1", text: "user unknown, try later", expected: .soft, reason: .temporary),
        Row(code: 451, enhanced: "4.7.1", text: "Service unavailable", expected: .soft, reason: .policy),
        Row(code: 421, enhanced: nil, text: "too many connections", expected: .soft, reason: .policy),
        Row(code: nil, enhanced: "4.4.7", text: "Message delayed", expected: .soft, reason: .temporary),
        // The basic code decides the class when the enhanced code disagrees (RFC 5321 §4.2.1).
        Row(code: 452, enhanced: "5.1.1", text: nil, expected: .soft, reason: .temporary),
        // Rule 2: the sender.
        Row(code: 553, enhanced: "5.1.8", text: "Sender address rejected: Domain not found", expected: .soft, reason: .sender),
        Row(code: 550, enhanced: "5.1.7", text: "bad sender mailbox syntax", expected: .soft, reason: .sender),
        Row(code: 554, enhanced: "5.7.1", text: "<b-1@bounces.example.com>: Sender address rejected: Access denied", expected: .soft, reason: .sender),
        Row(code: 550, enhanced: nil, text: "rejected (in reply to MAIL FROM command)", expected: .soft, reason: .sender),
        // Rule 3: 5.1.x.
        Row(code: 550, enhanced: "5.1.1", text: "User unknown", expected: .hard, reason: .badMailbox),
        Row(code: 550, enhanced: "5.1.1", text: nil, expected: .hard, reason: .badMailbox),
        Row(code: nil, enhanced: "5.1.2", text: "Host or domain name not found", expected: .hard, reason: .badDomain),
        Row(code: 550, enhanced: "5.1.3", text: "bad address syntax", expected: .hard, reason: .badMailbox),
        Row(code: 551, enhanced: "5.1.6", text: "User has moved", expected: .hard, reason: .badMailbox),
        Row(code: 556, enhanced: "5.1.10", text: "Recipient address has null MX", expected: .hard, reason: .badDomain),
        Row(code: 550, enhanced: "5.1.0", text: "Address rejected", expected: .hard, reason: .badMailbox),
        // Rule 4: mailbox status.
        Row(code: 550, enhanced: "5.2.1", text: "The email account that you tried to reach is disabled", expected: .hard, reason: .mailboxDisabled),
        Row(code: 550, enhanced: "5.2.1", text: "The user is receiving mail at a rate that prevents delivery; try again later", expected: .soft, reason: .temporary),
        Row(code: 552, enhanced: "5.2.2", text: "Mailbox full", expected: .soft, reason: .mailboxFull),
        Row(code: 552, enhanced: "5.2.3", text: "Message too big for this mailbox", expected: .soft, reason: .messageTooLarge),
        Row(code: 552, enhanced: "5.3.4", text: "Message size exceeds fixed limit", expected: .soft, reason: .messageTooLarge),
        // Rule 5: policy is soft whatever the code.
        Row(code: 554, enhanced: "5.7.1", text: "Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", expected: .soft, reason: .policy),
        Row(code: 550, enhanced: "5.7.1", text: "Message rejected as spam", expected: .soft, reason: .policy),
        Row(code: 550, enhanced: "5.7.1", text: "part of their network is on our block list (S3150)", expected: .soft, reason: .policy),
        Row(code: 550, enhanced: "5.7.1", text: "Your IP is blacklisted", expected: .soft, reason: .policy),
        Row(code: 550, enhanced: "5.7.1", text: "192.0.2.1 is listed at bl.example.org", expected: .soft, reason: .policy),
        Row(code: 550, enhanced: "5.7.1", text: "poor reputation", expected: .soft, reason: .policy),
        Row(code: 550, enhanced: "5.7.26", text: "This mail is unauthenticated and has been blocked", expected: .soft, reason: .policy),
        Row(code: 554, enhanced: "5.7.1", text: "Recipient address rejected: blocked by policy", expected: .soft, reason: .policy),
        Row(code: 550, enhanced: "5.0.0", text: "Message refused by content filter: virus found", expected: .soft, reason: .policy),
        // Rule 6: the address, in words.
        Row(code: 554, enhanced: "5.7.1", text: "<a@example.net>: Relay access denied", expected: .hard, reason: .recipientRejected),
        Row(code: 550, enhanced: "5.7.1", text: "Unable to relay", expected: .hard, reason: .recipientRejected),
        Row(code: 550, enhanced: "5.7.1", text: "Recipient address rejected: the recipient is not authorized to receive mail", expected: .hard, reason: .recipientRejected),
        Row(code: 550, enhanced: "5.7.1", text: "RESOLVER.ADR.RecipNotFound; not found", expected: .hard, reason: .badMailbox),
        Row(code: 550, enhanced: "5.7.1", text: "recipient rejected", expected: .hard, reason: .recipientRejected),
        Row(code: 550, enhanced: "5.4.1", text: "Recipient address rejected: Access denied. AS(201806281)", expected: .hard, reason: .recipientRejected),
        Row(code: 550, enhanced: "5.4.4", text: "Host or domain name not found", expected: .hard, reason: .badDomain),
        Row(code: 550, enhanced: "5.0.0", text: "user unknown", expected: .hard, reason: .badMailbox),
        Row(code: 550, enhanced: "5.5.0", text: "Requested action not taken: mailbox unavailable (S2017062302)", expected: .hard, reason: .badMailbox),
        Row(code: 550, enhanced: nil, text: "No such user here", expected: .hard, reason: .badMailbox),
        Row(code: nil, enhanced: nil, text: "User x (x@example.org) not listed in Domino Directory", expected: .hard, reason: .badMailbox),
        Row(code: 554, enhanced: nil, text: "delivery error: dd This user doesn't have a example.net account", expected: .hard, reason: .badMailbox),
        Row(code: nil, enhanced: nil, text: "Unrouteable address", expected: .hard, reason: .badDomain),
        Row(code: 554, enhanced: nil, text: "This mailbox is disabled (554.30)", expected: .hard, reason: .mailboxDisabled),
        // Rule 7: the rest is soft.
        Row(code: 552, enhanced: nil, text: "Quota exceeded", expected: .soft, reason: .mailboxFull),
        Row(code: 554, enhanced: nil, text: "message too large", expected: .soft, reason: .messageTooLarge),
        Row(code: 550, enhanced: "5.7.0", text: "Something about security", expected: .soft, reason: .policy),
        Row(code: 550, enhanced: nil, text: "Requested action not taken", expected: .soft, reason: .other),
        Row(code: nil, enhanced: nil, text: nil, expected: .soft, reason: .other),
        Row(code: 550, enhanced: "5.0.0", text: "'arathib@vnet.IBM.COM' is not a registered gateway user", expected: .soft, reason: .other),
    ]

    @Test(arguments: rows)
    func classifies(row: Row) {
        let result = BounceClassifier.classify(statusCode: row.code, enhancedCode: row.enhanced, diagnostic: row.text)
        #expect(result.bounceClass == row.expected)
        #expect(result.reason == row.reason)
        #expect(result.suppress == (row.expected == .hard))
    }

    /// Codes are found in the diagnostic when not given.
    @Test func codesFromTheDiagnostic() {
        let result = BounceClassifier.classify(statusCode: nil, enhancedCode: nil, diagnostic: "550 5.1.1 <a@example.net>: no")
        #expect(result == BounceClassification(bounceClass: .hard, reason: .badMailbox))
        let transient = BounceClassifier.classify(statusCode: nil, enhancedCode: nil, diagnostic: "451 4.3.0 try later")
        #expect(transient.bounceClass == .soft)
    }

    /// The engine's synchronous rule (`TransportOutcome.bounceClass`) calls every 5.1.x hard;
    /// this classifier agrees for every recipient-address code and differs only for the two
    /// sender codes 5.1.7 and 5.1.8.
    @Test(arguments: 0...15)
    func agreesWithTheEngineOnAddressingCodes(detail: Int) {
        let result = BounceClassifier.classify(statusCode: 550, enhancedCode: "5.1.\(detail)", diagnostic: "rejected")
        #expect(result.bounceClass == (detail == 7 || detail == 8 ? .soft : .hard))
    }

    /// Whatever the wording, a 4xx never suppresses.
    @Test(arguments: ["user unknown", "Relay access denied", "mailbox disabled", "no such domain"])
    func transientNeverSuppresses(text: String) {
        #expect(!BounceClassifier.classify(statusCode: 450, enhancedCode: nil, diagnostic: text).suppress)
    }
}
