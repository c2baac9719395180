import MailMessage

/// A text with its lowercase twin and its lines, for the plain-text heuristics.
struct ScannedText: Sendable {
    let bytes: [UInt8]
    /// `bytes` ASCII-lowercased, index for index.
    let lower: [UInt8]
    /// Line content ranges, line breaks excluded.
    let lines: [Range<Int>]

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.lower = Bytes.lowercased(bytes)
        self.lines = Bytes.lines(bytes)
    }

    /// The first line at or after `from` and before `end` whose lowercase text contains a phrase.
    /// (Phrases hold no line break, so a match never spans lines: each phrase is looked for once
    /// in the whole stretch, and the earliest match's line found by bisection.)
    func lineIndex(containing phrases: [[UInt8]], from: Int = 0, end: Int? = nil) -> Int? {
        let end = min(end ?? lines.count, lines.count)
        guard from >= 0, from < end else { return nil }
        let start = lines[from].lowerBound
        var stop = lines[end - 1].upperBound
        let longest = phrases.map(\.count).max() ?? 0
        var earliest: Int? = nil
        for phrase in phrases {
            guard let at = Bytes.find(phrase, in: lower, from: start, end: stop) else { continue }
            earliest = min(earliest ?? at, at)
            stop = min(stop, at + longest) // a match that starts later cannot be the earliest
        }
        guard let position = earliest else { return nil }
        var low = from
        var high = end - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if lines[mid].lowerBound <= position { low = mid } else { high = mid - 1 }
        }
        return low
    }

    func lineContains(_ index: Int, _ phrases: [[UInt8]]) -> Bool {
        let line = lines[index]
        return phrases.contains { Bytes.contains($0, in: lower, from: line.lowerBound, end: line.upperBound) }
    }

    /// Where in line `index` a phrase ends, for text that follows it on the same line.
    func end(of phrase: [UInt8], inLine index: Int) -> Int? {
        let line = lines[index]
        return Bytes.find(phrase, in: lower, from: line.lowerBound, end: line.upperBound).map { $0 + phrase.count }
    }

    func isBlank(_ index: Int) -> Bool {
        Bytes.trimmed(bytes, lines[index]).isEmpty
    }

    /// Leading whitespace of a line, a tab counted as one.
    func indent(_ index: Int) -> Int {
        let line = lines[index]
        var i = line.lowerBound
        while i < line.upperBound, Bytes.isWSP(bytes[i]) { i += 1 }
        return i - line.lowerBound
    }

    /// The trimmed text of a line (or of `range`).
    func string(_ index: Int) -> String {
        string(lines[index])
    }

    func string(_ range: Range<Int>) -> String {
        Bytes.string(bytes[Bytes.trimmed(bytes, range)])
    }

    /// The addresses in a line (or part of one), in order.
    func addresses(_ index: Int, from: Int? = nil) -> [String] {
        let line = lines[index]
        return AddressScanner.addresses(in: bytes, range: max(line.lowerBound, from ?? line.lowerBound)..<line.upperBound)
    }
}

/// Finds `local@domain` tokens in free text.
///
/// - SeeAlso: RFC 5322 §3.4.1 (addr-spec), RFC 6531 §3.3 (UTF-8 in addresses)
enum AddressScanner {
    static func addresses(in bytes: [UInt8], range: Range<Int>) -> [String] {
        var out: [String] = []
        var i = range.lowerBound
        while i < range.upperBound {
            guard bytes[i] == UInt8(ascii: "@") else {
                i += 1
                continue
            }
            var start = i
            while start > range.lowerBound, isLocalByte(bytes[start - 1]) { start -= 1 }
            var end = i + 1
            while end < range.upperBound, isDomainByte(bytes[end]) { end += 1 }
            while start < i, bytes[start] == UInt8(ascii: ".") || bytes[start] == UInt8(ascii: "'")
                || bytes[start] == UInt8(ascii: "=") || bytes[start] == UInt8(ascii: "`") { start += 1 }
            while end > i + 1, bytes[end - 1] == UInt8(ascii: ".") || bytes[end - 1] == UInt8(ascii: "-") { end -= 1 }
            let domain = bytes[(i + 1)..<max(i + 1, end)]
            if start < i, domain.count >= 3, domain.contains(UInt8(ascii: ".")),
               let first = domain.first, Bytes.isAlpha(first) || Bytes.isDigit(first) || first >= 0x80 {
                out.append(Bytes.string(bytes[start..<end]))
            }
            i = max(end, i + 1)
        }
        return out
    }

