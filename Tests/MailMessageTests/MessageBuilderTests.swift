import Testing

@testable import MailMessage

/// A seeded SplitMix64, so that built messages are the same on every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Messages to build, shared by the Swift-side and the Python checks.
enum BuilderCases {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var message: OutgoingMessage
        /// Content types depth-first, the root first.
        var structure: [String]
        var testDescription: String { name }
    }

    static let date = MessageDate(secondsSince1970: 1_751_360_700, utcOffsetMinutes: 0)
    static let builder = MessageBuilder(messageIDDomain: "mail.tern.example")
    static let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array(repeating: 0, count: 40) + [0xFF, 0x0D, 0x0A]
    static let allBytes: [UInt8] = Array(0...255) + Array(0...255).reversed() + Array(repeating: 0x0A, count: 3) + [0x0D]

    static func build(_ message: OutgoingMessage, seed: UInt64 = 1) throws -> BuiltMessage {
        var generator = SeededGenerator(state: seed)
        return try builder.build(message, date: date, using: &generator)
    }

    static func base(text: String? = "Hello,\nyour order has shipped.\n", html: String? = nil) -> OutgoingMessage {
        OutgoingMessage(
            from: Mailbox(parsing: "Shop <shop@shop.example>"),
            to: [Mailbox("ada@example.com", name: "Ada Lovelace")],
            cc: [Mailbox("bob@example.org")],
            bcc: [Mailbox("audit@shop.example")],
            subject: "Your order",
            text: text,
            html: html
        )
    }

    static let html = "<html><body><p>Hello,</p><p>your order <b>has shipped</b>.</p><img src=\"cid:logo@shop.example\"></body></html>\n"

    static let cases: [Case] = {
        var cases: [Case] = []
        cases.append(Case(name: "text only", message: base(), structure: ["text/plain"]))
        cases.append(Case(name: "html only", message: base(text: nil, html: html), structure: ["text/html"]))
        cases.append(Case(name: "text and html", message: base(html: html), structure: ["multipart/alternative", "text/plain", "text/html"]))

        var inline = base(html: html)
        inline.attachments = [OutgoingAttachment(filename: "logo.png", contentType: "image/png", content: png, contentID: "logo@shop.example")]
        cases.append(Case(name: "text, html and an inline image", message: inline, structure: [
            "multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png",
        ]))

        var htmlInline = base(text: nil, html: html)
        htmlInline.attachments = inline.attachments
        cases.append(Case(name: "html and an inline image", message: htmlInline, structure: ["multipart/related", "text/html", "image/png"]))

        var everything = inline
        everything.replyTo = [Mailbox("support@shop.example", name: "Support"), Mailbox("sales@shop.example")]
        everything.attachments += [
            OutgoingAttachment(filename: "invoice.pdf", contentType: "application/pdf", content: Array("%PDF-1.4\n%âãÏÓ\n".utf8)),
            OutgoingAttachment(filename: "data.bin", contentType: "", content: allBytes),
            OutgoingAttachment(filename: "report.csv", contentType: "text/csv; charset=utf-8", content: Array("a,b\r\n1,2\r\n".utf8)),
        ]
        everything.headers = ["X-Campaign": "spring-sale", "List-Id": "Shop news <news.shop.example>", "X-Empty": ""]
        cases.append(Case(name: "text, html, attachments and an inline image", message: everything, structure: [
            "multipart/mixed", "multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png",
            "application/pdf", "application/octet-stream", "text/csv",
        ]))

        var textAttachment = base()
        textAttachment.attachments = [OutgoingAttachment(filename: "logo.png", contentType: "image/png", content: png, contentID: "logo")]
        cases.append(Case(name: "an image with a content id but no html is an attachment", message: textAttachment, structure: [
            "multipart/mixed", "text/plain", "image/png",
        ]))

        var international = base(
            text: "Grüße aus Köln!\nЗдравствуйте. 日本語のテキスト。\n",
            html: "<p>Grüße aus Köln — 日本語 — 👩‍👩‍👧‍👦</p>\n"
        )
        international.from = Mailbox(parsing: "\"Shop Ünited\" <shop@shop.example>")
        international.to = [Mailbox("zoe@example.com", name: "Zoë Ämma, Jr."), Mailbox("li@example.cn", name: "李小龍")]
        international.cc = [Mailbox("o@example.org", name: "O'Brien \"The Boss\" (HQ)")]
        international.replyTo = [Mailbox("r@shop.example", name: "Kundendienst für Österreich und die Schweiz, erreichbar rund um die Uhr")]
        international.subject = "Grüße aus Köln — Ihre Bestellung 🎉 ist unterwegs, Straße 12"
        international.headers = ["X-Note": "Bärbel sagt hallo"]
        international.attachments = [
            OutgoingAttachment(filename: "Übersicht Rechnung 2025.pdf", contentType: "application/pdf", content: Array("pdf".utf8)),
            OutgoingAttachment(filename: "日本語のファイル名はとても長くなることがあるので続きが必要です_報告書_最終版.txt", contentType: "text/plain", content: Array("テキスト".utf8)),
            OutgoingAttachment(filename: "plain name with spaces; and (parens) \"quotes\".txt", contentType: "text/plain", content: [0x41]),
            OutgoingAttachment(filename: String(repeating: "long-ascii-name-", count: 10) + ".txt", contentType: "text/plain", content: [0x42]),
        ]
        cases.append(Case(name: "non-ASCII subject, display names and file names", message: international, structure: [
            "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "application/pdf", "text/plain", "text/plain", "text/plain",
        ]))

        var longSubject = base()
        longSubject.subject = "This is a rather long subject line that goes on and on, well past seventy-eight characters, so that it must be folded at whitespace more than once to stay readable"
        cases.append(Case(name: "a long ASCII subject folds", message: longSubject, structure: ["text/plain"]))

        var longWord = base()
        longWord.subject = "Token " + String(repeating: "x", count: 1200) + " end"
        cases.append(Case(name: "a subject word longer than a line is encoded", message: longWord, structure: ["text/plain"]))

        var trickySubject = base()
        trickySubject.subject = "  =?utf-8?q?looks_encoded?= and\ttab  "
        cases.append(Case(name: "a subject that looks encoded or has outer spaces", message: trickySubject, structure: ["text/plain"]))

        cases.append(Case(
            name: "a text line over 998 octets",
            message: base(text: "start\n" + String(repeating: "0123456789", count: 150) + "\nend\n"),
            structure: ["text/plain"]
        ))

        cases.append(Case(name: "text with no final line break", message: base(text: String(repeating: "x", count: 76)), structure: ["text/plain"]))
        cases.append(Case(
            name: "text with no final line break ending in an escape",
            message: base(text: "line\n" + String(repeating: "x", count: 70) + "é"),
            structure: ["text/plain"]
        ))

        cases.append(Case(
            name: "text that looks like framing",
            message: base(text: "--=_tern_0000000000000000_0\n--=_tern_0000000000000000_0--\nFrom here\n.\n..\ntrailing space \nbare\rcr\r\nmixed\n", html: html),
            structure: ["multipart/alternative", "text/plain", "text/html"]
        ))

        cases.append(Case(
            name: "mostly non-ASCII text is base64",
            message: base(text: String(repeating: "日本語のテキスト。", count: 50) + "\n"),
            structure: ["text/plain"]
        ))

        var binary = base()
        var noise = SeededGenerator(state: 7)
        binary.attachments = [
            OutgoingAttachment(filename: "all-bytes.bin", contentType: "application/octet-stream", content: allBytes),
            OutgoingAttachment(filename: "noise.bin", contentType: "application/octet-stream", content: (0..<10_000).map { _ in UInt8.random(in: 0...255, using: &noise) }),
        ]
        cases.append(Case(name: "binary attachments 0x00-0xFF", message: binary, structure: [
            "multipart/mixed", "text/plain", "application/octet-stream", "application/octet-stream",
        ]))

        let longHTML = "<html><body><table>" + String(repeating: "<tr><td style=\"padding:0;margin:0\">cell</td></tr>", count: 300)
            + "<p>" + String(repeating: "W", count: 3000) + "</p></table></body></html>"
        cases.append(Case(name: "html with very long lines", message: base(html: longHTML), structure: [
            "multipart/alternative", "text/plain", "text/html",
        ]))
        return cases
    }()
}

