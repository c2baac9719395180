/// What to do to the content of one text part, prepared once per message.
struct ContentRewritePlan {
    var clickTracking: TrackingOptions.LinkRewrite?
    /// The whole `<img …>` tag of the open pixel, escaped.
    var openPixelTag: [UInt8]?
    var placeholder: [UInt8]?
    /// The unsubscribe URL as it is (printable ASCII), for plain text and for link URLs.
    var unsubscribeURL: String?
    /// The same, escaped for HTML.
    var unsubscribeHTML: [UInt8] = []

    /// `<img src="URL" width="1" height="1" alt="" style="…" />`
    static func openPixelTag(for url: String) -> [UInt8] {
        Array("<img src=\"".utf8) + HTMLText.escape(url)
            + Array("\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0;width:1px;height:1px\" />".utf8)
    }
}

/// What a content rewrite did.
struct ContentRewriteResult {
    var content: [UInt8]
    var openPixels = 0
    var placeholders = 0
}

/// Rewrites the HTML of one part for tracking: link targets, the open pixel, the unsubscribe
/// placeholder. Works on the bytes in the part's charset, which must be ASCII-transparent.
enum HTMLTrackingRewriter {
    /// The rewritten HTML, or nil when nothing changed. Rewritten links' original URLs are appended
    /// to `links`; the next link's index is `links.count`.
    static func rewrite(
        _ html: [UInt8],
        charset: MIMECharset,
        plan: ContentRewritePlan,
        links: inout [String]
    ) -> ContentRewriteResult? {
        var splice = ByteSplice()
        var lastBodyEndTag: Int? = nil
        var rewrittenValues: [Range<Int>] = []
        let linkTags: @Sendable ([UInt8], Range<Int>) -> Bool = { bytes, name in
            ASCII.equalsIgnoringCase(bytes, name, "a") || ASCII.equalsIgnoringCase(bytes, name, "area")
        }
        for token in HTMLTokenizer(html, reportsAttributes: plan.clickTracking == nil ? { _, _ in false } : linkTags) {
            switch token {
            case .startTag(let tag):
                guard let clickTracking = plan.clickTracking,
                      tag.hasName("a", in: html) || tag.hasName("area", in: html),
                      tag.attribute("data-tern-notrack", in: html) == nil,
                      let href = tag.attribute("href", in: html),
                      let valueRange = href.valueRange, let replaced = href.valueRangeWithQuotes,
                      var url = LinkClassifier.trackableURL(HTMLText.decodeAttributeValue(html[valueRange], charset: charset))
                else { continue }
                if let placeholder = plan.placeholder, let unsubscribe = plan.unsubscribeURL {
                    url = url.replacingOccurrences(of: placeholder, with: unsubscribe)
                }
                let tracked = clickTracking(url, links.count)
                links.append(url)
                splice.replace(replaced, with: [UInt8(ascii: "\"")] + HTMLText.escape(tracked) + [UInt8(ascii: "\"")])
                rewrittenValues.append(replaced)
            case .endTag(let range, let nameRange):
                if ASCII.equalsIgnoringCase(html, nameRange, "body") { lastBodyEndTag = range.lowerBound }
            case .comment, .rawText:
                continue
            }
        }
        var result = ContentRewriteResult(content: [])
        if let pixel = plan.openPixelTag {
            splice.insert(pixel, at: lastBodyEndTag ?? endBeforeTrailingLineBreaks(html))
            result.openPixels = 1
        }
        if let placeholder = plan.placeholder {
            for occurrence in html.occurrences(of: placeholder, in: 0..<html.count)
            where !rewrittenValues.contains(where: { $0.overlaps(occurrence) }) {
                splice.replace(occurrence, with: plan.unsubscribeHTML)
                result.placeholders += 1
            }
        }
        guard !splice.isEmpty else { return nil }
        result.content = splice.apply(to: html)
        return result
    }

    /// Where to append to a text: before the line breaks that end it.
    static func endBeforeTrailingLineBreaks(_ bytes: [UInt8]) -> Int {
        var end = bytes.count
        while end > 0, bytes[end - 1] == ASCII.lf || bytes[end - 1] == ASCII.cr { end -= 1 }
        return end
    }
}

/// Rewrites a plain text part: the unsubscribe placeholder only; links are left alone.
enum PlainTextTrackingRewriter {
    static func rewrite(_ text: [UInt8], plan: ContentRewritePlan) -> ContentRewriteResult? {
        guard let placeholder = plan.placeholder, let url = plan.unsubscribeURL else { return nil }
        let occurrences = text.occurrences(of: placeholder, in: 0..<text.count)
        guard !occurrences.isEmpty else { return nil }
        var splice = ByteSplice()
        let replacement = Array(url.utf8)
        for occurrence in occurrences { splice.replace(occurrence, with: replacement) }
        return ContentRewriteResult(content: splice.apply(to: text), placeholders: occurrences.count)
    }
}

extension String {
    /// This string with every occurrence of `pattern` (bytes) replaced; no Foundation.
    func replacingOccurrences(of pattern: [UInt8], with replacement: String) -> String {
        let bytes = Array(utf8)
        let found = bytes.occurrences(of: pattern, in: 0..<bytes.count)
        guard !found.isEmpty else { return self }
        var splice = ByteSplice()
        for range in found { splice.replace(range, with: Array(replacement.utf8)) }
        return String(decoding: splice.apply(to: bytes), as: UTF8.self)
    }
}
