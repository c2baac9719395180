/// Writes header fields for the message builder: folded at whitespace to keep lines at most 78
/// characters where the words allow (76 when a line holds encoded-words, RFC 2047 §2), never past
/// 998 (RFC 5322 §2.1.1, §2.2.3). Callers pass only validated, single-line, ASCII-safe words.
struct FoldedField {
    /// Preferred longest line, CRLF excluded (RFC 5322 §2.1.1).
    static let preferredLineLength = 78
    /// Longest line holding an encoded-word (RFC 2047 §2).
    static let encodedWordLineLength = 76

    private(set) var bytes: [UInt8]
    private var lineLength: Int
    private let limit: Int
    private var hasWords = false

    init(name: String, limit: Int = Self.preferredLineLength) {
        bytes = Array(name.utf8) + [ASCII.colon]
        lineLength = bytes.count
        self.limit = limit
    }

    /// Appends `word` after `separator` (whitespace, usually one space). When the line would grow
    /// past the limit, the fold (CRLF) goes before the separator, so unfolding restores it exactly.
    mutating func append(_ word: String, separator: String = " ") {
        let added = separator.utf8.count + word.utf8.count
        // Fold only at whitespace, and before the first word only when that makes it fit.
        if lineLength + added > limit, !separator.isEmpty, hasWords || added <= limit {
            bytes += ASCII.crlf
            lineLength = 0
        }
        bytes += Array(separator.utf8)
        bytes += Array(word.utf8)
        lineLength += added
        hasWords = true
    }

    /// The field with its final CRLF.
    func finished() -> [UInt8] { bytes + ASCII.crlf }

    /// Room for the first word after `Name: ` before the line passes `limit`.
    static func firstWordRoom(name: String, limit: Int) -> Int {
        limit - name.utf8.count - 2
    }
}

enum HeaderText {
    /// Unstructured text (`Subject`, custom fields): the words as written when the text is
    /// printable ASCII that no decoder could mistake for an encoded-word and whose words fit a
    /// line; otherwise encoded-words for all of it (RFC 2047 §5(1)).
    static func unstructuredField(name: String, value: String) -> [UInt8] {
        if let words = plainWords(value, name: name) {
            var field = FoldedField(name: name)
            if words.isEmpty { return field.finished() }
            for (index, word) in words.enumerated() {
                field.append(word.text, separator: index == 0 ? " " : word.separator)
            }
            return field.finished()
        }
        var field = FoldedField(name: name, limit: FoldedField.encodedWordLineLength)
        let firstRoom = FoldedField.firstWordRoom(name: name, limit: FoldedField.encodedWordLineLength)
        // A long field name leaves too little room: the first word starts on the next line.
        let encoded = EncodedWord.encode(value, firstMaxLength: firstRoom >= 20 ? firstRoom : EncodedWord.maxWordLength)
        for word in encoded { field.append(word) }
        return field.finished()
    }

    /// The words of `value` with the whitespace before each, or nil when it must be encoded:
    /// non-ASCII or control characters, leading or trailing whitespace (a parser would drop it),
    /// `=?` (it could read as an encoded-word), or a word too long for a 998-octet line.
    static func plainWords(_ value: String, name: String) -> [(separator: String, text: String)]? {
        let bytes = Array(value.utf8)
        guard bytes.allSatisfy({ ($0 >= 0x20 && $0 < 0x7F) || $0 == ASCII.tab }) else { return nil }
        guard let first = bytes.first, let last = bytes.last else { return [] }
        guard !ASCII.isWSP(first), !ASCII.isWSP(last) else { return nil }
        if value.contains("=?") { return nil }
        var words: [(separator: String, text: String)] = []
        var i = 0
        while i < bytes.count {
            let separatorStart = i
            while i < bytes.count, ASCII.isWSP(bytes[i]) { i += 1 }
            let wordStart = i
            while i < bytes.count, !ASCII.isWSP(bytes[i]) { i += 1 }
            let separator = String(decoding: bytes[separatorStart..<wordStart], as: UTF8.self)
            let text = String(decoding: bytes[wordStart..<i], as: UTF8.self)
            guard separator.utf8.count + text.utf8.count + name.utf8.count + 2 <= MessageLineLimits.maxLineLength else { return nil }
            words.append((separator, text))
        }
        return words
    }

