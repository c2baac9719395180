import Synchronization
import Testing

@testable import MailMessage

struct HTMLTrackingRewriterTests {
    static let pixelURL = "https://t.example/o/1"
    static var pixel: String { String(decoding: ContentRewritePlan.openPixelTag(for: pixelURL), as: UTF8.self) }

    static func plan(clicks: Bool = true, pixel: Bool = true, unsubscribe: String? = "https://t.example/u/1?a=1&b=2") -> ContentRewritePlan {
        var plan = ContentRewritePlan()
        if clicks { plan.clickTracking = { _, index in "https://t.example/c/\(index)?s=\"x\"&t=1" } }
        if pixel { plan.openPixelTag = ContentRewritePlan.openPixelTag(for: pixelURL) }
        if let unsubscribe {
            plan.placeholder = Array(TrackingOptions.defaultUnsubscribePlaceholder.utf8)
            plan.unsubscribeURL = unsubscribe
            plan.unsubscribeHTML = HTMLText.escape(unsubscribe)
        }
        return plan
    }

    static func rewrite(_ html: String, plan: ContentRewritePlan = plan(), links: inout [String]) -> String? {
        HTMLTrackingRewriter.rewrite(Array(html.utf8), charset: .utf8, plan: plan, links: &links)
            .map { String(decoding: $0.content, as: UTF8.self) }
    }

    static let linkCases: [(String, String, [String])] = [
        ("<a href=\"https://a.example/x\">", "<a href=\"https://t.example/c/0?s=&quot;x&quot;&amp;t=1\">", ["https://a.example/x"]),
        ("<A HREF='https://a.example/?a=1&amp;b=2'>", "<A HREF=\"https://t.example/c/0?s=&quot;x&quot;&amp;t=1\">", ["https://a.example/?a=1&b=2"]),
        ("<a href=https://a.example/x class=y>", "<a href=\"https://t.example/c/0?s=&quot;x&quot;&amp;t=1\" class=y>", ["https://a.example/x"]),
        ("<area href=\" http://a.example \">", "<area href=\"https://t.example/c/0?s=&quot;x&quot;&amp;t=1\">", ["http://a.example"]),
        ("<a href=\"mailto:x@a.example\">", "<a href=\"mailto:x@a.example\">", []),
        ("<a href=\"tel:+1\">", "<a href=\"tel:+1\">", []),
        ("<a href=\"#top\">", "<a href=\"#top\">", []),
        ("<a href=\"/rel\">", "<a href=\"/rel\">", []),
        ("<a data-tern-notrack href=\"https://a.example\">", "<a data-tern-notrack href=\"https://a.example\">", []),
        ("<a href=\"https://a.example\" DATA-TERN-NOTRACK=\"1\">", "<a href=\"https://a.example\" DATA-TERN-NOTRACK=\"1\">", []),
        ("<link href=\"https://a.example/s.css\">", "<link href=\"https://a.example/s.css\">", []),
        ("<a href=\"https://a.example/1\" href=\"https://a.example/2\">", "<a href=\"https://t.example/c/0?s=&quot;x&quot;&amp;t=1\" href=\"https://a.example/2\">", ["https://a.example/1"]),
        ("<a href=\"https://a.example/?u={{unsubscribe_url}}\">", "<a href=\"https://t.example/c/0?s=&quot;x&quot;&amp;t=1\">", ["https://a.example/?u=https://t.example/u/1?a=1&b=2"]),
        ("<!-- <a href=\"https://a.example\"> --><script>'<a href=\"https://a.example\">'</script>",
         "<!-- <a href=\"https://a.example\"> --><script>'<a href=\"https://a.example\">'</script>", []),
    ]

    @Test(arguments: linkCases)
    func rewritesLinks(html: String, expected: String, originals: [String]) {
        var links: [String] = []
        let plan = Self.plan(pixel: false, unsubscribe: "https://t.example/u/1?a=1&b=2")
        let result = Self.rewrite(html, plan: plan, links: &links)
        #expect((result ?? html) == expected)
        #expect(links == originals)
    }

