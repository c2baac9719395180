import Foundation
import Testing
@testable import TernStoreSQLite

@Suite struct DetailsJSONTests {
    @Test(arguments: [
        [:],
        ["text": "250 2.0.0 Ok: queued as 123"],
        ["url": "https://shop.example/a?x=1&y=\"2\"", "ua": "Mozilla/5.0 (X11) \\ back\tslash"],
        ["controls": "a\u{0}b\u{1f}c\u{7f}d\r\n", "unicode": "caf\u{e9} \u{1F600} \u{2028}"],
        ["b": "2", "a": "1", "c": ""],
        ["edges": "\"\"x\\", "only": "\u{1}", "runs": "ab\"cd\\\\ef\n"],
    ] as [[String: String]])
    func decodesToTheSameDetails(_ details: [String: String]) throws {
        let json = DetailsJSON.encode(details)
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(json.utf8))
        #expect(decoded == details)
    }

    @Test func escapesBetweenRunsOfPlainText() {
        #expect(DetailsJSON.encode(["k": "\"a\\\tb\u{1}", "plain": "https://x.example/?a=1"])
            == #"{"k":"\"a\\\tb\u0001","plain":"https://x.example/?a=1"}"#)
    }

    @Test func keysAreSorted() {
        #expect(DetailsJSON.encode(["b": "2", "a": "1", "machine": "false"]) == #"{"a":"1","b":"2","machine":"false"}"#)
    }
    /// The writer encodes a whole batch through one buffer: what a longer object left in it
    /// must not show in the next one.
    @Test func aReusedBufferHoldsOnlyTheLatestObject() {
        var buffer: [UInt8] = []
        DetailsJSON.encode(["url": "https://shop.example/a-long-path?with=query", "machine": "false"], into: &buffer)
        DetailsJSON.encode(["n": "1"], into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == #"{"n":"1"}"#)
        DetailsJSON.encode([:], into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == "{}")
    }
}
