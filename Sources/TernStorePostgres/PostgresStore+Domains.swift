public import Foundation
import Logging
import PostgresNIO
public import TernCore

/// `DomainStore`: sending domains and their DKIM keys, shared by every node so that all sign alike.
/// - SeeAlso: RFC 6376 §3.1 (selectors)
extension PostgresStore {
    public func addDomain(_ domain: SendingDomain) async throws {
        let logger = self.logger
        try await transaction { connection in
            var tenantExists = false
            for try await _ in try await connection.query(
                "SELECT 1 FROM tenants WHERE id = \(domain.tenant.rawValue)", logger: logger
            ).decode(Int32.self) {
                tenantExists = true
            }
            guard tenantExists else { throw StoreError(.notFound, "no tenant with id \(domain.tenant)") }
            let rows = try await connection.query(
                """
                INSERT INTO domains (name, return_path_domain, track, inbound_route, created_at, verified_at, tenant_id)
                VALUES (\(domain.name), \(domain.returnPathDomain), \(domain.track), \(domain.inboundRoute),
                        \(domain.createdAt.millisecondsSince1970), \(domain.verifiedAt?.millisecondsSince1970),
                        \(domain.tenant.rawValue))
                ON CONFLICT (name) DO NOTHING
                RETURNING name
                """, logger: logger)
            var inserted = false
            for try await _ in rows.decode(String.self) { inserted = true }
            guard inserted else {
                var owner = "another tenant"
                for try await name in try await connection.query(
                    "SELECT t.name FROM domains d JOIN tenants t ON t.id = d.tenant_id WHERE d.name = \(domain.name)",
                    logger: logger
                ).decode(String.self) {
                    owner = "tenant " + name
                }
                throw StoreError(.duplicate, "domain \(domain.name) already belongs to \(owner)")
            }
            try await Self.insert(domain.keys, of: domain.name, on: connection, logger: logger)
        }
    }

    public func removeDomain(named name: String) async throws -> Bool {
        try await count(
            """
            WITH removed AS (DELETE FROM domains WHERE name = \(name.lowercased()) RETURNING 1)
            SELECT COUNT(*) FROM removed
            """) > 0
    }

    public func domain(named name: String) async throws -> SendingDomain? {
        try await domains(named: name.lowercased()).first
    }

    public func domains() async throws -> [SendingDomain] {
        try await domains(named: nil)
    }

    /// Retires the active keys and adds the new ones in one transaction: no moment without a
    /// signing key, whichever node reads.
    public func rotateKeys(of name: String, to keys: [DomainKey], at date: Date) async throws {
        let name = name.lowercased()
        let logger = self.logger
        try await transaction { connection in
            let rows = try await connection.query(
                "SELECT name FROM domains WHERE name = \(name) FOR UPDATE", logger: logger)
            var found = false
            for try await _ in rows.decode(String.self) { found = true }
            guard found else { throw StoreError(.notFound, "no domain \(name)") }
            try await connection.query(
                """
                UPDATE dkim_keys SET retired_at = \(date.millisecondsSince1970)
                WHERE domain = \(name) AND retired_at IS NULL
                """, logger: logger)
            try await Self.insert(keys, of: name, on: connection, logger: logger)
        }
    }

    public func setVerified(_ name: String, at date: Date?) async throws {
        try await client.query(
            "UPDATE domains SET verified_at = \(date?.millisecondsSince1970) WHERE name = \(name.lowercased())",
            logger: logger)
    }

    private static func insert(_ keys: [DomainKey], of domain: String, on connection: PostgresConnection, logger: Logger) async throws {
        for key in keys {
            let rows = try await connection.query(
                """
                INSERT INTO dkim_keys (domain, selector, algorithm, private_key, public_record, created_at, retired_at)
                VALUES (\(domain), \(key.selector), \(key.algorithm), \(key.privateKeyPEM), \(key.publicRecord),
                        \(key.createdAt.millisecondsSince1970), \(key.retiredAt?.millisecondsSince1970))
                ON CONFLICT (domain, selector) DO NOTHING
                RETURNING selector
                """, logger: logger)
            var inserted = false
            for try await _ in rows.decode(String.self) { inserted = true }
            guard inserted else {
                throw StoreError(.duplicate, "domain \(domain) already has a key with selector \(key.selector)")
            }
        }
    }

    private func domains(named name: String?) async throws -> [SendingDomain] {
        let domainRows = try await client.query(
            """
            SELECT name, return_path_domain, track, inbound_route, created_at, verified_at, tenant_id
            FROM domains WHERE \(name)::TEXT IS NULL OR name = \(name) ORDER BY name
            """, logger: logger)
        var domains: [SendingDomain] = []
        for try await (domainName, returnPath, track, inboundRoute, createdAt, verifiedAt, tenant) in domainRows.decode(
            (String, String?, String?, String?, Int64, Int64?, Int64).self)
        {
            domains.append(
                SendingDomain(
                    name: domainName, tenant: TenantID(rawValue: tenant), returnPathDomain: returnPath, track: track, inboundRoute: inboundRoute,
                    createdAt: Date(millisecondsSince1970: createdAt),
                    verifiedAt: verifiedAt.map(Date.init(millisecondsSince1970:))))
        }
        let keyRows = try await client.query(
            """
            SELECT domain, selector, algorithm, private_key, public_record, created_at, retired_at
            FROM dkim_keys WHERE \(name)::TEXT IS NULL OR domain = \(name)
            ORDER BY created_at DESC, selector
            """, logger: logger)
        var keys: [String: [DomainKey]] = [:]
        for try await (domain, selector, algorithm, privateKey, publicRecord, createdAt, retiredAt) in keyRows.decode(
            (String, String, String, String, String, Int64, Int64?).self)
        {
            keys[domain, default: []].append(
                DomainKey(
                    selector: selector, algorithm: algorithm, privateKeyPEM: privateKey, publicRecord: publicRecord,
                    createdAt: Date(millisecondsSince1970: createdAt),
                    retiredAt: retiredAt.map(Date.init(millisecondsSince1970:))))
        }
        for index in domains.indices { domains[index].keys = keys[domains[index].name] ?? [] }
        return domains
    }
}
