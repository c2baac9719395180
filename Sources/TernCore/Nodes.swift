public import Foundation

/// A `tern serve` process as the other nodes (and `tern nodes`) see it: it registers at
/// start, refreshes its heartbeat while it runs and says so when it stops.
public struct NodeRecord: Sendable, Equatable {
    /// The node's name, as in its delivery leases (`data_dir/node-id`).
    public var id: String
    public var hostname: String
    public var startedAt: Date
    public var heartbeatAt: Date
    public var state: NodeState
    /// Free text for operators: version, listeners.
    public var detail: String

    public init(id: String, hostname: String, startedAt: Date, heartbeatAt: Date, state: NodeState, detail: String) {
        self.id = id
        self.hostname = hostname
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
        self.state = state
        self.detail = detail
    }

    /// Running and heard from within `timeout` of `now`.
    public func isLive(now: Date, timeout: TimeInterval) -> Bool {
        state == .running && heartbeatAt > now.addingTimeInterval(-timeout)
    }
}

public enum NodeState: String, Sendable, Equatable {
    case running
    case stopped
}

/// A node with its share of the queue.
public struct NodeStatus: Sendable, Equatable {
    public var node: NodeRecord
    /// Recipients it holds delivery leases on now.
    public var leasedRecipients: Int
    /// Delivery outcomes (`sent`, `failed`, `deferred` events) it recorded since the time asked for.
    public var deliveries: Int

    public init(node: NodeRecord, leasedRecipients: Int, deliveries: Int) {
        self.node = node
        self.leasedRecipients = leasedRecipients
        self.deliveries = deliveries
    }
}

/// What nodes share besides the queue: who is there, and the secrets every node must sign
/// and verify with (tokens, webhook signatures).
public protocol NodeStore: Sendable {
    /// Registers the node or refreshes it (by id): every field is replaced.
    func heartbeat(_ node: NodeRecord) async throws

    /// Every node ever registered, by id, with its leases now and the delivery outcomes
    /// recorded since `since` whose event details name it (`node`).
    func nodes(deliveriesSince since: Date) async throws -> [NodeStatus]

    /// Forgets a node that stopped or died; false when there was none of that id. Its leases
    /// are released.
    func removeNode(_ id: String) async throws -> Bool

    /// The node number (0..<`TimeOrderedID.nodeCount`) that node `id` puts in the ids it
    /// makes: the one it was given before, else the lowest no other node holds. Two nodes
    /// never hold one number; `removeNode` frees it. Throws when every number is taken.
    func nodeNumber(of id: String) async throws -> Int

    /// The secret called `name`. The first caller's `proposed` value is stored and every
    /// later caller (on any node, also at the same moment) gets that one.
    func sharedSecret(named name: String, proposed: [UInt8]) async throws -> [UInt8]
}

/// The secrets `tern serve` keeps in the store (`NodeStore.sharedSecret`).
public enum SharedSecretName {
    /// Signs tracking, unsubscribe and VERP tokens.
    public static let tokens = "tokens"
    /// Signs inbound webhook posts (unless `inbound.webhook_secret` is configured).
    public static let webhooks = "webhooks"
}
