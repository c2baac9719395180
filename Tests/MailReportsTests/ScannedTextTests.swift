import Testing

@testable import MailReports

/// The text helpers under the plain-text heuristics: line search, addresses in prose, HTML.
struct ScannedTextTests {
    static func text(_ s: String) -> ScannedText { ScannedText(Array(s.utf8)) }

    @Test func lineIndexFindsTheEarliestLineOfAnyPhrase() {
        let t = Self.text("zero\r\none LONGER PHRASE HERE\r\ntwo short\r\nthree short\nfour longer phrase here")
        let phrases = ["short", "longer phrase here"].map { Array($0.utf8) }
        #expect(t.lineIndex(containing: phrases) == 1)
        #expect(t.lineIndex(containing: phrases, from: 2) == 2)
        #expect(t.lineIndex(containing: phrases, from: 2, end: 2) == nil)
        #expect(t.lineIndex(containing: [Array("four".utf8)]) == 4)
        #expect(t.lineIndex(containing: [Array("absent".utf8)]) == nil)
        // A longer phrase that starts before a shorter one's match is still the earliest.
        let overlap = Self.text("a abcdefghij b")
        #expect(overlap.lineIndex(containing: [Array("j b".utf8), Array("abcdefghij".utf8)]) == 0)
        #expect(Self.text("").lineIndex(containing: phrases) == nil)
    }

    static let addresses: [(String, [String])] = [
        ("<nobody@example.net>: host said", ["nobody@example.net"]),
        ("'pat.smith@corp.example.org' on 3/17/2026", ["pat.smith@corp.example.org"]),
        ("mia@example.org<mailto:mia@example.org>", ["mia@example.org", "mia@example.org"]),
        ("RCPT TO:<a+tag@example.net> and b_c@sub.example.co.uk.", ["a+tag@example.net", "b_c@sub.example.co.uk"]),
        ("jos\u{E9}@example.net", ["jos\u{E9}@example.net"]),
        ("user@localhost and @example.net and a@b", []),
        ("@@@ a@@b.example", []),
        ("[192.0.2.1] a@-bad.example", []),
    ]

    @Test(arguments: addresses)
    func scansAddresses(line: String, expected: [String]) {
        let bytes = Array(line.utf8)
        #expect(AddressScanner.addresses(in: bytes, range: 0..<bytes.count) == expected)
    }

    static let html: [(String, String)] = [
        ("<p>Delivery has failed</p><p>a@example.org<br>Not found</p>", "\nDelivery has failed\n\na@example.org\nNot found\n"),
        ("<style>p { color: red }</style>text", "text"),
        ("<styles>x</styles>", "x"), // not a style element
        ("a<!-- <p>hidden</p> -->b", "ab"),
        ("&lt;a@example.org&gt; &amp; &#39;quoted&#39; &#x41; &bogus; & x", "<a@example.org> & 'quoted' A &bogus; & x"),
        ("<td>one</td><td>two</td>", " one two"),
        ("unterminated <b", "unterminated "),
    ]

    @Test(arguments: html)
    func htmlToText(input: String, expected: String) {
        #expect(String(decoding: HTMLText.plain(Array(input.utf8)), as: UTF8.self) == expected)
    }
}
