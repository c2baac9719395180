public import Foundation

/// A domain Tern sends mail for (the `From` domain), with its DKIM keys and settings.
/// Kept in the store, so that every node signs with the same keys.
public struct SendingDomain: Sendable, Equatable {
    /// Lower case.
    public var name: String
    /// The one tenant that sends from it (a domain cannot be claimed by two).
    public var tenant: TenantID
    /// Where bounces, complaints and unsubscribe mail come back; nil for `bounces.<name>`.
    public var returnPathDomain: String?
    /// What is tracked for mail from this domain when neither the message nor its
    /// credential says (`opens,clicks,unsubscribe`, `all`, `none`); nil: the configuration's.
    public var track: String?
    /// Where inbound mail for this domain is posted (an http(s) URL or `store`); nil: none.
    public var inboundRoute: String?
    public var createdAt: Date
    /// When `tern domain verify` last found its DKIM record(s) and return-path MX right.
    public var verifiedAt: Date?
    /// Every key, newest first: active ones sign, retired ones are kept (and should stay
    /// published) until mail signed with them has been delivered and checked.
    public var keys: [DomainKey]

    public init(
        name: String, tenant: TenantID = .default, returnPathDomain: String? = nil, track: String? = nil, inboundRoute: String? = nil, createdAt: Date,
        verifiedAt: Date? = nil, keys: [DomainKey] = []
    ) {
        self.name = name.lowercased()
        self.tenant = tenant
        self.returnPathDomain = returnPathDomain?.lowercased()
        self.track = track
        self.inboundRoute = inboundRoute
        self.createdAt = createdAt
        self.verifiedAt = verifiedAt
        self.keys = keys
    }

    /// The keys that sign new mail.
    public var signingKeys: [DomainKey] { keys.filter { $0.retiredAt == nil } }
}

/// One DKIM key pair of a domain.
/// - SeeAlso: RFC 6376 §3.1 (selectors), RFC 8463 (Ed25519)
public struct DomainKey: Sendable, Equatable {
    public var selector: String
    /// `rsa` or `ed25519` (the `k=` tag).
    public var algorithm: String
    /// PKCS#8 PEM.
    public var privateKeyPEM: String
    /// The TXT record value to publish at `SELECTOR._domainkey.DOMAIN`.
    public var publicRecord: String
    public var createdAt: Date
    /// Set when a rotation replaced it: it no longer signs.
    public var retiredAt: Date?

    public init(selector: String, algorithm: String, privateKeyPEM: String, publicRecord: String, createdAt: Date, retiredAt: Date? = nil) {
        self.selector = selector
        self.algorithm = algorithm
        self.privateKeyPEM = privateKeyPEM
        self.publicRecord = publicRecord
        self.createdAt = createdAt
        self.retiredAt = retiredAt
    }
}

/// The sending domains in the store.
public protocol DomainStore: Sendable {
    /// Adds a domain with its keys; `StoreError.duplicate` if it exists.
    func addDomain(_ domain: SendingDomain) async throws
    /// Removes a domain and its keys; false if there was none.
    func removeDomain(named name: String) async throws -> Bool
    func domain(named name: String) async throws -> SendingDomain?
    /// Every domain, by name.
    func domains() async throws -> [SendingDomain]
    /// Adds new keys to a domain and retires its active ones, in one transaction (a rotation).
    func rotateKeys(of name: String, to keys: [DomainKey], at date: Date) async throws
    /// Records the outcome of a verification: the time when it passed, nil when it did not.
    func setVerified(_ name: String, at date: Date?) async throws
}
