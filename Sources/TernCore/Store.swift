import Foundation

/// The store every part of Tern reads and writes: queue, events, credentials.
/// Two implementations (SQLite, PostgreSQL) pass one conformance suite.
public protocol Store: DeliveryStore, EngagementStore, InboundStore, DomainStore, NodeStore, TenantStore {
    /// Commits every message (content, envelope, recipients, one `outbound` event per
    /// recipient, its tenant's usage of the hour it was received in) durably in one
    /// transaction, all or nothing, then calls `completion` once,
    /// on any thread. Intake's group committer puts many sessions' messages into one call so
    /// they share one fsync.
    ///
    /// A completion rather than `async`: the SQLite store answers from its writer queue, so
    /// a message goes from the session's event loop to the disk and back with no task and
    /// no executor hop (the 250 waits on this).
    func commit(_ messages: [QueuedMessage], completion: @escaping @Sendable (Result<Void, any Error>) -> Void)

    /// Counters computed from the event rows in `range` of the tenants in `scope` (the
    /// operator's scope also counts what belongs to no tenant: unmatched reports).
    func counters(in range: TimeRange, scope: TenantScope) async throws -> Counters

    /// A stored message and its recipients; nil when there is none in `scope` (another
    /// tenant's message answers exactly as a missing one).
    func message(_ id: MessageID, scope: TenantScope) async throws -> StoredMessage?

    func addCredential(_ credential: Credential) async throws
    func removeCredential(named name: String) async throws -> Bool
    func credential(named name: String) async throws -> Credential?
    func credentials() async throws -> [Credential]

    /// Closes the store; pending writes are finished first.
    func close() async throws
}

/// A store error with a message safe to show to an operator.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var code: Code
    public var message: String

    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public static let duplicate = Code(name: "duplicate")
        public static let notFound = Code(name: "notFound")
        public static let unavailable = Code(name: "unavailable")
        /// The change would break a rule of what is stored (e.g. removing a tenant that owns mail).
        public static let conflict = Code(name: "conflict")
        /// The disk (or database) is full: nothing was written.
        public static let insufficientStorage = Code(name: "insufficientStorage")
        public var description: String { name }
    }

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
