public import Foundation

/// What a tracking request records: an open pixel load or a click redirect.
public enum EngagementKind: String, Sendable, Codable, Hashable, CaseIterable {
    case open
    case click
}

/// One line of the engagement rules: when every condition it gives holds, the request is
/// a machine's (or, with `machine: false`, a person's) and classification stops.
///
/// JSON form (all but `reason` optional; at least one condition):
///
///     {
///       "reason": "known_scanner_ua",           // recorded with the event
///       "machine": true,                        // false: an allow rule, verdict "human"
///       "kinds": ["open", "click"],             // which requests it looks at; all if absent
///       "methods": ["HEAD"],                    // any of, case-insensitive
///       "user_agent_contains": ["Mimecast"],    // any of, ASCII case-insensitive
///       "user_agent_empty": true,               // no User-Agent, or only spaces
///       "ip_ranges": ["17.0.0.0/8", "2620:149::/32"], // any of; matches IPv4-mapped IPv6
///       "max_seconds_since_delivery": 2         // at most this long after delivery;
///                                               // negative delays (the request came before
///                                               // the delivery was recorded) count
///     }
///
/// Unknown fields are an error, so a misspelt condition cannot silently widen a rule.
public struct EngagementRule: Sendable, Codable, Hashable {
    public var reason: String
    public var machine: Bool
    public var kinds: [EngagementKind]?
    public var methods: [String]?
    public var userAgentContains: [String]?
    public var userAgentEmpty: Bool?
    public var ipRanges: [IPNetwork]?
    public var maxSecondsSinceDelivery: Double?

    /// A rule built in code is not checked: one with no condition matches every request.
    public init(
        reason: String,
        machine: Bool = true,
        kinds: [EngagementKind]? = nil,
        methods: [String]? = nil,
        userAgentContains: [String]? = nil,
        userAgentEmpty: Bool? = nil,
        ipRanges: [IPNetwork]? = nil,
        maxSecondsSinceDelivery: Double? = nil
    ) {
        self.reason = reason
        self.machine = machine
        self.kinds = kinds
        self.methods = methods
        self.userAgentContains = userAgentContains
        self.userAgentEmpty = userAgentEmpty
        self.ipRanges = ipRanges
        self.maxSecondsSinceDelivery = maxSecondsSinceDelivery
    }

