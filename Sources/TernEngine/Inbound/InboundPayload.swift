import Foundation
import MailMessage
public import TernCore

/// The JSON body posted to a customer's webhook for one inbound message: the envelope,
/// the header (RFC 2047 decoded), the addresses, the first plain-text and HTML bodies as
/// UTF-8, and every other part as an attachment, its content inline in base64 up to a limit.
///
/// ```json
/// {"id": "0190…", "received_at": "2025-05-01T12:00:00.000Z",
///  "envelope": {"mail_from": "a@example.org", "recipients": ["in@customer.example"],
///               "client_ip": "192.0.2.1", "helo": "mx.example.org"},
///  "headers": [{"name": "Subject", "value": "Grüße"}, …],
///  "message_id": "id@example.org", "from": {"address": "a@example.org", "name": "Ann"},
///  "to": [{"address": "in@customer.example", "name": null}], "cc": [], "reply_to": [],
///  "subject": "Grüße", "date": "Thu, 1 May 2025 12:00:00 +0000",
///  "text": "…", "html": null,
///  "attachments": [{"filename": "a.pdf", "content_type": "application/pdf", "size": 1234,
///                   "content_id": null, "disposition": "attachment", "content": "JVBERi0…",
///                   "truncated": false}],
///  "size": 5678, "spf": null, "dkim": null}
/// ```
///
/// Built from the stored bytes alone, so every attempt posts the same body. Never fails on
/// broken MIME: the parser keeps what it can read (see ``MailMessage``), unknown charsets
/// and transfer encodings decode as lossy UTF-8, and a key whose header is absent is null.
///
/// - `date` is the `Date` field as written (RFC 5322 §3.3), not reinterpreted.
/// - `spf` and `dkim` are always null for now: Tern does not check SPF (RFC 7208) or DKIM
///   (RFC 6376) on arrival yet. The keys are there so receivers can already read them.
/// - SeeAlso: RFC 5322 §3.6 (header fields), RFC 2045–2047 (MIME), RFC 2183 (Content-Disposition),
///   RFC 2392 (Content-ID)
public struct InboundPayload: Sendable, Equatable, Codable {
    /// The largest attachment (decoded) whose content is posted inline; larger ones are
    /// listed with `content: null` and `truncated: true`.
    public static let defaultMaxAttachmentContentBytes = 1 << 20

    /// The SMTP envelope as the MX received it (RFC 5321 §2.3.1).
    public struct Envelope: Sendable, Equatable, Codable {
        /// The reverse path; empty for `<>`.
        public var mailFrom: String
        public var recipients: [String]
        public var clientIP: String?
        /// What the client said in `HELO`/`EHLO`.
        public var helo: String

        public init(mailFrom: String, recipients: [String], clientIP: String?, helo: String) {
            self.mailFrom = mailFrom
            self.recipients = recipients
            self.clientIP = clientIP
            self.helo = helo
        }

        enum CodingKeys: String, CodingKey {
            case mailFrom = "mail_from"
            case recipients
            case clientIP = "client_ip"
            case helo
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(mailFrom, forKey: .mailFrom)
            try container.encode(recipients, forKey: .recipients)
            try container.encode(clientIP, forKey: .clientIP)
            try container.encode(helo, forKey: .helo)
        }
    }

    /// One header field of the message, in order, its value unfolded and RFC 2047 decoded.
    public struct Header: Sendable, Equatable, Codable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// A mailbox of an address field: the addr-spec and the display name, if any.
    ///
    /// - SeeAlso: RFC 5322 §3.4
    public struct Mailbox: Sendable, Equatable, Codable {
        public var address: String
        public var name: String?

        public init(address: String, name: String?) {
            self.address = address
            self.name = name
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(address, forKey: .address)
            try container.encode(name, forKey: .name)
        }
    }

    /// A part that is not the text or HTML body.
    public struct Attachment: Sendable, Equatable, Codable {
        /// The `filename` of `Content-Disposition` (RFC 2183 §2.3), else the `name` of `Content-Type`.
        public var filename: String?
        /// `type/subtype`, lowercase.
        public var contentType: String
        /// Decoded size in bytes.
        public var size: Int
        /// The `Content-ID` without its angle brackets (RFC 2392), for `cid:` links in the HTML.
        public var contentID: String?
        /// `attachment`, `inline` (RFC 2183 §2.1–2.2), or null when the part has no disposition.
        public var disposition: String?
        /// The decoded content in base64 (RFC 4648 §4), or null when larger than the limit.
        public var content: String?
        /// Whether the content was left out for its size.
        public var truncated: Bool

