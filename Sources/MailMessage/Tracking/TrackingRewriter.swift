/// Rewrites an outgoing message for engagement tracking at intake: click-tracked links and an open
/// pixel in HTML parts, the unsubscribe placeholder in text parts, and header field edits.
///
/// Only what changes is rewritten. Every other byte — other parts, boundaries, preamble, epilogue,
/// header fields not edited — is copied as it was. A rewritten part keeps its transfer encoding
/// (base64 and quoted-printable are decoded and encoded again), except that a `7bit`, `8bit` or
/// `binary` part is encoded as quoted-printable when a line would pass 998 octets
/// (RFC 5322 §2.1.1), when it holds a lone CR, or when a `7bit` part would hold 8-bit bytes;
/// then its `Content-Transfer-Encoding` field is the one other line that changes (added when
/// absent, with `MIME-Version` on a message that had none). A bare LF in a rewritten part becomes
/// CRLF.
///
/// Parts left alone: attachments (`Content-Disposition: attachment`), `message/*` (an attached
/// message is never opened), anything under `multipart/signed` or `multipart/encrypted`
/// (RFC 1847: a change would break the signature), parts in a charset that is not
/// ASCII-transparent (UTF-16, UTF-32, UTF-7, ISO-2022), and bodies in an unknown transfer encoding.
/// A message without `Content-Type` is `text/plain` (RFC 2045 §5.2): placeholder only.
public enum TrackingRewriter {
    /// Parses and rewrites message bytes.
    public static func rewrite(_ bytes: [UInt8], options: TrackingOptions) throws(TrackingRewriteError) -> TrackedMessage {
        try rewrite(MailMessage(bytes, limits: options.limits), options: options)
    }

    /// Rewrites a parsed message. Throws only for options that cannot be applied.
    public static func rewrite(_ message: MailMessage, options: TrackingOptions) throws(TrackingRewriteError) -> TrackedMessage {
        let plan = try ContentRewritePlan(options)
        let addedFields = try options.addedHeaderFields.map { field throws(TrackingRewriteError) in
            (name: field.name, bytes: try HeaderFieldWriter.field(name: field.name, value: field.value))
        }
        for name in options.removedHeaderFields where HeaderFieldWriter.isProtected(name) {
            throw TrackingRewriteError(.protectedHeaderField, "\(name) describes the MIME structure and cannot be removed")
        }

        var state = RewriteState(bytes: message.bytes, plan: plan)
        let root = message.root

        // Header removals, then additions of what is absent.
        var remaining: [HeaderField] = []
        for field in root.header.fields {
            if options.removedHeaderFields.contains(where: { field.hasName($0) }) {
                state.removeField(field)
            } else {
                remaining.append(field)
            }
        }
        for field in addedFields where !remaining.contains(where: { $0.hasName(field.name) })
            && !state.headerInsertions(for: root).contains(where: { $0.name.asciiLowercased() == field.name.asciiLowercased() }) {
            state.addHeaderField(field.bytes, named: field.name, to: root)
        }

        state.visit(root, isRoot: true)
        state.flushHeaderInsertions()
        return TrackedMessage(
            bytes: state.splice.apply(to: message.bytes),
            originalLinks: state.links,
            openPixelCount: state.openPixels,
            unsubscribePlaceholderCount: state.placeholders,
            rewrittenPartCount: state.rewrittenParts
        )
    }
}

/// The work in progress over one message.
private struct RewriteState {
    let bytes: [UInt8]
    let plan: ContentRewritePlan
    var splice = ByteSplice()
    var links: [String] = []
    var openPixels = 0
    var placeholders = 0
    var rewrittenParts = 0
    /// Header fields to insert, per part, in order; `bodyAdded` when a rewrite gives the part a
    /// body it may not have had.
    private var insertions: [(part: MIMEPart, fields: [(name: String, bytes: [UInt8])], bodyAdded: Bool)] = []
    /// Ranges of removed header fields.
    private var removedFields: [Range<Int>] = []

    init(bytes: [UInt8], plan: ContentRewritePlan) {
        self.bytes = bytes
        self.plan = plan
    }

    private func insertionIndex(for part: MIMEPart) -> Int? {
        insertions.firstIndex { $0.part.range.lowerBound == part.range.lowerBound && $0.part.depth == part.depth }
    }

    mutating func removeField(_ field: HeaderField) {
        splice.replace(field.range, with: [])
        removedFields.append(field.range)
    }

    func headerInsertions(for part: MIMEPart) -> [(name: String, bytes: [UInt8])] {
        insertionIndex(for: part).map { insertions[$0].fields } ?? []
    }

    mutating func addHeaderField(_ field: [UInt8], named name: String, to part: MIMEPart) {
        if let index = insertionIndex(for: part) {
            insertions[index].fields.append((name, field))
        } else {
            insertions.append((part, [(name, field)], false))
        }
    }

