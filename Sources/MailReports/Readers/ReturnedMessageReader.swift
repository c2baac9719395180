import MailMessage

/// Finds what a report gives back of the original message: a returned-message part, or header
/// fields quoted in text.
///
/// - SeeAlso: RFC 3462 §3 (the third part of `multipart/report`), RFC 3464 §2.1 (message/rfc822 or
///   text/rfc822-headers), RFC 5965 §2 (c), RFC 6533 §6.3–6.4 (message/global, message/global-headers)
enum ReturnedMessageReader {
    /// Media types of a part that returns the original message or its header.
    static let returnedTypes: Set<String> = [
        "message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers", "message/rfc822-headers",
    ]

    /// The first returned-message part (not the report itself) whose header yields an identifier.
    static func fromParts(_ message: MailMessage, parts: [MIMEPart], limits: ReportLimits) -> ReturnedMessage? {
        for part in parts.dropFirst() where returnedTypes.contains(part.contentType.mimeType) {
            let body = message.decodedBody(of: part) ?? Array(message.body(of: part))
            let returned = fromHeader(Array(body.prefix(limits.maxReturnedHeaderBytes)))
            if let returned, !returned.isEmpty { return returned }
        }
        return nil
    }

    /// The identifiers in the header at the start of `bytes` (a message or a header alone).
    static func fromHeader(_ bytes: [UInt8]) -> ReturnedMessage? {
        var start = 0
        // Some reports put an empty line before the returned header.
        while start < bytes.count, bytes[start] == Bytes.cr || bytes[start] == Bytes.lf { start += 1 }
        let message = MailMessage(Array(bytes[start...]), limits: MIMELimits(maxNestingDepth: 0, maxParts: 1))
        let returned = identifiers(message)
        return returned.isEmpty ? nil : returned
    }

    static func identifiers(_ message: MailMessage) -> ReturnedMessage {
        let header = ReportHeader(message.header)
        return ReturnedMessage(
            messageID: header.value("message-id").flatMap(messageID(in:)),
            returnPath: header.value("return-path").flatMap { ReportValue.address($0) },
            ternID: header.value("x-tern-id").flatMap { ReportValue.address($0) },
            from: header.value("from").flatMap(firstAddress(in:)),
            to: header.value("to").flatMap(firstAddress(in:)),
            subject: header.decodedValue("subject")?.trimmedMailWhitespace().nonEmpty
        )
    }

    /// The id in a `Message-ID` value: inside the angle brackets, comments removed; the whole
    /// value when it has none (RFC 5965's example writes it bare).
    ///
    /// - SeeAlso: RFC 5322 §3.6.4
    static func messageID(in value: String) -> String? {
        let plain = ReportValue.removingComments(value).trimmedMailWhitespace()
        let bytes = plain.utf8
        if let open = bytes.firstIndex(of: UInt8(ascii: "<")) {
            let after = bytes.index(after: open)
            let close = bytes[after...].firstIndex(of: UInt8(ascii: ">")) ?? bytes.endIndex
            return plain[after..<close].trimmedMailWhitespace().nonEmpty
        }
        return plain.nonEmpty
    }

    /// The first addr-spec of an address list: inside the first `<…>`, else the first
    /// comma-separated item with an `@` (after a group name, RFC 5322 §3.4). Comments are
    /// removed first.
    static func firstAddress(in value: String) -> String? {
        let plain = ReportValue.removingComments(value)
        let bytes = plain.utf8
        let at = UInt8(ascii: "@")
        if let open = bytes.firstIndex(of: UInt8(ascii: "<")) {
            let after = bytes.index(after: open)
            if let close = bytes[after...].firstIndex(of: UInt8(ascii: ">")) {
                let inner = plain[after..<close].trimmedMailWhitespace()
                return inner.utf8.contains(at) ? inner : nil
            }
        }
        for item in bytes.split(separator: UInt8(ascii: ",")) {
            var candidate = Substring(plain[item.startIndex..<item.endIndex])
            if let colon = candidate.utf8.firstIndex(of: UInt8(ascii: ":")), !candidate.utf8[..<colon].contains(at) {
                candidate = candidate[candidate.utf8.index(after: colon)...] // a group name
            }
            let trimmed = candidate.trimmedMailWhitespace()
            if trimmed.utf8.contains(at), !trimmed.utf8.contains(Bytes.space) { return trimmed }
        }
        return nil
    }

