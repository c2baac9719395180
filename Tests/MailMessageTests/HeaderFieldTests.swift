import Testing

@testable import MailMessage

struct HeaderFieldTests {
    static func message(_ text: String) -> MailMessage {
        MailMessage(Array(text.utf8))
    }

    @Test func readsFieldsWithRawRanges() {
        let text = "From: a@b.example\r\nSubject: Hello\r\n  world\r\n\tagain\r\nX-Empty:\r\n\r\nbody\r\n"
        let m = Self.message(text)
        #expect(m.header.fields.map(\.name) == ["From", "Subject", "X-Empty"])
        #expect(m.header.value("subject") == "Hello  world\tagain") // RFC 5322 §2.2.3: CRLF removed, WSP kept
        #expect(m.header.value("X-EMPTY") == "")
        let subject = m.header.fields[1]
        #expect(String(decoding: m.bytes[subject.range], as: UTF8.self) == "Subject: Hello\r\n  world\r\n\tagain\r\n")
        #expect(m.root.bodyRange.lowerBound == text.utf8.count - "body\r\n".utf8.count)
        #expect(m.header.endOfFields == text.utf8.count - "\r\nbody\r\n".utf8.count)
        #expect(m.root.defects.isEmpty)
    }

    static let unfolding: [(String, String)] = [
        ("Subject: one\r\n\r\n", "one"),
        ("Subject:one\r\n\r\n", "one"),
        ("Subject:   padded   \r\n\r\n", "padded"),
        ("Subject: a\r\n b\r\n\r\n", "a b"),
        ("Subject: a\n b\n\n", "a b"), // bare LF, leniently
        ("Subject : obsolete space\r\n\r\n", "obsolete space"), // RFC 5322 §4.5
        ("Subject: caf\u{E9}\r\n\r\n", "caf\u{E9}"), // UTF-8 (RFC 6532)
    ]

    @Test(arguments: unfolding)
    func unfolds(text: String, expected: String) {
        #expect(Self.message(text).header.value("Subject") == expected)
    }

    @Test func latin1HeaderBytesDecodeAsWindows1252() {
        let bytes = Array("Subject: caf".utf8) + [0xE9, 0x80] + Array("\r\n\r\n".utf8)
        #expect(MailMessage(bytes).header.value("Subject") == "café€")
    }

    @Test func valuesAndContains() {
        let m = Self.message("Received: one\r\nReceived: two\r\nTo: x@y\r\n\r\n")
        #expect(m.header.values("received") == ["one", "two"])
        #expect(m.header.contains("TO"))
        #expect(!m.header.contains("Cc"))
        #expect(m.header.value("Cc") == nil)
    }

    @Test func headerWithoutEmptyLine() {
        let m = Self.message("Subject: x\r\nThis line is not a field\r\nmore\r\n")
        #expect(m.header.fields.count == 1)
        #expect(m.root.defects.map(\.code) == [.missingHeaderBodySeparator])
        #expect(String(decoding: m.body(of: m.root), as: UTF8.self) == "This line is not a field\r\nmore\r\n")
    }

    @Test func headerOnly() {
        let m = Self.message("Subject: x\r\nTo: y@z")
        #expect(m.header.fields.map(\.value) == ["x", "y@z"])
        #expect(m.root.bodyRange.isEmpty)
    }

    static let fromDomains: [(String, String?, String?)] = [
        ("a@b.example", "a@b.example", "b.example"),
        ("Name <a@B.Example>", "a@B.Example", "b.example"),
        ("\"Doe, Jane <x@wrong.example>\" <jane@right.example>", "jane@right.example", "right.example"),
        ("jane@right.example (Jane <x@wrong.example>)", "jane@right.example", "right.example"),
        ("=?UTF-8?Q?J=C3=BCrgen?= <j@example.de>", "j@example.de", "example.de"),
        ("\"john@home\"@work.example", "\"john@home\"@work.example", "work.example"),
        ("a@one.example, b@two.example", "a@one.example", "one.example"),
        ("Team: a@team.example, b@team.example;", "a@team.example", "team.example"),
        ("<@relay.example:a@routed.example>", "a@routed.example", "routed.example"),
        ("a@[192.0.2.1]", "a@[192.0.2.1]", "[192.0.2.1]"),
        ("Undisclosed", nil, nil),
        ("<>", nil, nil),
    ]

    @Test(arguments: fromDomains)
    func fromAddressAndDomain(from: String, address: String?, domain: String?) {
        let m = Self.message("From: \(from)\r\n\r\n")
        #expect(m.fromAddress == address)
        #expect(m.fromDomain == domain)
    }

    @Test func foldedFrom() {
        let m = Self.message("From: \"Jane Doe\"\r\n <jane@Example.org>\r\n\r\n")
        #expect(m.fromDomain == "example.org")
    }

    static let messageIDs: [(String, String?)] = [
        ("<abc@example.com>", "abc@example.com"),
        ("  <abc@example.com>  ", "abc@example.com"),
        ("(comment) <abc@example.com>", "abc@example.com"),
        ("abc@example.com", "abc@example.com"),
        ("<>", nil),
    ]

    @Test(arguments: messageIDs)
    func messageID(value: String, expected: String?) {
        #expect(Self.message("Message-ID: \(value)\r\n\r\n").messageID == expected)
    }

    @Test func noMessageID() {
        #expect(Self.message("Subject: x\r\n\r\n").messageID == nil)
        #expect(Self.message("Subject: x\r\n\r\n").fromDomain == nil)
    }
}