    /// An address field (`From`, `To`, `Cc`, `Reply-To`): `name <addr>` or `addr`, comma
    /// separated. Display names are atoms, a quoted-string, or encoded-words (RFC 2047 §5(3)).
    static func addressField(name: String, mailboxes: [Mailbox]) -> [UInt8] {
        var words: [String] = []
        var encoded = false
        for (index, mailbox) in mailboxes.enumerated() {
            let comma = index + 1 < mailboxes.count ? "," : ""
            if let displayName = mailbox.name?.trimmingMailWhitespace(), !displayName.isEmpty {
                let phrase = phraseWords(displayName)
                encoded = encoded || phrase.encoded
                words += phrase.words
                words.append("<\(mailbox.address)>" + comma)
            } else {
                words.append(mailbox.address + comma)
            }
        }
        var field = FoldedField(name: name, limit: encoded ? FoldedField.encodedWordLineLength : FoldedField.preferredLineLength)
        for word in words { field.append(word) }
        return field.finished()
    }

    /// A display name as phrase words (RFC 5322 §3.2.5): atoms when every character is atext
    /// and words are single-spaced; a quoted-string (split at its spaces, which folding keeps)
    /// for other printable ASCII. Otherwise atext words stay atoms and each run of other words
    /// becomes encoded-words, spaces inside (RFC 2047 §5(3)): a decoder keeps the space between
    /// an atom and an encoded-word, and Python's reads a space between two encoded-words that
    /// RFC 2047 §6.2 drops, so runs are kept whole wherever they fit one word.
    static func phraseWords(_ name: String) -> (words: [String], encoded: Bool) {
        let bytes = Array(name.utf8)
        let printable = bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
        let singleSpaced = !name.contains("  ") && !bytes.contains(ASCII.tab)
        let words = name.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let longestWord = words.map(\.utf8.count).max() ?? 0
        let looksEncoded = name.contains("=?")
        if printable, !looksEncoded, singleSpaced, longestWord <= 60 {
            if bytes.allSatisfy({ $0 == ASCII.space || isAtext($0) }) {
                return (words, false)
            }
            var quoted = "\""
            for c in name {
                if c == "\"" || c == "\\" { quoted.append("\\") }
                quoted.append(c)
            }
            quoted.append("\"")
            return (quoted.split(separator: " ", omittingEmptySubsequences: false).map(String.init), false)
        }
        guard singleSpaced, !looksEncoded else { return (EncodedWord.encode(name, firstMaxLength: 60), true) }
        var out: [String] = []
        var run: [String] = []
        func flushRun() {
            guard !run.isEmpty else { return }
            out += EncodedWord.encode(run.joined(separator: " "), firstMaxLength: 60)
            run.removeAll()
        }
        for word in words {
            if !word.isEmpty, word.utf8.count <= 60, word.utf8.allSatisfy(isAtext) {
                flushRun()
                out.append(word)
            } else {
                run.append(word)
            }
        }
        flushRun()
        return (out, true)
    }

    /// atext (RFC 5322 §3.2.3).
    static func isAtext(_ b: UInt8) -> Bool {
        if ASCII.isAlpha(b) || ASCII.isDigit(b) { return true }
        return Array("!#$%&'*+-/=?^_`{|}~".utf8).contains(b)
    }

