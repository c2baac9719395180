/// One attribute of a start tag, as byte ranges in the HTML.
struct HTMLAttribute: Sendable, Hashable {
    /// The name as written (compare ignoring ASCII case).
    var nameRange: Range<Int>
    /// The value without its quotes; nil for an attribute with no `=`.
    var valueRange: Range<Int>?
    /// The value with its quotes, when quoted: what a rewrite replaces.
    var valueRangeWithQuotes: Range<Int>?
    /// `"` or `'` for quoted values.
    var quote: UInt8?
}

/// A start tag: `<name attr=value …>`.
struct HTMLStartTag: Sendable, Hashable {
    /// From `<` to just after `>`.
    var range: Range<Int>
    var nameRange: Range<Int>
    var attributes: [HTMLAttribute]
}

/// What the tokenizer reports. Text between markup is not reported.
enum HTMLToken: Sendable, Hashable {
    case startTag(HTMLStartTag)
    /// `</name …>`: the whole tag and its name.
    case endTag(range: Range<Int>, nameRange: Range<Int>)
    /// `<!-- … -->`, `<![CDATA[ … ]]>`, `<!DOCTYPE …>`, `<? … >` and other bogus comments.
    case comment(Range<Int>)
    /// The raw content of `script`, `style` and the other raw-text elements, where no tags are read.
    case rawText(Range<Int>)
}

/// A small HTML tokenizer for finding start and end tags in mail HTML, after the states of the
/// WHATWG HTML tokenizer (§13.2.5) that matter for that: comments, CDATA, bogus comments, raw text
/// elements, and attribute values in double, single or no quotes. Names are matched ignoring
/// ASCII case. Bytes ≥ 0x80 are opaque, so any ASCII-compatible charset reads correctly.
/// A tag cut off by the end of the input is not reported (as the HTML tokenizer drops it).
struct HTMLTokenizer: IteratorProtocol, Sequence {
    let bytes: [UInt8]
    private let end: Int
    private var index: Int
    /// After a raw-text start tag: the lowercase name whose end tag ends the raw text.
    private var rawTextEndName: StaticString?
    /// Which start tags (by name range) get their attributes reported; all when nil.
    private let reportsAttributes: (@Sendable ([UInt8], Range<Int>) -> Bool)?

    /// - Parameter reportsAttributes: which start tags, by name, get their attributes reported
    ///   (the others are still read through, to find where they end). All when nil.
    init(_ bytes: [UInt8], range: Range<Int>? = nil, reportsAttributes: (@Sendable ([UInt8], Range<Int>) -> Bool)? = nil) {
        self.bytes = bytes
        self.index = range?.lowerBound ?? 0
        self.end = range?.upperBound ?? bytes.count
        self.reportsAttributes = reportsAttributes
    }

    private static let lt = UInt8(ascii: "<")
    private static let gt = UInt8(ascii: ">")
    private static let slash = UInt8(ascii: "/")
    private static let bang = UInt8(ascii: "!")
    private static let question = UInt8(ascii: "?")
    private static let doubleQuote = UInt8(ascii: "\"")
    private static let singleQuote = UInt8(ascii: "'")

