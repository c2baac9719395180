import Foundation
public import Logging
import NIOCore
import PostgresNIO
public import TernCore

/// The store for several nodes: PostgreSQL through postgres-nio's connection pool
/// (`PostgresClient`). Every statement is parameterised: postgres-nio sends it through the
/// extended query protocol (Parse, Bind, Execute) with the values bound, never in the SQL text.
///
/// Lifecycle: `run()` keeps the pool's connections and must be running (in a task group or a
/// service group) while the store is used, once per store; `migrate()` applies the schema at
/// start-up; `close()` makes `run()` return.
public final class PostgresStore: Store {
    let client: PostgresClient
    let logger: Logger
    private let closeSignal: AsyncStream<Void>
    private let closeContinuation: AsyncStream<Void>.Continuation
    private let runningSignal: AsyncStream<Void>
    private let runningContinuation: AsyncStream<Void>.Continuation

    /// Connections the pool opens at most (each node has its own pool).
    public static let defaultMaximumConnections = 20

    public init(url: PostgresStoreURL, maximumConnections: Int = PostgresStore.defaultMaximumConnections, logger: Logger) {
        var configuration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.username, password: url.password, database: url.database,
            tls: .disable)
        configuration.options.maximumConnections = maximumConnections
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
        (closeSignal, closeContinuation) = AsyncStream<Void>.makeStream()
        (runningSignal, runningContinuation) = AsyncStream<Void>.makeStream()
    }

    /// Returns once `run()` has started the pool (or the store was closed), so that the first
    /// queries do not find a pool that is not running yet.
    public func waitUntilRunning() async {
        for await _ in runningSignal { return }
    }

    /// Runs the connection pool until `close()` is called or the task is cancelled.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                self.runningContinuation.yield()
                self.runningContinuation.finish()
                await self.client.run()
            }
            group.addTask {
                for await _ in self.closeSignal {}
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Ends `run()`: the pool closes its connections. Queries already running finish first
    /// (each holds its connection until it returns).
    public func close() async throws {
        closeContinuation.finish()
        runningContinuation.finish()
    }

    /// Commits every message (content, envelope, links, recipients, one `outbound` event per
    /// recipient) in one transaction: all or nothing. postgres-nio's client is async only, so
    /// the transaction runs in a task: one per group the group committer hands over (it
    /// hands over one at a time), not one per message.
    public func commit(_ messages: [QueuedMessage], completion: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        guard !messages.isEmpty else {
            completion(.success(()))
            return
        }
        Task {
            do {
                try await insert(messages)
                completion(.success(()))
            } catch {
                completion(.failure(error))
            }
        }
    }

    /// Recipients, links and events go in as one `INSERT … SELECT FROM unnest(…)` each,
    /// whatever the number of messages.
    private func insert(_ messages: [QueuedMessage]) async throws {
        var recipientIDs: [Int64] = []
        var recipientMessages: [Int64] = []
        var recipientPositions: [Int32] = []
        var recipientAddresses: [String] = []
        var recipientTimes: [Int64] = []
        var recipientTenants: [Int64] = []
        var linkMessages: [Int64] = []
        var linkPositions: [Int32] = []
        var linkURLs: [String] = []
        for message in messages {
            let at = message.receivedAt.millisecondsSince1970
            for (position, recipient) in message.recipients.enumerated() {
                recipientIDs.append(recipient.id.rawValue)
                recipientMessages.append(message.id.rawValue)
                recipientPositions.append(Int32(position))
                recipientAddresses.append(recipient.address)
                recipientTimes.append(at)
                recipientTenants.append(message.tenant.rawValue)
            }
            for (position, url) in message.links.enumerated() {
                linkMessages.append(message.id.rawValue)
                linkPositions.append(Int32(position))
                linkURLs.append(url)
            }
        }
        let logger = self.logger
        let outbound = EventType.outbound.rawValue
        do {
            try await transaction { connection in
                for message in messages {
                    let content = ByteBuffer(bytes: message.content)
                    try await connection.query(
                        """
                        INSERT INTO messages (id, message_id_header, mail_from, size, content, credential, client_ip,
                                              received_at, eight_bit_mime, smtp_utf8, from_domain, tenant_id)
                        VALUES (\(message.id.rawValue), \(message.messageIDHeader), \(message.mailFrom),
                                \(Int64(message.content.count)), \(content), \(message.credential), \(message.clientIP),
                                \(message.receivedAt.millisecondsSince1970), \(message.eightBitMIME), \(message.smtpUTF8),
                                \(message.fromDomain), \(message.tenant.rawValue))
                        """, logger: logger)
                }
                // The tenants' usage of the hour, in one of the hour's shards (chosen at random,
                // so that concurrent commits rarely wait for each other's row), the rows in
                // one order, so that two commits cannot deadlock.
                let usage = Dictionary(grouping: messages) { message in
                    UsageKey(tenant: message.tenant.rawValue, hour: TenantUsage.hourMilliseconds(of: message.receivedAt))
                }.map { ($0.key, Int64($0.value.reduce(0) { $0 + $1.recipients.count })) }.sorted { ($0.0.tenant, $0.0.hour) < ($1.0.tenant, $1.0.hour) }
                let shard = Int16.random(in: 0..<Self.usageShards)
                try await connection.query(
                    """
                    INSERT INTO tenant_usage (tenant_id, hour, shard, messages)
                    SELECT u.tenant_id, u.hour, \(shard), u.messages
                    FROM unnest(\(usage.map(\.0.tenant))::BIGINT[], \(usage.map(\.0.hour))::BIGINT[], \(usage.map(\.1))::BIGINT[])
                        AS u (tenant_id, hour, messages)
                    ON CONFLICT (tenant_id, hour, shard) DO UPDATE SET messages = tenant_usage.messages + excluded.messages
                    """, logger: logger)
                if !linkMessages.isEmpty {
                    try await connection.query(
                        """
                        INSERT INTO links (message_id, position, url)
                        SELECT * FROM unnest(\(linkMessages)::BIGINT[], \(linkPositions)::INTEGER[], \(linkURLs)::TEXT[])
                        """, logger: logger)
                }
                if !recipientIDs.isEmpty {
                    try await connection.query(
                        """
                        INSERT INTO recipients (id, message_id, position, address, state, next_attempt_at)
                        SELECT r.id, r.message_id, r.position, r.address, 'queued', r.at
                        FROM unnest(\(recipientIDs)::BIGINT[], \(recipientMessages)::BIGINT[],
                                    \(recipientPositions)::INTEGER[], \(recipientAddresses)::TEXT[],
                                    \(recipientTimes)::BIGINT[]) AS r (id, message_id, position, address, at)
                        """, logger: logger)
                    try await connection.query(
                        """
                        INSERT INTO events (type, message_id, recipient_id, at, details, tenant_id)
                        SELECT \(outbound), r.message_id, r.id, r.at, NULL, r.tenant_id
                        FROM unnest(\(recipientIDs)::BIGINT[], \(recipientMessages)::BIGINT[], \(recipientTimes)::BIGINT[],
                                    \(recipientTenants)::BIGINT[])
                            AS r (id, message_id, at, tenant_id)
                        """, logger: logger)
                }
            }
        } catch {
            throw Self.storeError(error)
        }
    }

    /// Runs `body` in a transaction on one pooled connection: committed when it returns,
    /// rolled back when it throws. The error that matters is thrown (the body's, else that of
    /// BEGIN or COMMIT), not postgres-nio's wrapper, so a `StoreError` thrown inside or a full
    /// disk at COMMIT reaches the caller as it is.
    func transaction<Result: Sendable>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        do {
            return try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        } catch let error as PostgresTransactionError {
            throw error.closureError ?? error.beginError ?? error.commitError ?? error
        }
    }

    /// A full disk (SQLSTATE 53100 `disk_full`) is `insufficientStorage` (the SMTP server
    /// answers 452); a server that cannot be reached is `unavailable`; anything else as is.
    /// - SeeAlso: PostgreSQL documentation, Appendix A (error codes)
    static func storeError(_ error: any Error) -> any Error {
        guard let error = error as? PSQLError else { return error }
        if let state = error.serverInfo?[.sqlState] {
            if state == "53100" || state == "53000" {
                return StoreError(.insufficientStorage, "the database cannot write: \(error.serverInfo?[.message] ?? state)")
            }
            return error
        }
        if error.code == .connectionError || error.code == .serverClosedConnection || error.code == .poolClosed {
            return StoreError(.unavailable, "the database is unavailable (\(error.code))")
        }
        return error
    }

    /// Counters computed from the event rows in `range`, in one pass over the events index:
    /// per type the count, the asynchronous failures, the distinct recipients (unique opens
    /// and clicks; only those types collect distinct values) and the events not marked as
    /// machine traffic.
    /// The rows each tenant's hour is spread over in `tenant_usage`.
    static let usageShards: Int16 = 16

    /// A tenant's clock hour, as `tenant_usage` keys it.
    struct UsageKey: Hashable {
        var tenant: Int64
        var hour: Int64
    }

    public func counters(in range: TimeRange, scope: TenantScope) async throws -> Counters {
        let from = range.from?.millisecondsSince1970 ?? Int64.min
        let to = range.to?.millisecondsSince1970 ?? Int64.max
        let tenant = scope.tenant?.rawValue
        let rows = try await client.query(
            """
            SELECT type,
                   COUNT(*),
                   COUNT(*) FILTER (WHERE details ->> 'async' = 'true'),
                   COUNT(DISTINCT recipient_id) FILTER (WHERE type IN ('open', 'click')),
                   COUNT(*) FILTER (WHERE details ->> 'machine' = 'false')
            FROM events
            WHERE at >= \(from) AND at < \(to) AND (\(tenant)::BIGINT IS NULL OR tenant_id = \(tenant))
            GROUP BY type
            """, logger: logger)
        var counts: [EventType: Int] = [:]
        var failedAsync = 0
        var unique: [EventType: Int] = [:]
        var human: [EventType: Int] = [:]
        for try await (name, count, asyncCount, distinctRecipients, humanCount) in rows.decode(
            (String, Int64, Int64, Int64, Int64).self)
        {
            guard let type = EventType(rawValue: name) else { continue }
            counts[type] = Int(count)
            if type == .failed { failedAsync = Int(asyncCount) }
            unique[type] = Int(distinctRecipients)
            human[type] = Int(humanCount)
        }
        var counters = Counters(eventCounts: counts)
        counters.failedAsync = failedAsync
        counters.uniqueOpens = unique[.open, default: 0]
        counters.uniqueClicks = unique[.click, default: 0]
        counters.humanOpens = human[.open, default: 0]
        counters.humanClicks = human[.click, default: 0]
        counters.throttled = try await count(
            """
            SELECT COALESCE(SUM(throttled), 0)::BIGINT FROM tenant_usage
            WHERE hour >= \(from) AND hour < \(to) AND (\(tenant)::BIGINT IS NULL OR tenant_id = \(tenant))
            """)
        return counters
    }

    /// A stored message and its recipients (in the order they were given).
    public func message(_ id: MessageID, scope: TenantScope) async throws -> StoredMessage? {
        let tenant = scope.tenant?.rawValue
        let rows = try await client.query(
            """
            SELECT message_id_header, mail_from, content, credential, received_at, tenant_id
            FROM messages WHERE id = \(id.rawValue) AND (\(tenant)::BIGINT IS NULL OR tenant_id = \(tenant))
            """, logger: logger)
        var found: (String, String, ByteBuffer, String?, Int64, Int64)?
        for try await row in rows.decode((String, String, ByteBuffer, String?, Int64, Int64).self) {
            found = row
        }
        guard let (header, mailFrom, content, credential, receivedAt, owner) = found else { return nil }
        var recipients: [StoredRecipient] = []
        let recipientRows = try await client.query(
            "SELECT id, address, state FROM recipients WHERE message_id = \(id.rawValue) ORDER BY position",
            logger: logger)
        for try await (recipientID, address, state) in recipientRows.decode((Int64, String, String).self) {
            recipients.append(
                StoredRecipient(
                    id: RecipientID(rawValue: recipientID), address: address,
                    state: RecipientState(rawValue: state) ?? .queued))
        }
        return StoredMessage(
            id: id, messageIDHeader: header, mailFrom: mailFrom, recipients: recipients,
            content: Array(content.readableBytesView), credential: credential,
            receivedAt: Date(millisecondsSince1970: receivedAt), tenant: TenantID(rawValue: owner))
    }

    /// Adds a credential; a name already taken is `StoreError.duplicate`.
    public func addCredential(_ credential: Credential) async throws {
        let networks = credential.networks.map(\.description).joined(separator: ",")
        let domains = credential.domains.joined(separator: ",")
        let tenant = credential.scope.tenant?.rawValue
        if let tenant {
            var exists = false
            for try await _ in try await client.query("SELECT 1 FROM tenants WHERE id = \(tenant)", logger: logger).decode(Int32.self) {
                exists = true
            }
            guard exists else { throw StoreError(.notFound, "no tenant with id \(tenant)") }
        }
        let rows = try await client.query(
            """
            INSERT INTO credentials (name, password_hash, api_key_id, api_key_hash, networks, domains, created_at, tenant_id)
            VALUES (\(credential.name), \(credential.passwordHash), \(credential.apiKeyID), \(credential.apiKeyHash),
                    \(networks), \(domains), \(credential.createdAt.millisecondsSince1970), \(tenant))
            ON CONFLICT (name) DO NOTHING
            RETURNING name
            """, logger: logger)
        var inserted = false
        for try await _ in rows.decode(String.self) { inserted = true }
        guard inserted else {
            throw StoreError(.duplicate, "a credential named \(credential.name) already exists")
        }
    }

    /// Removes a credential; false when there was none of that name.
    public func removeCredential(named name: String) async throws -> Bool {
        let rows = try await client.query("DELETE FROM credentials WHERE name = \(name) RETURNING name", logger: logger)
        var removed = false
        for try await _ in rows.decode(String.self) { removed = true }
        return removed
    }

    public func credential(named name: String) async throws -> Credential? {
        try await credentials(
            "SELECT \(unescaped: Self.credentialColumns) FROM credentials WHERE name = \(name)"
        ).first
    }

    /// Every credential, by name.
    public func credentials() async throws -> [Credential] {
        try await credentials("SELECT \(unescaped: Self.credentialColumns) FROM credentials ORDER BY name")
    }

    private static let credentialColumns = "name, password_hash, api_key_id, api_key_hash, networks, domains, created_at, tenant_id"

    private func credentials(_ query: PostgresQuery) async throws -> [Credential] {
        let rows = try await client.query(query, logger: logger)
        var credentials: [Credential] = []
        for try await (name, passwordHash, apiKeyID, apiKeyHash, networks, domains, createdAt, tenant) in rows.decode(
            (String, String, String, String, String, String, Int64, Int64?).self)
        {
            credentials.append(
                Credential(
                    name: name, passwordHash: passwordHash, apiKeyID: apiKeyID, apiKeyHash: apiKeyHash,
                    networks: networks.split(separator: ",").compactMap { IPNetwork(String($0)) },
                    domains: domains.split(separator: ",").map(String.init),
                    scope: tenant.map { .tenant(TenantID(rawValue: $0)) } ?? .all,
                    createdAt: Date(millisecondsSince1970: createdAt)))
        }
        return credentials
    }
}