    /// Depth-first, in message order, so link indexes follow the message.
    mutating func visit(_ part: MIMEPart, isRoot: Bool) {
        if part.multipart != nil {
            let subtype = part.contentType.subtype
            guard subtype != "signed", subtype != "encrypted" else { return }
            for child in part.children { visit(child, isRoot: false) }
            return
        }
        rewriteLeaf(part, isRoot: isRoot)
    }

    private mutating func rewriteLeaf(_ part: MIMEPart, isRoot: Bool) {
        let type = part.contentType
        guard type.type == "text", type.subtype == "html" || type.subtype == "plain", !part.isAttachment else { return }
        let charset = MIMECharset(name: type.charset ?? "us-ascii")
        guard charset.isASCIITransparent else { return }
        let body = bytes[part.bodyRange]
        let content: [UInt8]
        switch part.transferEncoding {
        case .base64: content = MIMEBase64.decode(body)
        case .quotedPrintable: content = QuotedPrintable.decode(body)
        case .sevenBit, .eightBit, .binary: content = Array(body)
        case .other: return
        }
        // A byte order mark for UTF-16/32 says the charset label is wrong: leave the part alone.
        if content.count >= 2, (content[0] == 0xFE && content[1] == 0xFF) || (content[0] == 0xFF && content[1] == 0xFE) { return }

        let rewritten = type.subtype == "html"
            ? HTMLTrackingRewriter.rewrite(content, charset: charset, plan: plan, links: &links)
            : PlainTextTrackingRewriter.rewrite(content, plan: plan)
        guard let result = rewritten else { return }
        openPixels += result.openPixels
        placeholders += result.placeholders
        rewrittenParts += 1

        // A body that ended with a line break still does; so does the message's last line.
        let needsFinalLineBreak = body.last == ASCII.lf || part.bodyRange.upperBound == bytes.count
        var encoded: [UInt8]
        var quotedPrintable = part.transferEncoding == .quotedPrintable
        switch part.transferEncoding {
        case .base64:
            encoded = MIMEBase64.encode(result.content)
        case .quotedPrintable:
            encoded = QuotedPrintable.encode(result.content)
        case .sevenBit, .eightBit, .binary, .other:
            let normalized = Self.withCRLFLineEnds(result.content)
            let needs8Bit = part.transferEncoding == .sevenBit && normalized.contains { $0 >= 0x80 }
            // A lone CR may not stand in a message (RFC 5322 §2.3); made a line break, it could
            // turn text into a delimiter line. Quoted-printable keeps it as =0D.
            if needs8Bit || Self.hasLoneCR(normalized) || Self.longestLine(normalized) > MessageLineLimits.maxLineLength {
                encoded = QuotedPrintable.encode(normalized)
                quotedPrintable = true
                switchToQuotedPrintable(part, isRoot: isRoot)
            } else {
                encoded = normalized
            }
        }
        if needsFinalLineBreak, !encoded.isEmpty, encoded.last != ASCII.lf {
            // In quoted-printable, a soft break adds nothing to the content, if the line has room.
            if quotedPrintable, Self.lastLineLength(encoded) < MessageLineLimits.maxEncodedLineLength { encoded.append(ASCII.equals) }
            encoded += ASCII.crlf
        }
        // A part whose header had no empty line after it gets one, so the new body stays a body.
        if let index = insertionIndex(for: part) {
            insertions[index].bodyAdded = true
        } else {
            insertions.append((part, [], true))
        }
        splice.replace(part.bodyRange, with: encoded)
    }

    /// Replaces the part's `Content-Transfer-Encoding` field, or adds one (and `MIME-Version` to a
    /// message that had none, RFC 2045 §4).
    private mutating func switchToQuotedPrintable(_ part: MIMEPart, isRoot: Bool) {
        let field = Array("Content-Transfer-Encoding: quoted-printable".utf8) + ASCII.crlf
        if let existing = part.header.field("Content-Transfer-Encoding") {
            splice.replace(existing.range, with: field)
            return
        }
        if isRoot, !part.header.contains("MIME-Version") {
            addHeaderField(Array("MIME-Version: 1.0".utf8) + ASCII.crlf, named: "MIME-Version", to: part)
        }
        addHeaderField(field, named: "Content-Transfer-Encoding", to: part)
    }

    /// One insertion per part at the end of its fields: after a line break, and followed by the
    /// empty line when the header had none.
    mutating func flushHeaderInsertions() {
        for (part, fields, bodyAdded) in insertions {
            let at = part.header.endOfFields
            let hasEmptyLine = part.bodyRange.lowerBound > at
            let hasBody = !part.bodyRange.isEmpty || bodyAdded
            // With no fields before and none added, a body needs no empty line in front of it.
            let needsEmptyLine = !hasEmptyLine && hasBody && !(part.header.fields.isEmpty && fields.isEmpty)
            guard !fields.isEmpty || needsEmptyLine else { continue }
            // What will precede the insertion once removed fields are gone.
            var before = at
            while let removed = removedFields.first(where: { $0.upperBound == before && !$0.isEmpty }) { before = removed.lowerBound }
            var text: [UInt8] = []
            if before > part.range.lowerBound, bytes[before - 1] != ASCII.lf { text += ASCII.crlf }
            for field in fields { text += field.bytes }
            if needsEmptyLine { text += ASCII.crlf }
            splice.insert(text, at: at, rank: 0) // before a body that starts at the same index
        }
    }

