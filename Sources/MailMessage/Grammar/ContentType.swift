/// A `Content-Type` field value: media type, subtype and parameters.
///
/// - SeeAlso: RFC 2045 §5.1 (syntax), RFC 2231 §3–4 (parameter continuations and charsets)
public struct ContentType: Sendable, Hashable, CustomStringConvertible {
    /// The media type, lowercase (`text`, `multipart`).
    public var type: String
    /// The subtype, lowercase (`html`, `alternative`).
    public var subtype: String
    /// Parameters by lowercase name. Values keep their case; RFC 2231 continuations are joined
    /// and their charset decoded. When a name repeats, the first wins.
    public var parameters: [String: String]

    public init(type: String, subtype: String, parameters: [String: String] = [:]) {
        self.type = type.asciiLowercased()
        self.subtype = subtype.asciiLowercased()
        self.parameters = parameters
    }

    /// The default for a part with no (or an unreadable) `Content-Type` (RFC 2045 §5.2).
    public static let textPlain = ContentType(type: "text", subtype: "plain", parameters: ["charset": "us-ascii"])
    /// The default inside `multipart/digest` (RFC 2046 §5.1.5).
    public static let messageRFC822 = ContentType(type: "message", subtype: "rfc822")

    /// `type/subtype`, lowercase.
    public var mimeType: String { "\(type)/\(subtype)" }
    /// The `boundary` parameter of a multipart (RFC 2046 §5.1.1).
    public var boundary: String? { parameters["boundary"] }
    /// The `charset` parameter of a text type (RFC 2046 §4.1.2).
    public var charset: String? { parameters["charset"] }
    public var isMultipart: Bool { type == "multipart" }

    public var description: String {
        ([mimeType] + parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: "; ")
    }

    /// Parses a `Content-Type` value (unfolded). Nil when there is no `type/subtype`.
    ///
    ///     content   := type "/" subtype *(";" parameter)
    ///     parameter := attribute "=" value
    ///     value     := token / quoted-string
    ///
    /// Lenient where mail in the wild is: comments anywhere, a trailing `;`, unquoted values that
    /// hold tspecials (`boundary=----=_Part_1`), parameters without a value are skipped.
    public init?(parsing value: String) {
        var reader = StructuredFieldReader(Array(value.utf8))
        reader.skipCFWS()
        guard let type = reader.readToken() else { return nil }
        reader.skipCFWS()
        guard reader.consume(UInt8(ascii: "/")) else { return nil }
        reader.skipCFWS()
        guard let subtype = reader.readToken() else { return nil }
        var raw: [(name: String, section: Int?, extended: Bool, value: String)] = []
        while true {
            reader.skipCFWS()
            guard !reader.atEnd else { break }
            guard reader.consume(UInt8(ascii: ";")) else {
                // Garbage after the subtype or a value: skip to the next parameter.
                reader.skip(until: UInt8(ascii: ";"))
                continue
            }
            reader.skipCFWS()
            guard let attribute = reader.readToken() else {
                reader.skip(until: UInt8(ascii: ";"))
                continue
            }
            reader.skipCFWS()
            guard reader.consume(UInt8(ascii: "=")) else { continue }
            reader.skipCFWS()
            guard let parameterValue = reader.readParameterValue() else { continue }
            let (name, section, extended) = Self.splitRFC2231Name(attribute.asciiLowercased())
            raw.append((name, section, extended, parameterValue))
        }
        self.init(type: type, subtype: subtype, parameters: Self.combine(raw))
    }

    /// `name*3*` → (`name`, 3, true); `name*` → (`name`, nil, true); `name` → (`name`, nil, false).
    private static func splitRFC2231Name(_ attribute: String) -> (String, Int?, Bool) {
        var name = Substring(attribute)
        var extended = false
        if name.hasSuffix("*") {
            extended = true
            name = name.dropLast()
        }
        if let star = name.lastIndex(of: "*"), let section = Int(name[name.index(after: star)...]) {
            return (String(name[..<star]), section, extended)
        }
        return (String(name), nil, extended)
    }

    /// Joins RFC 2231 continuations (§3) in section order and decodes extended values (§4).
    private static func combine(_ raw: [(name: String, section: Int?, extended: Bool, value: String)]) -> [String: String] {
        var result: [String: String] = [:]
        var sectioned: [String: [(section: Int, extended: Bool, value: String)]] = [:]
        for p in raw {
            if let section = p.section {
                sectioned[p.name, default: []].append((section, p.extended, p.value))
            } else if result[p.name] == nil {
                result[p.name] = p.extended ? decodeExtendedValue(p.value, isFirst: true).text : p.value
            }
        }
        for (name, sections) in sectioned where result[name] == nil {
            let ordered = sections.sorted { $0.section < $1.section }
            var bytes: [UInt8] = []
            var charset: MIMECharset? = nil
            var expected = 0
            for s in ordered {
                guard s.section == expected else { break } // RFC 2231 §3: sections are numbered from 0 with no gaps.
                expected += 1
                if s.extended {
                    let decoded = decodeExtendedValue(s.value, isFirst: s.section == 0)
                    if s.section == 0 { charset = decoded.charset }
                    bytes += decoded.bytes
                } else {
                    bytes += Array(s.value.utf8)
                }
            }
            result[name] = (charset ?? .utf8).decode(bytes) ?? MIMECharset.decodeUnlabelled(bytes)
        }
        return result
    }

