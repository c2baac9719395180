import Testing

@testable import MailMessage

struct ContentTypeTests {
    static let valid: [(String, String, [String: String])] = [
        ("text/plain", "text/plain", [:]),
        ("TEXT/HTML; Charset=UTF-8", "text/html", ["charset": "UTF-8"]),
        ("text/html; charset=\"utf-8\"", "text/html", ["charset": "utf-8"]),
        ("multipart/mixed; boundary=\"----=_Part_1\"", "multipart/mixed", ["boundary": "----=_Part_1"]),
        ("multipart/mixed; boundary=----=_Part_1", "multipart/mixed", ["boundary": "----=_Part_1"]), // unquoted tspecials, leniently
        ("multipart/alternative;\r\n boundary=\"b\"; foo=bar;", "multipart/alternative", ["boundary": "b", "foo": "bar"]),
        ("text/plain (a comment); charset=us-ascii (another)", "text/plain", ["charset": "us-ascii"]),
        ("text/plain; name=\"a \\\"quoted\\\" name\"", "text/plain", ["name": "a \"quoted\" name"]),
        ("text / plain ; charset = utf-8", "text/plain", ["charset": "utf-8"]),
        ("text/plain; charset=utf-8; charset=latin1", "text/plain", ["charset": "utf-8"]), // first wins
        ("text/plain; novalue; charset=utf-8", "text/plain", ["charset": "utf-8"]),
        // RFC 2231 §3–4.
        ("application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A",
         "application/x-stuff", ["title": "This is ***fun***"]),
        ("application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"",
         "application/x-stuff", ["title": "This is even more ***fun*** isn't it!"]),
        ("application/octet-stream; name*1=\"world\"; name*0=\"hello \"", "application/octet-stream", ["name": "hello world"]),
        ("application/octet-stream; name*=UTF-8''Pr%C3%A4sentation.pdf", "application/octet-stream", ["name": "Präsentation.pdf"]),
        ("application/octet-stream; name*=iso-8859-1''caf%E9", "application/octet-stream", ["name": "café"]),
    ]

    @Test(arguments: valid)
    func parses(value: String, mimeType: String, parameters: [String: String]) throws {
        let type = try #require(ContentType(parsing: value))
        #expect(type.mimeType == mimeType)
        #expect(type.parameters == parameters)
    }

    @Test(arguments: ["", "text", "/plain", "text/", "; charset=utf-8", "(only a comment)"])
    func rejects(value: String) {
        #expect(ContentType(parsing: value) == nil)
    }

    static let encodings: [(String, ContentTransferEncoding)] = [
        ("7bit", .sevenBit), ("8BIT", .eightBit), ("Binary", .binary),
        ("quoted-printable", .quotedPrintable), (" Base64 ", .base64), ("base64 (comment)", .base64),
        ("x-uuencode", .other("x-uuencode")),
    ]

    @Test(arguments: encodings)
    func transferEncoding(value: String, expected: ContentTransferEncoding) {
        #expect(ContentTransferEncoding(parsing: value) == expected)
    }
}
