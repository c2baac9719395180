/// Character references in HTML attribute values, both ways.
///
/// - SeeAlso: WHATWG HTML §13.2.5.72–80 (character reference states), §13.5 (named references)
enum HTMLText {
    /// Named references Tern decodes: the ones URLs and mail templates use. Names are case-sensitive.
    private static let named: [String: Unicode.Scalar] = [
        "amp": "&", "AMP": "&", "lt": "<", "LT": "<", "gt": ">", "GT": ">", "quot": "\"", "QUOT": "\"",
        "apos": "'", "nbsp": "\u{A0}", "sol": "/", "colon": ":", "period": ".", "quest": "?", "equals": "=",
        "num": "#", "percnt": "%", "plus": "+", "lowbar": "_", "excl": "!", "commat": "@", "dollar": "$",
        "lpar": "(", "rpar": ")", "ast": "*", "midast": "*", "comma": ",", "hyphen": "\u{2010}", "semi": ";",
        "Tab": "\t", "NewLine": "\n", "lsqb": "[", "rsqb": "]", "lbrack": "[", "rbrack": "]",
        "lcub": "{", "rcub": "}", "lbrace": "{", "rbrace": "}", "verbar": "|", "vert": "|", "VerticalLine": "|",
        "grave": "`", "bsol": "\\", "Hat": "^",
    ]
    /// References the HTML parser also reads without `;` (a subset of the legacy list).
    private static let legacy: Set<String> = ["amp", "AMP", "lt", "LT", "gt", "GT", "quot", "QUOT", "nbsp"]

    /// The text of an attribute value: bytes decoded in `charset` (UTF-8 when Tern does not know
    /// it; UTF-8 or else Windows-1252 for 8-bit bytes in a part labelled US-ASCII, which cannot
    /// hold them), character references resolved as the HTML parser does in attributes (a legacy reference
    /// without `;` is not resolved before `=` or an alphanumeric).
    static func decodeAttributeValue(_ bytes: ArraySlice<UInt8>, charset: MIMECharset) -> String {
        var out = ""
        var run = bytes.startIndex
        var i = bytes.startIndex
        let end = bytes.endIndex
        func flush(to position: Int) {
            if run < position {
                let chunk = bytes[run..<position]
                if charset == .usASCII {
                    out += MIMECharset.decodeUnlabelled(chunk)
                } else {
                    out += charset.decode(chunk) ?? String(decoding: chunk, as: UTF8.self)
                }
            }
        }
        while i < end {
            guard bytes[i] == UInt8(ascii: "&"), let (scalar, next) = reference(bytes, at: i) else {
                i += 1
                continue
            }
            flush(to: i)
            out.unicodeScalars.append(scalar)
            i = next
            run = next
        }
        flush(to: end)
        return out
    }

    /// A character reference at `amp` (which holds `&`): its character and the index after it.
    private static func reference(_ bytes: ArraySlice<UInt8>, at amp: Int) -> (Unicode.Scalar, Int)? {
        let end = bytes.endIndex
        var i = amp + 1
        guard i < end else { return nil }
        if bytes[i] == UInt8(ascii: "#") {
            i += 1
            var hex = false
            if i < end, bytes[i] | 0x20 == UInt8(ascii: "x") {
                hex = true
                i += 1
            }
            let digitsStart = i
            var value: UInt32 = 0
            while i < end {
                let digit: UInt8?
                if hex { digit = ASCII.hexValue(bytes[i]) } else { digit = ASCII.isDigit(bytes[i]) ? bytes[i] - UInt8(ascii: "0") : nil }
                guard let d = digit else { break }
                value = min(value &* (hex ? 16 : 10) &+ UInt32(d), 0x11_0000)
                i += 1
            }
            guard i > digitsStart else { return nil }
            if i < end, bytes[i] == UInt8(ascii: ";") { i += 1 }
            return (numericScalar(value), i)
        }
        let nameStart = i
        while i < end, ASCII.isAlpha(bytes[i]) || ASCII.isDigit(bytes[i]) { i += 1 }
        guard i > nameStart else { return nil }
        let name = String(decoding: bytes[nameStart..<i], as: UTF8.self)
        if i < end, bytes[i] == UInt8(ascii: ";") {
            guard let scalar = named[name] else { return nil }
            return (scalar, i + 1)
        }
        // No `;`: only legacy names, and not before `=` (WHATWG HTML §13.2.5.73, in attributes).
        guard legacy.contains(name), let scalar = named[name] else { return nil }
        if i < end, bytes[i] == ASCII.equals { return nil }
        return (scalar, i)
    }

