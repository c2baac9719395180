import NIOCore
import Testing
@testable import TernHTTP

@Suite struct RawRequestHeadTests {
    static func parse(_ text: String) -> RawRequestHead.Parsed {
        RawRequestHead.parse(ByteBuffer(string: text).readableBytesView)
    }

    @Test func aPlainOpenIsRead() throws {
        let text = "GET /o/TOKEN?x=1 HTTP/1.1\r\nHost: t.example\r\nUser-Agent:  Mozilla/5.0 (X11) \t\r\nAccept: */*\r\n\r\n"
        #expect(Self.parse(text + "GET /next") == .complete(RawRequestHead(
            isHead: false, target: "/o/TOKEN?x=1", http10: false, userAgent: "Mozilla/5.0 (X11)", closes: false,
            length: text.utf8.count)))
    }

    @Test(arguments: [
        ("HEAD /c/T HTTP/1.1\r\nConnection: close\r\n\r\n", true, false, true),
        ("GET /c/T HTTP/1.1\r\nconnection: Keep-Alive, CLOSE\r\n\r\n", false, false, true),
        ("GET /o/T HTTP/1.0\r\n\r\n", false, true, true),
        ("GET /o/T HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false, true, false),
        ("GET /o/T HTTP/1.1\r\nConnection: upgrade-me, keep-alive\r\n\r\n", false, false, false),
    ])
    func methodVersionAndConnection(text: String, isHead: Bool, http10: Bool, closes: Bool) throws {
        guard case .complete(let head) = Self.parse(text) else {
            Issue.record("not read: \(text)")
            return
        }
        #expect(head.isHead == isHead && head.http10 == http10 && head.closes == closes)
        #expect(head.userAgent == nil && head.length == text.utf8.count)
    }

    @Test(arguments: [
        "G", "GET", "GET /", "GET /o", "HEAD /c", "GET /o/TOKEN", "GET /o/TOKEN HTTP/1.1", "GET /o/TOKEN HTTP/1.1\r",
        "GET /o/TOKEN HTTP/1.1\r\nHost: x\r\n", "GET /o/TOKEN HTTP/1.1\r\nHost: x\r\n\r",
    ])
    func anUnfinishedHeadWaits(text: String) {
        #expect(Self.parse(text) == .incomplete)
    }

    @Test(arguments: [
        "POST /o/T HTTP/1.1\r\n\r\n",  // not GET or HEAD
        "get /o/T HTTP/1.1\r\n\r\n",  // methods are case-sensitive
        "GET /u/T HTTP/1.1\r\n\r\n",  // not an open or a click
        "GET /healthz HTTP/1.1\r\n\r\n",
        "GET /o/T HTTP/2.0\r\n\r\n",
        "GET /o/T  HTTP/1.1\r\n\r\n",
        "GET /o/T\u{E9} HTTP/1.1\r\n\r\n",  // not ASCII
        "GET /o/T HTTP/1.1\nHost: x\r\n\r\n",  // bare LF
        "GET /o/T HTTP/1.1\r\nHost: x\n\r\n",
        "GET /o/T HTTP/1.1\r\nHost : x\r\n\r\n",  // space before the colon
        "GET /o/T HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",  // obs-fold
        "GET /o/T HTTP/1.1\r\nX-A: a\u{0}b\r\n\r\n",  // NUL
        "GET /o/T HTTP/1.1\r\nX-A: a\u{1}b\r\n\r\n",  // a control
        "GET /o/T HTTP/1.1\r\n: x\r\n\r\n",  // no name
        "GET /o/T HTTP/1.1\r\nContent-Length: 0\r\n\r\n",  // a body, however short
        "GET /o/T HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET /o/T HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        "GET /o/T HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        "\r\nGET /o/T HTTP/1.1\r\n\r\n",  // an empty line first
    ])
    func anythingElseIsTheDecoders(text: String) {
        #expect(Self.parse(text) == .notOurs)
    }
}
