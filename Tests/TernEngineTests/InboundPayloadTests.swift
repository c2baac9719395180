import Foundation
import Testing
import TernCore
@testable import TernEngine

/// A message as the MX would have stored it; `text` is written with LF and sent with CRLF.
func inboundMessage(
    _ text: String, webhookURL: String? = "http://127.0.0.1:9/hook", receivedAt: Date = wholeSecondsNow()
) -> InboundMessage {
    inboundMessage(bytes: Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8), webhookURL: webhookURL, receivedAt: receivedAt)
}

func inboundMessage(bytes: [UInt8], webhookURL: String? = "http://127.0.0.1:9/hook", receivedAt: Date = wholeSecondsNow()) -> InboundMessage {
    InboundMessage(
        id: .next(), receivedAt: receivedAt, clientIP: "192.0.2.7", heloName: "mx.example.org",
        mailFrom: "sender@example.org", recipients: ["in@customer.example", "other@customer.example"], purpose: .inbound,
        webhookURL: webhookURL, content: bytes)
}

/// Now without a fraction: what the store keeps (milliseconds) reads back the same.
func wholeSecondsNow() -> Date {
    Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
}

/// The payload's JSON as generic objects, to check its shape (keys present, nulls).
func jsonObject(_ payload: InboundPayload) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(try payload.jsonBody()))
    return try #require(object as? [String: Any])
}

let alternativeMessage = """
    From: =?UTF-8?B?R3LDtsOfZQ==?= <ann@example.org>
    To: "Bob, Jr." <bob@customer.example>, Team: carol@customer.example, Dave <dave@customer.example>;,
     eve@customer.example (Eve E.)
    Cc: undisclosed-recipients:;
    Reply-To: <replies@example.org>
    Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=
    Date: Thu, 1 May 2025 12:00:00 +0000
    Message-ID: <abc.123@example.org>
    MIME-Version: 1.0
    Content-Type: multipart/alternative; boundary="alt"

    --alt
    Content-Type: text/plain; charset=ISO-8859-1
    Content-Transfer-Encoding: quoted-printable

    Gr=FC=DFe aus K=F6ln, caf=E9 =E0 la =
    carte.
    --alt
    Content-Type: text/html; charset="iso-8859-1"
    Content-Transfer-Encoding: base64

    PHA+R3L832UgYXVzIEv2bG48L3A+
    --alt--

    """