    /// WHATWG HTML §13.2.5.80: NUL, surrogates and values past U+10FFFF become U+FFFD;
    /// 0x80–0x9F are read as Windows-1252.
    private static func numericScalar(_ value: UInt32) -> Unicode.Scalar {
        if value >= 0x80, value <= 0x9F {
            return MIMECharset.windows1252.decode([UInt8(value)])?.unicodeScalars.first ?? "\u{FFFD}"
        }
        guard value != 0, let scalar = Unicode.Scalar(value) else { return "\u{FFFD}" }
        return scalar
    }

    /// Escapes text for a double-quoted attribute value or for element content, in any
    /// ASCII-compatible charset: `&`, `"`, `'`, `<`, `>`, control characters and every non-ASCII
    /// character become references, so the output is printable ASCII.
    static func escape(_ text: String) -> [UInt8] {
        var text = text
        return text.withUTF8 { utf8 in
            // "&quot;" is the longest: six bytes for one.
            var needsSlowPath = false
            let escaped = [UInt8](unsafeUninitializedCapacity: utf8.count * 6) { out, count in
                var o = 0
                func put(_ bytes: StaticString) {
                    bytes.withUTF8Buffer { for b in $0 { out[o] = b; o += 1 } }
                }
                for b in utf8 {
                    switch b {
                    case UInt8(ascii: "&"): put("&amp;")
                    case UInt8(ascii: "\""): put("&quot;")
                    case UInt8(ascii: "'"): put("&#39;")
                    case UInt8(ascii: "<"): put("&lt;")
                    case UInt8(ascii: ">"): put("&gt;")
                    case 0x20...0x7E:
                        out[o] = b
                        o += 1
                    default:
                        needsSlowPath = true // controls and non-ASCII
                    }
                    if needsSlowPath { break }
                }
                count = o
            }
            return needsSlowPath ? escapeScalars(String(decoding: utf8, as: UTF8.self)) : escaped
        }
    }

    private static func escapeScalars(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            if scalar.isASCII, scalar.value >= 0x20, scalar.value < 0x7F {
                out += escape(String(scalar))
            } else {
                out += Array("&#x".utf8)
                out += Array(String(scalar.value, radix: 16, uppercase: true).utf8)
                out.append(UInt8(ascii: ";"))
            }
        }
        return out
    }
}

/// Which link targets Tern tracks.
enum LinkClassifier {
    /// The URL a link goes to, if it is one Tern tracks: after removing leading and trailing C0
    /// controls and spaces and every tab and newline (WHATWG URL, basic URL parser), its scheme is
    /// `http` or `https` in any case. `mailto:`, `tel:`, fragments, relative references and other
    /// schemes give nil.
    static func trackableURL(_ decoded: String) -> String? {
        var bytes = Array(decoded.utf8)
        var lower = 0
        var upper = bytes.count
        while lower < upper, bytes[lower] <= 0x20 { lower += 1 }
        while upper > lower, bytes[upper - 1] <= 0x20 { upper -= 1 }
        var url = bytes[lower..<upper]
        if url.contains(where: { $0 == ASCII.tab || $0 == ASCII.lf || $0 == ASCII.cr }) {
            bytes = url.filter { $0 != ASCII.tab && $0 != ASCII.lf && $0 != ASCII.cr }
            url = bytes[...]
        }
        guard let colon = url.firstIndex(of: ASCII.colon) else { return nil }
        let scheme = url[url.startIndex..<colon]
        guard ASCII.equalsIgnoringCase(bytes, scheme.indices, "http") || ASCII.equalsIgnoringCase(bytes, scheme.indices, "https") else {
            return nil
        }
        return url.count == decoded.utf8.count ? decoded : String(decoding: url, as: UTF8.self)
    }
}
