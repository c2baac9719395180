/// An enhanced mail system status code, `class.subject.detail`.
///
///     status-code = class "." subject "." detail
///     class       = "2" / "4" / "5"
///     subject     = 1*3digit
///     detail      = 1*3digit
///
/// - SeeAlso: RFC 3463 §2, RFC 3464 §2.3.4
public struct EnhancedStatusCode: Sendable, Hashable, CustomStringConvertible {
    /// 2 success, 4 persistent transient failure, 5 permanent failure.
    public var statusClass: Int
    /// 1 addressing, 2 mailbox, 3 mail system, 4 network and routing, 5 mail delivery protocol,
    /// 6 message content or media, 7 security or policy (RFC 3463 §3).
    public var subject: Int
    public var detail: Int

    public init(statusClass: Int, subject: Int, detail: Int) {
        self.statusClass = statusClass
        self.subject = subject
        self.detail = detail
    }

    /// The code at the start of `text` (leading whitespace allowed), nothing but a comment,
    /// whitespace or text after a space following it: `5.1.1`, `5.0.0 (permanent failure)`.
    public init?(parsing text: String) {
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count, Bytes.isWSP(bytes[i]) { i += 1 }
        guard let (code, end) = Self.read(bytes, at: i), !Self.continues(bytes, at: end, end: bytes.count) else {
            return nil
        }
        self = code
    }

    public var description: String { "\(statusClass).\(subject).\(detail)" }

    /// Reads `class.subject.detail` at `start`; the index just past it.
    static func read(_ bytes: [UInt8], at start: Int) -> (EnhancedStatusCode, Int)? {
        guard start < bytes.count else { return nil }
        let c = bytes[start]
        guard c == UInt8(ascii: "2") || c == UInt8(ascii: "4") || c == UInt8(ascii: "5") else { return nil }
        var i = start + 1
        guard i < bytes.count, bytes[i] == UInt8(ascii: ".") else { return nil }
        i += 1
        guard let (subject, afterSubject) = number(bytes, at: i) else { return nil }
        i = afterSubject
        guard i < bytes.count, bytes[i] == UInt8(ascii: ".") else { return nil }
        i += 1
        guard let (detail, afterDetail) = number(bytes, at: i) else { return nil }
        return (EnhancedStatusCode(statusClass: Int(c - UInt8(ascii: "0")), subject: subject, detail: detail), afterDetail)
    }

    private static func number(_ bytes: [UInt8], at start: Int) -> (Int, Int)? {
        var i = start
        var value = 0
        while i < bytes.count, i - start < 3, Bytes.isDigit(bytes[i]) {
            value = value * 10 + Int(bytes[i] - UInt8(ascii: "0"))
            i += 1
        }
        guard i > start, i == bytes.count || !Bytes.isDigit(bytes[i]) else { return nil }
        return (value, i)
    }

    /// Whether what follows a code at `index` makes it part of something longer: a digit, a
    /// letter, or a dot before a digit (an IP address, a version number).
    static func continues(_ bytes: [UInt8], at index: Int, end: Int) -> Bool {
        guard index < end else { return false }
        let b = bytes[index]
        if Bytes.isDigit(b) || Bytes.isAlpha(b) { return true }
        return b == UInt8(ascii: ".") && index + 1 < end && Bytes.isDigit(bytes[index + 1])
    }

    /// The first enhanced code in free text (a diagnostic, a bounce paragraph), not part of a
    /// dotted number such as an IP address: `#5.1.1`, `(5.2.2)`, `550-5.7.1` all count.
    static func first(in bytes: [UInt8], range: Range<Int>? = nil) -> EnhancedStatusCode? {
        let range = range ?? 0..<bytes.count
        var i = range.lowerBound
        while i + 5 <= range.upperBound {
            let b = bytes[i]
            if b == UInt8(ascii: "2") || b == UInt8(ascii: "4") || b == UInt8(ascii: "5") {
                let before = i > range.lowerBound ? bytes[i - 1] : Bytes.space
                if !Bytes.isDigit(before), before != UInt8(ascii: "."), !Bytes.isAlpha(before),
                   let (code, end) = read(bytes, at: i), end <= range.upperBound,
                   !continues(bytes, at: end, end: range.upperBound) {
                    return code
                }
            }
            i += 1
        }
        return nil
    }

    static func first(in text: String) -> EnhancedStatusCode? {
        first(in: Array(text.utf8))
    }
}

/// Basic SMTP reply codes in free text.
///
/// - SeeAlso: RFC 5321 §4.2 (reply codes)
enum ReplyCode {
    /// The first basic reply code of class 4 or 5 in a diagnostic: three digits `[45][0-5][0-9]`
    /// standing alone (start of text or after space, `(`, `'`, `"`, `;`, `:`, `#`, `[`, `<`, `=`)
    /// and followed by a space, `-`, `)` or the end. Dotted numbers, times and longer numbers
    /// do not count.
    static func first(in bytes: [UInt8], range: Range<Int>? = nil) -> Int? {
        let range = range ?? 0..<bytes.count
        var i = range.lowerBound
        while i + 3 <= range.upperBound {
            let b = bytes[i]
            if (b == UInt8(ascii: "4") || b == UInt8(ascii: "5")),
               bytes[i + 1] >= UInt8(ascii: "0"), bytes[i + 1] <= UInt8(ascii: "5"), Bytes.isDigit(bytes[i + 2]) {
                let before = i > range.lowerBound ? bytes[i - 1] : Bytes.space
                let after = i + 3 < range.upperBound ? bytes[i + 3] : Bytes.space
                let standsAlone = Bytes.isWSP(before) || before == Bytes.lf || before == Bytes.cr
                    || [UInt8(ascii: "("), UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: ";"), UInt8(ascii: ":"),
                        UInt8(ascii: "#"), UInt8(ascii: "["), UInt8(ascii: "<"), UInt8(ascii: "=")].contains(before)
                let ends = Bytes.isWSP(after) || after == UInt8(ascii: "-") || after == UInt8(ascii: ")")
                    || after == Bytes.lf || after == Bytes.cr || after == UInt8(ascii: "'") || after == UInt8(ascii: ",")
                if standsAlone, ends {
                    return Int(b - 48) * 100 + Int(bytes[i + 1] - 48) * 10 + Int(bytes[i + 2] - 48)
                }
            }
            i += 1
        }
        return nil
    }

    static func first(in text: String) -> Int? {
        first(in: Array(text.utf8))
    }
}
