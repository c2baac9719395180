public import Foundation
import GRDB
public import TernCore

/// `NodeStore`: the nodes that share this store, their share of the queue, and the secrets
/// they all sign with (migration v8).
extension SQLiteStore {
    public func heartbeat(_ node: NodeRecord) async throws {
        try await writer.write { db in
            try db.execute(
                sql: """
                    INSERT INTO nodes (id, hostname, started_at, heartbeat_at, state, detail) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET hostname = excluded.hostname, started_at = excluded.started_at,
                        heartbeat_at = excluded.heartbeat_at, state = excluded.state, detail = excluded.detail
                    """,
                arguments: [
                    node.id, node.hostname, node.startedAt.millisecondsSince1970, node.heartbeatAt.millisecondsSince1970,
                    node.state.rawValue, node.detail,
                ])
        }
    }

    /// Leases are counted from the leased rows only (`recipients_lease_node`), deliveries from
    /// the events since `since` (`events_at`): one pass each, whatever the number of nodes.
    public func nodes(deliveriesSince since: Date) async throws -> [NodeStatus] {
        let now = Date().millisecondsSince1970
        return try await writer.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT n.id, n.hostname, n.started_at, n.heartbeat_at, n.state, n.detail,
                           COALESCE(l.n, 0) AS leased, COALESCE(d.n, 0) AS deliveries
                    FROM nodes n
                    LEFT JOIN (SELECT lease_node AS node, COUNT(*) AS n FROM recipients
                               WHERE lease_node IS NOT NULL AND lease_until > ? GROUP BY lease_node) l ON l.node = n.id
                    LEFT JOIN (SELECT json_extract(details, '$.node') AS node, COUNT(*) AS n FROM events
                               WHERE at >= ? AND type IN ('sent', 'failed', 'deferred') AND details IS NOT NULL
                               GROUP BY 1) d ON d.node = n.id
                    ORDER BY n.id
                    """,
                arguments: [now, since.millisecondsSince1970]
            ).map { row in
                NodeStatus(
                    node: NodeRecord(
                        id: row["id"], hostname: row["hostname"], startedAt: Date(millisecondsSince1970: row["started_at"]),
                        heartbeatAt: Date(millisecondsSince1970: row["heartbeat_at"]),
                        state: NodeState(rawValue: row["state"]) ?? .stopped, detail: row["detail"]),
                    leasedRecipients: row["leased"], deliveries: row["deliveries"])
            }
        }
    }

    /// Releases the leases held under `id` as `releaseLeases(heldBy:)` does, also when no
    /// node of that id is registered.
    public func removeNode(_ id: String) async throws -> Bool {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM nodes WHERE id = ?", arguments: [id])
            var removed = db.changesCount > 0
            try db.execute(sql: "DELETE FROM node_numbers WHERE node = ?", arguments: [id])
            removed = removed || db.changesCount > 0
            try db.execute(
                sql: "UPDATE recipients SET lease_node = NULL, lease_until = NULL WHERE lease_node = ?", arguments: [id])
            return removed
        }
    }

    /// One write transaction (SQLite has one writer at a time): the numbers taken are read,
    /// and the node's own or the lowest free one is returned (and kept).
    public func nodeNumber(of id: String) async throws -> Int {
        try await writer.write { db in
            if let own = try Int.fetchOne(db, sql: "SELECT number FROM node_numbers WHERE node = ?", arguments: [id]) {
                return own
            }
            let taken = Set(try Int.fetchAll(db, sql: "SELECT number FROM node_numbers"))
            guard let free = (0..<TimeOrderedID.nodeCount).first(where: { !taken.contains($0) }) else {
                throw StoreError(
                    .unavailable,
                    "every node number (\(TimeOrderedID.nodeCount)) is taken: forget nodes that are gone with `tern nodes remove`")
            }
            try db.execute(sql: "INSERT INTO node_numbers (number, node) VALUES (?, ?)", arguments: [free, id])
            return free
        }
    }

    /// One write transaction: SQLite has one writer at a time, so the first insert wins and
    /// every later one reads its value.
    public func sharedSecret(named name: String, proposed: [UInt8]) async throws -> [UInt8] {
        let now = Date().millisecondsSince1970
        return try await writer.write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO secrets (name, value, created_at) VALUES (?, ?, ?)",
                arguments: [name, Data(proposed), now])
            guard let value = try Data.fetchOne(db, sql: "SELECT value FROM secrets WHERE name = ?", arguments: [name]) else {
                throw StoreError(.notFound, "the secret \(name) was not stored")
            }
            return [UInt8](value)
        }
    }
}
