/// One entity of a message: the message itself or a body part, with where its header and body
/// lie in the original bytes.
///
/// A multipart whose body could be split has ``children``; everything else is a leaf. Leaves include
/// `message/rfc822` (kept opaque: Tern never looks inside an attached message) and any multipart
/// that could not be split, which carries a ``MIMEDefect`` saying why.
///
/// - SeeAlso: RFC 2045 §2.4 (entity), RFC 2046 §5.1 (multipart)
public struct MIMEPart: Sendable, Hashable {
    /// The part's header fields.
    public let header: MessageHeader
    /// The header fields and the empty line that ends them.
    public let headerRange: Range<Int>
    /// The body, still transfer-encoded. In a multipart, the line break before the next delimiter
    /// belongs to the delimiter, not to this body (RFC 2046 §5.1.1).
    public let bodyRange: Range<Int>
    /// The effective content type: the field's, or the default when absent or unreadable.
    public let contentType: ContentType
    /// The effective transfer encoding: `7bit` when the field is absent (RFC 2045 §6.1).
    public let transferEncoding: ContentTransferEncoding
    /// Multipart nesting depth: 0 for the message itself.
    public let depth: Int
    /// Layout of a multipart that could be split; nil for leaves.
    public let multipart: MultipartLayout?
    /// The body parts of a split multipart, in order.
    public let children: [MIMEPart]
    /// What was wrong with this part (not its children).
    public let defects: [MIMEDefect]

    /// The whole part: header and body.
    public var range: Range<Int> { headerRange.lowerBound..<bodyRange.upperBound }
    /// Whether this part has no children (a leaf, opaque or not).
    public var isLeaf: Bool { multipart == nil }

    /// Whether `Content-Disposition` says `attachment` (RFC 2183 §2.2).
    public var isAttachment: Bool {
        guard let disposition = header.value("Content-Disposition") else { return false }
        var reader = StructuredFieldReader(Array(disposition.utf8))
        reader.skipCFWS()
        return reader.readToken()?.asciiLowercased() == "attachment"
    }

    /// This part and all parts under it, depth-first, this one first.
    public var allParts: [MIMEPart] {
        var out: [MIMEPart] = []
        collect(into: &out)
        return out
    }

    private func collect(into out: inout [MIMEPart]) {
        out.append(self)
        for child in children { child.collect(into: &out) }
    }
}

/// Where a split multipart's pieces lie outside its body parts.
///
/// - SeeAlso: RFC 2046 §5.1.1
public struct MultipartLayout: Sendable, Hashable {
    /// The `boundary` parameter.
    public let boundary: String
    /// Text before the first delimiter (ignored by readers).
    public let preambleRange: Range<Int>
    /// Text after the close delimiter line; nil when there is no close delimiter.
    public let epilogueRange: Range<Int>?
    /// Whether the close delimiter (`--boundary--`) was found.
    public var hasCloseDelimiter: Bool { epilogueRange != nil }
}

/// Splits a message into its part tree. Never fails: see ``MIMEDefect``.
enum MIMEParser {
    static func parse(_ bytes: [UInt8], limits: MIMELimits) -> MIMEPart {
        var budget = limits.maxParts - 1
        return parsePart(bytes, range: 0..<bytes.count, depth: 0, defaultType: .textPlain, limits: limits, budget: &budget)
    }