@Suite struct InboundPayloadTests {
    @Test func alternativeWithQuotedPrintableTextAndBase64HTMLInLatin1() throws {
        let message = inboundMessage(alternativeMessage)
        let payload = InboundPayload(message)
        #expect(payload.id == message.id.description)
        #expect(payload.envelope == InboundPayload.Envelope(
            mailFrom: "sender@example.org", recipients: ["in@customer.example", "other@customer.example"],
            clientIP: "192.0.2.7", helo: "mx.example.org"))
        #expect(payload.text == "Grüße aus Köln, café à la carte.")
        #expect(payload.html == "<p>Grüße aus Köln</p>")
        #expect(payload.subject == "Grüße aus Köln")
        #expect(payload.from == InboundPayload.Mailbox(address: "ann@example.org", name: "Größe"))
        #expect(payload.to == [
            InboundPayload.Mailbox(address: "bob@customer.example", name: "Bob, Jr."),
            InboundPayload.Mailbox(address: "carol@customer.example", name: nil),
            InboundPayload.Mailbox(address: "dave@customer.example", name: "Dave"),
            InboundPayload.Mailbox(address: "eve@customer.example", name: "Eve E."),
        ])
        #expect(payload.cc.isEmpty)
        #expect(payload.replyTo == [InboundPayload.Mailbox(address: "replies@example.org", name: nil)])
        #expect(payload.messageID == "abc.123@example.org")
        #expect(payload.date == "Thu, 1 May 2025 12:00:00 +0000")
        #expect(payload.attachments.isEmpty)
        #expect(payload.size == message.content.count)
        #expect(payload.headers.first == InboundPayload.Header(name: "From", value: "Größe <ann@example.org>"))
        #expect(payload.headers.contains(InboundPayload.Header(name: "Subject", value: "Grüße aus Köln")))
        #expect(payload.headers.map(\.name) == [
            "From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
        ])
    }

    @Test func jsonShapeKeepsEveryKeyWithNulls() throws {
        let receivedAt = Date(timeIntervalSince1970: 1_746_100_800.25)
        let message = inboundMessage("Subject: hi\n\nhello\n", receivedAt: receivedAt)
        let json = try jsonObject(InboundPayload(message))
        #expect(Set(json.keys) == [
            "id", "received_at", "envelope", "headers", "message_id", "from", "to", "cc", "reply_to", "subject",
            "date", "text", "html", "attachments", "size", "spf", "dkim",
        ])
        #expect(json["received_at"] as? String == "2025-05-01T12:00:00.250Z")
        for key in ["message_id", "from", "date", "html", "spf", "dkim"] {
            #expect(json[key] is NSNull, "\(key) should be null")
        }
        #expect(json["text"] as? String == "hello\r\n")
        let envelope = try #require(json["envelope"] as? [String: Any])
        #expect(Set(envelope.keys) == ["mail_from", "recipients", "client_ip", "helo"])
        let headers = try #require(json["headers"] as? [[String: Any]])
        #expect(headers.first?["name"] as? String == "Subject")
        #expect(headers.first?["value"] as? String == "hi")
        // Decodes back to the same value: receivers in Swift can use the type.
        let decoded = try JSONDecoder().decode(InboundPayload.self, from: Data(try InboundPayload(message).jsonBody()))
        #expect(decoded == InboundPayload(message))
    }

    @Test func attachmentsUnderAndOverTheLimit() throws {
        let message = inboundMessage("""
            From: ann@example.org
            To: in@customer.example
            Subject: files
            Content-Type: multipart/mixed; boundary="mix"

            --mix
            Content-Type: multipart/related; boundary="rel"

            --rel
            Content-Type: text/html; charset=utf-8

            <p>see <img src="cid:logo@x"></p>
            --rel
            Content-Type: image/png
            Content-ID: <logo@x>
            Content-Disposition: inline
            Content-Transfer-Encoding: base64

            R3LDtsOfZQ==
            --rel--
            --mix
            Content-Type: application/pdf; name="ignored.pdf"
            Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf
            Content-Transfer-Encoding: base64

            JVBERi0xLjQgdGlueQ==
            --mix
            Content-Type: application/octet-stream; name="=?UTF-8?Q?gro=C3=9F.bin?="
            Content-Transfer-Encoding: base64

            AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJw==
            --mix
            Content-Type: text/plain; charset=utf-8
            Content-Disposition: attachment; filename="../../notes.txt"

            not the body
            --mix--

            """)
        let payload = InboundPayload(message, maxAttachmentContentBytes: 20)
        #expect(payload.text == nil)
        #expect(payload.html == "<p>see <img src=\"cid:logo@x\"></p>")
        #expect(payload.attachments == [
            InboundPayload.Attachment(
                filename: nil, contentType: "image/png", size: 7, contentID: "logo@x", disposition: "inline",
                content: "R3LDtsOfZQ==", truncated: false),
            InboundPayload.Attachment(
                filename: "résumé.pdf", contentType: "application/pdf", size: 13, contentID: nil, disposition: "attachment",
                content: "JVBERi0xLjQgdGlueQ==", truncated: false),
            InboundPayload.Attachment(
                filename: "groß.bin", contentType: "application/octet-stream", size: 40, contentID: nil, disposition: nil,
                content: nil, truncated: true),
            InboundPayload.Attachment(
                filename: "notes.txt", contentType: "text/plain", size: 12, contentID: nil, disposition: "attachment",
                content: "bm90IHRoZSBib2R5", truncated: false),
        ])
        // At the default limit (1 MiB) every content is inline.
        #expect(InboundPayload(message).attachments.allSatisfy { $0.content != nil && !$0.truncated })
        let json = try jsonObject(payload)
        let attachments = try #require(json["attachments"] as? [[String: Any]])
        #expect(attachments.count == 4)
        #expect(attachments[2]["content"] is NSNull)
        #expect(attachments[2]["truncated"] as? Bool == true)
        #expect(Set(attachments[0].keys) == ["filename", "content_type", "size", "content_id", "disposition", "content", "truncated"])
    }

    @Test(arguments: [
        // Subject as written → decoded.
        ("=?UTF-8?B?8J+TrCBuZXcgbWFpbA==?=", "📬 new mail"),
        ("=?iso-8859-15?q?caf=E9_=A4?= and =?UTF-8?Q?more?=", "café € and more"),
        ("=?UTF-8?Q?split_=C3?= =?UTF-8?Q?=A9t=C3=A9?=", "split été"),
        ("=?x-unknown?Q?kept?=", "=?x-unknown?Q?kept?="),
        ("plain", "plain"),
    ])
    func encodedWordSubjects(written: String, decoded: String) {
        let payload = InboundPayload(inboundMessage("Subject: \(written)\n\nx\n"))
        #expect(payload.subject == decoded)
        #expect(payload.headers == [InboundPayload.Header(name: "Subject", value: decoded)])
    }

    @Test func noBody() throws {
        let headersOnly = InboundPayload(inboundMessage("From: Ann <ann@example.org>\nSubject: nothing"))
        #expect(headersOnly.subject == "nothing")
        #expect(headersOnly.from == InboundPayload.Mailbox(address: "ann@example.org", name: "Ann"))
        #expect(headersOnly.text == nil)
        #expect(headersOnly.html == nil)
        #expect(headersOnly.attachments.isEmpty)

        let empty = InboundPayload(inboundMessage(bytes: []))
        #expect(empty.headers.isEmpty)
        #expect(empty.subject == nil && empty.from == nil && empty.text == nil && empty.html == nil)
        #expect(empty.to.isEmpty && empty.attachments.isEmpty)
        #expect(empty.size == 0)
        _ = try jsonObject(empty)
    }

    @Test func brokenMIMEGivesWhatCanBeRead() throws {
        // A multipart with no delimiter line: its body is kept as the text.
        let unsplit = InboundPayload(inboundMessage("""
            Content-Type: multipart/mixed; boundary="nowhere"

            just text

            """))
        #expect(unsplit.text == "just text\r\n")
        #expect(unsplit.attachments.isEmpty)

        // No close delimiter: the last part runs to the end.
        let unclosed = InboundPayload(inboundMessage("""
            Content-Type: multipart/alternative; boundary=b

            --b
            Content-Type: text/plain

            first
            --b
            Content-Type: text/html

            <b>second</b>

            """))
        #expect(unclosed.text == "first")
        #expect(unclosed.html == "<b>second</b>\r\n")

        // An unknown charset and a stray 8-bit byte: lossy UTF-8, U+FFFD for what is not.
        let unknownCharset = InboundPayload(inboundMessage(bytes: Array(
            "Content-Type: text/plain; charset=x-klingon\r\nContent-Transfer-Encoding: 8bit\r\n\r\nhello ".utf8)
            + [0xFF] + Array(" wörld".utf8)))
        #expect(unknownCharset.text == "hello \u{FFFD} wörld")

        // 8-bit text labelled US-ASCII: read as UTF-8 when valid.
        let mislabelled = InboundPayload(inboundMessage("Content-Type: text/plain; charset=us-ascii\n\nGrüße"))
        #expect(mislabelled.text == "Grüße")

        // An unknown transfer encoding: the body as it stands.
        let uuencoded = InboundPayload(inboundMessage("""
            Content-Type: text/plain
            Content-Transfer-Encoding: x-uuencode

            begin 644 x
            """))
        #expect(uuencoded.text == "begin 644 x")

        // Bad base64 and an unreadable Content-Type.
        let garbage = InboundPayload(inboundMessage("""
            Content-Type: ;;;
            Content-Transfer-Encoding: base64

            !!!not base64***
            """))
        #expect(garbage.text != nil)
        _ = try jsonObject(garbage)
    }

    /// Random damage to a real message: the payload is built and encodes, whatever the bytes.
    @Test func damagedMessagesNeverTrap() throws {
        let original = Array(alternativeMessage.replacingOccurrences(of: "\n", with: "\r\n").utf8)
        var random = SplitMix64(seed: 0x5EED_1B0D)
        for _ in 0..<300 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...12, using: &random) {
                guard !bytes.isEmpty else { break }
                let index = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0: bytes[index] = UInt8.random(in: 0...255, using: &random)
                case 1: bytes.remove(at: index)
                case 2: bytes.insert(contentsOf: Array("\r\n--alt\r\n".utf8), at: index)
                default: bytes.removeSubrange(index...)
                }
            }
            let payload = InboundPayload(inboundMessage(bytes: bytes), maxAttachmentContentBytes: 8)
            let json = try jsonObject(payload)
            #expect(json["size"] as? Int == bytes.count)
        }
    }
}
