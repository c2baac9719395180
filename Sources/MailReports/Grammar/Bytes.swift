/// Byte-level helpers for reading report text without Foundation.
enum Bytes {
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")

    @inline(__always)
    static func isWSP(_ b: UInt8) -> Bool { b == space || b == tab }

    @inline(__always)
    static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    @inline(__always)
    static func isAlpha(_ b: UInt8) -> Bool {
        (b | 0x20) >= UInt8(ascii: "a") && (b | 0x20) <= UInt8(ascii: "z")
    }

    @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 {
        b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") ? b | 0x20 : b
    }

    static func lowercased<C: Collection>(_ bytes: C) -> [UInt8] where C.Element == UInt8 {
        bytes.map(lower)
    }

    /// The first index at or after `from` (and before `end`) where `needle` occurs in `haystack`.
    static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int = 0, end: Int? = nil) -> Int? {
        let end = min(end ?? haystack.count, haystack.count)
        guard let first = needle.first, from >= 0, end - from >= needle.count else { return nil }
        let last = end - needle.count
        var i = from
        return haystack.withUnsafeBufferPointer { h in
            needle.withUnsafeBufferPointer { n in
                while i <= last {
                    if h[i] == first {
                        var j = 1
                        while j < n.count, h[i + j] == n[j] { j += 1 }
                        if j == n.count { return i }
                    }
                    i += 1
                }
                return nil
            }
        }
    }

    static func contains(_ needle: [UInt8], in haystack: [UInt8], from: Int = 0, end: Int? = nil) -> Bool {
        find(needle, in: haystack, from: from, end: end) != nil
    }

    /// Text of `bytes`: UTF-8 when valid, else ISO-8859-1 (each byte one character), so that
    /// an unlabelled 8-bit diagnostic still reads.
    static func string<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        if let valid = String(validating: bytes, as: UTF8.self) { return valid }
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(b)) }
        return String(s)
    }

    /// The range of `bytes[range]` without leading and trailing whitespace (WSP, CR, LF).
    static func trimmed(_ bytes: [UInt8], _ range: Range<Int>) -> Range<Int> {
        var lower = range.lowerBound
        var upper = range.upperBound
        while lower < upper, isWSP(bytes[lower]) || bytes[lower] == cr || bytes[lower] == lf { lower += 1 }
        while upper > lower, isWSP(bytes[upper - 1]) || bytes[upper - 1] == cr || bytes[upper - 1] == lf { upper -= 1 }
        return lower..<upper
    }

    /// Line content ranges (line breaks excluded). LF ends a line; a CR before it is dropped.
    static func lines(_ bytes: [UInt8], in range: Range<Int>? = nil) -> [Range<Int>] {
        let range = range ?? 0..<bytes.count
        var out: [Range<Int>] = []
        var start = range.lowerBound
        var i = start
        while i < range.upperBound {
            if bytes[i] == lf {
                let end = i > start && bytes[i - 1] == cr ? i - 1 : i
                out.append(start..<end)
                start = i + 1
            }
            i += 1
        }
        if start < range.upperBound {
            var end = range.upperBound
            if bytes[end - 1] == cr { end -= 1 }
            out.append(start..<end)
        }
        return out
    }
}

extension StringProtocol {
    /// Leading and trailing whitespace (space, tab, CR, LF) removed.
    func trimmedMailWhitespace() -> String {
        let bytes = utf8
        var first: String.Index? = nil
        var last: String.Index? = nil
        var index = bytes.startIndex
        while index != bytes.endIndex {
            if !isTrimmable(bytes[index]) {
                if first == nil { first = index }
                last = index
            }
            index = bytes.index(after: index)
        }
        guard let first, let last else { return "" }
        // Whitespace is ASCII, so both ends fall on character boundaries.
        return String(self[first...last])
    }

    /// ASCII-only lowercasing, for tokens and phrase matching.
    func asciiLowercased() -> String {
        guard utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else { return String(self) }
        return String(decoding: utf8.map(Bytes.lower), as: UTF8.self)
    }

    /// Runs of whitespace collapsed to one space, ends trimmed: for diagnostics that were folded.
    func collapsingWhitespace() -> String {
        String(decoding: ReportFieldReader.collapsingWhitespace(Array(utf8)), as: UTF8.self)
    }
}

@inline(__always)
private func isTrimmable(_ b: UInt8) -> Bool {
    b == Bytes.space || b == Bytes.tab || b == Bytes.cr || b == Bytes.lf
}

extension String {
    /// Nil when empty.
    var nonEmpty: String? { isEmpty ? nil : self }
}
