public import Foundation
import Logging
import NIOCore
import PostgresNIO
public import TernCore

/// `NodeStore`: the nodes that share this database, their share of the queue, and the
/// secrets they all sign with (migration v2).
extension PostgresStore {
    public func heartbeat(_ node: NodeRecord) async throws {
        try await client.query(
            """
            INSERT INTO nodes (id, hostname, started_at, heartbeat_at, state, detail)
            VALUES (\(node.id), \(node.hostname), \(node.startedAt.millisecondsSince1970),
                    \(node.heartbeatAt.millisecondsSince1970), \(node.state.rawValue), \(node.detail))
            ON CONFLICT (id) DO UPDATE SET hostname = excluded.hostname, started_at = excluded.started_at,
                heartbeat_at = excluded.heartbeat_at, state = excluded.state, detail = excluded.detail
            """, logger: logger)
    }

    /// Leases are counted from the leased rows only (`recipients_lease_node`), deliveries from
    /// the events since `since` (`events_at`): one pass each, whatever the number of nodes.
    public func nodes(deliveriesSince since: Date) async throws -> [NodeStatus] {
        let now = Date().millisecondsSince1970
        let rows = try await client.query(
            """
            SELECT n.id, n.hostname, n.started_at, n.heartbeat_at, n.state, n.detail,
                   COALESCE(l.n, 0), COALESCE(d.n, 0)
            FROM nodes n
            LEFT JOIN (SELECT lease_node AS node, COUNT(*) AS n FROM recipients
                       WHERE lease_node IS NOT NULL AND lease_until > \(now) GROUP BY lease_node) l ON l.node = n.id
            LEFT JOIN (SELECT details ->> 'node' AS node, COUNT(*) AS n FROM events
                       WHERE at >= \(since.millisecondsSince1970) AND type IN ('sent', 'failed', 'deferred')
                       GROUP BY 1) d ON d.node = n.id
            ORDER BY n.id
            """, logger: logger)
        var nodes: [NodeStatus] = []
        for try await (id, hostname, startedAt, heartbeatAt, state, detail, leased, deliveries) in rows.decode(
            (String, String, Int64, Int64, String, String, Int64, Int64).self)
        {
            nodes.append(
                NodeStatus(
                    node: NodeRecord(
                        id: id, hostname: hostname, startedAt: Date(millisecondsSince1970: startedAt),
                        heartbeatAt: Date(millisecondsSince1970: heartbeatAt), state: NodeState(rawValue: state) ?? .stopped,
                        detail: detail),
                    leasedRecipients: Int(leased), deliveries: Int(deliveries)))
        }
        return nodes
    }

    /// Releases the leases held under `id` as `releaseLeases(heldBy:)` does, also when no
    /// node of that id is registered.
    public func removeNode(_ id: String) async throws -> Bool {
        let logger = self.logger
        return try await transaction { connection in
            let rows = try await connection.query("DELETE FROM nodes WHERE id = \(id) RETURNING id", logger: logger)
            var removed = false
            for try await _ in rows.decode(String.self) { removed = true }
            let numbers = try await connection.query("DELETE FROM node_numbers WHERE node = \(id) RETURNING node", logger: logger)
            for try await _ in numbers.decode(String.self) { removed = true }
            try await connection.query(
                "UPDATE recipients SET lease_node = NULL, lease_until = NULL WHERE lease_node = \(id)", logger: logger)
            return removed
        }
    }

    /// Under an advisory lock, so that nodes starting at once take turns: the numbers taken
    /// are read, and the node's own or the lowest free one is returned (and kept).
    public func nodeNumber(of id: String) async throws -> Int {
        let logger = self.logger
        return try await transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.nodeNumberLockKey))", logger: logger)
            var taken: Set<Int> = []
            let rows = try await connection.query("SELECT number, node FROM node_numbers", logger: logger)
            for try await (number, node) in rows.decode((Int32, String).self) {
                if node == id { return Int(number) }
                taken.insert(Int(number))
            }
            guard let free = (0..<TimeOrderedID.nodeCount).first(where: { !taken.contains($0) }) else {
                throw StoreError(.unavailable, Self.noNodeNumberLeft)
            }
            try await connection.query(
                "INSERT INTO node_numbers (number, node) VALUES (\(Int32(free)), \(id))", logger: logger)
            return free
        }
    }

    /// The advisory lock key of node numbering ("node" in ASCII).
    static let nodeNumberLockKey: Int64 = 0x6E6F_6465
    static let noNodeNumberLeft =
        "every node number (\(TimeOrderedID.nodeCount)) is taken: forget nodes that are gone with `tern nodes remove`"

    /// Two statements: a node inserting at the same moment as another waits on the other's
    /// row, then inserts nothing, and the SELECT (a new snapshot under READ COMMITTED) reads
    /// the value that won.
    public func sharedSecret(named name: String, proposed: [UInt8]) async throws -> [UInt8] {
        let logger = self.logger
        let now = Date().millisecondsSince1970
        let value = ByteBuffer(bytes: proposed)
        return try await transaction { connection in
            try await connection.query(
                """
                INSERT INTO secrets (name, value, created_at) VALUES (\(name), \(value), \(now))
                ON CONFLICT (name) DO NOTHING
                """, logger: logger)
            let rows = try await connection.query("SELECT value FROM secrets WHERE name = \(name)", logger: logger)
            var stored: [UInt8]?
            for try await buffer in rows.decode(ByteBuffer.self) { stored = Array(buffer.readableBytesView) }
            guard let stored else { throw StoreError(.notFound, "the secret \(name) was not stored") }
            return stored
        }
    }
}
