import Testing

@testable import MailMessage

struct HTMLTextTests {
    static let attributeValues: [(String, String)] = [
        ("https://a.example/?x=1&amp;y=2", "https://a.example/?x=1&y=2"),
        ("https://a.example/?x=1&y=2", "https://a.example/?x=1&y=2"), // a bare & stays
        ("&#104;ttps://a.example", "https://a.example"),
        ("&#x68;ttps://a.example", "https://a.example"),
        ("&#X68ttps://a.example", "https://a.example"), // no semicolon, leniently
        ("a&quot;b&lt;c&gt;d&apos;e", "a\"b<c>d'e"),
        ("a&amp", "a&"), // legacy reference without ";"
        ("?a=1&amp=2", "?a=1&amp=2"), // ... but not before "="
        ("?a=1&copy=2", "?a=1&copy=2"), // unknown without ";"
        ("&unknown;", "&unknown;"),
        ("&#0;", "\u{FFFD}"),
        ("&#x110000;", "\u{FFFD}"),
        ("&#x80;", "€"), // Windows-1252 mapping for 0x80–0x9F
        ("&colon;&sol;&sol;", "://"),
        ("&", "&"),
        ("&#;", "&#;"),
    ]

    @Test(arguments: attributeValues)
    func decodesAttributeValues(value: String, expected: String) {
        let bytes = Array(value.utf8)
        #expect(HTMLText.decodeAttributeValue(bytes[...], charset: .utf8) == expected)
    }

    @Test func decodesInTheCharset() {
        let bytes: [UInt8] = Array("https://a.example/c".utf8) + [0xF3] + Array("digo&amp;x".utf8)
        #expect(HTMLText.decodeAttributeValue(bytes[...], charset: .iso8859_1) == "https://a.example/código&x")
    }

    static let escapes: [(String, String)] = [
        ("https://t.example/c?a=1&b=2", "https://t.example/c?a=1&amp;b=2"),
        ("say \"hi\" <x> 'y'", "say &quot;hi&quot; &lt;x&gt; &#39;y&#39;"),
        ("é\n", "&#xE9;&#xA;"),
    ]

    @Test(arguments: escapes)
    func escapesText(text: String, expected: String) {
        #expect(String(decoding: HTMLText.escape(text), as: UTF8.self) == expected)
    }

    static let links: [(String, String?)] = [
        ("https://example.com/x", "https://example.com/x"),
        ("http://example.com", "http://example.com"),
        ("HTTPS://EXAMPLE.COM", "HTTPS://EXAMPLE.COM"),
        ("hTtP://example.com", "hTtP://example.com"),
        ("  https://example.com/  ", "https://example.com/"),
        ("\u{1}https://example.com", "https://example.com"),
        ("ht\ttps://exa\nmple.com", "https://example.com"), // tabs and newlines are removed (WHATWG URL)
        ("mailto:a@example.com", nil),
        ("tel:+15551234567", nil),
        ("#anchor", nil),
        ("/relative", nil),
        ("relative.html", nil),
        ("//example.com/x", nil),
        ("ftp://example.com", nil),
        ("javascript:alert(1)", nil),
        ("{{unsubscribe_url}}", nil),
        ("", nil),
        ("https", nil),
        ("httpx://example.com", nil),
    ]

    @Test(arguments: links)
    func classifiesLinks(url: String, expected: String?) {
        #expect(LinkClassifier.trackableURL(url) == expected)
    }
}