    @Test func indexesContinueAcrossParts() {
        var links = ["https://earlier.example"]
        var plan = Self.plan(pixel: false, unsubscribe: nil)
        let recorder = IndexRecorder()
        plan.clickTracking = { url, index in
            recorder.record(index)
            return "https://t.example/c/\(index)"
        }
        let out = Self.rewrite("<a href=\"https://a.example\"><a href=\"https://b.example\">", plan: plan, links: &links)
        #expect(out == "<a href=\"https://t.example/c/1\"><a href=\"https://t.example/c/2\">")
        #expect(recorder.indexes == [1, 2])
        #expect(links == ["https://earlier.example", "https://a.example", "https://b.example"])
    }

    static let pixelCases: [(String, String)] = [
        ("<html><body><p>x</p></body></html>", "<html><body><p>x</p>PIXEL</body></html>"),
        ("<body>a</BODY >b</body >c", "<body>a</BODY >bPIXEL</body >c"), // the last </body>
        ("<body><!-- </body> --></body><script>'</body>'</script>", "<body><!-- </body> -->PIXEL</body><script>'</body>'</script>"),
        ("<p>no body tag</p>\r\n\r\n", "<p>no body tag</p>PIXEL\r\n\r\n"),
        ("<p>no body tag</p>", "<p>no body tag</p>PIXEL"),
        ("", "PIXEL"),
    ]

    @Test(arguments: pixelCases)
    func insertsOnePixel(html: String, expected: String) {
        var links: [String] = []
        let out = Self.rewrite(html, plan: Self.plan(clicks: false, unsubscribe: nil), links: &links)
        #expect(out == expected.replacingOccurrences(of: Array("PIXEL".utf8), with: Self.pixel))
    }

    @Test func pixelTagShape() {
        #expect(String(decoding: ContentRewritePlan.openPixelTag(for: "https://t.example/o?a=1&b=2"), as: UTF8.self)
            == "<img src=\"https://t.example/o?a=1&amp;b=2\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0;width:1px;height:1px\" />")
    }

    @Test func placeholderIsEscapedInHTML() {
        var links: [String] = []
        let out = Self.rewrite("<a href=\"{{unsubscribe_url}}\">{{unsubscribe_url}}</a>", plan: Self.plan(clicks: true, pixel: false), links: &links)
        #expect(out == "<a href=\"https://t.example/u/1?a=1&amp;b=2\">https://t.example/u/1?a=1&amp;b=2</a>")
        #expect(links.isEmpty) // the unsubscribe link is not click-tracked
    }

    @Test func nothingToDo() {
        var links: [String] = []
        #expect(Self.rewrite("<a href=\"#x\">", plan: Self.plan(pixel: false), links: &links) == nil)
    }

    @Test func plainTextPlaceholderOnly() {
        let plan = Self.plan()
        let text = Array("Go to https://a.example\r\nUnsubscribe: {{unsubscribe_url}} {{unsubscribe_url}}\r\n".utf8)
        let result = PlainTextTrackingRewriter.rewrite(text, plan: plan)
        #expect(result.map { String(decoding: $0.content, as: UTF8.self) }
            == "Go to https://a.example\r\nUnsubscribe: https://t.example/u/1?a=1&b=2 https://t.example/u/1?a=1&b=2\r\n")
        #expect(result?.placeholders == 2)
        #expect(PlainTextTrackingRewriter.rewrite(Array("no placeholder".utf8), plan: plan) == nil)
    }
}

/// Collects the indexes a link closure saw (the closure is `@Sendable`).
final class IndexRecorder: Sendable {
    private let stored = Mutex<[Int]>([])
    func record(_ index: Int) { stored.withLock { $0.append(index) } }
    var indexes: [Int] { stored.withLock { $0 } }
}