    mutating func next() -> HTMLToken? {
        if let name = rawTextEndName {
            rawTextEndName = nil
            let start = index
            let rawEnd = findRawTextEnd(name, from: start)
            index = rawEnd
            if rawEnd > start { return .rawText(start..<rawEnd) }
        }
        while index < end {
            guard let lt = firstIndex(of: Self.lt, from: index) else {
                index = end
                return nil
            }
            index = lt + 1
            guard index < end else { return nil }
            let b = bytes[index]
            if ASCII.isAlpha(b) {
                guard let tag = readTag(at: lt) else {
                    index = end
                    return nil
                }
                index = tag.range.upperBound
                if let raw = Self.rawTextName(bytes, tag.nameRange) { rawTextEndName = raw }
                return .startTag(tag)
            } else if b == Self.slash {
                guard index + 1 < end else { return nil }
                let c = bytes[index + 1]
                if ASCII.isAlpha(c) {
                    guard let tag = readTag(at: lt, nameAt: index + 1) else {
                        index = end
                        return nil
                    }
                    index = tag.range.upperBound
                    return .endTag(range: tag.range, nameRange: tag.nameRange)
                } else if c == Self.gt {
                    index += 2 // `</>` is ignored
                } else {
                    return bogusComment(from: lt, contentStart: index + 1)
                }
            } else if b == Self.bang {
                if hasPrefix("<!--", at: lt) {
                    return comment(from: lt)
                } else if hasPrefix("<![cdata[", at: lt) {
                    let close = find([UInt8(ascii: "]"), UInt8(ascii: "]"), Self.gt], from: lt + 9)
                    index = close.map { $0 + 3 } ?? end
                    return .comment(lt..<index)
                } else {
                    return bogusComment(from: lt, contentStart: index + 1)
                }
            } else if b == Self.question {
                return bogusComment(from: lt, contentStart: index)
            }
            // Anything else: the `<` was text.
        }
        return nil
    }

    // MARK: Tags

    /// Reads a tag from `<` (or `</`): its name and attributes up to `>`.
    private func readTag(at lt: Int, nameAt: Int? = nil) -> HTMLStartTag? {
        var i = nameAt ?? lt + 1
        let nameStart = i
        while i < end, !ASCII.isHTMLWhitespace(bytes[i]), bytes[i] != Self.slash, bytes[i] != Self.gt { i += 1 }
        let nameRange = nameStart..<i
        let keepsAttributes = nameAt == nil && (reportsAttributes?(bytes, nameRange) ?? true)
        var attributes: [HTMLAttribute] = []
        while true {
            // Before attribute name.
            while i < end, ASCII.isHTMLWhitespace(bytes[i]) || bytes[i] == Self.slash { i += 1 }
            guard i < end else { return nil }
            if bytes[i] == Self.gt {
                return HTMLStartTag(range: lt..<(i + 1), nameRange: nameRange, attributes: attributes)
            }
            // Attribute name: a leading `=` belongs to it.
            let attributeNameStart = i
            i += 1
            while i < end, !ASCII.isHTMLWhitespace(bytes[i]), bytes[i] != Self.slash, bytes[i] != Self.gt, bytes[i] != ASCII.equals {
                i += 1
            }
            var attribute = HTMLAttribute(nameRange: attributeNameStart..<i)
            // After attribute name.
            var j = i
            while j < end, ASCII.isHTMLWhitespace(bytes[j]) { j += 1 }
            if j < end, bytes[j] == ASCII.equals {
                j += 1
                while j < end, ASCII.isHTMLWhitespace(bytes[j]) { j += 1 }
                guard j < end else { return nil }
                let q = bytes[j]
                if q == Self.doubleQuote || q == Self.singleQuote {
                    guard let close = firstIndex(of: q, from: j + 1) else { return nil }
                    attribute.valueRange = (j + 1)..<close
                    attribute.valueRangeWithQuotes = j..<(close + 1)
                    attribute.quote = q
                    i = close + 1
                } else if q == Self.gt {
                    // `name=>`: an empty value.
                    attribute.valueRange = j..<j
                    attribute.valueRangeWithQuotes = j..<j
                    i = j
                } else {
                    var k = j
                    while k < end, !ASCII.isHTMLWhitespace(bytes[k]), bytes[k] != Self.gt { k += 1 }
                    attribute.valueRange = j..<k
                    attribute.valueRangeWithQuotes = j..<k
                    i = k
                }
            }
            if keepsAttributes { attributes.append(attribute) }
        }
    }