    // MARK: - Header fields quoted in text

    /// Header field names that start a quoted original header in a bounce's text.
    static let quotedFieldNames: Set<String> = [
        "received", "return-path", "message-id", "x-tern-id", "from", "to", "cc", "subject", "date", "mime-version",
        "content-type", "content-transfer-encoding", "dkim-signature", "reply-to", "sender", "delivered-to",
        "list-unsubscribe", "list-unsubscribe-post", "authentication-results", "in-reply-to", "references",
        "feedback-id", "arc-seal", "arc-message-signature", "arc-authentication-results", "thread-topic",
        "thread-index", "x-mailer", "user-agent",
    ]
    /// Fields that identify: a quoted block counts only with one of them.
    static let identifyingFieldNames: Set<String> = ["message-id", "x-tern-id", "return-path", "from", "to", "subject"]

    /// Identifiers from original header fields quoted in a text (`Original message headers:`,
    /// `------ This is a copy of the message, including all the headers. ------`, an indented
    /// `Subject:` line). Every block of header-like lines is read; for each identifier the first
    /// block that has it wins. `>` quoting and a common indentation are removed.
    static func fromText(_ bytes: [UInt8], lines: [Range<Int>]) -> ReturnedMessage? {
        var merged = ReturnedMessage()
        var index = 0
        var blocks = 0
        while index < lines.count, blocks < 64 {
            guard let (indent, name) = quotedField(bytes, lines[index]), quotedFieldNames.contains(name) || name.hasPrefix("x-") else {
                index += 1
                continue
            }
            var block: [UInt8] = []
            var names: Set<String> = [name]
            block.append(contentsOf: stripped(bytes, lines[index], indent: indent))
            block.append(contentsOf: [Bytes.cr, Bytes.lf])
            var next = index + 1
            while next < lines.count {
                let line = lines[next]
                let lineIndent = quotePrefixLength(bytes, line)
                if lineIndent == indent, let (_, fieldName) = quotedField(bytes, line) {
                    names.insert(fieldName)
                } else if lineIndent > indent, !Bytes.trimmed(bytes, line).isEmpty, next > index {
                    // a folded line
                } else {
                    break
                }
                block.append(contentsOf: stripped(bytes, line, indent: indent))
                block.append(contentsOf: [Bytes.cr, Bytes.lf])
                next += 1
            }
            index = next
            guard !names.isDisjoint(with: identifyingFieldNames) else { continue }
            blocks += 1
            block.append(contentsOf: [Bytes.cr, Bytes.lf])
            let found = identifiers(MailMessage(block, limits: MIMELimits(maxNestingDepth: 0, maxParts: 1)))
            merged.messageID = merged.messageID ?? found.messageID
            merged.returnPath = merged.returnPath ?? found.returnPath
            merged.ternID = merged.ternID ?? found.ternID
            merged.from = merged.from ?? found.from
            merged.to = merged.to ?? found.to
            merged.subject = merged.subject ?? found.subject
        }
        return merged.isEmpty ? nil : merged
    }

    /// Leading whitespace and `>` quote markers of a line.
    private static func quotePrefixLength(_ bytes: [UInt8], _ line: Range<Int>) -> Int {
        var i = line.lowerBound
        while i < line.upperBound, Bytes.isWSP(bytes[i]) || bytes[i] == UInt8(ascii: ">") { i += 1 }
        return i - line.lowerBound
    }

    /// For a line that is `[indent]name: value`, the indentation and the lowercase name.
    private static func quotedField(_ bytes: [UInt8], _ line: Range<Int>) -> (Int, String)? {
        let indent = quotePrefixLength(bytes, line)
        let start = line.lowerBound + indent
        guard let colon = ReportFieldReader.fieldNameEnd(bytes, start..<line.upperBound) else { return nil }
        var nameEnd = colon
        while nameEnd > start, Bytes.isWSP(bytes[nameEnd - 1]) { nameEnd -= 1 }
        return (indent, String(decoding: bytes[start..<nameEnd].map(Bytes.lower), as: UTF8.self))
    }

    private static func stripped(_ bytes: [UInt8], _ line: Range<Int>, indent: Int) -> ArraySlice<UInt8> {
        let start = min(line.upperBound, line.lowerBound + indent)
        return bytes[start..<line.upperBound]
    }
}
