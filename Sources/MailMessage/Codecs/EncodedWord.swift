/// RFC 2047 encoded-words in header values, decoded for display.
///
///     encoded-word = "=?" charset "?" encoding "?" encoded-text "?="
///
/// - SeeAlso: RFC 2047 §2 (syntax), §4 (B and Q encodings), §6.2 (display), RFC 2231 §5 (language)
public enum EncodedWord {
    /// Decodes every encoded-word in `value` (an unfolded header value). Whitespace between two
    /// adjacent encoded-words is dropped (§6.2) and adjacent words in one charset are joined before
    /// decoding, so a multibyte character split across words survives. A word in a charset Tern
    /// does not know, or that is malformed, is left as written.
    ///
    /// Charsets: UTF-8, US-ASCII, ISO-8859-1, ISO-8859-15, Windows-1252.
    public static func decode(_ value: String) -> String {
        let bytes = Array(value.utf8)
        guard bytes.count >= 8, containsMarker(bytes) else { return value }

        enum Segment {
            case text(Range<Int>)
            case word(charset: MIMECharset, data: [UInt8], source: Range<Int>)

            var isWord: Bool {
                if case .word = self { return true }
                return false
            }
        }
        var segments: [Segment] = []
        var textStart = 0
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == ASCII.equals, bytes[i + 1] == UInt8(ascii: "?"), let word = parseWord(bytes, at: i) {
                if textStart < i { segments.append(.text(textStart..<i)) }
                segments.append(.word(charset: word.charset, data: word.data, source: i..<word.end))
                i = word.end
                textStart = i
            } else {
                i += 1
            }
        }
        if textStart < bytes.count { segments.append(.text(textStart..<bytes.count)) }

        var out = ""
        var pending: (charset: MIMECharset, data: [UInt8], sources: [Range<Int>])? = nil
        func flush() {
            guard let p = pending else { return }
            if let text = p.charset.decode(p.data) {
                out += text
            } else {
                for source in p.sources { out += String(decoding: bytes[source], as: UTF8.self) }
            }
            pending = nil
        }
        for (index, segment) in segments.enumerated() {
            switch segment {
            case .word(let charset, let data, let source):
                if var p = pending, p.charset == charset {
                    p.data += data
                    p.sources.append(source)
                    pending = p
                } else {
                    flush()
                    pending = (charset, data, [source])
                }
            case .text(let range):
                let isLinearWhitespace = bytes[range].allSatisfy { ASCII.isWSP($0) || $0 == ASCII.cr || $0 == ASCII.lf }
                let betweenWords = index > 0 && index + 1 < segments.count
                    && segments[index - 1].isWord && segments[index + 1].isWord
                if isLinearWhitespace && betweenWords { continue }
                flush()
                out += String(decoding: bytes[range], as: UTF8.self)
            }
        }
        flush()
        return out
    }

    private static func containsMarker(_ bytes: [UInt8]) -> Bool {
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == ASCII.equals, bytes[i + 1] == UInt8(ascii: "?") { return true }
            i += 1
        }
        return false
    }

    /// One encoded-word at `start` (which holds `=?`): its charset, decoded octets and end.
    private static func parseWord(_ bytes: [UInt8], at start: Int) -> (charset: MIMECharset, data: [UInt8], end: Int)? {
        let question = UInt8(ascii: "?")
        var i = start + 2
        let charsetStart = i
        while i < bytes.count, bytes[i] != question {
            guard bytes[i] > 32, bytes[i] < 127 else { return nil }
            i += 1
        }
        guard i + 3 < bytes.count, i > charsetStart else { return nil }
        var charsetName = String(decoding: bytes[charsetStart..<i], as: UTF8.self)
        if let star = charsetName.firstIndex(of: "*") { charsetName = String(charsetName[..<star]) } // RFC 2231 §5 language
        let encoding = ASCII.lowercased(bytes[i + 1])
        guard encoding == UInt8(ascii: "b") || encoding == UInt8(ascii: "q"), bytes[i + 2] == question else { return nil }
        let textStart = i + 3
        var j = textStart
        while j + 1 < bytes.count, !(bytes[j] == question && bytes[j + 1] == ASCII.equals) {
            guard bytes[j] != ASCII.space || encoding == UInt8(ascii: "q") else { return nil }
            j += 1
        }
        guard j + 1 < bytes.count else { return nil }
        let text = bytes[textStart..<j]
        let data = encoding == UInt8(ascii: "b") ? MIMEBase64.decode(text) : decodeQ(text)
        return (MIMECharset(name: charsetName), data, j + 2)
    }

    /// The Q encoding (§4.2): `_` is a space, `=XX` an octet, anything else itself.
    private static func decodeQ(_ text: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = text.startIndex
        while i < text.endIndex {
            let b = text[i]
            if b == UInt8(ascii: "_") {
                out.append(ASCII.space)
            } else if b == ASCII.equals, i + 2 < text.endIndex,
                      let hi = ASCII.hexValue(text[i + 1]), let lo = ASCII.hexValue(text[i + 2]) {
                out.append(hi << 4 | lo)
                i += 2
            } else {
                out.append(b)
            }
            i += 1
        }
        return out
    }
}