    /// Text line ends as CRLF: a bare LF becomes CRLF (RFC 5322 §2.3), as the parser reads it.
    static func withCRLFLineEnds(_ content: [UInt8]) -> [UInt8] {
        var bareLF = 0
        for i in content.indices where content[i] == ASCII.lf && (i == 0 || content[i - 1] != ASCII.cr) { bareLF += 1 }
        guard bareLF > 0 else { return content }
        var out: [UInt8] = []
        out.reserveCapacity(content.count + bareLF)
        for i in content.indices {
            if content[i] == ASCII.lf, i == 0 || content[i - 1] != ASCII.cr { out.append(ASCII.cr) }
            out.append(content[i])
        }
        return out
    }

    /// Whether some CR is not followed by LF.
    static func hasLoneCR(_ content: [UInt8]) -> Bool {
        for i in content.indices where content[i] == ASCII.cr && (i + 1 == content.count || content[i + 1] != ASCII.lf) {
            return true
        }
        return false
    }

    static func lastLineLength(_ content: [UInt8]) -> Int {
        content.count - ((content.lastIndex(of: ASCII.lf)).map { $0 + 1 } ?? 0)
    }

    /// The longest line, line break excluded.
    static func longestLine(_ content: [UInt8]) -> Int {
        var longest = 0
        var start = 0
        for (i, b) in content.enumerated() where b == ASCII.lf {
            let length = i - start - (i > start && content[i - 1] == ASCII.cr ? 1 : 0)
            longest = max(longest, length)
            start = i + 1
        }
        return max(longest, content.count - start)
    }
}

extension ContentRewritePlan {
    init(_ options: TrackingOptions) throws(TrackingRewriteError) {
        self.clickTracking = options.clickTracking
        if let url = options.openPixelURL {
            try Self.validate(url, what: "open pixel URL")
            self.openPixelTag = Self.openPixelTag(for: url)
        }
        if let url = options.unsubscribeURL {
            try Self.validate(url, what: "unsubscribe URL")
            let placeholder = Array(options.unsubscribePlaceholder.utf8)
            guard !placeholder.isEmpty, placeholder.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }),
                  placeholder.contains(where: { $0 != ASCII.space }) else {
                throw TrackingRewriteError(.invalidPlaceholder, "the unsubscribe placeholder must be printable ASCII")
            }
            self.placeholder = placeholder
            self.unsubscribeURL = url
            self.unsubscribeHTML = HTMLText.escape(url)
        }
    }

    private static func validate(_ url: String, what: String) throws(TrackingRewriteError) {
        guard !url.isEmpty, url.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw TrackingRewriteError(.invalidURL, "the \(what) must be printable ASCII without spaces")
        }
    }
}

/// Writes header fields Tern adds.
enum HeaderFieldWriter {
    /// Fields that describe the MIME structure; removing one would change how the body reads.
    static func isProtected(_ name: String) -> Bool {
        ["content-type", "content-transfer-encoding", "mime-version"].contains(name.asciiLowercased())
    }

    /// `Name: value` CRLF, folded at spaces to keep lines near 78 characters and never past 998
    /// (RFC 5322 §2.1.1, §2.2.3).
    static func field(name: String, value: String) throws(TrackingRewriteError) -> [UInt8] {
        let nameBytes = Array(name.utf8)
        guard !nameBytes.isEmpty, nameBytes.allSatisfy({ $0 >= 33 && $0 <= 126 && $0 != ASCII.colon }) else {
            throw TrackingRewriteError(.invalidHeaderField, "a field name is 1*ftext (printable ASCII except ':')")
        }
        let valueBytes = Array(value.trimmingMailWhitespace().utf8)
        guard valueBytes.allSatisfy({ ($0 >= 0x20 && $0 < 0x7F) || $0 == ASCII.tab }) else {
            throw TrackingRewriteError(.invalidHeaderField, "the value of \(name) must be printable ASCII on one line")
        }
        let preferred = 78
        var out = nameBytes + Array(": ".utf8)
        var lineLength = out.count
        // Words with the whitespace before them; a fold goes before that whitespace.
        var words: [ArraySlice<UInt8>] = []
        var start = 0
        for i in valueBytes.indices where i > start && ASCII.isWSP(valueBytes[i]) && !ASCII.isWSP(valueBytes[i - 1]) {
            words.append(valueBytes[start..<i])
            start = i
        }
        words.append(valueBytes[start...])
        for (index, word) in words.enumerated() {
            if index > 0, lineLength + word.count > preferred {
                out += ASCII.crlf
                lineLength = 0
            }
            guard lineLength + word.count <= MessageLineLimits.maxLineLength else {
                throw TrackingRewriteError(.invalidHeaderField, "the value of \(name) has a word too long for one line")
            }
            out += word
            lineLength += word.count
        }
        return out + ASCII.crlf
    }
}
