/// Where Tern's own MX takes mail back for a sending domain: its return-path (bounce)
/// domain, which carries the VERP envelope senders, the unsubscribe `mailto:` address and,
/// by default, the feedback-loop address.
///
/// A user publishes an MX record for each return-path domain pointing at Tern's MX
/// listener (`bounces.example.com. MX 10 mx.tern.example.`).
/// - SeeAlso: RFC 5321 §4.5.5 (bounces go to the reverse path), RFC 8058
public struct ReturnPaths: Sendable {
    /// Sending domain (lower case) → its return-path domain, where the default is not wanted.
    public var overrides: [String: String]
    /// Asked after `overrides`: the return-path domain the store gives a sending domain
    /// (`tern domain add --return-path-domain`), read at the moment of asking.
    public var lookup: (@Sendable (String) -> String?)?

    /// The local-part prefix of a VERP envelope sender: `b-TOKEN@domain`.
    public static let bouncePrefix = "b-"
    /// The local-part prefix of the unsubscribe address: `unsubscribe+TOKEN@domain`.
    public static let unsubscribePrefix = "unsubscribe+"

    public init(overrides: [String: String] = [:], lookup: (@Sendable (String) -> String?)? = nil) {
        var lowered: [String: String] = [:]
        for (domain, returnPath) in overrides { lowered[domain.lowercased()] = returnPath.lowercased() }
        self.overrides = lowered
        self.lookup = lookup
    }

    /// The return-path domain of a sending domain: the configured one, else `bounces.` + the domain.
    public func domain(forSendingDomain domain: String) -> String {
        let domain = domain.lowercased()
        return overrides[domain] ?? lookup?(domain)?.lowercased() ?? "bounces." + domain
    }

    /// Every return-path domain that is configured (the MX also takes mail at the default
    /// `bounces.` domains of the sending domains it has seen, when a token proves it).
    public var configuredDomains: Set<String> { Set(overrides.values) }

    /// The unsubscribe `mailto:` address of one recipient's copy.
    public func unsubscribeAddress(token: String, sendingDomain: String) -> String {
        Self.unsubscribePrefix + token + "@" + domain(forSendingDomain: sendingDomain)
    }
}
