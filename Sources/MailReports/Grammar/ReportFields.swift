import MailMessage

/// One field of a `message/delivery-status` or `message/feedback-report` body.
struct ReportField: Sendable, Hashable {
    /// The field name, ASCII-lowercased (field names are case-insensitive: RFC 5322 §1.2.2).
    var name: String
    /// The unfolded value, trimmed. Folded lines are joined with one space: these values are
    /// read by people (diagnostics), and the indentation of a fold carries no meaning.
    var value: String
}

/// Reads the fields of a report body: header-field syntax (RFC 5322 §2.2) in groups separated by
/// empty lines (RFC 3464 §2.1.1, RFC 5965 §3.1).
///
///     delivery-status-content = per-message-fields 1*( CRLF per-recipient-fields )
///
/// Lenient where reports in the wild are: bare LF, a whitespace-only line counts as empty, a line
/// that is not a field and does not start with whitespace continues the previous field (broken
/// folding), and a line that is neither before any field is skipped.
enum ReportFieldReader {
    enum Item: Sendable, Hashable {
        case field(ReportField)
        /// An empty line: the end of a group.
        case separator
    }

    /// The fields and group separators of `bytes`, at most `maxFields` fields.
    static func items(_ bytes: [UInt8], maxFields: Int = 10_000) -> [Item] {
        var items: [Item] = []
        var fieldCount = 0
        var pending: (name: String, value: [UInt8])? = nil
        var canContinue = false

        func flush() {
            guard let p = pending else { return }
            items.append(.field(ReportField(name: p.name, value: Bytes.string(collapsingWhitespace(p.value)))))
            pending = nil
        }

        for line in Bytes.lines(bytes) {
            let content = Bytes.trimmed(bytes, line)
            if content.isEmpty {
                flush()
                canContinue = false
                if items.last != .separator { items.append(.separator) }
                continue
            }
            let startsWithWSP = Bytes.isWSP(bytes[line.lowerBound])
            if !startsWithWSP, let colon = fieldNameEnd(bytes, line) {
                flush()
                guard fieldCount < maxFields else {
                    canContinue = false
                    continue
                }
                fieldCount += 1
                let nameRange = Bytes.trimmed(bytes, line.lowerBound..<colon)
                let name = String(decoding: bytes[nameRange].map(Bytes.lower), as: UTF8.self)
                pending = (name, Array(bytes[(colon + 1)..<line.upperBound]))
                canContinue = true
            } else if canContinue, var p = pending {
                p.value.append(Bytes.space)
                p.value.append(contentsOf: bytes[content])
                pending = p
            }
        }
        flush()
        return items
    }

    /// Runs of WSP, CR and LF as one space, ends trimmed.
    static func collapsingWhitespace(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var pendingSpace = false
        for b in bytes {
            if Bytes.isWSP(b) || b == Bytes.cr || b == Bytes.lf {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(Bytes.space) }
                pendingSpace = false
                out.append(b)
            }
        }
        return out
    }

    /// Every field of `bytes`, group separators ignored (a feedback report is one group).
    static func fields(_ bytes: [UInt8], maxFields: Int = 10_000) -> [ReportField] {
        items(bytes, maxFields: maxFields).compactMap {
            if case .field(let f) = $0 { return f }
            return nil
        }
    }

    /// The index of the colon when the line is `name: value`, the name made of letters, digits,
    /// `-`, `_` and `.` (every registered DSN and ARF field name is), optionally followed by WSP.
    static func fieldNameEnd(_ bytes: [UInt8], _ line: Range<Int>) -> Int? {
        var i = line.lowerBound
        while i < line.upperBound, isNameByte(bytes[i]) { i += 1 }
        guard i > line.lowerBound, i - line.lowerBound <= 76 else { return nil }
        while i < line.upperBound, Bytes.isWSP(bytes[i]) { i += 1 }
        guard i < line.upperBound, bytes[i] == UInt8(ascii: ":") else { return nil }
        return i
    }

    @inline(__always)
    static func isNameByte(_ b: UInt8) -> Bool {
        Bytes.isAlpha(b) || Bytes.isDigit(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: ".")
    }
}

/// A value with a type prefix: `address-type ";" generic-address`, `mta-name-type ";" mta-name`,
/// `diagnostic-type ";" *text` (RFC 3464 §2.1.2, §2.2.2, §2.3.6).
struct TypedValue: Sendable, Hashable {
    /// The type, lowercase (`rfc822`, `utf-8`, `dns`, `smtp`, `x-postfix`); nil when there is none.
    var type: String?
    var value: String

