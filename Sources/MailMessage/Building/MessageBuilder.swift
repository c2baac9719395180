/// When a message is dated: seconds since 1970 and the offset from UTC to write (RFC 5322 §3.3).
public struct MessageDate: Sendable, Hashable {
    public var secondsSince1970: Int64
    /// Minutes east of UTC; `Date` is written in this zone (`+0000` by default).
    public var utcOffsetMinutes: Int

    public init(secondsSince1970: Int64, utcOffsetMinutes: Int = 0) {
        self.secondsSince1970 = secondsSince1970
        self.utcOffsetMinutes = utcOffsetMinutes
    }
}

/// A message ready for intake: its bytes and what the envelope needs.
public struct BuiltMessage: Sendable, Hashable {
    /// The whole message, CRLF line ends, every line at most 998 octets, 7-bit.
    public var bytes: [UInt8]
    /// The id inside `Message-ID: <…>`, without angle brackets.
    public var messageID: String
    /// To, Cc and Bcc addresses in that order, each once (compared ignoring ASCII case),
    /// spelled as first given: the RCPT TO list (RFC 5321 §3.3).
    public var envelopeRecipients: [String]
    /// The From addr-spec, for the envelope sender's authorisation.
    public var fromAddress: String
    /// The From domain, lowercase (the RFC5322.From domain of RFC 7489 §3.1).
    public var fromDomain: String
}

/// Builds a MIME message from an ``OutgoingMessage``: pure, no IO, no clock; the date and the
/// random source come from the caller.
///
/// Structure (RFC 2046 §5.1, RFC 2387): text alone is `text/plain`, HTML alone `text/html`, both
/// a `multipart/alternative` with the text first; inline images (attachments with a content id)
/// make a `multipart/related` around the HTML; other attachments a `multipart/mixed` outermost.
/// Text bodies are UTF-8 in quoted-printable, or base64 when that is shorter; attachments are
/// base64 (RFC 2045 §6.7, §6.8). Non-ASCII header text is RFC 2047 encoded-words, non-ASCII
/// file names RFC 2231 parameters. Bcc is never written.
public struct MessageBuilder: Sendable {
    public static let defaultMaxRecipients = 1_000
    public static let defaultMaxCustomHeaders = 100
    public static let defaultMaxAttachments = 100
    /// Longest custom header field name, so that `Name: ` and a word fit a 78-character line.
    public static let maxHeaderNameLength = 76

    /// Header fields a client may not set: the ones Tern writes (addresses, subject, date, ids,
    /// MIME framing) and ones added later on the way out (Return-Path, DKIM-Signature).
    /// Any `Content-*` name is refused too: at the top level it would change how the body is
    /// read (RFC 2045 §9).
    public static let reservedHeaderNames: Set<String> = [
        "from", "to", "cc", "bcc", "reply-to", "sender", "subject", "date", "message-id",
        "mime-version", "return-path", "dkim-signature",
    ]

    /// The domain on the right of every Message-ID (RFC 5322 §3.6.4): a hostname of the sender.
    public var messageIDDomain: String
    public var maxRecipients: Int
    public var maxCustomHeaders: Int
    public var maxAttachments: Int

    public init(
        messageIDDomain: String,
        maxRecipients: Int = Self.defaultMaxRecipients,
        maxCustomHeaders: Int = Self.defaultMaxCustomHeaders,
        maxAttachments: Int = Self.defaultMaxAttachments
    ) {
        self.messageIDDomain = messageIDDomain
        self.maxRecipients = maxRecipients
        self.maxCustomHeaders = maxCustomHeaders
        self.maxAttachments = maxAttachments
    }

    /// Builds with the system's random source for the Message-ID and the boundaries.
    public func build(_ message: OutgoingMessage, date: MessageDate) throws(MessageValidationError) -> BuiltMessage {
        var generator = SystemRandomNumberGenerator()
        return try build(message, date: date, using: &generator)
    }

