import Testing

@testable import MailMessage

struct MIMEParserTests {
    static func parse(_ text: String, limits: MIMELimits = MIMELimits()) -> MailMessage {
        MailMessage(Array(text.utf8), limits: limits)
    }

    static func text(_ m: MailMessage, _ range: Range<Int>) -> String {
        String(decoding: m.bytes[range], as: UTF8.self)
    }

    @Test func splitsMultipartWithPreambleAndEpilogue() throws {
        let m = Self.parse("""
        Content-Type: multipart/mixed; boundary="b"\r
        \r
        preamble\r
        --b\r
        Content-Type: text/plain\r
        \r
        one\r
        --b  \r
        \r
        two\r
        \r
        --b--\r
        epilogue\r

        """)
        let layout = try #require(m.root.multipart)
        #expect(layout.boundary == "b")
        #expect(Self.text(m, layout.preambleRange) == "preamble")
        #expect(Self.text(m, try #require(layout.epilogueRange)) == "epilogue\r\n")
        #expect(m.root.children.count == 2)
        let first = m.root.children[0]
        #expect(Self.text(m, first.headerRange) == "Content-Type: text/plain\r\n\r\n")
        #expect(Self.text(m, first.bodyRange) == "one") // the CRLF before the delimiter is the delimiter's
        let second = m.root.children[1]
        #expect(second.header.fields.isEmpty)
        #expect(second.contentType == .textPlain)
        #expect(Self.text(m, second.bodyRange) == "two\r\n")
        #expect(m.root.defects.isEmpty)
        #expect(m.allParts.count == 3)
    }

    @Test func nestedMultipartsAndDigest() throws {
        let m = Self.parse("""
        Content-Type: multipart/mixed; boundary=outer\r
        \r
        --outer\r
        Content-Type: multipart/alternative; boundary=inner\r
        \r
        --inner\r
        Content-Type: text/plain\r
        \r
        plain\r
        --inner\r
        Content-Type: text/html\r
        \r
        <p>html</p>\r
        --inner--\r
        --outer\r
        Content-Type: multipart/digest; boundary=d\r
        \r
        --d\r
        \r
        Subject: digested\r
        \r
        text\r
        --d--\r
        --outer--\r

        """)
        #expect(m.allParts.map(\.contentType.mimeType) == [
            "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "multipart/digest", "message/rfc822",
        ])
        #expect(m.allParts.map(\.depth) == [0, 1, 2, 2, 1, 2])
        let html = m.allParts[3]
        #expect(Self.text(m, html.bodyRange) == "<p>html</p>")
        #expect(m.allParts.allSatisfy { $0.defects.isEmpty })
    }

    @Test func messageRFC822IsOpaque() {
        let m = Self.parse("""
        Content-Type: multipart/mixed; boundary=x\r
        \r
        --x\r
        Content-Type: message/rfc822\r
        \r
        Content-Type: multipart/alternative; boundary=y\r
        \r
        --y\r
        Content-Type: text/html\r
        \r
        <a href="https://inner.example">x</a>\r
        --y--\r
        --x--\r

        """)
        #expect(m.allParts.map(\.contentType.mimeType) == ["multipart/mixed", "message/rfc822"])
        #expect(m.allParts[1].isLeaf)
    }

    @Test func missingCloseDelimiterKeepsLastPartToTheEnd() throws {
        let m = Self.parse("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n")
        #expect(m.root.children.count == 2)
        #expect(Self.text(m, m.root.children[1].bodyRange) == "two\r\n")
        #expect(m.root.defects.map(\.code) == [.missingCloseDelimiter])
        #expect(try #require(m.root.multipart).epilogueRange == nil)
    }

    static let opaque: [(String, MIMEDefect.Code)] = [
        ("Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n", .missingBoundary),
        ("Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\nx\r\n", .missingBoundary),
        ("Content-Type: multipart/mixed; boundary=zzz\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n", .missingStartDelimiter),
        ("Content-Type: multipart/mixed; boundary=b\r\n\r\n--bb\r\n\r\nx\r\n", .missingStartDelimiter), // a longer line is not the delimiter
        ("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b garbage\r\n\r\nx\r\n", .missingStartDelimiter),
        ("Content-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: base64\r\n\r\nLS1iDQo=\r\n", .missingStartDelimiter),
        ("Content-Type: \u{1}garbage\r\n\r\nx\r\n", .invalidContentType),
    ]

    @Test(arguments: opaque)
    func brokenMultipartIsAnOpaqueLeaf(text: String, defect: MIMEDefect.Code) {
        let m = Self.parse(text)
        #expect(m.root.isLeaf)
        #expect(m.root.children.isEmpty)
        #expect(m.root.defects.map(\.code).contains(defect))
        #expect(m.root.range == 0..<m.bytes.count)
    }

    @Test func nestingLimit() {
        let depth = 40
        var text = ""
        for level in 0..<depth { text += "Content-Type: multipart/mixed; boundary=b\(level)\r\n\r\n--b\(level)\r\n" }
        text += "Content-Type: text/plain\r\n\r\ndeep\r\n"
        for level in (0..<depth).reversed() { text += "--b\(level)--\r\n" }
        let m = Self.parse(text, limits: MIMELimits(maxNestingDepth: 32))
        let parts = m.allParts
        #expect(parts.count == 33)
        #expect(parts.last?.depth == 32)
        #expect(parts.last?.defects.map(\.code) == [.nestingTooDeep])
        #expect(parts.last?.isLeaf == true)
    }

    @Test func partLimit() {
        var text = "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        for i in 0..<20 { text += "--b\r\n\r\npart \(i)\r\n" }
        text += "--b--\r\n"
        let m = Self.parse(text, limits: MIMELimits(maxParts: 10))
        #expect(m.root.isLeaf)
        #expect(m.root.defects.map(\.code) == [.tooManyParts])
    }

    @Test func bareLineFeeds() throws {
        let m = Self.parse("Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/html\n\n<p>x</p>\n--b--\n")
        #expect(m.root.children.count == 1)
        #expect(Self.text(m, m.root.children[0].bodyRange) == "<p>x</p>")
        #expect(m.root.children[0].contentType.mimeType == "text/html")
    }

    @Test(arguments: ["", "\r\n", "garbage without header", "--b--", "\u{0}\u{1}\u{2}", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b"])
    func neverFailsOnGarbage(text: String) {
        let m = Self.parse(text)
        #expect(m.root.range.upperBound == m.bytes.count)
    }

    @Test func emptyPartsBetweenDelimiters() {
        let m = Self.parse("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n\r\nx\r\n--b--\r\n")
        #expect(m.root.children.count == 2)
        #expect(m.root.children[0].range.isEmpty)
    }

    @Test func decodedBody() {
        let m = Self.parse("Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n")
        #expect(m.decodedBody(of: m.root) == Array("hello".utf8))
        let other = Self.parse("Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n")
        #expect(other.decodedBody(of: other.root) == nil)
    }

    @Test func attachmentDisposition() {
        let m = Self.parse("Content-Disposition: ATTACHMENT; filename=a.html\r\nContent-Type: text/html\r\n\r\nx")
        #expect(m.root.isAttachment)
        #expect(!Self.parse("Content-Disposition: inline\r\n\r\nx").root.isAttachment)
    }
}