    /// Whether the rule tests anything about the request beyond its kind.
    public var hasCondition: Bool {
        methods != nil || userAgentContains != nil || userAgentEmpty != nil || ipRanges != nil
            || maxSecondsSinceDelivery != nil
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case reason, machine, kinds, methods
        case userAgentContains = "user_agent_contains"
        case userAgentEmpty = "user_agent_empty"
        case ipRanges = "ip_ranges"
        case maxSecondsSinceDelivery = "max_seconds_since_delivery"
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(in: decoder, known: CodingKeys.allCases.map(\.stringValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func invalid(_ key: CodingKeys, _ message: String) -> DecodingError {
            .dataCorruptedError(forKey: key, in: container, debugDescription: message)
        }
        func nonEmptyList<T: Decodable>(_ type: [T].Type, _ key: CodingKeys) throws -> [T]? {
            guard let list = try container.decodeIfPresent(type, forKey: key) else { return nil }
            guard !list.isEmpty else { throw invalid(key, "an empty list never matches; leave the field out") }
            guard list.count <= EngagementRules.maximumListCount else {
                throw invalid(key, "\(list.count) entries; at most \(EngagementRules.maximumListCount)")
            }
            return list
        }

        reason = try container.decode(String.self, forKey: .reason)
        guard !reason.isEmpty, reason.utf8.count <= 64, reason.utf8.allSatisfy(Self.isReasonCharacter) else {
            throw invalid(.reason, "a reason is 1 to 64 characters of letters, digits, '_', '-' and '.'")
        }
        guard reason != EngagementVerdict.human.reason else {
            throw invalid(.reason, "\"human\" is the verdict when no rule matches; use \"machine\": false to allow")
        }
        machine = try container.decodeIfPresent(Bool.self, forKey: .machine) ?? true
        kinds = try nonEmptyList([EngagementKind].self, .kinds)
        methods = try nonEmptyList([String].self, .methods)
        if let methods, methods.contains(where: { $0.isEmpty || $0.contains(" ") }) {
            throw invalid(.methods, "a method is a single word such as \"HEAD\"")
        }
        userAgentContains = try nonEmptyList([String].self, .userAgentContains)
        if let userAgentContains, userAgentContains.contains(where: \.isEmpty) {
            throw invalid(.userAgentContains, "an empty string would match every user agent")
        }
        userAgentEmpty = try container.decodeIfPresent(Bool.self, forKey: .userAgentEmpty)
        if let ranges = try nonEmptyList([String].self, .ipRanges) {
            var networks = [IPNetwork]()
            networks.reserveCapacity(ranges.count)
            for text in ranges {
                guard let network = IPNetwork(text) else {
                    throw invalid(.ipRanges, "\"\(text.prefix(64))\" is not an address or CIDR block")
                }
                networks.append(network)
            }
            ipRanges = networks
        } else {
            ipRanges = nil
        }
        maxSecondsSinceDelivery = try container.decodeIfPresent(Double.self, forKey: .maxSecondsSinceDelivery)
        if let seconds = maxSecondsSinceDelivery, !(seconds >= 0) {
            throw invalid(.maxSecondsSinceDelivery, "seconds are 0 or more")
        }
        guard hasCondition else {
            throw invalid(.reason, "rule \"\(reason)\" has no condition and would match every request")
        }
    }

    private static func isReasonCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."):
            true
        default:
            false
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(reason, forKey: .reason)
        if !machine { try container.encode(machine, forKey: .machine) }
        try container.encodeIfPresent(kinds, forKey: .kinds)
        try container.encodeIfPresent(methods, forKey: .methods)
        try container.encodeIfPresent(userAgentContains, forKey: .userAgentContains)
        try container.encodeIfPresent(userAgentEmpty, forKey: .userAgentEmpty)
        try container.encodeIfPresent(ipRanges?.map(\.description), forKey: .ipRanges)
        try container.encodeIfPresent(maxSecondsSinceDelivery, forKey: .maxSecondsSinceDelivery)
    }
}

/// The ordered rules that tell machine opens and clicks from people's. The first rule that
/// matches decides; a request no rule matches is a person's.
///
/// The file form, JSON (or YAML, decoded with any `Decoder`, since this is `Codable`):
///
///     { "replace_defaults": false, "rules": [ <EngagementRule>, ... ] }
///
/// With `replace_defaults` false (the default) the rules come before the built-in ones,
/// so they can both add machines and, with `"machine": false`, exempt requests the
/// defaults would flag. With true they are the whole list. Encoding writes
/// `replace_defaults: true` and every rule, so `defaults` encoded is an editable file.
public struct EngagementRules: Sendable, Codable, Hashable {
    public var rules: [EngagementRule]

    /// Most rules in a set, and most entries in one list of a rule (room for a provider's
    /// published address ranges).
    public static let maximumRuleCount = 1_000
    public static let maximumListCount = 1_000_000