    /// Builds the message; a seeded `generator` makes the output deterministic.
    public func build(
        _ message: OutgoingMessage,
        date: MessageDate,
        using generator: inout some RandomNumberGenerator
    ) throws(MessageValidationError) -> BuiltMessage {
        let checked = try self.checked(message)

        let idToken = Self.hex(generator.next()) + Self.hex(generator.next())
        let messageID = "\(idToken)@\(messageIDDomain.asciiLowercased())"
        let boundaryToken = Self.hex(generator.next())

        var header: [UInt8] = []
        header += HeaderText.addressField(name: "From", mailboxes: [message.from])
        if !message.replyTo.isEmpty { header += HeaderText.addressField(name: "Reply-To", mailboxes: message.replyTo) }
        if !message.to.isEmpty { header += HeaderText.addressField(name: "To", mailboxes: message.to) }
        if !message.cc.isEmpty { header += HeaderText.addressField(name: "Cc", mailboxes: message.cc) }
        header += HeaderText.unstructuredField(name: "Subject", value: message.subject)
        header += Array("Date: \(RFC5322Date.format(secondsSince1970: date.secondsSince1970, utcOffsetMinutes: date.utcOffsetMinutes))\r\n".utf8)
        header += Array("Message-ID: <\(messageID)>\r\n".utf8)
        for (name, value) in message.headers.sorted(by: { $0.key < $1.key }) {
            // Outer whitespace is not part of a field's value (RFC 5322 §2.2.3): trimmed, so that
            // a structured value is not encoded for it.
            header += HeaderText.unstructuredField(name: name, value: value.trimmingMailWhitespace())
        }
        header += Array("MIME-Version: 1.0\r\n".utf8)

        var writer = PartWriter(boundaryToken: boundaryToken)
        let root = Self.structure(message, text: checked.text, html: checked.html)
        let bytes = header + writer.renderMessageBody(root)

        return BuiltMessage(
            bytes: bytes,
            messageID: messageID,
            envelopeRecipients: checked.recipients,
            fromAddress: message.from.address,
            fromDomain: checked.fromDomain
        )
    }

    // MARK: - Validation

    typealias Problem = (code: MessageValidationError.Code, detail: String)

    struct Checked {
        var text: String?
        var html: String?
        var recipients: [String]
        var fromDomain: String
    }

    /// Checks every field without building, and reports every problem at once.
    public func validate(_ message: OutgoingMessage) throws(MessageValidationError) {
        _ = try checked(message)
    }

    func checked(_ message: OutgoingMessage) throws(MessageValidationError) -> Checked {
        var issues: [MessageValidationError.Issue] = []
        func report(_ field: String, _ code: MessageValidationError.Code, _ detail: String) {
            issues.append(.init(field: field, code: code, detail: detail))
        }
        func check(_ mailbox: Mailbox, _ field: String) {
            if let p = Self.addressProblem(mailbox.address) { report(field, p.code, p.detail) }
            if let name = mailbox.name, let p = Self.lineProblem(name) { report(field, p.code, "the display name \(p.detail)") }
        }

        if Self.hostnameProblem(messageIDDomain) != nil {
            report("message_id_domain", .invalidMessageIDDomain, "not a hostname: \(messageIDDomain)")
        }
        check(message.from, "from")
        for (i, m) in message.to.enumerated() { check(m, "to[\(i)]") }
        for (i, m) in message.cc.enumerated() { check(m, "cc[\(i)]") }
        for (i, m) in message.bcc.enumerated() { check(m, "bcc[\(i)]") }
        for (i, m) in message.replyTo.enumerated() { check(m, "reply_to[\(i)]") }

        var recipients: [String] = []
        var seen: Set<String> = []
        for m in message.to + message.cc + message.bcc where seen.insert(m.address.asciiLowercased()).inserted {
            recipients.append(m.address)
        }
        if recipients.isEmpty {
            report("to", .missingRecipient, "at least one recipient is needed in to, cc or bcc")
        } else if recipients.count > maxRecipients {
            report("to", .tooMany, "\(recipients.count) recipients, at most \(maxRecipients)")
        }

        if let p = Self.lineProblem(message.subject) { report("subject", p.code, p.detail) }

        let text = message.text.flatMap { $0.isEmpty ? nil : $0 }
        let html = message.html.flatMap { $0.isEmpty ? nil : $0 }
        if text == nil && html == nil { report("text", .missingBody, "a text or an html body is needed") }

        if message.headers.count > maxCustomHeaders {
            report("headers", .tooMany, "\(message.headers.count) fields, at most \(maxCustomHeaders)")
        }
        for (name, value) in message.headers.sorted(by: { $0.key < $1.key }) {
            let field = "headers.\(name)"
            if let detail = Self.headerNameProblem(name) {
                report(field, .invalidHeaderName, detail)
            } else if Self.isReserved(name) {
                report(field, .reservedHeader, "set by Tern; use the message's own field or leave it out")
            }
            if let p = Self.lineProblem(value) { report(field, p.code, p.detail) }
        }

        if message.attachments.count > maxAttachments {
            report("attachments", .tooMany, "\(message.attachments.count) attachments, at most \(maxAttachments)")
        }
        var contentIDs: Set<String> = []
        for (i, a) in message.attachments.enumerated() {
            let path = "attachments[\(i)]"
            if a.content.isEmpty { report("\(path).content", .empty, "empty") }
            if a.filename.isEmpty {
                report("\(path).filename", .empty, "empty")
            } else if let p = Self.lineProblem(a.filename) {
                report("\(path).filename", p.code, p.detail)
            }
            if let detail = Self.contentTypeProblem(a.contentType) { report("\(path).content_type", .invalidContentType, detail) }
            if let id = a.contentID {
                if let detail = Self.contentIDProblem(id) {
                    report("\(path).content_id", .invalidContentID, detail)
                } else if !contentIDs.insert(Self.bareContentID(id)).inserted {
                    report("\(path).content_id", .invalidContentID, "used by another attachment")
                }
            }
        }

        guard issues.isEmpty else { throw MessageValidationError(issues: issues) }
        let domain = AddressReader.lastAt(in: message.from.address).map { String(message.from.address[message.from.address.index(after: $0)...]) } ?? ""
        return Checked(text: text, html: html, recipients: recipients, fromDomain: domain.asciiLowercased())
    }

