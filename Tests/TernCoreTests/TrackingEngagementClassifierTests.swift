import Foundation
import Testing
import TernCore

/// User agents of real browsers and mail clients: all people.
private let humanUserAgents = [
    // Chrome, Windows and Android
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    // Firefox
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    // Safari, macOS and iPhone; Chrome on iOS
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
    // Edge, Samsung Internet, Opera
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
    // Apple Mail (without MPP), Outlook desktop and mobile, Thunderbird
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
    "Mozilla/5.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; ms-office; MSOffice 16)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
    "Outlook-iOS/709.2226530.prod.iphone (4.2221.0)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.10.1",
    // The Gmail app's web view, and in-app browsers
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UD1A.230803.041; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/460.0.0.35.107;FBBV/585434563]",
    // Phones whose model name holds "bot"
    "Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 9; CUBOT P40 Build/PPR1.180610.011) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
]

private let chrome = humanUserAgents[0]

struct TrackingEngagementCase: Sendable, CustomTestStringConvertible {
    var request: EngagementRequest
    var reason: String
    var testDescription: String { "\(request.kind) \(request.method) \(request.userAgent ?? "nil") → \(reason)" }

    init(
        _ kind: EngagementKind, _ userAgent: String?, method: String = "GET", ip: String? = nil,
        after seconds: Double? = nil, _ reason: String
    ) {
        request = EngagementRequest(
            kind: kind, method: method, userAgent: userAgent, clientIP: ip.flatMap(IPAddress.init),
            secondsSinceDelivery: seconds)
        self.reason = reason
    }
}