    private static func parsePart(
        _ bytes: [UInt8],
        range: Range<Int>,
        depth: Int,
        defaultType: ContentType,
        limits: MIMELimits,
        budget: inout Int
    ) -> MIMEPart {
        let parsedHeader = HeaderParser.parse(bytes, in: range, maxFields: limits.maxHeaderFields)
        var defects = parsedHeader.defects
        let header = parsedHeader.header
        let headerRange = range.lowerBound..<parsedHeader.bodyStart
        let bodyRange = parsedHeader.bodyStart..<range.upperBound

        var contentType = defaultType
        if let value = header.value("Content-Type") {
            if let parsed = ContentType(parsing: value) {
                contentType = parsed
            } else {
                defects.append(MIMEDefect(.invalidContentType, "unreadable Content-Type \"\(value.prefix(80))\""))
                contentType = .textPlain
            }
        }
        let transferEncoding = header.value("Content-Transfer-Encoding").map(ContentTransferEncoding.init(parsing:)) ?? .sevenBit

        func leaf(_ extra: MIMEDefect? = nil) -> MIMEPart {
            MIMEPart(
                header: header, headerRange: headerRange, bodyRange: bodyRange, contentType: contentType,
                transferEncoding: transferEncoding, depth: depth, multipart: nil, children: [],
                defects: extra.map { defects + [$0] } ?? defects
            )
        }

        guard contentType.isMultipart else { return leaf() }
        guard depth < limits.maxNestingDepth else {
            return leaf(MIMEDefect(.nestingTooDeep, "multipart nested deeper than \(limits.maxNestingDepth) levels"))
        }
        guard let boundary = contentType.boundary, !boundary.isEmpty else {
            return leaf(MIMEDefect(.missingBoundary, "\(contentType.mimeType) without a boundary parameter"))
        }
        let delimiters = findDelimiters(bytes, in: bodyRange, boundary: Array(boundary.utf8))
        guard let first = delimiters.first else {
            return leaf(MIMEDefect(.missingStartDelimiter, "no \"--\(boundary.prefix(70))\" line in the body"))
        }
        let hasClose = delimiters.last?.isClose ?? false
        // Bodies between delimiters; the line break before a delimiter belongs to it.
        let preambleRange = bodyRange.lowerBound..<contentEnd(bytes, start: bodyRange.lowerBound, delimiterLine: first.lineStart)
        var partRanges: [Range<Int>] = []
        for (index, delimiter) in delimiters.enumerated() where !delimiter.isClose {
            let start = delimiter.next
            let end = index + 1 < delimiters.count
                ? contentEnd(bytes, start: start, delimiterLine: delimiters[index + 1].lineStart)
                : bodyRange.upperBound
            partRanges.append(start..<end)
        }
        guard partRanges.count <= budget else {
            return leaf(MIMEDefect(.tooManyParts, "more than \(limits.maxParts) parts in the message"))
        }
        budget -= partRanges.count
        let childDefault: ContentType = contentType.subtype == "digest" ? .messageRFC822 : .textPlain
        let children = partRanges.map {
            parsePart(bytes, range: $0, depth: depth + 1, defaultType: childDefault, limits: limits, budget: &budget)
        }
        if !hasClose {
            defects.append(MIMEDefect(.missingCloseDelimiter, "no \"--\(boundary.prefix(70))--\" line: the last part runs to the end"))
        }
        let layout = MultipartLayout(
            boundary: boundary,
            preambleRange: preambleRange,
            epilogueRange: hasClose ? (delimiters[delimiters.count - 1].next..<bodyRange.upperBound) : nil
        )
        return MIMEPart(
            header: header, headerRange: headerRange, bodyRange: bodyRange, contentType: contentType,
            transferEncoding: transferEncoding, depth: depth, multipart: layout, children: children, defects: defects
        )
    }

    struct Delimiter {
        var lineStart: Int
        var next: Int
        var isClose: Bool
    }

    /// Delimiter lines up to and including the first close delimiter (RFC 2046 §5.1.1):
    ///
    ///     dash-boundary := "--" boundary
    ///     delimiter     := CRLF dash-boundary
    ///     close-delimiter := delimiter "--"
    ///
    /// each followed by optional transport padding (WSP) and the line break. Bare LF is accepted.
    static func findDelimiters(_ bytes: [UInt8], in range: Range<Int>, boundary: [UInt8]) -> [Delimiter] {
        bytes.withUnsafeBufferPointer { bytes in
            boundary.withUnsafeBufferPointer { boundary in
                var found: [Delimiter] = []
                var lineStart = range.lowerBound
                let end = range.upperBound
                let dashBoundaryLength = boundary.count + 2
                while lineStart < end {
                    // Only a line that starts with "--" can be a delimiter: look closer at those.
                    var newline = lineStart
                    while newline < end, bytes[newline] != ASCII.lf { newline += 1 }
                    let next = newline < end ? newline + 1 : end
                    let contentEnd = newline < end && newline > lineStart && bytes[newline - 1] == ASCII.cr ? newline - 1 : newline
                    if contentEnd - lineStart >= dashBoundaryLength,
                       bytes[lineStart] == ASCII.hyphen, bytes[lineStart + 1] == ASCII.hyphen,
                       UnsafeBufferPointer(rebasing: bytes[(lineStart + 2)..<(lineStart + dashBoundaryLength)]).elementsEqual(boundary) {
                        var i = lineStart + dashBoundaryLength
                        var isClose = false
                        if i + 1 < contentEnd, bytes[i] == ASCII.hyphen, bytes[i + 1] == ASCII.hyphen {
                            isClose = true
                            i += 2
                        }
                        while i < contentEnd, ASCII.isWSP(bytes[i]) || bytes[i] == ASCII.cr { i += 1 }
                        if i == contentEnd {
                            found.append(Delimiter(lineStart: lineStart, next: next, isClose: isClose))
                            if isClose { break }
                        }
                    }
                    lineStart = next
                }
                return found
            }
        }
    }

    /// The end of a body that is followed by a delimiter line: before that line's preceding line break.
    private static func contentEnd(_ bytes: [UInt8], start: Int, delimiterLine: Int) -> Int {
        var end = delimiterLine
        if end > start, bytes[end - 1] == ASCII.lf {
            end -= 1
            if end > start, bytes[end - 1] == ASCII.cr { end -= 1 }
        }
        return max(start, end)
    }
}