    /// Elements whose content is raw text (WHATWG HTML §13.1.2: raw text and escapable raw text
    /// elements, plus the legacy ones the tokenizer treats alike).
    private static func rawTextName(_ bytes: [UInt8], _ name: Range<Int>) -> StaticString? {
        switch name.count {
        case 3 where ASCII.equalsIgnoringCase(bytes, name, "xmp"): "xmp"
        case 5 where ASCII.equalsIgnoringCase(bytes, name, "style"): "style"
        case 5 where ASCII.equalsIgnoringCase(bytes, name, "title"): "title"
        case 6 where ASCII.equalsIgnoringCase(bytes, name, "script"): "script"
        case 6 where ASCII.equalsIgnoringCase(bytes, name, "iframe"): "iframe"
        case 7 where ASCII.equalsIgnoringCase(bytes, name, "noembed"): "noembed"
        case 8 where ASCII.equalsIgnoringCase(bytes, name, "textarea"): "textarea"
        case 8 where ASCII.equalsIgnoringCase(bytes, name, "noframes"): "noframes"
        case 9 where ASCII.equalsIgnoringCase(bytes, name, "plaintext"): "plaintext"
        default: nil
        }
    }

    /// The start of `</name` followed by whitespace, `/` or `>`, or the end.
    private func findRawTextEnd(_ name: StaticString, from start: Int) -> Int {
        if name.utf8CodeUnitCount == 9 { return end } // plaintext never ends
        var i = start
        let n = name.utf8CodeUnitCount
        while let lt = firstIndex(of: Self.lt, from: i) {
            let nameStart = lt + 2
            if nameStart + n <= end, bytes[lt + 1] == Self.slash, ASCII.equalsIgnoringCase(bytes, nameStart..<(nameStart + n), name) {
                let after = nameStart + n
                if after == end || ASCII.isHTMLWhitespace(bytes[after]) || bytes[after] == Self.slash || bytes[after] == Self.gt {
                    return lt
                }
            }
            i = lt + 1
        }
        return end
    }

    // MARK: Comments

    /// `<!--` to `-->` (or `--!>`); `<!-->` and `<!--->` are empty comments. Unclosed runs to the end.
    private mutating func comment(from lt: Int) -> HTMLToken {
        var j = lt + 2
        while j + 2 < end {
            if bytes[j] == ASCII.hyphen, bytes[j + 1] == ASCII.hyphen {
                if bytes[j + 2] == Self.gt {
                    index = j + 3
                    return .comment(lt..<index)
                }
                if j + 3 < end, bytes[j + 2] == Self.bang, bytes[j + 3] == Self.gt {
                    index = j + 4
                    return .comment(lt..<index)
                }
            }
            j += 1
        }
        index = end
        return .comment(lt..<end)
    }

    /// A bogus comment runs to the first `>` (WHATWG HTML §13.2.5.41).
    private mutating func bogusComment(from lt: Int, contentStart: Int) -> HTMLToken {
        let close = firstIndex(of: Self.gt, from: contentStart)
        index = close.map { $0 + 1 } ?? end
        return .comment(lt..<index)
    }

    // MARK: Scanning

    @inline(__always)
    private func firstIndex(of byte: UInt8, from start: Int) -> Int? {
        var i = start
        while i < end {
            if bytes[i] == byte { return i }
            i += 1
        }
        return nil
    }

    private func find(_ pattern: [UInt8], from start: Int) -> Int? {
        var i = start
        while let candidate = firstIndex(of: pattern[0], from: i) {
            guard candidate + pattern.count <= end else { return nil }
            if bytes[candidate..<(candidate + pattern.count)].elementsEqual(pattern) { return candidate }
            i = candidate + 1
        }
        return nil
    }

    private func hasPrefix(_ lowercaseLiteral: StaticString, at index: Int) -> Bool {
        ASCII.hasPrefixIgnoringCase(bytes, at: index, end: end, lowercaseLiteral)
    }
}

extension HTMLStartTag {
    /// Whether the tag's name is `lowercaseName`.
    func hasName(_ lowercaseName: StaticString, in bytes: [UInt8]) -> Bool {
        ASCII.equalsIgnoringCase(bytes, nameRange, lowercaseName)
    }

    /// The first attribute named `lowercaseName` (the HTML parser ignores later duplicates).
    func attribute(_ lowercaseName: StaticString, in bytes: [UInt8]) -> HTMLAttribute? {
        attributes.first { ASCII.equalsIgnoringCase(bytes, $0.nameRange, lowercaseName) }
    }
}