    /// Why `address` is not an addr-spec Tern sends to, or nil. Accepted: a dot-atom local part of
    /// at most 64 octets and a hostname domain (RFC 5321 §4.1.2, §4.5.3.1). Refused with a reason:
    /// non-ASCII (SMTPUTF8, IDNA U-labels), quoted local parts and address literals.
    static func addressProblem(_ address: String) -> Problem? {
        let bytes = Array(address.utf8)
        if bytes.contains(where: { $0 >= 0x80 }) {
            return (.nonASCIIAddress, "non-ASCII addresses are not supported (no SMTPUTF8 or IDNA): write the domain in its xn-- form")
        }
        if let p = lineProblem(address) { return p }
        guard let at = bytes.lastIndex(of: UInt8(ascii: "@")), at > 0, at + 1 < bytes.count else {
            return (.invalidAddress, "not an email address")
        }
        let local = bytes[..<at]
        guard local.count <= 64 else { return (.invalidAddress, "the local part is longer than 64 octets") }
        guard local.first != UInt8(ascii: "."), local.last != UInt8(ascii: "."),
              !zip(local, local.dropFirst()).contains(where: { $0 == UInt8(ascii: ".") && $1 == UInt8(ascii: ".") }),
              local.allSatisfy({ HeaderText.isAtext($0) || $0 == UInt8(ascii: ".") }) else {
            return (.invalidAddress, "not an email address")
        }
        if let problem = hostnameProblem(String(decoding: bytes[(at + 1)...], as: UTF8.self)) {
            return (.invalidAddress, "not an email address: \(problem)")
        }
        return nil
    }