    /// Splits at the first `;` when what precedes it is a type token (an atom with no `@`); a
    /// value with no such prefix is all value (`Final-Recipient: a@example.com`, seen in the wild).
    init(_ raw: String) {
        let trimmed = raw.trimmedMailWhitespace()
        if let semicolon = trimmed.utf8.firstIndex(of: UInt8(ascii: ";")) {
            let prefix = trimmed[..<semicolon].trimmedMailWhitespace()
            if !prefix.isEmpty, prefix.utf8.count <= 40, prefix.utf8.allSatisfy(ReportFieldReader.isNameByte) {
                type = prefix.asciiLowercased()
                value = trimmed[trimmed.utf8.index(after: semicolon)...].trimmedMailWhitespace()
                return
            }
        }
        type = nil
        value = trimmed
    }
}

/// Addresses and host names from report fields.
enum ReportValue {
    /// The address of `Final-Recipient`, `Original-Recipient` or `Original-Rcpt-To`: type prefix,
    /// comments and angle brackets removed. `utf-8` addresses have their `\x{HEX}` escapes
    /// decoded (RFC 6533 §3). Nil when nothing is left.
    static func address(_ raw: String, xtext: Bool = false) -> String? {
        let typed = TypedValue(raw)
        var value = typed.value
        if typed.type == "utf-8" { value = decodingUnicodeEscapes(value) }
        value = removingComments(value)
        if let open = value.utf8.firstIndex(of: UInt8(ascii: "<")) {
            let after = value.utf8.index(after: open)
            if let close = value.utf8[after...].firstIndex(of: UInt8(ascii: ">")) {
                value = String(value[after..<close])
            } else {
                value = String(value[after...])
            }
        }
        value = value.trimmedMailWhitespace()
        while let last = value.utf8.last,
              last == UInt8(ascii: ".") || last == UInt8(ascii: ",") || last == UInt8(ascii: ";") || last == UInt8(ascii: ">") {
            value.removeLast()
        }
        if xtext { value = decodingXtext(value) }
        return value.nonEmpty
    }

    /// An MTA name without its type (`dns; mx.example.net.` → `mx.example.net`), comments and
    /// the root label's dot removed.
    static func mtaName(_ raw: String) -> String? {
        var name = removingComments(TypedValue(raw).value).trimmedMailWhitespace()
        if name.hasSuffix("."), name.count > 1 { name.removeLast() }
        return name.nonEmpty
    }

    /// A diagnostic without its type (`smtp; 550 …` → `550 …`).
    static func diagnostic(_ raw: String) -> String? {
        TypedValue(raw).value.nonEmpty
    }

    /// RFC 3461 §4 xtext in an ORCPT-derived address: `+2B` and `+3D` (the two printable characters
    /// xtext must encode) and, when the address has no literal `@`, `+40`. Other `+HH` are left
    /// alone: `user+AB@example.com` is far more often a plus tag than an encoding.
    static func decodingXtext(_ value: String) -> String {
        guard value.utf8.contains(UInt8(ascii: "+")) else { return value }
        let decodeAt = !value.utf8.contains(UInt8(ascii: "@"))
        let bytes = Array(value.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "+"), i + 2 < bytes.count {
                let code = String(decoding: bytes[(i + 1)...(i + 2)], as: UTF8.self)
                if code == "2B" || code == "3D" || (decodeAt && code == "40") {
                    out.append(code == "2B" ? UInt8(ascii: "+") : code == "3D" ? UInt8(ascii: "=") : UInt8(ascii: "@"))
                    i += 3
                    continue
                }
            }
            out.append(bytes[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `\x{HEX}` (RFC 6533 §3 EmbeddedUnicodeChar) decoded; malformed escapes are left as written.
    static func decodingUnicodeEscapes(_ value: String) -> String {
        guard value.utf8.contains(UInt8(ascii: "\\")) else { return value }
        var out = String.UnicodeScalarView()
        let scalars = Array(value.unicodeScalars)
        var i = 0
        while i < scalars.count {
            if scalars[i] == "\\", i + 3 < scalars.count, scalars[i + 1] == "x", scalars[i + 2] == "{" {
                var j = i + 3
                var code: UInt32 = 0
                var digits = 0
                while j < scalars.count, digits <= 6, let d = hexValue(scalars[j]) {
                    code = code << 4 | d
                    digits += 1
                    j += 1
                }
                if digits > 0, digits <= 6, j < scalars.count, scalars[j] == "}", let scalar = Unicode.Scalar(code) {
                    out.append(scalar)
                    i = j + 1
                    continue
                }
            }
            out.append(scalars[i])
            i += 1
        }
        return String(out)
    }

    private static func hexValue(_ s: Unicode.Scalar) -> UInt32? {
        switch s {
        case "0"..."9": s.value - 48
        case "a"..."f": s.value - 87
        case "A"..."F": s.value - 55
        default: nil
        }
    }

    /// The value with RFC 5322 §3.2.2 comments removed; quoted strings are kept, comments nest.
    static func removingComments(_ value: String) -> String {
        MailMessage.removingComments(value)
    }
}
