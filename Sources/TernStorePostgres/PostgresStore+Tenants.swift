public import Foundation
import Logging
import PostgresNIO
public import TernCore

/// `TenantStore`: the tenants and what removing one deletes.
extension PostgresStore {
    public func addTenant(named name: String, limits: TenantLimits, createdAt: Date) async throws -> Tenant {
        let rows = try await client.query(
            """
            INSERT INTO tenants (name, created_at, max_messages_per_hour, max_messages_per_day, max_recipients_per_message)
            VALUES (\(name), \(createdAt.millisecondsSince1970), \(limits.maxMessagesPerHour.map(Int64.init)),
                    \(limits.maxMessagesPerDay.map(Int64.init)), \(limits.maxRecipientsPerMessage.map(Int64.init)))
            ON CONFLICT (name) DO NOTHING
            RETURNING id
            """, logger: logger)
        var id: Int64?
        for try await value in rows.decode(Int64.self) { id = value }
        guard let id else { throw StoreError(.duplicate, "a tenant named \(name) already exists") }
        return Tenant(id: TenantID(rawValue: id), name: name, limits: limits, createdAt: createdAt)
    }

    public func configurationGeneration() async throws -> Int64 {
        Int64(try await count("SELECT generation FROM configuration_generation WHERE id = 1"))
    }

    public func tenants() async throws -> [Tenant] {
        try await tenants(named: nil)
    }

    public func tenant(named name: String) async throws -> Tenant? {
        try await tenants(named: name).first
    }

    private func tenants(named name: String?) async throws -> [Tenant] {
        let rows = try await client.query(
            """
            SELECT id, name, created_at, max_messages_per_hour, max_messages_per_day, max_recipients_per_message
            FROM tenants WHERE \(name)::TEXT IS NULL OR name = \(name) ORDER BY name
            """, logger: logger)
        var tenants: [Tenant] = []
        for try await (id, name, createdAt, perHour, perDay, perMessage) in rows.decode(
            (Int64, String, Int64, Int64?, Int64?, Int64?).self)
        {
            tenants.append(
                Tenant(
                    id: TenantID(rawValue: id), name: name,
                    limits: TenantLimits(
                        maxMessagesPerHour: perHour.map(Int.init), maxMessagesPerDay: perDay.map(Int.init),
                        maxRecipientsPerMessage: perMessage.map(Int.init)),
                    createdAt: Date(millisecondsSince1970: createdAt)))
        }
        return tenants
    }

    public func setLimits(_ limits: TenantLimits, of tenant: TenantID) async throws {
        let changed = try await count(
            """
            WITH changed AS (
                UPDATE tenants SET max_messages_per_hour = \(limits.maxMessagesPerHour.map(Int64.init)),
                    max_messages_per_day = \(limits.maxMessagesPerDay.map(Int64.init)),
                    max_recipients_per_message = \(limits.maxRecipientsPerMessage.map(Int64.init))
                WHERE id = \(tenant.rawValue)
                RETURNING 1
            )
            SELECT COUNT(*) FROM changed
            """)
        guard changed > 0 else { throw StoreError(.notFound, "no tenant with id \(tenant)") }
    }

    public func removeTenant(_ tenant: TenantID, force: Bool) async throws -> TenantRemoval {
        guard tenant != .default else { throw StoreError(.conflict, "the default tenant cannot be removed") }
        let logger = self.logger
        let id = tenant.rawValue
        return try await transaction { connection in
            // Locks the tenant's row: a concurrent removal waits, then finds it gone.
            var found = false
            for try await _ in try await connection.query(
                "SELECT id FROM tenants WHERE id = \(id) FOR UPDATE", logger: logger
            ).decode(Int64.self) {
                found = true
            }
            guard found else { throw StoreError(.notFound, "no tenant with id \(tenant)") }
            let counts = try await connection.query(
                """
                SELECT (SELECT COUNT(*) FROM messages WHERE tenant_id = \(id)),
                       (SELECT COUNT(*) FROM credentials WHERE tenant_id = \(id)),
                       (SELECT COUNT(*) FROM domains WHERE tenant_id = \(id)),
                       (SELECT COUNT(*) FROM suppressions WHERE tenant_id = \(id)),
                       (SELECT COUNT(*) FROM inbound_messages WHERE tenant_id = \(id))
                """, logger: logger)
            var removal = TenantRemoval()
            for try await (messages, credentials, domains, suppressions, inbound) in counts.decode(
                (Int64, Int64, Int64, Int64, Int64).self)
            {
                removal = TenantRemoval(
                    messages: Int(messages), credentials: Int(credentials), domains: Int(domains),
                    suppressions: Int(suppressions), inboundMessages: Int(inbound))
            }
            if !force, removal.messages > 0 || removal.inboundMessages > 0 {
                throw StoreError(
                    .conflict, "the tenant owns \(removal.messages) messages and \(removal.inboundMessages) inbound messages")
            }
            for table in ["events", "messages", "inbound_messages", "credentials", "domains", "suppressions", "tenant_usage"] {
                // The table names are this list's own; only the id is a value.
                try await connection.query(
                    PostgresQuery(unsafeSQL: "DELETE FROM \(table) WHERE tenant_id = $1", binds: Self.binds(id)), logger: logger)
            }
            try await connection.query("DELETE FROM tenants WHERE id = \(id)", logger: logger)
            return removal
        }
    }

    public func tenantUsage(since: Date) async throws -> [TenantUsage] {
        let rows = try await client.query(
            """
            SELECT tenant_id, hour, SUM(messages)::BIGINT, SUM(throttled)::BIGINT FROM tenant_usage
            WHERE hour >= \(TenantUsage.hourMilliseconds(of: since)) GROUP BY tenant_id, hour ORDER BY tenant_id, hour
            """, logger: logger)
        var usage: [TenantUsage] = []
        for try await (tenant, hour, messages, throttled) in rows.decode((Int64, Int64, Int64, Int64).self) {
            usage.append(
                TenantUsage(
                    tenant: TenantID(rawValue: tenant), hour: Date(millisecondsSince1970: hour), messages: Int(messages),
                    throttled: Int(throttled)))
        }
        return usage
    }

    public func addThrottled(_ counts: [TenantID: Int], at: Date) async throws {
        let counts = counts.filter { $0.value > 0 }
        guard !counts.isEmpty else { return }
        let tenants = counts.keys.map(\.rawValue)
        let values = tenants.map { Int64(counts[TenantID(rawValue: $0)] ?? 0) }
        try await client.query(
            """
            INSERT INTO tenant_usage (tenant_id, hour, shard, throttled)
            SELECT t.tenant_id, \(TenantUsage.hourMilliseconds(of: at)), \(Int16.random(in: 0..<Self.usageShards)), t.count
            FROM unnest(\(tenants)::BIGINT[], \(values)::BIGINT[]) AS t (tenant_id, count)
            ON CONFLICT (tenant_id, hour, shard) DO UPDATE SET throttled = tenant_usage.throttled + excluded.throttled
            """, logger: logger)
    }

    private static func binds(_ id: Int64) -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(id)
        return bindings
    }
}
