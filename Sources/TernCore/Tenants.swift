public import Foundation

/// A tenant's id in the store. Tenants are the unit of ownership: every credential,
/// sending domain, message, event, suppression and inbound message belongs to one.
public struct TenantID: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public var rawValue: Int64

    public init(rawValue: Int64) { self.rawValue = rawValue }

    /// The tenant every installation starts with and every older store migrates into.
    public static let `default` = TenantID(rawValue: 1)

    public var description: String { String(rawValue) }
    public static func < (lhs: TenantID, rhs: TenantID) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(Int64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// What one tenant may send; nil: no limit.
public struct TenantLimits: Sendable, Equatable, Codable {
    public var maxMessagesPerHour: Int?
    public var maxMessagesPerDay: Int?
    public var maxRecipientsPerMessage: Int?

    public init(maxMessagesPerHour: Int? = nil, maxMessagesPerDay: Int? = nil, maxRecipientsPerMessage: Int? = nil) {
        self.maxMessagesPerHour = maxMessagesPerHour
        self.maxMessagesPerDay = maxMessagesPerDay
        self.maxRecipientsPerMessage = maxRecipientsPerMessage
    }

    public static let none = TenantLimits()

    enum CodingKeys: String, CodingKey {
        case maxMessagesPerHour = "max_messages_per_hour"
        case maxMessagesPerDay = "max_messages_per_day"
        case maxRecipientsPerMessage = "max_recipients_per_message"
    }
}

/// A sender Tern serves: a customer of a relay, or one product or team of a company.
public struct Tenant: Sendable, Equatable {
    public var id: TenantID
    /// Unique; the name the CLI, the configuration and `?tenant=` use.
    public var name: String
    public var limits: TenantLimits
    public var createdAt: Date

    public init(id: TenantID, name: String, limits: TenantLimits = .none, createdAt: Date) {
        self.id = id
        self.name = name
        self.limits = limits
        self.createdAt = createdAt
    }

    /// The name of the tenant every installation has.
    public static let defaultName = "default"

    /// 1-64 lower-case letters, digits, `-`, `_` and `.`, starting with a letter or digit.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 64 else { return false }
        let isLetterOrDigit = { (byte: UInt8) in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        }
        return isLetterOrDigit(first)
            && name.utf8.allSatisfy { isLetterOrDigit($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
    }
}

/// Whose data a request may see: one tenant's, or every tenant's (the operator).
public enum TenantScope: Sendable, Hashable {
    case tenant(TenantID)
    /// The operator: every tenant, and what belongs to none (unmatched reports).
    case all

    /// Whether something owned by `owner` (nil: no tenant) is visible in this scope.
    public func includes(_ owner: TenantID?) -> Bool {
        switch self {
        case .all: true
        case .tenant(let id): owner == id
        }
    }

    /// The one tenant, or nil for the operator's scope.
    public var tenant: TenantID? {
        if case .tenant(let id) = self { return id }
        return nil
    }
}

/// What removing a tenant deleted (or, refused, would delete).
public struct TenantRemoval: Sendable, Equatable, Codable {
    public var messages: Int
    public var credentials: Int
    public var domains: Int
    public var suppressions: Int
    public var inboundMessages: Int

    public init(messages: Int = 0, credentials: Int = 0, domains: Int = 0, suppressions: Int = 0, inboundMessages: Int = 0) {
        self.messages = messages
        self.credentials = credentials
        self.domains = domains
        self.suppressions = suppressions
        self.inboundMessages = inboundMessages
    }

    enum CodingKeys: String, CodingKey {
        case messages, credentials, domains, suppressions
        case inboundMessages = "inbound_messages"
    }
}

/// What one tenant sent in one clock hour (UTC).
public struct TenantUsage: Sendable, Equatable {
    public var tenant: TenantID
    /// The start of the hour.
    public var hour: Date
    /// Messages accepted (committed) in it, one per recipient: what the limits count.
    public var messages: Int
    /// Messages (at MAIL) and recipients (at RCPT) refused because a limit was reached.
    public var throttled: Int

    public init(tenant: TenantID, hour: Date, messages: Int, throttled: Int) {
        self.tenant = tenant
        self.hour = hour
        self.messages = messages
        self.throttled = throttled
    }

    /// The start of the clock hour (UTC) that holds `date`.
    public static func hour(of date: Date) -> Date {
        Date(millisecondsSince1970: hourMilliseconds(of: date))
    }

    static let millisecondsPerHour: Int64 = 3_600_000

    /// The hour's start in milliseconds since 1970: the stored key.
    public static func hourMilliseconds(of date: Date) -> Int64 {
        let ms = date.millisecondsSince1970
        return ms - ((ms % millisecondsPerHour) + millisecondsPerHour) % millisecondsPerHour
    }
}

/// The tenants in the store.
public protocol TenantStore: Sendable {
    /// Adds a tenant; `StoreError.duplicate` when the name is taken.
    func addTenant(named name: String, limits: TenantLimits, createdAt: Date) async throws -> Tenant
    /// Every tenant, by name.
    func tenants() async throws -> [Tenant]
    func tenant(named name: String) async throws -> Tenant?
    /// Replaces a tenant's limits; `StoreError.notFound` when there is no such tenant.
    func setLimits(_ limits: TenantLimits, of tenant: TenantID) async throws
    /// Removes a tenant with its credentials, domains (and keys), suppressions, and, with
    /// `force`, its messages (recipients, links, events) and inbound messages. Without
    /// `force`, a tenant that owns messages or inbound messages is kept and
    /// `StoreError.conflict` says how many. The default tenant cannot be removed.
    func removeTenant(_ tenant: TenantID, force: Bool) async throws -> TenantRemoval

    /// Every tenant's usage in the hours from the one holding `since`, as every node has
    /// recorded it (`commit` counts accepted messages in its transaction).
    func tenantUsage(since: Date) async throws -> [TenantUsage]
    /// Adds refused messages to each tenant's count of the hour holding `at`.
    func addThrottled(_ counts: [TenantID: Int], at: Date) async throws

    /// A number that grows with every change to a tenant, credential, sending domain or DKIM
    /// key, whichever process or node made it: running servers poll it and reload at once.
    func configurationGeneration() async throws -> Int64
}
