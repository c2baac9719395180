public import TernCore

/// Which addresses Tern's MX takes mail for, and what each is for. Everything else is
/// refused (`550 5.7.1`): the MX never relays.
///
/// In order:
/// 1. `b-TOKEN@…` with a valid bounce token: a VERP return path (any domain, since the
///    token proves the address is ours).
/// 2. `unsubscribe+TOKEN@…` with a valid unsubscribe token: the `List-Unsubscribe` mailto.
/// 3. A feedback-loop address (`complaints.addresses`, and `fbl@` every configured
///    return-path domain).
/// 4. Any other address at a configured return-path domain (`postmaster@`, a VERP address
///    whose token was damaged): read as a report and matched by its content.
/// 5. An inbound route: an exact address, a domain, or `*.domain` for its subdomains; the
///    most specific wins.
/// - SeeAlso: RFC 5321 §3.6.2 (no open relay), §4.5.1 (postmaster)
public struct InboundAddressBook: Sendable {
    public enum Destination: Sendable, Equatable {
        /// A report for the return path; the recipient it names when the token verified.
        case bounce(TrackingToken?)
        case unsubscribe(TrackingToken)
        case feedback
        case inbound(InboundRoute)

        /// Reports are read by Tern; inbound mail is stored and posted.
        public var purpose: InboundPurpose {
            if case .inbound = self { return .inbound }
            return .report
        }
    }

    public struct InboundRoute: Sendable, Hashable {
        /// The pattern as configured: `user@example.com`, `example.com` or `*.example.com`.
        public var pattern: String
        /// Where to post the mail; nil keeps it in the store only.
        public var webhookURL: String?
        /// Whose mail it is: the tenant of the domain the route is set on; routes of the
        /// configuration file belong to the default tenant.
        public var tenant: TenantID

        public init(pattern: String, webhookURL: String?, tenant: TenantID = .default) {
            self.pattern = pattern.lowercased()
            self.webhookURL = webhookURL
            self.tenant = tenant
        }
    }

    /// The local part of every configured return-path domain's feedback address.
    public static let feedbackLocalPart = "fbl"

    private let keys: TrackingKeys
    private let returnPathDomains: Set<String>
    private let isReturnPathDomain: @Sendable (String) -> Bool
    private let storedRoute: @Sendable (String) -> InboundRoute?
    private let feedbackAddresses: Set<String>
    private let addressRoutes: [String: InboundRoute]
    private let domainRoutes: [String: InboundRoute]
    private let subdomainRoutes: [String: InboundRoute]

    /// `isReturnPathDomain` adds return-path domains known at the moment of asking (the
    /// sending domains in the store), to the configured `returnPathDomains`.
    public init(
        keys: TrackingKeys, returnPathDomains: Set<String>, feedbackAddresses: [String], routes: [InboundRoute],
        isReturnPathDomain: @escaping @Sendable (String) -> Bool = { _ in false },
        storedRoute: @escaping @Sendable (String) -> InboundRoute? = { _ in nil }
    ) {
        self.storedRoute = storedRoute
        self.keys = keys
        let domains = Set(returnPathDomains.map { $0.lowercased() })
        self.returnPathDomains = domains
        self.isReturnPathDomain = isReturnPathDomain
        self.feedbackAddresses = Set(feedbackAddresses.map { $0.lowercased() })
        var addressRoutes: [String: InboundRoute] = [:]
        var domainRoutes: [String: InboundRoute] = [:]
        var subdomainRoutes: [String: InboundRoute] = [:]
        for route in routes {
            if route.pattern.contains("@") {
                addressRoutes[route.pattern] = route
            } else if route.pattern.hasPrefix("*.") {
                subdomainRoutes[String(route.pattern.dropFirst(2))] = route
            } else {
                domainRoutes[route.pattern] = route
            }
        }
        self.addressRoutes = addressRoutes
        self.domainRoutes = domainRoutes
        self.subdomainRoutes = subdomainRoutes
    }

    /// What mail for `localPart@domain` is for; nil when the MX does not take it.
    public func destination(localPart: String, domain: String) -> Destination? {
        let domain = domain.lowercased()
        let local = localPart.lowercased()
        if local.hasPrefix(ReturnPaths.bouncePrefix),
            let token = keys.verifyAddressToken(local.dropFirst(ReturnPaths.bouncePrefix.count)), token.kind == .bounce
        {
            return .bounce(token)
        }
        if local.hasPrefix(ReturnPaths.unsubscribePrefix),
            let token = keys.verifyAddressToken(local.dropFirst(ReturnPaths.unsubscribePrefix.count)),
            token.kind == .unsubscribe
        {
            return .unsubscribe(token)
        }
        let address = local + "@" + domain
        if feedbackAddresses.contains(address) { return .feedback }
        if returnPathDomains.contains(domain) || isReturnPathDomain(domain) {
            return local == Self.feedbackLocalPart ? .feedback : .bounce(nil)
        }
        if let route = addressRoutes[address] ?? domainRoutes[domain] ?? storedRoute(domain) { return .inbound(route) }
        var parent = Substring(domain)
        while let dot = parent.firstIndex(of: ".") {
            parent = parent[parent.index(after: dot)...]
            if let route = subdomainRoutes[String(parent)] { return .inbound(route) }
        }
        return nil
    }

    /// The same, for an address as written in an envelope (`local@domain`).
    public func destination(of address: String) -> Destination? {
        guard let at = address.lastIndex(of: "@") else { return nil }
        return destination(localPart: String(address[..<at]), domain: String(address[address.index(after: at)...]))
    }
}