    /// `charset'language'percent-encoded` (RFC 2231 §4); only the first section carries the prefix.
    private static func decodeExtendedValue(_ value: String, isFirst: Bool) -> (text: String, bytes: [UInt8], charset: MIMECharset?) {
        var input = Substring(value)
        var charset: MIMECharset? = nil
        if isFirst {
            let parts = value.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
            if parts.count == 3 {
                charset = parts[0].isEmpty ? nil : MIMECharset(name: String(parts[0]))
                input = parts[2]
            }
        }
        var bytes: [UInt8] = []
        let utf8 = Array(input.utf8)
        var i = 0
        while i < utf8.count {
            if utf8[i] == UInt8(ascii: "%"), i + 2 < utf8.count,
               let hi = ASCII.hexValue(utf8[i + 1]), let lo = ASCII.hexValue(utf8[i + 2]) {
                bytes.append(hi << 4 | lo)
                i += 3
            } else {
                bytes.append(utf8[i])
                i += 1
            }
        }
        let text = (charset ?? .utf8).decode(bytes) ?? MIMECharset.decodeUnlabelled(bytes)
        return (text, bytes, charset)
    }
}

/// A cursor over a structured field value (RFC 2045 §5.1, RFC 5322 §3.2.2 CFWS).
struct StructuredFieldReader {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { index >= bytes.count }

    /// Skips whitespace and (nested) comments.
    mutating func skipCFWS() {
        while index < bytes.count {
            let b = bytes[index]
            if ASCII.isWSP(b) || b == ASCII.cr || b == ASCII.lf {
                index += 1
            } else if b == UInt8(ascii: "(") {
                skipComment()
            } else {
                return
            }
        }
    }

    private mutating func skipComment() {
        var depth = 0
        while index < bytes.count {
            let b = bytes[index]
            index += 1
            switch b {
            case UInt8(ascii: "\\"): index += 1
            case UInt8(ascii: "("): depth += 1
            case UInt8(ascii: ")"):
                depth -= 1
                if depth == 0 { return }
            default: break
            }
        }
    }

    mutating func consume(_ byte: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    mutating func skip(until byte: UInt8) {
        while index < bytes.count, bytes[index] != byte {
            if bytes[index] == UInt8(ascii: "\"") {
                _ = readQuotedString()
            } else {
                index += 1
            }
        }
    }

    /// token := 1*<any CHAR except SPACE, CTLs, or tspecials> (RFC 2045 §5.1).
    /// `*` is not a tspecial, so RFC 2231 names such as `title*0*` read as one token.
    mutating func readToken() -> String? {
        let start = index
        while index < bytes.count, Self.isTokenByte(bytes[index]) { index += 1 }
        guard index > start else { return nil }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    static func isTokenByte(_ b: UInt8) -> Bool {
        guard b > 32, b < 127 else { return b >= 0x80 } // 8-bit bytes: lenient, kept in tokens
        switch b {
        case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "@"),
             UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: ":"), UInt8(ascii: "\\"), UInt8(ascii: "\""),
             UInt8(ascii: "/"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "?"), UInt8(ascii: "="):
            return false
        default:
            return true
        }
    }

    /// A quoted-string or, leniently, everything up to `;` or whitespace.
    mutating func readParameterValue() -> String? {
        guard index < bytes.count else { return nil }
        if bytes[index] == UInt8(ascii: "\"") { return readQuotedString() }
        let start = index
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: ";") || ASCII.isWSP(b) || b == ASCII.cr || b == ASCII.lf { break }
            index += 1
        }
        guard index > start else { return nil }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// quoted-string (RFC 5322 §3.2.4) at the cursor: the content with quoted-pairs resolved.
    /// An unterminated one runs to the end.
    mutating func readQuotedString() -> String {
        index += 1 // opening quote
        var out: [UInt8] = []
        while index < bytes.count {
            let b = bytes[index]
            index += 1
            if b == UInt8(ascii: "\"") { break }
            if b == UInt8(ascii: "\\"), index < bytes.count {
                out.append(bytes[index])
                index += 1
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
