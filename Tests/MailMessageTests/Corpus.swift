import Foundation
import Testing
import MailMessage

/// The test messages in `Corpus/` and what rewriting each should do.
enum Corpus {
    struct Expectation: Sendable, CustomTestStringConvertible {
        var file: String
        /// Original URLs of the links to rewrite, in order.
        var links: [String]
        /// HTML parts that get the pixel.
        var pixels: Int
        /// Unsubscribe placeholders replaced.
        var placeholders: Int
        /// Strings that must still be in the rewritten message's HTML exactly as written (kept links).
        var kept: [String] = []
        /// Whether a part is re-encoded as quoted-printable for line length.
        var switchesToQuotedPrintable = false

        var testDescription: String { file }
    }

    static let expectations: [Expectation] = [
        Expectation(
            file: "newsletter.eml",
            links: [
                "https://www.northwind.example/?utm_source=newsletter&utm_medium=email",
                "https://www.northwind.example/catalogue/spring-2026",
                "https://www.northwind.example/catalogue/spring-2026.pdf",
                "https://shop.northwind.example/cart?add=1234&qty=1",
                "https://twitter.example/northwind",
                "https://social.example/@northwind",
            ],
            pixels: 1, placeholders: 2,
            kept: [
                "href=\"mailto:support@northwind.example?subject=Question\"",
                "<a href=\"https://example.com/in-css\">not a link</a>",
                "src=\"https://cdn.northwind.example/logo.png\"",
            ]
        ),
        Expectation(
            file: "mixed-alternative-attachments.eml",
            links: [
                "https://billing.acme.example/invoices/INV-2026-0042?view=web&lang=fr",
                "https://billing.acme.example/pay?invoice=INV-2026-0042&method=card",
            ],
            pixels: 1, placeholders: 1,
            kept: ["href=\"tel:+33123456789\"", "src=\"cid:logo@acme.example\""]
        ),
        Expectation(
            file: "base64-html.eml",
            links: ["https://shop.example.de/sendung?nr=7781-2290&plz=10115", "https://shop.example.de/konto/bestellungen"],
            pixels: 1, placeholders: 2,
            kept: ["href=\"#details\""]
        ),
        Expectation(
            file: "quoted-printable-html.eml",
            links: [
                "https://portail.example.fr/rapports/2026/T1?format=html&lang=fr&ref=mail-0331",
                "https://portail.example.fr/rapports/2026/T1.xlsx",
            ],
            pixels: 1, placeholders: 0
        ),
        Expectation(
            file: "latin1-html.eml",
            links: ["https://loja.example.pt/encomendas?c\u{F3}digo=PT-4471&l=pt"],
            pixels: 1, placeholders: 1
        ),
        Expectation(file: "plain-and-csv.eml", links: [], pixels: 0, placeholders: 1),
        Expectation(file: "non-mime-plain.eml", links: [], pixels: 0, placeholders: 1),
        Expectation(file: "malformed-missing-close.eml", links: ["https://broken.example/digest/0329"], pixels: 1, placeholders: 0),
        Expectation(file: "malformed-no-boundary.eml", links: [], pixels: 0, placeholders: 0),
        Expectation(
            file: "link-edge-cases.eml",
            links: [
                "https://example.com/plain",
                "HTTPS://EXAMPLE.COM/UPPER",
                "https://example.com/single?q=1&r=2",
                "https://example.com/unquoted?x=1",
                "https://example.com/spaces",
                "https://example.com/q?a=1&b=2&c=3&d=4",
                "http://example.com/insecure",
                "https://example.com/multiline",
                "hTtPs://example.com/MiXeD",
                "https://example.com/encoded-scheme",
                "https://example.com/area",
            ],
            pixels: 1, placeholders: 1,
            kept: [
                "<a href=\"https://example.com/in-title\">",
                "content: \"<a href='https://example.com/in-style'>\"",
                "<a href=\\\"https://example.com/in-script\\\">",
                "document.write('</body>')",
                "<!-- <a href=\"https://example.com/in-comment\">commented out</a> </body> -->",
                "<v:roundrect href=\"https://example.com/in-mso-comment\">",
                "<a href=\"https://example.com/notrack\" data-tern-notrack>",
                "<a data-tern-notrack=\"true\" href=\"https://example.com/notrack-valued\">",
                "<a href=\"mailto:someone@example.com\">",
                "<a href=\"tel:+15551234567\">",
                "<a href=\"#section-2\">",
                "<a href=\"/relative/path\">",
                "<a href=\"relative.html\">",
                "<a href=\"//example.com/protocol-relative\">",
                "<a href=\"ftp://example.com/file\">",
                "<a href=\"javascript:void(0)\">",
                "<a href=\"\">",
                "<link href=\"https://example.com/not-an-anchor.css\">",
                "<img src=\"https://example.com/image.png\"",
                "<![CDATA[ <a href=\"https://example.com/in-cdata\">cdata</a> ]]>",
            ]
        ),
        Expectation(
            file: "long-line-html.eml",
            links: (0..<8).map { "https://long.example/p/0\($0)" },
            pixels: 1, placeholders: 0, switchesToQuotedPrintable: true
        ),
        Expectation(file: "forwarded-rfc822.eml", links: ["https://example.com/blog"], pixels: 1, placeholders: 0),
        Expectation(file: "signed.eml", links: [], pixels: 0, placeholders: 0),
        Expectation(file: "html-no-body-tag.eml", links: ["https://sales.example.com/deck?id=77&s=mail"], pixels: 1, placeholders: 0),
    ]

    static let placeholder = TrackingOptions.defaultUnsubscribePlaceholder
    static let pixelURL = "https://open.tern.test/o/01HZX4J8K2.gif"
    static let unsubscribeURL = "https://tern.test/u/01HZX4J8K2?sig=ab&list=news"
    static func trackedURL(_ index: Int) -> String { "https://click.tern.test/c/01HZX4J8K2/\(index)?sig=0f3a9c" }

    static let removedFields = ["X-Tern-Track"]
    static let addedFields = [
        AddedHeaderField(name: "List-Unsubscribe", value: "<https://tern.test/u/01HZX4J8K2?sig=ab>"),
        AddedHeaderField(name: "List-Unsubscribe-Post", value: "List-Unsubscribe=One-Click"),
    ]

    static let options = TrackingOptions(
        clickTracking: { _, index in trackedURL(index) },
        openPixelURL: pixelURL,
        unsubscribeURL: unsubscribeURL,
        removedHeaderFields: removedFields,
        addedHeaderFields: addedFields
    )

    static var directory: URL {
        get throws {
            guard let url = Bundle.module.url(forResource: "Corpus", withExtension: nil) else {
                throw CorpusError(hint: "no Corpus folder in the test bundle")
            }
            return url
        }
    }

    static func files() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".eml") }.sorted()
    }

    static func bytes(_ file: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory.appendingPathComponent(file)))
    }

    struct CorpusError: Error, CustomStringConvertible {
        var hint: String
        var description: String { hint }
    }
}