struct MessageBuilderTests {
    /// The lines of `bytes` split at CRLF; fails on a bare CR or LF.
    static func crlfLines(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x0D {
                #expect(i + 1 < bytes.count && bytes[i + 1] == 0x0A, "bare CR at \(i)")
                lines.append(bytes[start..<i])
                i += 2
                start = i
                continue
            }
            #expect(bytes[i] != 0x0A, "bare LF at \(i)")
            i += 1
        }
        #expect(start == bytes.count, "the message ends with CRLF")
        return lines
    }

    static func lines(_ bytes: [UInt8]) -> [String] {
        crlfLines(bytes).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Text as the message carries it: every line break CRLF (RFC 2046 §4.1.1).
    static func canonical(_ text: String) -> [UInt8] {
        PartWriter.crlfNormalized(Array(text.utf8))
    }

    @Test(arguments: BuilderCases.cases)
    func framingIsSevenBitCRLFWithShortLines(_ c: BuilderCases.Case) throws {
        let built = try BuilderCases.build(c.message)
        #expect(built.bytes.allSatisfy { $0 < 0x80 }, "7-bit")
        let lines = Self.crlfLines(built.bytes)
        #expect(lines.allSatisfy { $0.count <= MessageLineLimits.maxLineLength })
        let message = MailMessage(built.bytes)
        // Header lines stay within 78 unless a single word is longer.
        let headerLines = Self.crlfLines(Array(built.bytes[message.root.headerRange]))
        for line in headerLines where line.count > 78 {
            #expect(!line.dropFirst().contains(0x20), "a long header line that could fold: \(String(decoding: line, as: UTF8.self))")
        }
        #expect(!String(decoding: built.bytes, as: UTF8.self).lowercased().contains("audit@shop.example"), "Bcc stays out of the message")
        #expect(message.header.field("Bcc") == nil)
    }

    @Test(arguments: BuilderCases.cases)
    func ternParserReadsWhatWasAsked(_ c: BuilderCases.Case) throws {
        let built = try BuilderCases.build(c.message)
        let message = MailMessage(built.bytes)
        let parts = message.allParts
        #expect(parts.flatMap(\.defects).isEmpty)
        #expect(parts.map(\.contentType.mimeType) == c.structure)
        #expect(message.header.decodedValue("Subject") == c.message.subject)
        #expect(message.header.value("MIME-Version") == "1.0")
        #expect(message.messageID == built.messageID)
        #expect(message.fromAddress == c.message.from.address)
        #expect(message.fromDomain == built.fromDomain)

        let leaves = parts.filter(\.isLeaf)
        var expectedBodies: [[UInt8]] = []
        if let text = c.message.text { expectedBodies.append(Self.canonical(text)) }
        if let html = c.message.html { expectedBodies.append(Self.canonical(html)) }
        // Inline parts follow the HTML; the other attachments come last, in order.
        let inline = c.message.html == nil ? [] : c.message.attachments.filter { $0.contentID != nil }
        let attached = c.message.html == nil ? c.message.attachments : c.message.attachments.filter { $0.contentID == nil }
        expectedBodies += (inline + attached).map(\.content)
        #expect(leaves.count == expectedBodies.count)
        for (leaf, expected) in zip(leaves, expectedBodies) {
            #expect(message.decodedBody(of: leaf) == expected, "\(leaf.contentType.mimeType)")
        }
        #expect(built.envelopeRecipients == (c.message.to + c.message.cc + c.message.bcc).map(\.address))
    }

    @Test func sameSeedSameBytesOtherSeedOtherIDs() throws {
        let message = BuilderCases.cases[5].message
        let a = try BuilderCases.build(message, seed: 42)
        let b = try BuilderCases.build(message, seed: 42)
        let c = try BuilderCases.build(message, seed: 43)
        #expect(a == b)
        #expect(a.messageID != c.messageID)
        #expect(a.messageID.hasSuffix("@mail.tern.example"))
        #expect(a.messageID.count == 32 + "@mail.tern.example".count)
    }

    @Test func headerOrderAndValues() throws {
        var message = BuilderCases.base()
        message.replyTo = [Mailbox("help@shop.example")]
        message.headers = ["X-B": "2", "X-A": "  <mailto:u@shop.example>\t"]
        let built = try BuilderCases.build(message)
        let parsed = MailMessage(built.bytes)
        #expect(parsed.header.fields.map(\.name) == [
            "From", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID", "X-A", "X-B", "MIME-Version",
            "Content-Type", "Content-Transfer-Encoding",
        ])
        #expect(parsed.header.value("From") == "Shop <shop@shop.example>")
        #expect(parsed.header.value("To") == "Ada Lovelace <ada@example.com>")
        #expect(parsed.header.value("Date") == "Tue, 1 Jul 2025 09:05:00 +0000")
        #expect(parsed.header.value("X-A") == "<mailto:u@shop.example>", "trimmed, not encoded")
        #expect(Self.lines(built.bytes).contains("X-A: <mailto:u@shop.example>"))
        #expect(parsed.header.value("Content-Type") == "text/plain; charset=utf-8")
        #expect(parsed.header.value("Content-Transfer-Encoding") == "quoted-printable")
    }

    @Test(arguments: [
        (Int64(0), 0, "Thu, 1 Jan 1970 00:00:00 +0000"),
        (Int64(951_782_400), 0, "Tue, 29 Feb 2000 00:00:00 +0000"),
        (Int64(1_751_360_700), 120, "Tue, 1 Jul 2025 11:05:00 +0200"),
        (Int64(1_751_360_700), -570, "Mon, 30 Jun 2025 23:35:00 -0930"),
        (Int64(4_107_542_399), 0, "Sun, 28 Feb 2100 23:59:59 +0000"),
        (Int64(4_133_980_799), 0, "Fri, 31 Dec 2100 23:59:59 +0000"),
        (Int64(-1), 0, "Wed, 31 Dec 1969 23:59:59 +0000"),
    ])
    func dates(seconds: Int64, offset: Int, expected: String) {
        #expect(RFC5322Date.format(secondsSince1970: seconds, utcOffsetMinutes: offset) == expected)
    }

    @Test func envelopeRecipientsAreDeduplicatedIgnoringCase() throws {
        var message = BuilderCases.base()
        message.to = [Mailbox("Ada@Example.com"), Mailbox("b@example.com")]
        message.cc = [Mailbox("ada@example.COM", name: "Ada again")]
        message.bcc = [Mailbox("B@EXAMPLE.COM"), Mailbox("c@example.com")]
        let built = try BuilderCases.build(message)
        #expect(built.envelopeRecipients == ["Ada@Example.com", "b@example.com", "c@example.com"])
        #expect(built.fromAddress == "shop@shop.example")
        #expect(built.fromDomain == "shop.example")
    }

    @Test func bccOnlyMessageHasNoToHeader() throws {
        var message = BuilderCases.base()
        message.to = []
        message.cc = []
        let built = try BuilderCases.build(message)
        let parsed = MailMessage(built.bytes)
        #expect(parsed.header.field("To") == nil)
        #expect(parsed.header.field("Bcc") == nil)
        #expect(built.envelopeRecipients == ["audit@shop.example"])
    }

    @Test(arguments: [
        ("a@b.example", nil, "a@b.example"),
        ("  Shop <shop@shop.example> ", "Shop", "shop@shop.example"),
        ("\"Doe, John \\\"JD\\\"\" <jd@example.com>", "Doe, John \"JD\"", "jd@example.com"),
        ("Shop Ünited <shop@shop.example>", "Shop Ünited", "shop@shop.example"),
        ("<bare@example.com>", nil, "bare@example.com"),
        ("not an address", nil, "not an address"),
    ] as [(String, String?, String)])
    func mailboxParsing(text: String, name: String?, address: String) {
        let mailbox = Mailbox(parsing: text)
        #expect(mailbox.name == name)
        #expect(mailbox.address == address)
    }

    // MARK: - Validation

    static func issues(_ message: OutgoingMessage, builder: MessageBuilder = BuilderCases.builder) -> [String] {
        do {
            var generator = SeededGenerator(state: 1)
            _ = try builder.build(message, date: BuilderCases.date, using: &generator)
            return []
        } catch {
            return error.issues.map(\.description)
        }
    }

    @Test func reportsEveryBadAddress() {
        var message = BuilderCases.base()
        message.from = Mailbox("shop")
        message.to = [
            Mailbox("ok@example.com"), Mailbox("@example.com"), Mailbox("user@"), Mailbox("a..b@example.com"),
            Mailbox("user@exa mple.com"), Mailbox("jürgen@example.de"), Mailbox("user@bücher.example"),
            Mailbox("\"quoted\"@example.com"), Mailbox("user@[192.0.2.1]"), Mailbox("user@-bad.example"),
            Mailbox(String(repeating: "l", count: 65) + "@example.com"), Mailbox("a@b.example\r\nBcc: x@evil.example"),
        ]
        message.cc = [Mailbox("ok@example.com", name: "Evil\r\nBcc: x@evil.example")]
        message.replyTo = [Mailbox("nope")]
        message.bcc = [Mailbox("x@y.example", name: "nul\u{0}name")]
        let issues = Self.issues(message)
        #expect(issues == [
            "from: not an email address",
            "to[1]: not an email address",
            "to[2]: not an email address",
            "to[3]: not an email address",
            "to[4]: not an email address: the domain is not a hostname",
            "to[5]: non-ASCII addresses are not supported (no SMTPUTF8 or IDNA): write the domain in its xn-- form",
            "to[6]: non-ASCII addresses are not supported (no SMTPUTF8 or IDNA): write the domain in its xn-- form",
            "to[7]: not an email address",
            "to[8]: not an email address: the domain is not a hostname",
            "to[9]: not an email address: the domain is not a hostname",
            "to[10]: the local part is longer than 64 octets",
            "to[11]: contains a line break",
            "cc[0]: the display name contains a line break",
            "bcc[0]: the display name contains a control character",
            "reply_to[0]: not an email address",
        ])
    }

    @Test func headerInjectionIsRefused() {
        var message = BuilderCases.base()
        message.subject = "Hi\r\nBcc: victim@example.com"
        message.headers = [
            "X-Ok": "fine",
            "X-Inject": "a\r\nBcc: victim@example.com",
            "X-LF": "a\nb",
            "X-CR": "a\rb",
            "X-Nul": "a\u{0}b",
            "Bad Name": "x",
            "X-Colon:": "x",
            "X-Inject\r\nBcc": "x",
            "": "x",
            "X-Ünicode": "x",
            String(repeating: "X", count: 77): "x",
        ]
        let issues = Self.issues(message)
        #expect(issues == [
            "subject: contains a line break",
            "headers.: not a header field name (printable ASCII except ':')",
            "headers.Bad Name: not a header field name (printable ASCII except ':')",
            "headers.X-CR: contains a line break",
            "headers.X-Colon:: not a header field name (printable ASCII except ':')",
            "headers.X-Inject: contains a line break",
            "headers.X-Inject\r\nBcc: the name contains a line break",
            "headers.X-LF: contains a line break",
            "headers.X-Nul: contains a control character",
            "headers.X-Ünicode: not a header field name (printable ASCII except ':')",
            "headers.\(String(repeating: "X", count: 77)): longer than 76 characters",
        ])
    }

    @Test func reservedHeadersAreRefused() {
        var message = BuilderCases.base()
        let reserved = ["From", "to", "CC", "Bcc", "Reply-To", "Subject", "Date", "Message-ID", "MIME-Version",
                        "Content-Type", "content-transfer-encoding", "Content-Disposition", "Return-Path", "DKIM-Signature", "Sender"]
        message.headers = Dictionary(uniqueKeysWithValues: reserved.map { ($0, "x") })
        let issues = Self.issues(message)
        #expect(issues.count == reserved.count)
        #expect(issues.allSatisfy { $0.hasSuffix(": set by Tern; use the message's own field or leave it out") })
        message.headers = ["X-Mailer": "shop 1.0", "List-Unsubscribe": "<mailto:u@shop.example>", "In-Reply-To": "<a@b>"]
        #expect(Self.issues(message) == [])
    }

    @Test func bodiesAndRecipientsAreRequired() {
        var message = BuilderCases.base(text: nil, html: nil)
        message.to = []
        message.cc = []
        message.bcc = []
        #expect(Self.issues(message) == [
            "to: at least one recipient is needed in to, cc or bcc",
            "text: a text or an html body is needed",
        ])
        message = BuilderCases.base(text: "", html: "")
        #expect(Self.issues(message) == ["text: a text or an html body is needed"])
    }

    @Test func attachmentsAreChecked() {
        var message = BuilderCases.base(html: BuilderCases.html)
        message.attachments = [
            OutgoingAttachment(filename: "a.txt", contentType: "text/plain", content: []),
            OutgoingAttachment(filename: "", contentType: "image/png", content: [1]),
            OutgoingAttachment(filename: "evil\r\nContent-Type: text/html", contentType: "image/png", content: [1]),
            OutgoingAttachment(filename: "b.png", contentType: "image", content: [1]),
            OutgoingAttachment(filename: "c.eml", contentType: "message/rfc822", content: [1]),
            OutgoingAttachment(filename: "d.png", contentType: "image/png\r\nX: y", content: [1]),
            OutgoingAttachment(filename: "e.png", contentType: "image/png", content: [1], contentID: "logo"),
            OutgoingAttachment(filename: "f.png", contentType: "image/png", content: [1], contentID: "<logo>"),
            OutgoingAttachment(filename: "g.png", contentType: "image/png", content: [1], contentID: "a b"),
            OutgoingAttachment(filename: "h.png", contentType: "image/png", content: [1], contentID: "<>"),
        ]
        #expect(Self.issues(message) == [
            "attachments[0].content: empty",
            "attachments[1].filename: empty",
            "attachments[2].filename: contains a line break",
            "attachments[3].content_type: not a content type (type/subtype)",
            "attachments[4].content_type: message/rfc822 cannot be attached; send it as application/octet-stream",
            "attachments[5].content_type: not a content type: printable ASCII on one line",
            "attachments[7].content_id: used by another attachment",
            "attachments[8].content_id: letters, digits, '.', '@' and RFC 5322 atext only",
            "attachments[9].content_id: empty",
        ])
    }

    @Test func limitsAreNamedAndEnforced() {
        let builder = MessageBuilder(messageIDDomain: "tern.example", maxRecipients: 2, maxCustomHeaders: 1, maxAttachments: 1)
        var message = BuilderCases.base()
        message.headers = ["X-A": "1", "X-B": "2"]
        message.attachments = [
            OutgoingAttachment(filename: "a", contentType: "", content: [1]),
            OutgoingAttachment(filename: "b", contentType: "", content: [2]),
        ]
        #expect(Self.issues(message, builder: builder) == [
            "to: 3 recipients, at most 2",
            "headers: 2 fields, at most 1",
            "attachments: 2 attachments, at most 1",
        ])
        #expect(Self.issues(BuilderCases.base(), builder: MessageBuilder(messageIDDomain: "not a host")) == [
            "message_id_domain: not a hostname: not a host",
        ])
    }

    @Test func errorCodesAreStable() {
        var message = BuilderCases.base()
        message.to = [Mailbox("x")]
        do {
            _ = try BuilderCases.builder.build(message, date: BuilderCases.date)
            Issue.record("expected a validation error")
        } catch {
            #expect(error.issues == [.init(field: "to[0]", code: .invalidAddress, detail: "not an email address")])
            #expect(error.issues.first?.code.rawValue == "invalid_address")
            #expect(error.description == "invalid message: to[0]: not an email address")
        }
        #expect(throws: MessageValidationError.self) { try BuilderCases.builder.validate(message) }
        #expect(throws: Never.self) { try BuilderCases.builder.validate(BuilderCases.base()) }
    }
}
