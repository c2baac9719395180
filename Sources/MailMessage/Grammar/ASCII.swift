/// Byte constants and helpers for the ASCII parts of the message grammar.
enum ASCII {
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let colon = UInt8(ascii: ":")
    static let equals = UInt8(ascii: "=")
    static let hyphen = UInt8(ascii: "-")
    static let crlf: [UInt8] = [cr, lf]

    /// WSP (RFC 5234 appendix B.1): space or horizontal tab.
    @inline(__always)
    static func isWSP(_ byte: UInt8) -> Bool { byte == space || byte == tab }

    /// ASCII whitespace as HTML and URLs know it: tab, LF, FF, CR, space.
    @inline(__always)
    static func isHTMLWhitespace(_ byte: UInt8) -> Bool {
        byte == space || byte == tab || byte == lf || byte == cr || byte == 0x0C
    }

    @inline(__always)
    static func isAlpha(_ byte: UInt8) -> Bool {
        (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    /// The value of a hexadecimal digit, either case.
    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    static let upperHexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    /// Whether `bytes[range]` equals `lowercaseLiteral` ignoring ASCII case.
    /// `lowercaseLiteral` must already be lowercase.
    @inline(__always)
    static func equalsIgnoringCase(_ bytes: [UInt8], _ range: Range<Int>, _ lowercaseLiteral: StaticString) -> Bool {
        guard range.count == lowercaseLiteral.utf8CodeUnitCount else { return false }
        return lowercaseLiteral.withUTF8Buffer { literal in
            var i = range.lowerBound
            for expected in literal {
                if lowercased(bytes[i]) != expected { return false }
                i += 1
            }
            return true
        }
    }

    /// Whether `bytes` has `lowercaseLiteral` at `index`, ignoring ASCII case.
    @inline(__always)
    static func hasPrefixIgnoringCase(_ bytes: [UInt8], at index: Int, end: Int, _ lowercaseLiteral: StaticString) -> Bool {
        let n = lowercaseLiteral.utf8CodeUnitCount
        guard index >= 0, end - index >= n else { return false }
        return equalsIgnoringCase(bytes, index..<(index + n), lowercaseLiteral)
    }

    /// The index just past the line that starts at `start`, and the end of its content
    /// (before CRLF, LF or a lone CR). Lenient: a bare LF ends a line too.
    @inline(__always)
    static func line(in bytes: [UInt8], from start: Int, end: Int) -> (contentEnd: Int, next: Int) {
        var i = start
        while i < end {
            let b = bytes[i]
            if b == lf { return (i, i + 1) }
            if b == cr {
                if i + 1 < end, bytes[i + 1] == lf { return (i, i + 2) }
                // A lone CR is kept as data inside the line: only LF ends a line when read leniently.
            }
            i += 1
        }
        return (end, end)
    }
}

extension String {
    /// This string with leading and trailing WSP, CR and LF removed.
    func trimmingMailWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !Self.isMailWhitespace($0) }) else { return "" }
        guard let last = scalars.lastIndex(where: { !Self.isMailWhitespace($0) }) else { return "" }
        return String(scalars[first...last])
    }

    static func isMailWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\r" || s == "\n"
    }

    /// ASCII-only lowercasing, stable for header names and MIME tokens.
    func asciiLowercased() -> String {
        var needs = false
        for b in utf8 where b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") {
            needs = true
            break
        }
        guard needs else { return self }
        return String(decoding: utf8.map(ASCII.lowercased), as: UTF8.self)
    }
}
