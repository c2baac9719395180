public import Foundation
import GRDB
public import TernCore

extension SQLiteStore {
    public func addTenant(named name: String, limits: TenantLimits, createdAt: Date) async throws -> Tenant {
        try await writer.write { db in
            if try Row.fetchOne(db, sql: "SELECT 1 FROM tenants WHERE name = ?", arguments: [name]) != nil {
                throw StoreError(.duplicate, "a tenant named \(name) already exists")
            }
            try db.execute(
                sql: """
                    INSERT INTO tenants (name, created_at, max_messages_per_hour, max_messages_per_day, max_recipients_per_message)
                    VALUES (?, ?, ?, ?, ?)
                    """,
                arguments: [
                    name, createdAt.millisecondsSince1970, limits.maxMessagesPerHour, limits.maxMessagesPerDay,
                    limits.maxRecipientsPerMessage,
                ])
            return Tenant(id: TenantID(rawValue: db.lastInsertedRowID), name: name, limits: limits, createdAt: createdAt)
        }
    }

    public func tenants() async throws -> [Tenant] {
        try await writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM tenants ORDER BY name").map(Self.tenant)
        }
    }

    public func tenant(named name: String) async throws -> Tenant? {
        try await writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM tenants WHERE name = ?", arguments: [name]).map(Self.tenant)
        }
    }

    public func setLimits(_ limits: TenantLimits, of tenant: TenantID) async throws {
        try await writer.write { db in
            try db.execute(
                sql: """
                    UPDATE tenants SET max_messages_per_hour = ?, max_messages_per_day = ?, max_recipients_per_message = ?
                    WHERE id = ?
                    """,
                arguments: [limits.maxMessagesPerHour, limits.maxMessagesPerDay, limits.maxRecipientsPerMessage, tenant.rawValue])
            guard db.changesCount > 0 else { throw StoreError(.notFound, "no tenant with id \(tenant)") }
        }
    }

    public func removeTenant(_ tenant: TenantID, force: Bool) async throws -> TenantRemoval {
        guard tenant != .default else { throw StoreError(.conflict, "the default tenant cannot be removed") }
        return try await writer.write { db in
            guard try Row.fetchOne(db, sql: "SELECT 1 FROM tenants WHERE id = ?", arguments: [tenant.rawValue]) != nil else {
                throw StoreError(.notFound, "no tenant with id \(tenant)")
            }
            let id = tenant.rawValue
            let count = { (sql: String) in try Int.fetchOne(db, sql: sql, arguments: [id]) ?? 0 }
            let removal = TenantRemoval(
                messages: try count("SELECT COUNT(*) FROM messages WHERE tenant_id = ?"),
                credentials: try count("SELECT COUNT(*) FROM credentials WHERE tenant_id = ?"),
                domains: try count("SELECT COUNT(*) FROM domains WHERE tenant_id = ?"),
                suppressions: try count("SELECT COUNT(*) FROM suppressions WHERE tenant_id = ?"),
                inboundMessages: try count("SELECT COUNT(*) FROM inbound_messages WHERE tenant_id = ?"))
            if !force, removal.messages > 0 || removal.inboundMessages > 0 {
                throw StoreError(
                    .conflict,
                    "the tenant owns \(removal.messages) messages and \(removal.inboundMessages) inbound messages")
            }
            for table in ["events", "messages", "inbound_messages", "credentials", "domains", "suppressions", "tenant_usage"] {
                try db.execute(sql: "DELETE FROM \(table) WHERE tenant_id = ?", arguments: [id])
            }
            try db.execute(sql: "DELETE FROM tenants WHERE id = ?", arguments: [id])
            return removal
        }
    }

    public func tenantUsage(since: Date) async throws -> [TenantUsage] {
        try await writer.read { db in
            try Row.fetchAll(
                db, sql: "SELECT tenant_id, hour, messages, throttled FROM tenant_usage WHERE hour >= ? ORDER BY tenant_id, hour",
                arguments: [TenantUsage.hourMilliseconds(of: since)]
            ).map { row in
                TenantUsage(
                    tenant: TenantID(rawValue: row["tenant_id"]), hour: Date(millisecondsSince1970: row["hour"]),
                    messages: row["messages"], throttled: row["throttled"])
            }
        }
    }

    public func addThrottled(_ counts: [TenantID: Int], at: Date) async throws {
        let counts = counts.filter { $0.value > 0 }
        guard !counts.isEmpty else { return }
        let hour = TenantUsage.hourMilliseconds(of: at)
        try await writer.write { db in
            let add = try db.cachedStatement(
                sql: """
                    INSERT INTO tenant_usage (tenant_id, hour, throttled) VALUES (?, ?, ?)
                    ON CONFLICT (tenant_id, hour) DO UPDATE SET throttled = throttled + excluded.throttled
                    """)
            for (tenant, count) in counts {
                try add.execute(arguments: [tenant.rawValue, hour, count])
            }
        }
    }

    private static func tenant(_ row: Row) -> Tenant {
        Tenant(
            id: TenantID(rawValue: row["id"]), name: row["name"],
            limits: TenantLimits(
                maxMessagesPerHour: row["max_messages_per_hour"], maxMessagesPerDay: row["max_messages_per_day"],
                maxRecipientsPerMessage: row["max_recipients_per_message"]),
            createdAt: Date(millisecondsSince1970: row["created_at"]))
    }
}
