import Foundation
import Testing
import TernCore
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

    /// An engagement event's fields are written as they come, without sorting: the bytes must
    /// be those of the same details as a dictionary, whose keys are sorted.
    @Test(arguments: [
        EngagementDetails(
            machine: false, reason: "human", url: "https://shop.example/a?x=\"1\"\\", link: 12, method: "HEAD", ip: "2001:db8::7",
            userAgent: "Mozilla/5.0 (X11)\t\u{1}caf\u{e9}"),
        EngagementDetails(machine: true, reason: "apple_mpp", ip: "17.58.0.1"),
        EngagementDetails(url: "http://x.example/", link: 0),
        EngagementDetails(method: "one-click"),
        EngagementDetails(userAgent: ""),
    ])
    func engagementDetailsAreWrittenAsTheirDictionary(_ details: EngagementDetails) throws {
        var buffer: [UInt8] = []
        DetailsJSON.encode(details, into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == DetailsJSON.encode(details.dictionary))
        #expect(try JSONDecoder().decode([String: String].self, from: Data(buffer)) == details.dictionary)
    }

    @Test func engagementDetailsUseTheStoredKeys() {
        let details = EngagementDetails(
            machine: true, reason: "r", url: "u", link: 3, method: "m", ip: "i", userAgent: "a")
        #expect(details.dictionary == [
            "machine": "true", "reason": "r", "url": "u", "link": "3", "method": "m", "ip": "i", "user_agent": "a",
        ])
        #expect(EngagementDetails().dictionary.isEmpty && EngagementDetails().isEmpty && !details.isEmpty)
    }

    /// The writer encodes a whole batch through one buffer: what a longer object left in it
    /// must not show in the next one.
    @Test func aReusedBufferHoldsOnlyTheLatestObject() {
        var buffer: [UInt8] = []
        DetailsJSON.encode(EngagementDetails(machine: false, url: "https://shop.example/a-long-path?with=query"), into: &buffer)
        DetailsJSON.encode(EngagementDetails(link: 1), into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == #"{"link":"1"}"#)
        DetailsJSON.encode(EngagementDetails(), into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == "{}")
        DetailsJSON.encode(["url": "https://shop.example/a-long-path?with=query", "machine": "false"], into: &buffer)
        DetailsJSON.encode(["n": "1"], into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == #"{"n":"1"}"#)
    }
}

extension EngagementDetails {
    /// The fields that are set, by their stored keys: what the stored JSON object holds.
    fileprivate var dictionary: [String: String] {
        var dictionary: [String: String] = [:]
        forEachField { key, value in dictionary[key.description] = value }
        return dictionary
    }
}