    public init(rules: [EngagementRule]) {
        self.rules = rules
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case replaceDefaults = "replace_defaults"
        case rules
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(in: decoder, known: CodingKeys.allCases.map(\.stringValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let replace = try container.decodeIfPresent(Bool.self, forKey: .replaceDefaults) ?? false
        let rules = try container.decode([EngagementRule].self, forKey: .rules)
        guard rules.count <= Self.maximumRuleCount else {
            throw DecodingError.dataCorruptedError(
                forKey: .rules, in: container,
                debugDescription: "\(rules.count) rules; at most \(Self.maximumRuleCount)")
        }
        self.rules = replace ? rules : rules + Self.defaults.rules
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(true, forKey: .replaceDefaults)
        try container.encode(rules, forKey: .rules)
    }

    /// Reads a rules file (see the type's documentation).
    public static func load(fromJSON data: Data) throws -> EngagementRules {
        do {
            return try JSONDecoder().decode(EngagementRules.self, from: data)
        } catch let error as DecodingError {
            throw EngagementRulesError(decoding: error)
        } catch {
            throw EngagementRulesError(.invalid, "\(error)")
        }
    }
}

/// Why a rules file was refused: `message` names the place (`rules[2].ip_ranges`) and
/// what is wrong there.
public struct EngagementRulesError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: Code
    public var message: String

    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// Not JSON at all.
        public static let syntax = Code(name: "syntax")
        /// JSON, but not a rules file.
        public static let invalid = Code(name: "invalid")
        public var description: String { name }
    }

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    init(decoding error: DecodingError) {
        func place(_ path: [any CodingKey]) -> String {
            var text = ""
            for key in path {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return text.isEmpty ? "top level" : text
        }
        switch error {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            self.init(.syntax, "not valid JSON: \(context.debugDescription)")
        case .dataCorrupted(let context):
            self.init(.invalid, "\(place(context.codingPath)): \(context.debugDescription)")
        case .keyNotFound(let key, let context):
            self.init(.invalid, "\(place(context.codingPath + [key])): missing")
        case .typeMismatch(let type, let context):
            self.init(.invalid, "\(place(context.codingPath)): expected \(Self.name(of: type))")
        case .valueNotFound(let type, let context):
            self.init(.invalid, "\(place(context.codingPath)): expected \(Self.name(of: type)), found null")
        @unknown default:
            self.init(.invalid, "\(error)")
        }
    }

    private static func name(of type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Double.Type, is Int.Type: "a number"
        case is [Any].Type: "a list"
        case is [String: Any].Type: "an object"
        default: "\(type)"
        }
    }