        public init(
            filename: String?, contentType: String, size: Int, contentID: String?, disposition: String?,
            content: String?, truncated: Bool
        ) {
            self.filename = filename
            self.contentType = contentType
            self.size = size
            self.contentID = contentID
            self.disposition = disposition
            self.content = content
            self.truncated = truncated
        }

        enum CodingKeys: String, CodingKey {
            case filename
            case contentType = "content_type"
            case size
            case contentID = "content_id"
            case disposition, content, truncated
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(filename, forKey: .filename)
            try container.encode(contentType, forKey: .contentType)
            try container.encode(size, forKey: .size)
            try container.encode(contentID, forKey: .contentID)
            try container.encode(disposition, forKey: .disposition)
            try container.encode(content, forKey: .content)
            try container.encode(truncated, forKey: .truncated)
        }
    }

    /// The inbound message's id, 16 hex digits; also sent as `X-Tern-Delivery`.
    public var id: String
    /// When the MX accepted the message, ISO 8601 in UTC with milliseconds.
    public var receivedAt: String
    public var envelope: Envelope
    public var headers: [Header]
    /// The `Message-ID` without angle brackets (RFC 5322 §3.6.4).
    public var messageID: String?
    /// The first mailbox of `From`.
    public var from: Mailbox?
    public var to: [Mailbox]
    public var cc: [Mailbox]
    public var replyTo: [Mailbox]
    /// The `Subject`, RFC 2047 decoded.
    public var subject: String?
    /// The `Date` field as written.
    public var date: String?
    /// The first `text/plain` body part, as UTF-8; null when there is none or it is empty.
    public var text: String?
    /// The first `text/html` body part, as UTF-8; null when there is none or it is empty.
    public var html: String?
    public var attachments: [Attachment]
    /// The raw message size in bytes.
    public var size: Int
    /// Reserved for the SPF result (RFC 7208): always null for now.
    public var spf: String?
    /// Reserved for the DKIM result (RFC 6376): always null for now.
    public var dkim: String?

    enum CodingKeys: String, CodingKey {
        case id
        case receivedAt = "received_at"
        case envelope, headers
        case messageID = "message_id"
        case from, to, cc
        case replyTo = "reply_to"
        case subject, date, text, html, attachments, size, spf, dkim
    }

    /// Reads `message` into the payload; attachments larger than `maxAttachmentContentBytes`
    /// (decoded) are listed without their content.
    public init(_ message: InboundMessage, maxAttachmentContentBytes: Int = InboundPayload.defaultMaxAttachmentContentBytes) {
        let mail = MailMessage(message.content)
        let header = mail.header
        id = message.id.description
        receivedAt = Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(message.receivedAt)
        envelope = Envelope(
            mailFrom: message.mailFrom, recipients: message.recipients, clientIP: message.clientIP, helo: message.heloName)
        headers = header.fields.map { Header(name: $0.name, value: $0.decodedValue) }
        messageID = mail.messageID
        from = header.value("From").flatMap { MailboxList.mailboxes(in: $0).first }
        to = header.values("To").flatMap(MailboxList.mailboxes(in:))
        cc = header.values("Cc").flatMap(MailboxList.mailboxes(in:))
        replyTo = header.values("Reply-To").flatMap(MailboxList.mailboxes(in:))
        subject = header.decodedValue("Subject")
        date = header.value("Date")
        size = message.content.count
        spf = nil
        dkim = nil

        var textPart: MIMEPart?
        var htmlPart: MIMEPart?
        var others: [MIMEPart] = []
        for part in mail.allParts where part.isLeaf {
            switch Self.bodyKind(of: part) {
            case .text? where textPart == nil: textPart = part
            case .html? where htmlPart == nil: htmlPart = part
            default: others.append(part)
            }
        }
        text = textPart.flatMap { Self.text(of: $0, in: mail) }
        html = htmlPart.flatMap { Self.text(of: $0, in: mail) }
        attachments = others.compactMap { Self.attachment($0, in: mail, maxContentBytes: maxAttachmentContentBytes) }
    }

