import Testing

@testable import MailMessage

struct TrackingRewriterTests {
    static let options = TrackingOptions(
        clickTracking: { _, index in "https://t.example/c/\(index)" },
        openPixelURL: "https://t.example/o/1",
        unsubscribeURL: "https://t.example/u/1"
    )

    static func rewrite(_ text: String, _ options: TrackingOptions = options) throws -> (String, TrackedMessage) {
        let result = try TrackingRewriter.rewrite(Array(text.utf8), options: options)
        return (String(decoding: result.bytes, as: UTF8.self), result)
    }

    static let pixel = String(decoding: ContentRewritePlan.openPixelTag(for: "https://t.example/o/1"), as: UTF8.self)

    @Test func nothingEnabledLeavesBytesAlone() throws {
        let text = "Content-Type: text/html\r\n\r\n<a href=\"https://a.example\">{{unsubscribe_url}}</a>\r\n"
        let (out, result) = try Self.rewrite(text, TrackingOptions())
        #expect(out == text)
        #expect(result.rewrittenPartCount == 0)
    }

    @Test func singleHTMLPart() throws {
        let (out, result) = try Self.rewrite("Content-Type: text/html\r\n\r\n<body><a href=\"https://a.example\">x</a></body>\r\n")
        #expect(out == "Content-Type: text/html\r\n\r\n<body><a href=\"https://t.example/c/0\">x</a>\(Self.pixel)</body>\r\n")
        #expect(result.originalLinks == ["https://a.example"])
        #expect(result.openPixelCount == 1)
    }

    @Test func nonMIMEMessageIsPlainText() throws {
        let text = "Subject: x\r\n\r\n<a href=\"https://a.example\">not html</a> {{unsubscribe_url}}\r\n"
        let (out, result) = try Self.rewrite(text)
        #expect(out == "Subject: x\r\n\r\n<a href=\"https://a.example\">not html</a> https://t.example/u/1\r\n")
        #expect(result.openPixelCount == 0)
        #expect(result.originalLinks.isEmpty)
        #expect(result.unsubscribePlaceholderCount == 1)
    }

