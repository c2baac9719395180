import Foundation
import Testing
import TernCore

@Suite struct TrackingEngagementRulesTests {
    private func load(_ json: String) throws -> EngagementRules {
        try EngagementRules.load(fromJSON: Data(json.utf8))
    }

    @Test func extendsDefaultsByDefault() throws {
        let rules = try load("""
            {"rules": [
              {"reason": "office_gateway", "kinds": ["click"], "ip_ranges": ["192.0.2.0/24", "2001:db8::/32"]},
              {"reason": "monitor", "user_agent_contains": ["UptimeRobot"], "methods": ["GET", "post"],
               "max_seconds_since_delivery": 30.5, "user_agent_empty": false, "machine": true}
            ]}
            """)
        #expect(rules.rules.count == EngagementRules.defaults.rules.count + 2)
        #expect(Array(rules.rules.dropFirst(2)) == EngagementRules.defaults.rules)
        #expect(rules.rules[0] == EngagementRule(
            reason: "office_gateway", kinds: [.click],
            ipRanges: ["192.0.2.0/24", "2001:db8::/32"].compactMap(IPNetwork.init)))
        #expect(rules.rules[1].maxSecondsSinceDelivery == 30.5)
        #expect(rules.rules[1].userAgentEmpty == false)

        let classifier = EngagementClassifier(rules: rules)
        let click = EngagementRequest(
            kind: .click, method: "GET", userAgent: "Mozilla/5.0 Chrome/124", clientIP: IPAddress("::ffff:192.0.2.9"),
            secondsSinceDelivery: 600)
        #expect(classifier.classify(click) == EngagementVerdict(machine: true, reason: "office_gateway"))
        // The defaults follow the user's rules.
        let head = EngagementRequest(kind: .open, method: "HEAD", userAgent: "x")
        #expect(classifier.classify(head).reason == "scanner_head")
    }

    @Test func replacesDefaults() throws {
        let rules = try load("""
            {"replace_defaults": true, "rules": [{"reason": "only_curl", "user_agent_contains": ["curl/"]}]}
            """)
        #expect(rules.rules.map(\.reason) == ["only_curl"])
        let classifier = EngagementClassifier(rules: rules)
        #expect(classifier.classify(EngagementRequest(kind: .open, method: "HEAD", userAgent: nil)) == .human)
        #expect(classifier.classify(EngagementRequest(kind: .open, method: "GET", userAgent: "curl/8")).reason == "only_curl")
    }

    @Test func emptyRuleListKeepsOrDropsDefaults() throws {
        #expect(try load(#"{"rules": []}"#) == .defaults)
        #expect(try load(#"{"rules": [], "replace_defaults": true}"#).rules.isEmpty)
    }

    /// Encoded rules are a complete file: loading them gives them back, not twice the defaults.
    @Test func defaultsRoundTrip() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(EngagementRules.defaults)
        #expect(try EngagementRules.load(fromJSON: data) == .defaults)
        #expect(String(decoding: data, as: UTF8.self).contains(#""replace_defaults" : true"#))
        #expect(String(decoding: data, as: UTF8.self).contains(#""max_seconds_since_delivery" : 2"#))
    }

    @Test(arguments: [
        ("not json", "{", EngagementRulesError.Code.syntax, "not valid JSON"),
        ("a list", "[]", .invalid, "top level: expected an object"),
        ("no rules", #"{"replace_defaults": true}"#, .invalid, "rules: missing"),
        ("unknown top-level field", #"{"rules": [], "replace": true}"#, .invalid, "replace: unknown field"),
        ("unknown rule field", #"{"rules": [{"reason": "x", "user_agent_contain": ["a"]}]}"#, .invalid,
         "rules[0].user_agent_contain: unknown field"),
        ("no reason", #"{"rules": [{"methods": ["HEAD"]}]}"#, .invalid, "rules[0].reason: missing"),
        ("empty reason", #"{"rules": [{"reason": "", "methods": ["HEAD"]}]}"#, .invalid, "rules[0].reason"),
        ("reason with spaces", #"{"rules": [{"reason": "a b", "methods": ["HEAD"]}]}"#, .invalid, "rules[0].reason"),
        ("reason human", #"{"rules": [{"reason": "human", "methods": ["HEAD"]}]}"#, .invalid, "machine"),
        ("no condition", #"{"rules": [{"reason": "all"}]}"#, .invalid, "no condition"),
        ("only kinds", #"{"rules": [{"reason": "all", "kinds": ["open"]}]}"#, .invalid, "no condition"),
        ("unknown kind", #"{"rules": [{"reason": "x", "kinds": ["view"], "methods": ["GET"]}]}"#, .invalid,
         "rules[0].kinds[0]"),
        ("empty list", #"{"rules": [{"reason": "x", "methods": []}]}"#, .invalid, "rules[0].methods: an empty list"),
        ("empty substring", #"{"rules": [{"reason": "x", "user_agent_contains": ["bot", ""]}]}"#, .invalid,
         "rules[0].user_agent_contains"),
        ("bad CIDR", #"{"rules": [{"reason": "x", "ip_ranges": ["10.0.0.0/8", "10.0.0.0/33"]}]}"#, .invalid,
         #"rules[0].ip_ranges: "10.0.0.0/33""#),
        ("host name", #"{"rules": [{"reason": "x", "ip_ranges": ["mail.example"]}]}"#, .invalid, "rules[0].ip_ranges"),
        ("negative seconds", #"{"rules": [{"reason": "x", "max_seconds_since_delivery": -1}]}"#, .invalid,
         "rules[0].max_seconds_since_delivery"),
        ("seconds as text", #"{"rules": [{"reason": "x", "max_seconds_since_delivery": "2"}]}"#, .invalid,
         "rules[0].max_seconds_since_delivery: expected a number"),
        ("string for list", #"{"rules": [{"reason": "x", "methods": "HEAD"}]}"#, .invalid, "rules[0].methods: expected a list"),
        ("null reason", #"{"rules": [{"reason": null, "methods": ["HEAD"]}]}"#, .invalid, "rules[0].reason"),
        ("later rule", #"{"rules": [{"reason": "ok", "methods": ["HEAD"]}, {"reason": "x", "machine": "no", "methods": ["GET"]}]}"#,
         .invalid, "rules[1].machine: expected true or false"),
    ] as [(String, String, EngagementRulesError.Code, String)])
    func refusesBadFiles(name: String, json: String, code: EngagementRulesError.Code, messagePart: String) {
        #expect {
            try load(json)
        } throws: { error in
            guard let error = error as? EngagementRulesError else { return false }
            return error.code == code && error.message.contains(messagePart)
        }
    }

    @Test func errorDescriptionNamesThePlace() {
        do {
            _ = try load(#"{"rules": [{"reason": "x", "ip_ranges": ["10.0.0.0/40"]}]}"#)
            Issue.record("accepted a bad range")
        } catch {
            #expect("\(error)".hasPrefix("engagement rules invalid: rules[0].ip_ranges:"))
        }
    }
}
