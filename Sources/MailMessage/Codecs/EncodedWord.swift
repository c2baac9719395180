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

extension EncodedWord {
    /// Longest encoded-word, delimiters included (RFC 2047 §2).
    public static let maxWordLength = 75

    /// Encodes `text` as UTF-8 encoded-words for a header, each at most `maxLength` characters
    /// (the first at most `firstMaxLength`, to fit after a field name), split only between Unicode
    /// scalars so each word holds whole characters (RFC 2047 §5). Decoders join adjacent words and
    /// drop the whitespace between them (§6.2), so every space of `text` is encoded in a word.
    ///
    /// Q (§4.2) is used when it is no longer than B (§4.1); Q writes only the characters §5(3)
    /// allows in a phrase, so the words fit in `Subject`, a display name or a comment alike.
    public static func encode(_ text: String, firstMaxLength: Int = maxWordLength, maxLength: Int = maxWordLength) -> [String] {
        let qLength = qWidth(text.utf8)
        let useQ = qLength <= (text.utf8.count + 2) / 3 * 4
        let prefix = useQ ? "=?utf-8?q?" : "=?utf-8?b?"
        let overhead = prefix.utf8.count + 2
        var words: [String] = []
        var pending: [UInt8] = []
        var pendingQLength = 0
        func encodedLength(bytes: Int, qLength: Int) -> Int { useQ ? qLength : (bytes + 2) / 3 * 4 }
        func flush() {
            guard !pending.isEmpty else { return }
            let encoded = useQ ? encodeQ(pending) : MIMEBase64.encode(pending)
            words.append(prefix + String(decoding: encoded, as: UTF8.self) + "?=")
            pending.removeAll(keepingCapacity: true)
            pendingQLength = 0
        }
        for scalar in text.unicodeScalars {
            let scalarBytes = Array(String(scalar).utf8)
            let scalarQLength = qWidth(scalarBytes)
            // Room for at least one scalar (4 bytes: 12 in Q, 8 in B) whatever the caller asks.
            let room = max((words.isEmpty ? firstMaxLength : maxLength) - overhead, 12)
            if !pending.isEmpty,
               encodedLength(bytes: pending.count + scalarBytes.count, qLength: pendingQLength + scalarQLength) > room {
                flush()
            }
            pending += scalarBytes
            pendingQLength += scalarQLength
        }
        flush()
        return words
    }

    /// The length of `bytes` in the Q encoding.
    private static func qWidth<C: Collection>(_ bytes: C) -> Int where C.Element == UInt8 {
        bytes.reduce(0) { $0 + (isQLiteral($1) || $1 == ASCII.space ? 1 : 3) }
    }

    /// Whether a byte stands for itself in Q-encoded text inside a phrase (RFC 2047 §5(3)):
    /// letters, digits and `! * + - /` (`=`, `?` and `_` have meanings in the encoding).
    private static func isQLiteral(_ b: UInt8) -> Bool {
        ASCII.isAlpha(b) || ASCII.isDigit(b) || b == UInt8(ascii: "!") || b == UInt8(ascii: "*")
            || b == UInt8(ascii: "+") || b == UInt8(ascii: "-") || b == UInt8(ascii: "/")
    }

    /// The Q encoding of `bytes`: a space as `_`, literals as themselves, the rest as `=XX`.
    private static func encodeQ(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 3)
        for b in bytes {
            if b == ASCII.space {
                out.append(UInt8(ascii: "_"))
            } else if isQLiteral(b) {
                out.append(b)
            } else {
                out.append(ASCII.equals)
                out.append(ASCII.upperHexDigits[Int(b >> 4)])
                out.append(ASCII.upperHexDigits[Int(b & 0x0F)])
            }
        }
        return out
    }
}