    @Test func headerEdits() throws {
        let text = "From: a@b.example\r\nX-Tern-Track: yes\r\n  folded\r\nSubject: s\r\nx-tern-track: again\r\nList-Id: <l.example>\r\n\r\nbody\r\n"
        var options = TrackingOptions(removedHeaderFields: ["X-Tern-Track"])
        options.addedHeaderFields = [
            AddedHeaderField(name: "List-Unsubscribe", value: "<https://t.example/u/1>"),
            AddedHeaderField(name: "List-Id", value: "<other.example>"), // present: not added
            AddedHeaderField(name: "List-Unsubscribe-Post", value: "List-Unsubscribe=One-Click"),
        ]
        let (out, _) = try Self.rewrite(text, options)
        #expect(out == """
            From: a@b.example\r
            Subject: s\r
            List-Id: <l.example>\r
            List-Unsubscribe: <https://t.example/u/1>\r
            List-Unsubscribe-Post: List-Unsubscribe=One-Click\r
            \r
            body\r

            """)
    }

    @Test func removeThenAddReplaces() throws {
        let options = TrackingOptions(
            removedHeaderFields: ["List-Unsubscribe"],
            addedHeaderFields: [AddedHeaderField(name: "List-Unsubscribe", value: "<https://new.example>")]
        )
        let (out, _) = try Self.rewrite("List-Unsubscribe: <https://old.example>\r\nSubject: s\r\n\r\nb", options)
        #expect(out == "Subject: s\r\nList-Unsubscribe: <https://new.example>\r\n\r\nb")
    }

    @Test func longAddedFieldIsFolded() throws {
        let value = (0..<6).map { "<https://unsubscribe.example/a/very/long/path/\($0)>" }.joined(separator: ", ")
        let options = TrackingOptions(addedHeaderFields: [AddedHeaderField(name: "List-Unsubscribe", value: value)])
        let (out, _) = try Self.rewrite("Subject: s\r\n\r\nb", options)
        let message = MailMessage(Array(out.utf8))
        #expect(message.header.value("List-Unsubscribe") == value)
        for line in out.split(separator: "\r\n") { #expect(line.utf8.count <= 78) }
    }

    @Test func headerAddedToHeaderWithoutEmptyLine() throws {
        let options = TrackingOptions(addedHeaderFields: [AddedHeaderField(name: "X-A", value: "1")])
        #expect(try Self.rewrite("Subject: s", options).0 == "Subject: s\r\nX-A: 1\r\n")
        #expect(try Self.rewrite("Subject: s\r\n", options).0 == "Subject: s\r\nX-A: 1\r\n")
        #expect(try Self.rewrite("Subject: s\r\nnot a field\r\n", options).0 == "Subject: s\r\nX-A: 1\r\n\r\nnot a field\r\n")
    }

    static let endOfMessageCases: [(String, String)] = [
        // An empty HTML body at the end of the message: the pixel line still ends with CRLF.
        ("Content-Type: text/html\r\n\r\n", "Content-Type: text/html\r\n\r\nPIXEL\r\n"),
        // No empty line and no line break after the header: both are added.
        ("Content-Type: text/html", "Content-Type: text/html\r\n\r\nPIXEL\r\n"),
        // A body without a final line break gets one.
        ("Content-Type: text/html\r\n\r\n<p>x</p>", "Content-Type: text/html\r\n\r\n<p>x</p>PIXEL\r\n"),
        ("Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPHA+eDwvcD4=",
         "Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nBASE64\r\n"),
        ("Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>x</p>",
         "Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nQP=\r\n"),
    ]

    @Test(arguments: endOfMessageCases)
    func lastLineEndsWithCRLF(text: String, expected: String) throws {
        let (out, _) = try Self.rewrite(text, TrackingOptions(openPixelURL: "https://t.example/o/1"))
        let base64 = String(decoding: MIMEBase64.encode(Array("<p>x</p>\(Self.pixel)".utf8)), as: UTF8.self)
        let qp = String(decoding: QuotedPrintable.encode(Array("<p>x</p>\(Self.pixel)".utf8)), as: UTF8.self)
        #expect(out == expected.replacingOccurrences(of: Array("PIXEL".utf8), with: Self.pixel)
            .replacingOccurrences(of: Array("BASE64".utf8), with: base64)
            .replacingOccurrences(of: Array("QP".utf8), with: qp))
        Self.expectLinesWithinLimits(out)
    }

    @Test func removedLastFieldWithoutLineBreak() throws {
        let options = TrackingOptions(removedHeaderFields: ["X-Tern-Track"], addedHeaderFields: [AddedHeaderField(name: "X-A", value: "1")])
        #expect(try Self.rewrite("Subject: s\r\nX-Tern-Track: 1", options).0 == "Subject: s\r\nX-A: 1\r\n")
    }

    static let invalidOptions: [(TrackingOptions, TrackingRewriteError.Code)] = [
        (TrackingOptions(addedHeaderFields: [AddedHeaderField(name: "Bad Name", value: "x")]), .invalidHeaderField),
        (TrackingOptions(addedHeaderFields: [AddedHeaderField(name: "X-A", value: "x\r\nBcc: victim@example.com")]), .invalidHeaderField),
        (TrackingOptions(addedHeaderFields: [AddedHeaderField(name: "X-A", value: String(repeating: "x", count: 1000))]), .invalidHeaderField),
        (TrackingOptions(removedHeaderFields: ["content-type"]), .protectedHeaderField),
        (TrackingOptions(openPixelURL: "https://t.example/o 1"), .invalidURL),
        (TrackingOptions(unsubscribeURL: "https://t.example/u\n"), .invalidURL),
        (TrackingOptions(unsubscribeURL: "https://t.example/ü"), .invalidURL),
        (TrackingOptions(unsubscribeURL: "https://t.example/u", unsubscribePlaceholder: ""), .invalidPlaceholder),
    ]

    @Test(arguments: invalidOptions)
    func rejectsOptions(options: TrackingOptions, code: TrackingRewriteError.Code) {
        #expect(throws: TrackingRewriteError.self) { try TrackingRewriter.rewrite(Array("Subject: s\r\n\r\nb".utf8), options: options) }
        do {
            _ = try TrackingRewriter.rewrite(Array("Subject: s\r\n\r\nb".utf8), options: options)
        } catch {
            #expect(error.code == code)
        }
    }

    @Test func longLineSwitchesToQuotedPrintableReplacingTheField() throws {
        let html = "<p>" + String(repeating: "<a href=\"https://a.example/\">x</a>", count: 25) + "</p>"
        #expect(html.utf8.count < 998)
        let text = "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: 7BIT\r\nX-Other: kept\r\n\r\n\(html)\r\n--b--\r\n"
        let (out, result) = try Self.rewrite(text)
        #expect(result.originalLinks.count == 25)
        let message = MailMessage(Array(out.utf8))
        let part = message.root.children[0]
        #expect(part.transferEncoding == .quotedPrintable)
        #expect(part.header.fields.map(\.name) == ["Content-Type", "Content-Transfer-Encoding", "X-Other"])
        let decoded = String(decoding: try #require(message.decodedBody(of: part)), as: UTF8.self)
        #expect(decoded.contains("https://t.example/c/24"))
        #expect(decoded.hasSuffix(Self.pixel))
        Self.expectLinesWithinLimits(out)
    }

    @Test func longLineAddsTheFieldWhenAbsent() throws {
        let html = String(repeating: "<a href=\"https://a.example/\">x</a>", count: 40)
        let text = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n\(html)\r\n--b--\r\n"
        let (out, _) = try Self.rewrite(text)
        let part = MailMessage(Array(out.utf8)).root.children[0]
        #expect(part.header.fields.map(\.name) == ["Content-Type", "Content-Transfer-Encoding"])
        #expect(part.transferEncoding == .quotedPrintable)
        Self.expectLinesWithinLimits(out)
    }

    @Test func nonMIMELongLineGetsMIMEVersionToo() throws {
        var options = Self.options
        options.unsubscribeURL = "https://t.example/u/" + String(repeating: "a", count: 990)
        let (out, _) = try Self.rewrite("Subject: s\r\n\r\nUnsubscribe: {{unsubscribe_url}}\r\n", options)
        let message = MailMessage(Array(out.utf8))
        #expect(message.header.fields.map(\.name) == ["Subject", "MIME-Version", "Content-Transfer-Encoding"])
        #expect(message.decodedBody(of: message.root) == Array("Unsubscribe: \(options.unsubscribeURL ?? "")\r\n".utf8))
        Self.expectLinesWithinLimits(out)
    }

    @Test func base64PartIsReencoded() throws {
        let html = "<html><body>" + String(repeating: "<p><a href=\"https://a.example/p\">caf\u{E9}</a></p>", count: 10) + "</body></html>"
        let body = String(decoding: MIMEBase64.encode(Array(html.utf8)), as: UTF8.self)
        let text = "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\(body)\r\n"
        let (out, result) = try Self.rewrite(text)
        #expect(result.originalLinks.count == 10)
        let message = MailMessage(Array(out.utf8))
        #expect(message.root.transferEncoding == .base64)
        let decoded = String(decoding: try #require(message.decodedBody(of: message.root)), as: UTF8.self)
        #expect(decoded.contains("caf\u{E9}"))
        #expect(decoded.contains("\(Self.pixel)</body>"))
        #expect(out.hasSuffix("\r\n"))
        Self.expectLinesWithinLimits(out)
    }

    @Test func bareLineFeedsInARewrittenPartBecomeCRLF() throws {
        let text = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>\n<a href=\"https://a.example\">x</a>\n</p>\r\n--b\r\nContent-Type: text/plain\r\n\r\nuntouched\nbare LF\r\n--b--\r\n"
        let (out, _) = try Self.rewrite(text)
        let message = MailMessage(Array(out.utf8))
        #expect(String(decoding: message.body(of: message.root.children[0]), as: UTF8.self)
            == "<p>\r\n<a href=\"https://t.example/c/0\">x</a>\r\n</p>\(Self.pixel)")
        #expect(String(decoding: message.body(of: message.root.children[1]), as: UTF8.self) == "untouched\nbare LF")
    }

    @Test func mislabelled7BitWithEightBitBytesBecomesQuotedPrintable() throws {
        let text = "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n<p>caf\u{E9}</p>\r\n"
        let (out, _) = try Self.rewrite(text)
        let message = MailMessage(Array(out.utf8))
        #expect(message.root.transferEncoding == .quotedPrintable)
        #expect(out.utf8.allSatisfy { $0 < 0x80 })
    }

    static let delimiterLookalikes: [String] = [
        // A quoted-printable soft break hides "--b" in the encoded text; decoded, it is a line.
        "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>x</p>\r\n-=\r\n-b\r\n--b--\r\n",
        // A lone CR in a 7bit part: made a line break, "--b" would start a line.
        "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r--b\r\n--b--\r\n",
    ]

    @Test(arguments: delimiterLookalikes)
    func rewriteNeverCreatesADelimiter(text: String) throws {
        let before = MailMessage(Array(text.utf8))
        let (out, result) = try Self.rewrite(text)
        let after = MailMessage(Array(out.utf8))
        #expect(result.openPixelCount == 1)
        #expect(after.allParts.count == before.allParts.count)
        #expect(after.root.children.first?.transferEncoding == .quotedPrintable)
        let html = String(decoding: after.decodedBody(of: after.root.children[0]) ?? [], as: UTF8.self)
        #expect(html.contains("--b"))
        Self.expectLinesWithinLimits(out)
    }

    static let untouched: [String] = [
        // Attachment.
        "Content-Type: text/html\r\nContent-Disposition: attachment; filename=a.html\r\n\r\n<a href=\"https://a.example\">x</a>\r\n",
        // UTF-16 charset.
        "Content-Type: text/html; charset=UTF-16\r\nContent-Transfer-Encoding: base64\r\n\r\n/v8APABwAD4=\r\n",
        // UTF-16 by its byte order mark.
        "Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n/v8APABwAD4=\r\n",
        // Unknown transfer encoding.
        "Content-Type: text/html\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a\r\n",
        // Other types.
        "Content-Type: text/calendar\r\n\r\nURL:https://a.example {{unsubscribe_url}}\r\n",
        "Content-Type: application/xhtml+xml\r\n\r\n<a href=\"https://a.example\">x</a>\r\n",
        // Signed: a change would break the signature.
        "Content-Type: multipart/signed; boundary=s; protocol=\"application/pgp-signature\"\r\n\r\n--s\r\nContent-Type: text/html\r\n\r\n<a href=\"https://a.example\">x</a> {{unsubscribe_url}}\r\n--s\r\nContent-Type: application/pgp-signature\r\n\r\nsig\r\n--s--\r\n",
        // Attached message.
        "Content-Type: message/rfc822\r\n\r\nContent-Type: text/html\r\n\r\n<a href=\"https://a.example\">x</a>\r\n",
        // Broken multipart: opaque.
        "Content-Type: multipart/mixed\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<a href=\"https://a.example\">x</a>\r\n--b--\r\n",
    ]

    @Test(arguments: untouched)
    func leavesPartsAlone(text: String) throws {
        let (out, result) = try Self.rewrite(text)
        #expect(out == text)
        #expect(result.rewrittenPartCount == 0)
    }

    @Test func linkIndexesRunAcrossParts() throws {
        let text = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<a href=\"https://one.example\">1</a><a href=\"https://two.example\">2</a>\r\n--b\r\nContent-Type: text/html\r\n\r\n<a href=\"https://three.example\">3</a>\r\n--b--\r\n"
        let (out, result) = try Self.rewrite(text)
        #expect(result.originalLinks == ["https://one.example", "https://two.example", "https://three.example"])
        #expect(result.openPixelCount == 2)
        #expect(out.contains("<a href=\"https://t.example/c/2\">3</a>"))
    }

    static func expectLinesWithinLimits(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let bytes = Array(text.utf8)
        var start = 0
        for (i, b) in bytes.enumerated() where b == ASCII.lf {
            #expect(i > start && bytes[i - 1] == ASCII.cr, "bare LF at \(i)", sourceLocation: sourceLocation)
            #expect(i - start - 1 <= 998, "line of \(i - start - 1) octets", sourceLocation: sourceLocation)
            start = i + 1
        }
        #expect(bytes.count - start <= 998, sourceLocation: sourceLocation)
    }
}
