public import Foundation
import GRDB
public import TernCore

extension SQLiteStore {
    public func addDomain(_ domain: SendingDomain) async throws {
        try await writer.write { db in
            if let owner = try String.fetchOne(
                db, sql: "SELECT t.name FROM domains d JOIN tenants t ON t.id = d.tenant_id WHERE d.name = ?",
                arguments: [domain.name])
            {
                throw StoreError(.duplicate, "domain \(domain.name) already belongs to tenant \(owner)")
            }
            guard try Row.fetchOne(db, sql: "SELECT 1 FROM tenants WHERE id = ?", arguments: [domain.tenant.rawValue]) != nil else {
                throw StoreError(.notFound, "no tenant with id \(domain.tenant)")
            }
            try db.execute(
                sql: """
                    INSERT INTO domains (name, return_path_domain, track, inbound_route, created_at, verified_at, tenant_id)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    domain.name, domain.returnPathDomain, domain.track, domain.inboundRoute,
                    domain.createdAt.millisecondsSince1970, domain.verifiedAt?.millisecondsSince1970, domain.tenant.rawValue,
                ])
            try Self.insert(domain.keys, of: domain.name, in: db)
        }
    }

    public func removeDomain(named name: String) async throws -> Bool {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM domains WHERE name = ?", arguments: [name.lowercased()])
            return db.changesCount > 0
        }
    }

    public func domain(named name: String) async throws -> SendingDomain? {
        try await writer.read { db in try Self.domains(in: db, named: name.lowercased()).first }
    }

    public func domains() async throws -> [SendingDomain] {
        try await writer.read { db in try Self.domains(in: db, named: nil) }
    }

    public func rotateKeys(of name: String, to keys: [DomainKey], at date: Date) async throws {
        let name = name.lowercased()
        try await writer.write { db in
            guard try Row.fetchOne(db, sql: "SELECT 1 FROM domains WHERE name = ?", arguments: [name]) != nil else {
                throw StoreError(.notFound, "no domain \(name)")
            }
            try db.execute(
                sql: "UPDATE dkim_keys SET retired_at = ? WHERE domain = ? AND retired_at IS NULL",
                arguments: [date.millisecondsSince1970, name])
            try Self.insert(keys, of: name, in: db)
        }
    }

    public func setVerified(_ name: String, at date: Date?) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "UPDATE domains SET verified_at = ? WHERE name = ?",
                arguments: [date?.millisecondsSince1970, name.lowercased()])
        }
    }

    private static func insert(_ keys: [DomainKey], of domain: String, in db: Database) throws {
        for key in keys {
            if try Row.fetchOne(db, sql: "SELECT 1 FROM dkim_keys WHERE domain = ? AND selector = ?", arguments: [domain, key.selector]) != nil {
                throw StoreError(.duplicate, "domain \(domain) already has a key with selector \(key.selector)")
            }
            try db.execute(
                sql: """
                    INSERT INTO dkim_keys (domain, selector, algorithm, private_key, public_record, created_at, retired_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    domain, key.selector, key.algorithm, key.privateKeyPEM, key.publicRecord,
                    key.createdAt.millisecondsSince1970, key.retiredAt?.millisecondsSince1970,
                ])
        }
    }

    private static func domains(in db: Database, named name: String?) throws -> [SendingDomain] {
        let filter = name == nil ? "" : "WHERE name = ?"
        let arguments: StatementArguments = name.map { [$0] } ?? []
        var domains = try Row.fetchAll(db, sql: "SELECT * FROM domains \(filter) ORDER BY name", arguments: arguments).map { row in
            SendingDomain(
                name: row["name"], tenant: TenantID(rawValue: row["tenant_id"]), returnPathDomain: row["return_path_domain"],
                track: row["track"],
                inboundRoute: row["inbound_route"], createdAt: Date(millisecondsSince1970: row["created_at"]),
                verifiedAt: (row["verified_at"] as Int64?).map(Date.init(millisecondsSince1970:)))
        }
        let keyFilter = name == nil ? "" : "WHERE domain = ?"
        var keys: [String: [DomainKey]] = [:]
        for row in try Row.fetchAll(
            db, sql: "SELECT * FROM dkim_keys \(keyFilter) ORDER BY created_at DESC, selector", arguments: arguments)
        {
            keys[row["domain"], default: []].append(
                DomainKey(
                    selector: row["selector"], algorithm: row["algorithm"], privateKeyPEM: row["private_key"],
                    publicRecord: row["public_record"], createdAt: Date(millisecondsSince1970: row["created_at"]),
                    retiredAt: (row["retired_at"] as Int64?).map(Date.init(millisecondsSince1970:))))
        }
        for index in domains.indices { domains[index].keys = keys[domains[index].name] ?? [] }
        return domains
    }
}