    public var description: String { "engagement rules \(code): \(message)" }
}

/// Throws for the first key of the object at `decoder` that is not in `known`.
private func rejectUnknownKeys(in decoder: any Decoder, known: [String]) throws {
    let container = try decoder.container(keyedBy: AnyCodingKey.self)
    if let unknown = container.allKeys.map(\.stringValue).filter({ !known.contains($0) }).sorted().first {
        throw DecodingError.dataCorruptedError(
            forKey: AnyCodingKey(stringValue: unknown), in: container,
            debugDescription: "unknown field; the fields are \(known.joined(separator: ", "))")
    }
}

private struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension EngagementRules {
    /// The built-in rules, most specific first. Sources are cited at each rule; the lists
    /// are deliberately short, so that no browser a person uses is matched.
    public static let defaults = EngagementRules(rules: [
        // Link checkers and prefetchers ask whether a URL exists without fetching it;
        // browsers following a link or showing an image always GET it.
        EngagementRule(reason: "scanner_head", methods: ["HEAD"]),

        // Gmail fetches images through its proxy (and caches them), with a fixed UA:
        // "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)".
        // The fetch usually follows a person opening the message but says nothing about
        // when or who; prepend {"reason": "gmail", "machine": false,
        // "user_agent_contains": ["GoogleImageProxy"]} to count these as people.
        EngagementRule(reason: "google_proxy", userAgentContains: ["GoogleImageProxy", "ggpht.com"]),

        // Yahoo Mail's image proxy: "Mozilla/5.0 (compatible; YahooMailProxy;
        // https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html)".
        EngagementRule(reason: "yahoo_proxy", userAgentContains: ["YahooMailProxy"]),

        // Apple Mail Privacy Protection loads every remote image soon after the message
        // reaches the device, whether or not it is read, through Apple's relays
        // (https://support.apple.com/guide/mail/use-mail-privacy-protection-mlhl03be2866/mac;
        // Word to the Wise, "Apple MPP reporting and geolocation", 2021, shows it shares
        // iCloud Private Relay's infrastructure). These are Apple's own blocks (AS714:
        // 17.0.0.0/8 per "Use Apple products on enterprise networks",
        // https://support.apple.com/HT210060, and the IPv6 /32s Apple
        // holds at ARIN, APNIC and RIPE). Private Relay also egresses from CDN address
        // space listed in https://mask-api.icloud.com/egress-ip-ranges.csv (~300k ranges,
        // shared with people browsing through Private Relay): load it as a user rule with
        // "kinds": ["open"] to catch those too. Clicks from these ranges are left alone:
        // a person tapping a link in Safari with Private Relay on comes from them.
        EngagementRule(
            reason: "apple_mpp", kinds: [.open],
            ipRanges: ["17.0.0.0/8", "2620:149::/32", "2403:300::/32", "2a01:b740::/32"].compactMap(IPNetwork.init)),

        // Microsoft Office apps probe a link before handing it to the browser, with these
        // UAs ("Office Existence Discovery Protocol", https://blogs.msdn.com/b/vsofficedeveloper/archive/2008/03/11/office-existence-discovery-protocol.aspx);
        // the person's browser request follows. Outlook desktop
        // loads images itself ("ms-office; MSOffice 16", "Microsoft Outlook") only when
        // the message is shown, so those are people and not listed. Defender Safe Links
        // detonates links from Microsoft's cloud with ordinary browser UAs: no UA rule can
        // tell them apart, and the delay rule below catches most.
        EngagementRule(
            reason: "microsoft_link_check",
            userAgentContains: ["Microsoft Office Existence Discovery", "Microsoft Office Protocol Discovery"]),

        // Mail security gateways that rewrite and scan links, link-preview fetchers, and
        // HTTP libraries. Bots are matched by "bot" followed by the delimiters they use
        // ("Googlebot/2.1", "bingbot/2.0;", "Slackbot-LinkExpanding", "(like TwitterBot)")
        // and by the "+http" link to their documentation, not by a bare "bot", which is in
        // phone models such as "CUBOT".
        EngagementRule(
            reason: "known_scanner_ua",
            userAgentContains: [
                // Security gateways and URL scanners.
                "Barracuda", "Mimecast", "Proofpoint", "Forcepoint", "Symantec", "MessageLabs", "Trend Micro",
                "TrendMicro", "Zscaler", "IronPort", "Sophos", "FortiGuard", "Cloudmark", "Avanan",
                // Crawlers and link previews.
                "bot/", "bot;", "bot)", "bot-", "+http", "crawler", "spider", "Slackbot", "facebookexternalhit",
                "WhatsApp/", "SkypeUriPreview", "BingPreview", "Google-InspectionTool",
                // Headless browsers and HTTP libraries.
                "HeadlessChrome", "PhantomJS", "python-requests", "python-urllib", "python-httpx", "aiohttp",
                "curl/", "Wget/", "Go-http-client", "Java/", "Apache-HttpClient", "libwww-perl", "node-fetch",
                "axios/",
            ]),
        // OkHttp is also the HTTP client of Android mail apps loading images for a person,
        // so only a click (which a person makes in a browser) is a machine's.
        EngagementRule(reason: "known_scanner_ua", kinds: [.click], userAgentContains: ["okhttp"]),

        // Every browser and mail client sends a User-Agent (RFC 9110 §10.1.5 says SHOULD).
        EngagementRule(reason: "empty_user_agent", userAgentEmpty: true),

        // Security gateways open messages and follow links as they arrive, often before
        // the delivery is even recorded. A person needs the mailbox to file the message,
        // the client to show it, and then to read it: more than a second to open, more
        // than two to click.
        EngagementRule(reason: "too_fast_after_delivery", kinds: [.open], maxSecondsSinceDelivery: 1),
        EngagementRule(reason: "too_fast_after_delivery", kinds: [.click], maxSecondsSinceDelivery: 2),
    ])
}
