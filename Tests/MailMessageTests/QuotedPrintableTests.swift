import Testing

@testable import MailMessage

struct QuotedPrintableTests {
    static let decoding: [(String, String)] = [
        ("plain text", "plain text"),
        ("a=3Db", "a=b"),
        ("caf=C3=A9", "café"),
        ("caf=c3=a9", "café"), // lowercase hex, leniently
        ("soft=\r\nbreak", "softbreak"),
        ("soft=\nbreak", "softbreak"), // bare LF
        ("soft=  \r\nbreak", "softbreak"), // transport padding after the "="
        ("line one\r\nline two", "line one\r\nline two"),
        ("line one\nline two", "line one\r\nline two"), // hard break read as CRLF
        ("trailing   \r\nspace", "trailing\r\nspace"), // rule 3: trailing whitespace dropped
        ("keep=20\r\n", "keep \r\n"),
        ("bad=ZZescape", "bad=ZZescape"), // kept as is
        ("end=", "end"),
        ("end=4", "end=4"),
        ("", ""),
        ("=\r\n", ""),
        ("tab=09", "tab\t"),
    ]

    @Test(arguments: decoding)
    func decodes(encoded: String, expected: String) {
        #expect(QuotedPrintable.decode(Array(encoded.utf8)) == Array(expected.utf8))
    }

    static let encoding: [(String, String)] = [
        ("plain text", "plain text"),
        ("a=b", "a=3Db"),
        ("café", "caf=C3=A9"),
        ("line one\r\nline two", "line one\r\nline two"),
        ("bare\nlf", "bare\r\nlf"),
        ("lone\rcr", "lone=0Dcr"),
        ("trailing space \r\nnext", "trailing space=20\r\nnext"),
        ("trailing tab\t", "trailing tab=09"),
        ("", ""),
        (String(repeating: "a", count: 76), String(repeating: "a", count: 76)),
        (String(repeating: "a", count: 77), String(repeating: "a", count: 75) + "=\r\naa"),
        (String(repeating: "a", count: 74) + "é", String(repeating: "a", count: 74) + "=\r\n=C3=A9"),
        // No line starts with "--", so none looks like a delimiter.
        (String(repeating: "a", count: 75) + "--boundary", String(repeating: "a", count: 75) + "=\r\n=2D-boundary"),
        ("-- \r\nsignature", "=2D-=20\r\nsignature"),
        ("x\r\n--b--\r\n", "x\r\n=2D-b--\r\n"),
        ("- item\r\na--b", "- item\r\na--b"),
        (String(repeating: "a", count: 75) + "-x", String(repeating: "a", count: 75) + "=\r\n-x"),
    ]

    @Test(arguments: encoding)
    func encodes(data: String, expected: String) {
        #expect(String(decoding: QuotedPrintable.encode(Array(data.utf8)), as: UTF8.self) == expected)
    }

    static let roundTrips: [[UInt8]] = [
        Array("<a href=\"https://example.com/?a=1&b=2\">x</a>\r\n".utf8),
        Array(String(repeating: "é ü = x\t", count: 40).utf8),
        Array(0...255),
        Array(String(repeating: "word ", count: 300).utf8) + [ASCII.cr, ASCII.lf],
    ]

    @Test(arguments: roundTrips)
    func roundTripsWithShortLines(data: [UInt8]) {
        let encoded = QuotedPrintable.encode(data)
        for line in encoded.split(separator: ASCII.lf, omittingEmptySubsequences: false) {
            let content = line.last == ASCII.cr ? line.dropLast() : line
            #expect(content.count <= 76)
            #expect(!content.contains(ASCII.cr))
        }
        #expect(encoded.allSatisfy { $0 < 0x80 })
        let expected = RewriteStateTestAccess.crlf(data)
        #expect(QuotedPrintable.decode(encoded) == expected)
    }
}

/// Data as the QP round trip sees it: line breaks become CRLF.
enum RewriteStateTestAccess {
    static func crlf(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < data.count {
            if data[i] == ASCII.cr, i + 1 < data.count, data[i + 1] == ASCII.lf {
                out += [ASCII.cr, ASCII.lf]
                i += 2
            } else if data[i] == ASCII.lf {
                out += [ASCII.cr, ASCII.lf]
                i += 1
            } else {
                out.append(data[i])
                i += 1
            }
        }
        return out
    }
}