    /// Why `domain` is not a hostname (LDH labels of 1–63 octets, at most 253 in all), or nil.
    static func hostnameProblem(_ domain: String) -> String? {
        let bytes = Array(domain.utf8)
        guard !bytes.isEmpty, bytes.count <= 253 else { return "the domain is empty or too long" }
        for label in bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.count <= 63,
                  label.first != ASCII.hyphen, label.last != ASCII.hyphen,
                  label.allSatisfy({ ASCII.isAlpha($0) || ASCII.isDigit($0) || $0 == ASCII.hyphen }) else {
                return "the domain is not a hostname"
            }
        }
        return nil
    }

    /// Why `value` cannot be one header line: a line break (header injection) or another control
    /// character. Tabs are allowed.
    static func lineProblem(_ value: String) -> Problem? {
        for scalar in value.unicodeScalars {
            if scalar == "\r" || scalar == "\n" { return (.lineBreak, "contains a line break") }
        }
        for scalar in value.unicodeScalars where scalar != "\t" && (scalar.value < 0x20 || scalar.value == 0x7F) {
            return (.controlCharacter, "contains a control character")
        }
        return nil
    }

    /// Why `name` is not a field name Tern writes: field-name = 1*ftext, ftext = %d33-57 / %d59-126
    /// (RFC 5322 §3.6.8), at most ``maxHeaderNameLength`` octets.
    static func headerNameProblem(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        if bytes.contains(ASCII.cr) || bytes.contains(ASCII.lf) { return "the name contains a line break" }
        guard !bytes.isEmpty, bytes.allSatisfy({ $0 >= 33 && $0 <= 126 && $0 != ASCII.colon }) else {
            return "not a header field name (printable ASCII except ':')"
        }
        guard bytes.count <= maxHeaderNameLength else { return "longer than \(maxHeaderNameLength) characters" }
        return nil
    }

    static func isReserved(_ name: String) -> Bool {
        let lower = name.asciiLowercased()
        return reservedHeaderNames.contains(lower) || lower.hasPrefix("content-")
    }

    /// Why `value` is not a content type Tern attaches: `type/subtype` tokens with parameters;
    /// multipart and message types are refused (a message/* part may not be base64, RFC 2046 §5.2.1).
    static func contentTypeProblem(_ value: String) -> String? {
        if value.isEmpty { return nil }
        if lineProblem(value) != nil || value.utf8.contains(where: { $0 >= 0x80 }) { return "not a content type: printable ASCII on one line" }
        guard let type = ContentType(parsing: value),
              (type.type + type.subtype).utf8.allSatisfy({ $0 < 0x80 && StructuredFieldReader.isTokenByte($0) }),
              type.parameters.keys.allSatisfy({ $0.utf8.allSatisfy { $0 < 0x80 && StructuredFieldReader.isTokenByte($0) } }) else {
            return "not a content type (type/subtype)"
        }
        if type.type == "multipart" || type.type == "message" { return "\(type.mimeType) cannot be attached; send it as application/octet-stream" }
        return nil
    }

    /// The content id without the angle brackets a client may have written.
    static func bareContentID(_ id: String) -> String {
        if id.hasPrefix("<"), id.hasSuffix(">"), id.count >= 2 { return String(id.dropFirst().dropLast()) }
        return id
    }

    /// Why `id` is not a content id Tern writes in `<…>`: atext, `.` and `@`, at most 200 octets
    /// (RFC 2392 refers to RFC 5322 §3.6.4 msg-id; `@` is usual, not required here).
    static func contentIDProblem(_ id: String) -> String? {
        let bare = Array(bareContentID(id).utf8)
        guard !bare.isEmpty else { return "empty" }
        guard bare.count <= 200 else { return "longer than 200 characters" }
        guard bare.allSatisfy({ HeaderText.isAtext($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "@") }) else {
            return "letters, digits, '.', '@' and RFC 5322 atext only"
        }
        return nil
    }

    static func hex(_ n: UInt64) -> String {
        let digits = String(n, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    // MARK: - Structure

    /// The part tree for a validated message (RFC 2046 §5.1.4 alternative, RFC 2387 related,
    /// RFC 2046 §5.1.3 mixed).
    static func structure(_ message: OutgoingMessage, text: String?, html: String?) -> MessagePart {
        let inline = html == nil ? [] : message.attachments.filter { $0.contentID != nil }
        let attached = html == nil ? message.attachments : message.attachments.filter { $0.contentID == nil }

        var htmlPart = html.map { MessagePart.text($0, subtype: "html") }
        if let part = htmlPart, !inline.isEmpty {
            htmlPart = .multipart(subtype: "related", parameters: [("type", "text/html")], parts: [part] + inline.map { .attachment($0, inline: true) })
        }
        let textPart = text.map { MessagePart.text($0, subtype: "plain") }
        var body: MessagePart
        switch (textPart, htmlPart) {
        case (let t?, let h?): body = .multipart(subtype: "alternative", parameters: [], parts: [t, h])
        case (let t?, nil): body = t
        case (nil, let h?): body = h
        case (nil, nil): preconditionFailure("checked() requires a text or an html body")
        }
        if !attached.isEmpty {
            body = .multipart(subtype: "mixed", parameters: [], parts: [body] + attached.map { .attachment($0, inline: false) })
        }
        return body
    }
}

/// One part of the message being built.
indirect enum MessagePart {
    case text(String, subtype: String)
    case attachment(OutgoingAttachment, inline: Bool)
    case multipart(subtype: String, parameters: [(String, String)], parts: [MessagePart])
}

/// Writes a part tree: each part's header, an empty line, its body (RFC 2045, RFC 2046 §5.1.1).
struct PartWriter {
    let boundaryToken: String
    private var boundaryCount = 0
    private var lastTextWasQuotedPrintable = false

    init(boundaryToken: String) {
        self.boundaryToken = boundaryToken
    }

    /// The root part, ending in CRLF as a message must (RFC 5321 §4.1.1.4). A quoted-printable
    /// text that does not end in a line break gets a soft one, so that its text is unchanged.
    mutating func renderMessageBody(_ root: MessagePart) -> [UInt8] {
        var out = render(root)
        if out.suffix(2).elementsEqual(ASCII.crlf) { return out }
        if case .text = root, lastTextWasQuotedPrintable {
            Self.appendSoftBreak(&out)
            return out
        }
        return out + ASCII.crlf
    }

    /// Ends quoted-printable output with `=` CRLF (RFC 2045 §6.7 rule 5), keeping lines at 76:
    /// a full last line gives its last character (or `=XX`) to a new line first.
    static func appendSoftBreak(_ out: inout [UInt8]) {
        let lineStart = (out.lastIndex(of: ASCII.lf) ?? -1) + 1
        if out.count - lineStart >= MessageLineLimits.maxEncodedLineLength {
            let unit = out.count >= 3 && out[out.count - 3] == ASCII.equals ? 3 : 1
            out.insert(contentsOf: [ASCII.equals] + ASCII.crlf, at: out.count - unit)
        }
        out += [ASCII.equals] + ASCII.crlf
    }

    /// Header, empty line and body; the body carries no line break of its own at the end, so a
    /// parent's delimiter (CRLF `--boundary`) follows directly.
    mutating func render(_ part: MessagePart) -> [UInt8] {
        switch part {
        case .text(let content, let subtype):
            let canonical = Self.crlfNormalized(Array(content.utf8))
            let quoted = QuotedPrintable.encode(canonical)
            // base64 when shorter: mostly non-ASCII text (RFC 2045 §6.7 vs §6.8).
            let base64Length = (canonical.count + 2) / 3 * 4 * 78 / 76
            let useBase64 = quoted.count > base64Length
            lastTextWasQuotedPrintable = !useBase64
            var out = HeaderText.parameterizedField(name: "Content-Type", value: "text/\(subtype)", parameters: [("charset", "utf-8")])
            out += Array("Content-Transfer-Encoding: \(useBase64 ? "base64" : "quoted-printable")\r\n\r\n".utf8)
            out += useBase64 ? MIMEBase64.encode(canonical) : quoted
            return out

        case .attachment(let attachment, let inline):
            let type = ContentType(parsing: attachment.contentType) ?? ContentType(type: "application", subtype: "octet-stream")
            var parameters = type.parameters.filter { $0.key != "name" }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            // `name` is the legacy fallback some clients read (RFC 2046 §4.5.1 mentions it); ASCII
            // only, since RFC 2047 words are not allowed inside a parameter (RFC 2047 §5).
            parameters.append(("name", Self.asciiFallback(attachment.filename)))
            var out = HeaderText.parameterizedField(name: "Content-Type", value: type.mimeType, parameters: parameters)
            out += HeaderText.parameterizedField(
                name: "Content-Disposition", value: inline ? "inline" : "attachment", parameters: [("filename", attachment.filename)]
            )
            if let id = attachment.contentID {
                out += Array("Content-ID: <\(MessageBuilder.bareContentID(id))>\r\n".utf8)
            }
            out += Array("Content-Transfer-Encoding: base64\r\n\r\n".utf8)
            out += MIMEBase64.encode(attachment.content)
            return out

        case .multipart(let subtype, let parameters, let parts):
            // "=_" never occurs in quoted-printable or base64 output, so no body can hold the
            // delimiter (RFC 2046 §5.1.1); the count keeps nested boundaries apart.
            let boundary = "=_tern_\(boundaryToken)_\(boundaryCount)"
            boundaryCount += 1
            var out = HeaderText.parameterizedField(
                name: "Content-Type", value: "multipart/\(subtype)", parameters: [("boundary", boundary)] + parameters
            )
            out += ASCII.crlf
            let delimiter = Array("--\(boundary)\r\n".utf8)
            for (index, child) in parts.enumerated() {
                if index > 0 { out += ASCII.crlf }
                out += delimiter
                out += render(child)
            }
            out += Array("\r\n--\(boundary)--".utf8)
            return out
        }
    }

    /// Text with every line break as CRLF, the canonical form of text (RFC 2046 §4.1.1).
    static func crlfNormalized(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 32)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == ASCII.cr {
                out += ASCII.crlf
                if i + 1 < bytes.count, bytes[i + 1] == ASCII.lf { i += 1 }
            } else if b == ASCII.lf {
                out += ASCII.crlf
            } else {
                out.append(b)
            }
            i += 1
        }
        return out
    }

    /// The file name with every non-ASCII character as `_`.
    static func asciiFallback(_ filename: String) -> String {
        String(String.UnicodeScalarView(filename.unicodeScalars.map { $0.isASCII ? $0 : "_" }))
    }
}
