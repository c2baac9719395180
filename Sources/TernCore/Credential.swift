public import Foundation

/// Who may submit mail and call the API: an SMTP username and password, an API key,
/// and optionally client networks that may submit without AUTH (like Postfix's
/// `mynetworks` or Postal's IP credentials).
///
/// A tenant's credential acts for that tenant only. An operator credential (scope `.all`)
/// sees every tenant through the API and cannot submit mail.
public struct Credential: Sendable, Equatable {
    /// Also the SMTP username.
    public var name: String
    /// `.tenant(id)` for a sender's credential, `.all` for the operator's.
    public var scope: TenantScope
    /// `SecretHasher` form; never the password itself.
    public var passwordHash: String
    /// The public part of the API key (`tern_<keyID>_<secret>`), used to find the row.
    public var apiKeyID: String
    public var apiKeyHash: String
    public var networks: [IPNetwork]
    /// The sending domains it may use (lower case; subdomains included); empty: any.
    public var domains: [String]
    public var createdAt: Date

    public init(
        name: String, passwordHash: String, apiKeyID: String, apiKeyHash: String,
        networks: [IPNetwork], domains: [String] = [], scope: TenantScope = .tenant(.default), createdAt: Date
    ) {
        self.name = name
        self.scope = scope
        self.passwordHash = passwordHash
        self.apiKeyID = apiKeyID
        self.apiKeyHash = apiKeyHash
        self.networks = networks
        self.domains = domains.map { $0.lowercased() }
        self.createdAt = createdAt
    }
}

/// The secrets of a new credential, shown once and then only kept as hashes.
public struct IssuedCredential: Sendable, Codable, Equatable {
    public var username: String
    public var password: String
    public var apiKey: String

    enum CodingKeys: String, CodingKey {
        case username
        case password
        case apiKey = "api_key"
    }
}

/// An API key as given by a client: `tern_<keyID>_<secret>`.
public struct APIKey: Sendable, Equatable {
    public var keyID: String
    public var secret: String

    public static let prefix = "tern_"

    public init(keyID: String, secret: String) {
        self.keyID = keyID
        self.secret = secret
    }

    public init?(parsing text: Substring) {
        guard text.hasPrefix(Self.prefix) else { return nil }
        let rest = text.dropFirst(Self.prefix.count)
        guard let separator = rest.firstIndex(of: "_") else { return nil }
        let keyID = rest[..<separator]
        let secret = rest[rest.index(after: separator)...]
        guard keyID.count == 12, secret.count >= 16, secret.count <= 128,
            keyID.utf8.allSatisfy({ SecretGenerator.alphabet.contains($0) }),
            secret.utf8.allSatisfy({ SecretGenerator.alphabet.contains($0) })
        else { return nil }
        self.keyID = String(keyID)
        self.secret = String(secret)
    }

    public var text: String { "\(Self.prefix)\(keyID)_\(secret)" }
}

extension Credential {
    /// The rules for a credential name (also the SMTP username).
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { byte in
                SecretGenerator.alphabet.contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "@")
            }
    }

    /// Makes a new credential with fresh secrets; returns the stored form and the secrets to show once.
    public static func issue(
        name: String, networks: [IPNetwork], domains: [String] = [], scope: TenantScope = .tenant(.default),
        hasher: SecretHasher = SecretHasher(), now: Date = Date()
    ) throws -> (Credential, IssuedCredential) {
        let password = SecretGenerator.token(length: 24)
        let key = APIKey(keyID: SecretGenerator.token(length: 12), secret: SecretGenerator.token(length: 32))
        let credential = Credential(
            name: name, passwordHash: try hasher.hash(password), apiKeyID: key.keyID,
            apiKeyHash: try hasher.hash(key.secret), networks: networks, domains: domains, scope: scope, createdAt: now)
        return (credential, IssuedCredential(username: name, password: password, apiKey: key.text))
    }
}
