import Foundation

/// The connection settings read from `store.url` (`postgres://user:pass@host:port/db`).
///
/// - SeeAlso: PostgreSQL documentation §34.1.1.2 "Connection URIs" (the subset Tern accepts:
///   scheme `postgres` or `postgresql`, user, optional password, host, optional port, database,
///   and the query parameter `sslmode=disable` only; TLS is not configured yet).
public struct PostgresStoreURL: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String

    /// PostgreSQL's default port.
    public static let defaultPort = 5432

    public init(host: String, port: Int = PostgresStoreURL.defaultPort, username: String, password: String? = nil, database: String) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses a `postgres://` URL; throws an error that never contains the password.
    public init(parsing text: String) throws {
        guard let components = URLComponents(string: text) else {
            throw PostgresStoreURLError("not a URL")
        }
        guard let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql" else {
            throw PostgresStoreURLError("the scheme must be postgres:// or postgresql://")
        }
        guard let host = components.host, !host.isEmpty else {
            throw PostgresStoreURLError("the URL names no host")
        }
        guard let user = components.user, !user.isEmpty else {
            throw PostgresStoreURLError("the URL names no user")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else {
            throw PostgresStoreURLError("the URL names no database (postgres://user@host:port/database)")
        }
        if let port = components.port, !(1...65535).contains(port) {
            throw PostgresStoreURLError("the port is out of range")
        }
        for item in components.queryItems ?? [] {
            guard item.name == "sslmode", item.value == "disable" else {
                throw PostgresStoreURLError("unsupported URL parameter \(item.name) (only sslmode=disable)")
            }
        }
        self.host = host
        self.port = components.port ?? Self.defaultPort
        // URLComponents decodes percent-escapes in user and password.
        self.username = user
        self.password = components.password
        self.database = database.removingPercentEncoding ?? database
    }
}

/// A `store.url` that cannot be used. Its message never includes the password.
public struct PostgresStoreURLError: Error, Sendable, CustomStringConvertible {
    public var message: String
    init(_ message: String) { self.message = message }
    public var description: String { "store.url: \(message)" }
}