    @inline(__always)
    static func isLocalByte(_ b: UInt8) -> Bool {
        if Bytes.isAlpha(b) || Bytes.isDigit(b) || b >= 0x80 { return true }
        switch b {
        case UInt8(ascii: "."), UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"),
             UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"),
             UInt8(ascii: "/"), UInt8(ascii: "="), UInt8(ascii: "?"), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "{"), UInt8(ascii: "|"), UInt8(ascii: "}"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    @inline(__always)
    static func isDomainByte(_ b: UInt8) -> Bool {
        Bytes.isAlpha(b) || Bytes.isDigit(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b >= 0x80
    }
}

/// The text of a message that the heuristics read.
enum BodyText {
    struct Texts: Sendable {
        /// The human-readable text: inline `text/plain` parts, else `text/html` made plain.
        var human: [UInt8]
        /// All text, attachments included: where quoted original headers are looked for.
        var all: [UInt8]
    }

    /// Media types never read as text: reports and returned messages have their own readers.
    static func isTextLeaf(_ part: MIMEPart) -> Bool {
        part.isLeaf && part.contentType.type == "text" && part.contentType.subtype != "rfc822-headers"
    }

    /// The texts of `parts` (the message's parts, the root first).
    static func extract(_ message: MailMessage, parts: [MIMEPart], limit: Int) -> Texts {
        var plain: [UInt8] = []
        var html: [UInt8] = []
        var attached: [UInt8] = []
        for part in parts where isTextLeaf(part) {
            guard plain.count + html.count + attached.count < limit * 2 else { break }
            let body = Array((message.decodedBody(of: part) ?? Array(message.body(of: part))).prefix(limit))
            if part.isAttachment {
                attached += body + [Bytes.lf]
            } else if part.contentType.subtype == "html" {
                html += HTMLText.plain(body) + [Bytes.lf]
            } else {
                plain += body + [Bytes.lf, Bytes.lf]
            }
        }
        var human = plain.isEmpty ? html : plain
        if human.count > limit { human = Array(human.prefix(limit)) }
        var all = human + [Bytes.lf] + attached
        if all.count > limit * 2 { all = Array(all.prefix(limit * 2)) }
        return Texts(human: human, all: all)
    }
}

/// Just enough HTML-to-text for bounces that come only as HTML: tags dropped (block ends become
/// line breaks), `<style>`, `<script>` and comments dropped, common entities decoded.
enum HTMLText {
    private static let commentOpen = Array("<!--".utf8)
    private static let commentClose = Array("-->".utf8)
    /// Elements whose content is not text: skipped to their end tag.
    private static let skipped: [(open: [UInt8], close: [UInt8])] = ["style", "script", "head"].map {
        (Array("<\($0)".utf8), Array("</\($0)".utf8))
    }
    /// Tags that end a line of text.
    private static let lineBreaks: Set<[UInt8]> = Set(["br", "br/", "p", "/p", "div", "/div", "tr", "/tr", "li", "/li",
                                                      "/h1", "/h2", "/h3", "/h4", "/table", "/title", "hr"].map { Array($0.utf8) })

    static func plain(_ html: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(html.count / 2)
        let lower = Bytes.lowercased(html)
        var i = 0
        while i < html.count {
            let b = html[i]
            if b == UInt8(ascii: "<") {
                if Bytes.find(commentOpen, in: lower, from: i, end: min(html.count, i + 4)) == i {
                    i = Bytes.find(commentClose, in: lower, from: i + 4).map { $0 + 3 } ?? html.count
                    continue
                }
                var skippedElement = false
                for element in skipped where Bytes.find(element.open, in: lower, from: i, end: min(html.count, i + element.open.count)) == i {
                    let after = i + element.open.count
                    // `<style>` or `<style …>`, not `<styles>`.
                    guard after >= html.count || !Bytes.isAlpha(html[after]) else { continue }
                    // To just past the `>` of the end tag.
                    let endTag = Bytes.find(element.close, in: lower, from: after) ?? html.count
                    i = html[endTag...].firstIndex(of: UInt8(ascii: ">")).map { $0 + 1 } ?? html.count
                    skippedElement = true
                    break
                }
                if skippedElement { continue }
                let close = html[i...].firstIndex(of: UInt8(ascii: ">")) ?? html.count
                var nameEnd = i + 1
                while nameEnd < close, Bytes.isAlpha(lower[nameEnd]) || Bytes.isDigit(lower[nameEnd]) || lower[nameEnd] == UInt8(ascii: "/") {
                    nameEnd += 1
                }
                let name = Array(lower[min(i + 1, nameEnd)..<nameEnd])
                if lineBreaks.contains(name) {
                    out.append(Bytes.lf)
                } else if name == Array("td".utf8) || name == Array("th".utf8) {
                    out.append(Bytes.space)
                }
                i = close + 1
            } else if b == UInt8(ascii: "&") {
                let (decoded, length) = entity(html, at: i)
                out += decoded
                i += length
            } else {
                out.append(b)
                i += 1
            }
        }
        return out
    }

    private static let entities: [String: String] = [
        "lt": "<", "gt": ">", "amp": "&", "quot": "\"", "apos": "'", "nbsp": " ",
    ]

    /// A character reference at `start` (`&amp;`, `&#39;`, `&#x1F600;`) and its length; a lone `&`
    /// is itself.
    private static func entity(_ html: [UInt8], at start: Int) -> ([UInt8], Int) {
        var end = start + 1
        while end < html.count, end - start < 10, html[end] != UInt8(ascii: ";"), !Bytes.isWSP(html[end]) { end += 1 }
        guard end < html.count, html[end] == UInt8(ascii: ";") else { return ([UInt8(ascii: "&")], 1) }
        let name = String(decoding: html[(start + 1)..<end], as: UTF8.self)
        if let value = entities[name.asciiLowercased()] { return (Array(value.utf8), end - start + 1) }
        if name.hasPrefix("#") {
            let digits = name.dropFirst()
            let number = digits.first == "x" || digits.first == "X" ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits)
            if let number, let scalar = Unicode.Scalar(number) {
                return (Array(String(Character(scalar)).utf8), end - start + 1)
            }
        }
        return ([UInt8(ascii: "&")], 1)
    }
}
