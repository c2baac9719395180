import Testing

@testable import MailReports

/// The field syntax of delivery-status and feedback-report bodies: folding, groups, types.
struct ReportFieldReaderTests {
    static func items(_ text: String) -> [String] {
        ReportFieldReader.items(Array(text.utf8)).map {
            switch $0 {
            case .field(let f): "\(f.name)=\(f.value)"
            case .separator: "|"
            }
        }
    }

    static let cases: [(String, [String])] = [
        ("A: 1\r\nB: 2\r\n", ["a=1", "b=2"]),
        ("A: 1\nB: 2\n", ["a=1", "b=2"]), // bare LF
        ("A: 1\r\n\r\nB: 2\r\n", ["a=1", "|", "b=2"]),
        ("A: 1\r\n   \r\nB: 2\r\n", ["a=1", "|", "b=2"]), // whitespace-only line separates
        ("A: 1\r\n\r\n\r\n\r\nB: 2", ["a=1", "|", "b=2"]), // several empty lines are one separator
        ("\r\n\r\nA: 1\r\n", ["|", "a=1"]),
        // RFC 5322 §2.2.3 folding; the fold's indentation becomes one space.
        ("Diagnostic-Code: smtp; 550 'a@b' is not a\r\n      registered gateway user\r\n", ["diagnostic-code=smtp; 550 'a@b' is not a registered gateway user"]),
        ("X: one\r\n\ttwo\r\n three\r\n", ["x=one two three"]),
        // A line that is not a field continues the field before it (broken folding).
        ("Diagnostic-Code: smtp; 550 first half\r\nsecond half\r\nStatus: 5.0.0\r\n", ["diagnostic-code=smtp; 550 first half second half", "status=5.0.0"]),
        // …but not across an empty line, and not before any field.
        ("garbage line\r\nA: 1\r\n\r\nstray\r\n", ["a=1", "|"]),
        // Names: any case, WSP before the colon (RFC 5322 §4.5.x obs syntax), trimmed values.
        ("FINAL-RECIPIENT :  rfc822; a@b.example  \r\n", ["final-recipient=rfc822; a@b.example"]),
        ("X-Postfix-Queue-ID: 4Q2X\r\n", ["x-postfix-queue-id=4Q2X"]),
        ("Empty:\r\n", ["empty="]),
        // A colon without a name, or a name with odd bytes, is not a field.
        (": nothing\r\n<a@b.example>: not a field\r\nA: 1\r\n", ["a=1"]),
        ("", []),
    ]

    @Test(arguments: cases)
    func reads(text: String, expected: [String]) {
        #expect(Self.items(text) == expected)
    }

    @Test func fieldsIgnoresGroups() {
        let fields = ReportFieldReader.fields(Array("Feedback-Type: abuse\r\n\r\nVersion: 1\r\n".utf8))
        #expect(fields.map(\.name) == ["feedback-type", "version"])
    }

    @Test func fieldLimit() {
        let text = String(repeating: "X: 1\r\n", count: 50)
        #expect(ReportFieldReader.items(Array(text.utf8), maxFields: 10).count == 10)
    }

    static let typed: [(String, String?, String)] = [
        ("rfc822; a@example.com", "rfc822", "a@example.com"),
        ("RFC822;a@example.com", "rfc822", "a@example.com"),
        ("  dns ;  mx.example.net  ", "dns", "mx.example.net"),
        ("smtp; 550 5.1.1 user unknown; sorry", "smtp", "550 5.1.1 user unknown; sorry"),
        ("X-Postfix; connect to mx[192.0.2.1]:25", "x-postfix", "connect to mx[192.0.2.1]:25"),
        ("a@example.com", nil, "a@example.com"), // no type at all
        ("\"x;y\"@example.com", nil, "\"x;y\"@example.com"), // a semicolon that is not after a type
        ("550 user unknown; try later", nil, "550 user unknown; try later"),
    ]

    @Test(arguments: typed)
    func typedValues(raw: String, type: String?, value: String) {
        let typed = TypedValue(raw)
        #expect(typed.type == type)
        #expect(typed.value == value)
    }

    static let addresses: [(String, Bool, String?)] = [
        ("rfc822; nobody@example.net", false, "nobody@example.net"),
        ("rfc822;<nobody@example.net>", false, "nobody@example.net"),
        ("RFC822; <first+tag@example.net> (primary mailbox)", false, "first+tag@example.net"),
        ("rfc822; nobody@example.net (comment (nested)) ", false, "nobody@example.net"),
        ("nobody@example.net", false, "nobody@example.net"),
        ("rfc822; \"odd (not a comment)\"@example.net", false, "\"odd (not a comment)\"@example.net"),
        ("utf-8; jos\\x{E9}@example.net", false, "jos\u{E9}@example.net"), // RFC 6533 §3
        ("utf-8; \\x{1F600}@example.net", false, "\u{1F600}@example.net"),
        ("utf-8; bad\\x{ZZ}@example.net", false, "bad\\x{ZZ}@example.net"), // malformed: left alone
        ("rfc822; first+2Btag@example.net", true, "first+tag@example.net"), // RFC 3461 §4 xtext
        ("rfc822; a+3Db@example.net", true, "a=b@example.net"),
        ("rfc822; user+40example.net", true, "user@example.net"),
        ("rfc822; user+AB@example.net", true, "user+AB@example.net"), // a plus tag, not xtext
        ("rfc822; first+2Btag@example.net", false, "first+2Btag@example.net"), // Final-Recipient: as written
        ("rfc822;", false, nil),
        ("rfc822; <>", false, nil),
        ("", false, nil),
    ]

    @Test(arguments: addresses)
    func addressesFromFields(raw: String, xtext: Bool, expected: String?) {
        #expect(ReportValue.address(raw, xtext: xtext) == expected)
    }

    @Test func mtaNamesAndDiagnostics() {
        #expect(ReportValue.mtaName("dns; mx.example.net.") == "mx.example.net")
        #expect(ReportValue.mtaName("DNS; mx.example.net (Postfix)") == "mx.example.net")
        #expect(ReportValue.mtaName("dns;") == nil)
        #expect(ReportValue.diagnostic("smtp; 550 5.1.1 (in reply to RCPT TO command)") == "550 5.1.1 (in reply to RCPT TO command)")
        #expect(ReportValue.diagnostic("X-Postfix; host not found") == "host not found")
        #expect(ReportValue.diagnostic("smtp;") == nil)
    }

    @Test func comments() {
        #expect(ReportValue.removingComments("5.0.0 (permanent failure)") == "5.0.0 ")
        #expect(ReportValue.removingComments("a (b (c) d) e") == "a  e")
        #expect(ReportValue.removingComments("\"(quoted)\" x") == "\"(quoted)\" x")
        #expect(ReportValue.removingComments("a (unterminated") == "a ")
        #expect(ReportValue.removingComments("a (escaped \\) paren) b") == "a  b")
    }
}