    /// A MIME parameter (`; name=value`) as the words to append to a field: `name=token`,
    /// `name="quoted"`, or RFC 2231 extended form (`name*=utf-8''…`, in sections `name*0*=`
    /// when long) for non-ASCII or long values. Each word but the last ends with `;`.
    ///
    /// - SeeAlso: RFC 2045 §5.1, RFC 2231 §3 (continuations), §4 (charset)
    static func parameterWords(name: String, value: String) -> [String] {
        let bytes = Array(value.utf8)
        if bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }), !bytes.isEmpty,
           bytes.allSatisfy(StructuredFieldReader.isTokenByte), bytes.count <= 60 {
            return ["\(name)=\(value)"]
        }
        if bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }), bytes.count <= 60 {
            var quoted = "\""
            for c in value {
                if c == "\"" || c == "\\" { quoted.append("\\") }
                quoted.append(c)
            }
            return ["\(name)=\(quoted)\""]
        }
        // Percent-encode everything but attribute-char (RFC 2231 §7), in sections that keep each
        // line within 78 and never split a character (a reader may decode sections one by one).
        let room = max(16, FoldedField.preferredLineLength - 1 - name.utf8.count - "*99*=utf-8'';".utf8.count)
        var sections: [String] = [""]
        for scalar in value.unicodeScalars {
            var piece = ""
            for b in String(scalar).utf8 {
                piece += isAttributeChar(b) ? String(UnicodeScalar(b)) : "%" + String(decoding: [ASCII.upperHexDigits[Int(b >> 4)], ASCII.upperHexDigits[Int(b & 0x0F)]], as: UTF8.self)
            }
            if let lastSection = sections.last, !lastSection.isEmpty, lastSection.utf8.count + piece.utf8.count > room { sections.append("") }
            sections[sections.count - 1] += piece
        }
        if sections.count == 1 {
            return ["\(name)*=utf-8''\(sections[0])"]
        }
        return sections.enumerated().map { index, section in
            let charset = index == 0 ? "utf-8''" : ""
            let semicolon = index + 1 < sections.count ? ";" : ""
            return "\(name)*\(index)*=\(charset)\(section)\(semicolon)"
        }
    }

    /// attribute-char (RFC 2231 §7): a token byte other than `*`, `'` and `%`.
    static func isAttributeChar(_ b: UInt8) -> Bool {
        b > 0x20 && b < 0x7F && StructuredFieldReader.isTokenByte(b)
            && b != UInt8(ascii: "*") && b != UInt8(ascii: "'") && b != UInt8(ascii: "%")
    }

    /// `value` followed by its parameters, folded between parameters.
    static func parameterizedField(name: String, value: String, parameters: [(String, String)]) -> [UInt8] {
        var field = FoldedField(name: name)
        let words = parameters.flatMap { parameterWords(name: $0.0, value: $0.1) }
        field.append(words.isEmpty ? value : value + ";")
        for (index, word) in words.enumerated() {
            let needsSemicolon = index + 1 < words.count && !word.hasSuffix(";")
            field.append(needsSemicolon ? word + ";" : word)
        }
        return field.finished()
    }
}

/// The `date-time` of RFC 5322 §3.3 (`Tue, 1 Jul 2025 09:05:00 +0000`), computed without
/// Foundation so that the target stays pure.
enum RFC5322Date {
    private static let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"] // 1970-01-01 was a Thursday
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func format(secondsSince1970: Int64, utcOffsetMinutes: Int) -> String {
        let local = secondsSince1970 + Int64(utcOffsetMinutes) * 60
        let days = local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
        let secondOfDay = Int(local - days * 86_400)
        let (year, month, day) = civil(fromDays: days)
        let weekday = weekdays[Int(((days % 7) + 7) % 7)]
        let sign = utcOffsetMinutes < 0 ? "-" : "+"
        let offset = abs(utcOffsetMinutes)
        return "\(weekday), \(day) \(months[month - 1]) \(year) \(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60)) "
            + "\(sign)\(two(offset / 60))\(two(offset % 60))"
    }

    private static func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// Year, month (1–12) and day of a count of days since 1970-01-01 (proleptic Gregorian),
    /// after Howard Hinnant's `civil_from_days`.
    private static func civil(fromDays days: Int64) -> (Int64, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = Int(doy - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }
}