private let cases: [TrackingEngagementCase] = [
    // scanner_head: any kind, before anything else
    TrackingEngagementCase(.open, chrome, method: "HEAD", "scanner_head"),
    TrackingEngagementCase(.click, chrome, method: "HEAD", after: 3600, "scanner_head"),
    TrackingEngagementCase(.click, nil, method: "head", "scanner_head"),
    TrackingEngagementCase(.open, "Mozilla/5.0", method: "HEAD", ip: "17.58.1.2", "scanner_head"),
    // google_proxy
    TrackingEngagementCase(.open, "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", "google_proxy"),
    TrackingEngagementCase(.open, "something via GGPHT.COM", "google_proxy"),
    // yahoo_proxy
    TrackingEngagementCase(.open, "Mozilla/5.0 (compatible; YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html)", "yahoo_proxy"),
    // apple_mpp: opens from Apple's blocks, IPv4, IPv6 and IPv4-mapped
    TrackingEngagementCase(.open, "Mozilla/5.0", ip: "17.58.101.4", after: 30, "apple_mpp"),
    TrackingEngagementCase(.open, humanUserAgents[10], ip: "17.0.0.1", after: 3600, "apple_mpp"),
    TrackingEngagementCase(.open, "Mozilla/5.0", ip: "::ffff:17.253.1.1", "apple_mpp"),
    TrackingEngagementCase(.open, "Mozilla/5.0", ip: "2620:149:a44:1::5", "apple_mpp"),
    TrackingEngagementCase(.open, "Mozilla/5.0", ip: "2a01:b740:a20:3000::1f2", "apple_mpp"),
    TrackingEngagementCase(.open, "Mozilla/5.0", ip: "2403:300:a0c::1", "apple_mpp"),
    // ... but not clicks, and not neighbouring blocks
    TrackingEngagementCase(.click, humanUserAgents[5], ip: "17.58.101.4", after: 60, "human"),
    TrackingEngagementCase(.open, humanUserAgents[5], ip: "16.255.255.255", after: 60, "human"),
    TrackingEngagementCase(.open, humanUserAgents[5], ip: "18.0.0.0", after: 60, "human"),
    TrackingEngagementCase(.open, humanUserAgents[5], ip: "2620:14a::1", after: 60, "human"),
    TrackingEngagementCase(.open, humanUserAgents[5], ip: "::17.58.1.1", after: 60, "human"),
    // microsoft_link_check
    TrackingEngagementCase(.click, "Microsoft Office Existence Discovery", "microsoft_link_check"),
    TrackingEngagementCase(.click, "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.1; Microsoft Office Protocol Discovery)", "microsoft_link_check"),
    // known_scanner_ua: gateways, bots, previews, libraries
    TrackingEngagementCase(.click, "Mozilla/5.0 (compatible; Barracuda Sentinel)", "known_scanner_ua"),
    TrackingEngagementCase(.click, "Mimecast URL Protect", "known_scanner_ua"),
    TrackingEngagementCase(.click, "Mozilla/5.0 (Windows NT 10.0) proofpoint url defense", "known_scanner_ua"),
    TrackingEngagementCase(.open, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "known_scanner_ua"),
    TrackingEngagementCase(.click, "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "known_scanner_ua"),
    TrackingEngagementCase(.click, "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "known_scanner_ua"),
    TrackingEngagementCase(.click, "TelegramBot (like TwitterBot)", "known_scanner_ua"),
    TrackingEngagementCase(.click, "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "known_scanner_ua"),
    TrackingEngagementCase(.click, "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "known_scanner_ua"),
    TrackingEngagementCase(.click, "WhatsApp/2.23.20.0 A", "known_scanner_ua"),
    TrackingEngagementCase(.click, "SkypeUriPreview Preview/0.5", "known_scanner_ua"),
    TrackingEngagementCase(.click, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36", "known_scanner_ua"),
    TrackingEngagementCase(.click, "python-requests/2.32.3", "known_scanner_ua"),
    TrackingEngagementCase(.click, "curl/8.4.0", "known_scanner_ua"),
    TrackingEngagementCase(.open, "Go-http-client/2.0", "known_scanner_ua"),
    TrackingEngagementCase(.click, "Java/17.0.2", "known_scanner_ua"),
    TrackingEngagementCase(.click, "okhttp/4.12.0", "known_scanner_ua"),
    TrackingEngagementCase(.open, "okhttp/4.12.0", after: 60, "human"),
    // empty_user_agent
    TrackingEngagementCase(.open, nil, "empty_user_agent"),
    TrackingEngagementCase(.click, "", after: 60, "empty_user_agent"),
    TrackingEngagementCase(.click, "  \t", "empty_user_agent"),
    // too_fast_after_delivery: opens within 1 s, clicks within 2 s, early requests too
    TrackingEngagementCase(.open, chrome, after: 0.5, "too_fast_after_delivery"),
    TrackingEngagementCase(.open, chrome, after: 1, "too_fast_after_delivery"),
    TrackingEngagementCase(.open, chrome, after: 1.5, "human"),
    TrackingEngagementCase(.click, chrome, after: 1.5, "too_fast_after_delivery"),
    TrackingEngagementCase(.click, chrome, after: 2, "too_fast_after_delivery"),
    TrackingEngagementCase(.click, chrome, after: -3, "too_fast_after_delivery"),
    TrackingEngagementCase(.click, chrome, after: 2.01, "human"),
    TrackingEngagementCase(.click, chrome, after: nil, "human"),
    // human
    TrackingEngagementCase(.open, chrome, method: "POST", after: 10, "human"),
    TrackingEngagementCase(.click, chrome, ip: "203.0.113.9", after: 86_400, "human"),
]

@Suite struct TrackingEngagementClassifierTests {
    let classifier = EngagementClassifier()

    @Test(arguments: cases)
    func defaults(case: TrackingEngagementCase) {
        let verdict = classifier.classify(`case`.request)
        #expect(verdict.reason == `case`.reason)
        #expect(verdict.machine == (`case`.reason != "human"))
    }

    @Test(arguments: humanUserAgents, [EngagementKind.open, .click])
    func realBrowsersAreHuman(userAgent: String, kind: EngagementKind) {
        let request = EngagementRequest(
            kind: kind, method: "GET", userAgent: userAgent, clientIP: IPAddress("198.51.100.23"),
            secondsSinceDelivery: 45)
        #expect(classifier.classify(request) == .human)
    }

    @Test func everyDefaultRuleIsCovered() {
        let covered = Set(cases.map(\.reason))
        for rule in EngagementRules.defaults.rules {
            #expect(covered.contains(rule.reason), "no case for \(rule.reason)")
            #expect(rule.hasCondition)
        }
    }

    @Test func appleRangesAllParsed() throws {
        let rule = try #require(EngagementRules.defaults.rules.first { $0.reason == "apple_mpp" })
        #expect(rule.ipRanges?.map(\.description) == ["17.0.0.0/8", "2620:149::/32", "2403:300::/32", "2a01:b740::/32"])
    }

    @Test func firstMatchingRuleWins() {
        let rules = EngagementRules(rules: [
            EngagementRule(reason: "first", userAgentContains: ["curl"]),
            EngagementRule(reason: "second", userAgentContains: ["curl/"]),
        ])
        let request = EngagementRequest(kind: .click, method: "GET", userAgent: "curl/8.0")
        #expect(EngagementClassifier(rules: rules).classify(request) == EngagementVerdict(machine: true, reason: "first"))
        let reversed = EngagementRules(rules: Array(rules.rules.reversed()))
        #expect(EngagementClassifier(rules: reversed).classify(request).reason == "second")
    }

    @Test(arguments: [
        ("head", "HEAD", true), ("HEAD", "head", true), ("Get", "gEt", true),
        ("GET", "GE", false), ("GET", "GETS", false), ("GET", "", false), ("HEAD", "POST", false),
    ])
    func methodsMatchWholeAndInAnyCase(_ ruleMethod: String, _ requestMethod: String, _ matches: Bool) {
        let classifier = EngagementClassifier(rules: EngagementRules(rules: [EngagementRule(reason: "prefetch", methods: [ruleMethod])]))
        let verdict = classifier.classify(EngagementRequest(kind: .open, method: requestMethod, userAgent: chrome))
        #expect(verdict.reason == (matches ? "prefetch" : "human"))
    }

    @Test func allConditionsMustHold() {
        let rule = EngagementRule(
            reason: "office_scanner", kinds: [.click], methods: ["GET"], userAgentContains: ["Chrome"],
            ipRanges: [IPNetwork("192.0.2.0/24")].compactMap { $0 }, maxSecondsSinceDelivery: 10)
        let classifier = EngagementClassifier(rules: EngagementRules(rules: [rule]))
        let matching = EngagementRequest(
            kind: .click, method: "GET", userAgent: chrome, clientIP: IPAddress("192.0.2.77"), secondsSinceDelivery: 5)
        #expect(classifier.classify(matching).reason == "office_scanner")
        var request = matching
        request.kind = .open
        #expect(classifier.classify(request) == .human)
        request = matching
        request.method = "POST"
        #expect(classifier.classify(request) == .human)
        request = matching
        request.userAgent = "Firefox"
        #expect(classifier.classify(request) == .human)
        request = matching
        request.clientIP = IPAddress("192.0.3.1")
        #expect(classifier.classify(request) == .human)
        request.clientIP = nil
        #expect(classifier.classify(request) == .human)
        request = matching
        request.secondsSinceDelivery = 11
        #expect(classifier.classify(request) == .human)
        request.secondsSinceDelivery = nil
        #expect(classifier.classify(request) == .human)
    }

    @Test func allowRuleBeforeDefaultsMakesHuman() throws {
        let rules = try EngagementRules.load(fromJSON: Data("""
            {"rules": [{"reason": "gmail", "machine": false, "user_agent_contains": ["GoogleImageProxy"]}]}
            """.utf8))
        let gmail = EngagementRequest(
            kind: .open, method: "GET", userAgent: "Mozilla/5.0 (via ggpht.com GoogleImageProxy)", secondsSinceDelivery: 60)
        #expect(EngagementClassifier().classify(gmail).reason == "google_proxy")
        #expect(EngagementClassifier(rules: rules).classify(gmail) == .human)
        // ... and the rest of the defaults still apply.
        let curl = EngagementRequest(kind: .click, method: "GET", userAgent: "curl/8.0")
        #expect(EngagementClassifier(rules: rules).classify(curl).reason == "known_scanner_ua")
    }

    @Test func userAgentBeyondSearchedLengthIsIgnored() {
        let padding = String(repeating: "x", count: EngagementClassifier.maximumUserAgentBytes)
        let request = EngagementRequest(kind: .click, method: "GET", userAgent: padding + " curl/8.0", secondsSinceDelivery: 60)
        #expect(classifier.classify(request) == .human)
        let early = EngagementRequest(kind: .click, method: "GET", userAgent: "curl/8.0 " + padding, secondsSinceDelivery: 60)
        #expect(classifier.classify(early).reason == "known_scanner_ua")
    }

    /// The compiled ranges agree with `IPNetwork.contains` for random blocks and addresses.
    @Test func rangesAgreeWithIPNetwork() throws {
        var random = SplitMix64(seed: 0x7e4e)
        for _ in 0..<200 {
            var networks = [IPNetwork]()
            for _ in 0..<Int.random(in: 1...12, using: &random) {
                let v6 = Bool.random(using: &random)
                let bytes = (0..<(v6 ? 16 : 4)).map { _ in UInt8.random(in: 0...255, using: &random) }
                let address = try #require(IPAddress(bytes: bytes))
                let length = Int.random(in: 0...(v6 ? 128 : 32), using: &random)
                networks.append(try #require(IPNetwork("\(address)/\(length)")))
            }
            let classifier = EngagementClassifier(
                rules: EngagementRules(rules: [EngagementRule(reason: "listed", ipRanges: networks)]))
            for _ in 0..<50 {
                // Probe near a listed block's edges as well as at random.
                let base = networks[Int.random(in: 0..<networks.count, using: &random)].address.bytes
                var bytes = Bool.random(using: &random)
                    ? base : (0..<base.count).map { _ in UInt8.random(in: 0...255, using: &random) }
                bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= UInt8(1) << UInt8.random(in: 0...7, using: &random)
                if bytes.count == 4, Bool.random(using: &random) {
                    bytes = Array(repeating: 0, count: 10) + [0xff, 0xff] + bytes
                }
                let address = try #require(IPAddress(bytes: bytes))
                let expected = networks.contains { $0.contains(address) }
                let request = EngagementRequest(kind: .open, method: "GET", userAgent: chrome, clientIP: address)
                #expect(classifier.classify(request).machine == expected, "\(address) in \(networks)")
            }
        }
    }
}