    /// The body as posted: UTF-8 JSON, keys sorted so that every attempt posts the same bytes.
    public func jsonBody() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(receivedAt, forKey: .receivedAt)
        try container.encode(envelope, forKey: .envelope)
        try container.encode(headers, forKey: .headers)
        try container.encode(messageID, forKey: .messageID)
        try container.encode(from, forKey: .from)
        try container.encode(to, forKey: .to)
        try container.encode(cc, forKey: .cc)
        try container.encode(replyTo, forKey: .replyTo)
        try container.encode(subject, forKey: .subject)
        try container.encode(date, forKey: .date)
        try container.encode(text, forKey: .text)
        try container.encode(html, forKey: .html)
        try container.encode(attachments, forKey: .attachments)
        try container.encode(size, forKey: .size)
        try container.encode(spf, forKey: .spf)
        try container.encode(dkim, forKey: .dkim)
    }

    // MARK: - Reading the parts

    private enum BodyKind {
        case text
        case html
    }

    /// Whether a leaf can be the text or HTML body: `text/plain` or `text/html` that is
    /// neither `Content-Disposition: attachment` nor named as a file. A multipart that could
    /// not be split is read as text, so that its content is not lost to the reader.
    private static func bodyKind(of part: MIMEPart) -> BodyKind? {
        guard !part.isAttachment, filename(of: part) == nil else { return nil }
        switch (part.contentType.type, part.contentType.subtype) {
        case ("text", "plain"), ("multipart", _): return .text
        case ("text", "html"): return .html
        default: return nil
        }
    }

    /// A body part as UTF-8: transfer-decoded and charset-converted, or, for an encoding or
    /// charset Tern does not know, the bytes read as UTF-8 with U+FFFD for what is not.
    private static func text(of part: MIMEPart, in mail: MailMessage) -> String? {
        let text = mail.decodedText(of: part)
            ?? String(decoding: mail.decodedBody(of: part) ?? Array(mail.body(of: part)), as: UTF8.self)
        return text.isEmpty ? nil : text
    }

    private static func attachment(_ part: MIMEPart, in mail: MailMessage, maxContentBytes: Int) -> Attachment? {
        let content = mail.decodedBody(of: part) ?? Array(mail.body(of: part))
        // The empty leaf a bodiless message is made of is not an attachment.
        if part.depth == 0, content.isEmpty { return nil }
        let fits = content.count <= maxContentBytes
        return Attachment(
            filename: filename(of: part), contentType: part.contentType.mimeType, size: content.count,
            contentID: contentID(of: part), disposition: disposition(of: part)?.type,
            content: fits ? Data(content).base64EncodedString() : nil, truncated: !fits)
    }

    /// `Content-Disposition` has `Content-Type`'s parameter syntax (RFC 2183 §2, RFC 2231), so
    /// it is read with that parser behind a placeholder media type: `x-disposition/<type>`.
    private static func disposition(of part: MIMEPart) -> (type: String, parameters: [String: String])? {
        guard let value = part.header.value("Content-Disposition"),
            let parsed = ContentType(parsing: "x-disposition/" + value)
        else { return nil }
        return (parsed.subtype, parsed.parameters)
    }

    /// The file name: RFC 2183 §2.3's `filename`, else the older `name` of `Content-Type`
    /// (RFC 1341 §7.2.3), with encoded-words decoded where senders (wrongly, but often) use
    /// them in parameters. Only the last path component is kept.
    private static func filename(of part: MIMEPart) -> String? {
        guard let raw = disposition(of: part)?.parameters["filename"] ?? part.contentType.parameters["name"] else {
            return nil
        }
        let decoded = EncodedWord.decode(raw)
        let last = decoded.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        let name = last.trimmingCharacters(in: .whitespacesAndNewlines)
        return name.isEmpty ? nil : name
    }

    /// The `Content-ID` without angle brackets (RFC 2392 §2: `cid:` names it without them).
    private static func contentID(of part: MIMEPart) -> String? {
        guard var id = part.header.value("Content-ID")?.trimmingCharacters(in: .whitespacesAndNewlines) else { return nil }
        if id.hasPrefix("<") { id.removeFirst() }
        if id.hasSuffix(">") { id.removeLast() }
        return id.isEmpty ? nil : id
    }
}
