import Testing

@testable import MailMessage

struct HTMLTokenizerTests {
    /// A readable rendering of the tokens: `<a href=x>`, `</p>`, `comment`, `raw`.
    static func render(_ html: String) -> [String] {
        let bytes = Array(html.utf8)
        func s(_ r: Range<Int>) -> String { String(decoding: bytes[r], as: UTF8.self) }
        return HTMLTokenizer(bytes).map { token in
            switch token {
            case .startTag(let tag):
                let attributes = tag.attributes.map { a in
                    a.valueRange.map { "\(s(a.nameRange))=\(s($0))" } ?? s(a.nameRange)
                }
                return "<" + ([s(tag.nameRange)] + attributes).joined(separator: " ") + ">"
            case .endTag(_, let name): return "</\(s(name))>"
            case .comment(let r): return "comment(\(s(r)))"
            case .rawText(let r): return "raw(\(s(r)))"
            }
        }
    }

    static let cases: [(String, [String])] = [
        ("<p>text</p>", ["<p>", "</p>"]),
        ("<A HREF=\"x\">", ["<A HREF=x>"]),
        ("<a href='x y'>", ["<a href=x y>"]),
        ("<a href=x class=y>", ["<a href=x class=y>"]),
        ("<a href = \"x\" >", ["<a href=x>"]),
        ("<a\nhref=\"x\"\ntarget=_blank>", ["<a href=x target=_blank>"]),
        ("<a title=\"1 > 0\" href=x>", ["<a title=1 > 0 href=x>"]),
        ("<a title='say \"hi\"' href=x>", ["<a title=say \"hi\" href=x>"]),
        ("<a data-tern-notrack href=x>", ["<a data-tern-notrack href=x>"]),
        ("<br/><img src=x />", ["<br>", "<img src=x>"]),
        ("<a href=>", ["<a href=>"]),
        ("a < b and c<d", []), // a "<" not before a letter is text
        ("<!-- <a href=x> -->", ["comment(<!-- <a href=x> -->)"]),
        ("<!--> <a href=x>", ["comment(<!-->)", "<a href=x>"]),
        ("<!---> <a href=x>", ["comment(<!--->)", "<a href=x>"]),
        ("<!-- x --!> <a>", ["comment(<!-- x --!>)", "<a>"]),
        ("<!-- never closed <a href=x>", ["comment(<!-- never closed <a href=x>)"]),
        ("<!--[if mso]><v:rect href=x><![endif]--><a>", ["comment(<!--[if mso]><v:rect href=x><![endif]-->)", "<a>"]),
        ("<!--[if !mso]><!--><a href=x><!--<![endif]-->", ["comment(<!--[if !mso]><!-->)", "<a href=x>", "comment(<!--<![endif]-->)"]),
        ("<![CDATA[ <a href=x> ]]><b>", ["comment(<![CDATA[ <a href=x> ]]>)", "<b>"]),
        ("<!DOCTYPE html><html>", ["comment(<!DOCTYPE html>)", "<html>"]),
        ("<?xml version=\"1.0\"?><p>", ["comment(<?xml version=\"1.0\"?>)", "<p>"]),
        ("</ p><p>", ["comment(</ p>)", "<p>"]),
        ("</><p>", ["<p>"]),
        ("<script>if (a<b) x='<a href=y>';</script><a>", ["<script>", "raw(if (a<b) x='<a href=y>';)", "</script>", "<a>"]),
        ("<SCRIPT type=x>document.write('</body>')</SCRIPT >", ["<SCRIPT type=x>", "raw(document.write('</body>'))", "</SCRIPT>"]),
        ("<style>a{b:c}</style>", ["<style>", "raw(a{b:c})", "</style>"]),
        ("<title><a href=x></title>", ["<title>", "raw(<a href=x>)", "</title>"]),
        ("<script>never closed <a href=x>", ["<script>", "raw(never closed <a href=x>)"]),
        ("<scripts><a>", ["<scripts>", "<a>"]), // not a raw text element
        ("<textarea></textareax></textarea><a>", ["<textarea>", "raw(</textareax>)", "</textarea>", "<a>"]),
        ("</BODY ></html>", ["</BODY>", "</html>"]),
        ("<a href=\"unterminated>", []), // cut off by the end: not reported
        ("<a", []),
        ("<p>caf\u{E9} <a href=\"/\u{E9}\">", ["<p>", "<a href=/\u{E9}>"]),
    ]

    @Test(arguments: cases)
    func tokenizes(html: String, expected: [String]) {
        #expect(Self.render(html) == expected)
    }

    @Test func quotedValueRangesIncludeQuotes() throws {
        let bytes = Array("<a href=\"x\" b='y' c=z>".utf8)
        var tokenizer = HTMLTokenizer(bytes)
        guard case .startTag(let tag) = tokenizer.next() else {
            Issue.record("no start tag")
            return
        }
        let ranges = tag.attributes.compactMap(\.valueRangeWithQuotes).map { String(decoding: bytes[$0], as: UTF8.self) }
        #expect(ranges == ["\"x\"", "'y'", "z"])
        #expect(tag.attributes.map(\.quote) == [UInt8(ascii: "\""), UInt8(ascii: "'"), nil])
        #expect(tag.range == 0..<bytes.count)
    }
}
