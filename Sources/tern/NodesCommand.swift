import ArgumentParser
import Foundation
import TernCore
import TernHTTP

/// `tern nodes`: the nodes sharing the store, whether each is live, and its share of the queue.
struct NodesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes",
        abstract: "List the Tern nodes sharing the store: state, last heartbeat, leased recipients and deliveries in the last hour.",
        subcommands: [List.self, Remove.self],
        defaultSubcommand: List.self
    )

    struct Row: Encodable {
        var id: String
        var hostname: String
        /// `live`, `stopped`, or `silent` (running, but no heartbeat for three intervals).
        var state: String
        var started_at: String
        var heartbeat_at: String
        var leased_recipients: Int
        var deliveries_last_hour: Int
        /// Of the deliveries in the last hour, across every node.
        var share_last_hour: Double
        var detail: String
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the nodes.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let configuration = try options.load()
            let now = Date()
            let statuses = try await withStore(configuration) { store in
                try await store.nodes(deliveriesSince: now.addingTimeInterval(-3600))
            }
            let timeout = Double((configuration.nodes.heartbeatInterval * 3).components.seconds)
            let total = statuses.reduce(0) { $0 + $1.deliveries }
            let rows = statuses.map { status in
                let node = status.node
                let state = node.state == .stopped ? "stopped" : node.isLive(now: now, timeout: timeout) ? "live" : "silent"
                return Row(
                    id: node.id, hostname: node.hostname, state: state,
                    started_at: ISO8601.format(node.startedAt), heartbeat_at: ISO8601.format(node.heartbeatAt),
                    leased_recipients: status.leasedRecipients, deliveries_last_hour: status.deliveries,
                    share_last_hour: total == 0 ? 0 : Double(status.deliveries) / Double(total), detail: node.detail)
            }
            if json {
                try printJSON(rows)
                return
            }
            if rows.isEmpty {
                print("no node has run on this store yet (tern serve registers itself)")
                return
            }
            for row in rows {
                let share = String(format: "%.0f%%", row.share_last_hour * 100)
                print(
                    "\(row.id)\t\(row.state)\theartbeat \(row.heartbeat_at)\tleased \(row.leased_recipients)"
                        + "\tdelivered \(row.deliveries_last_hour) in the last hour (\(share))\t\(row.hostname)\t\(row.detail)")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forget a node that will not come back: its leases are released at once and its node number freed.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The node id, as `tern nodes` lists it.") var id: String
        @Flag(help: "Remove it even if it looks live.") var force = false

        func run() async throws {
            let configuration = try options.load()
            let timeout = Double((configuration.nodes.heartbeatInterval * 3).components.seconds)
            try await withStore(configuration) { store in
                let nodes = try await store.nodes(deliveriesSince: Date())
                guard let node = nodes.first(where: { $0.node.id == id })?.node else {
                    throw ValidationError("no node \(id)")
                }
                if node.isLive(now: Date(), timeout: timeout) && !force {
                    throw ValidationError("node \(id) is live (heartbeat \(ISO8601.format(node.heartbeatAt))); stop it first, or use --force")
                }
                _ = try await store.removeNode(id)
            }
            print("removed \(id)")
        }
    }
}

/// `tern secret tokens|webhooks`: a secret every node uses, as base64.
struct SecretCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secret",
        abstract: "Print a secret the nodes share (base64): `webhooks` signs inbound webhook posts (give it to the receiving end to check X-Tern-Signature); `tokens` signs tracking, unsubscribe and VERP tokens (put it in tracking.previous_secrets when rotating with tracking.secret).")

    @OptionGroup var options: ConfigOption
    @Argument(help: "tokens or webhooks") var name: String

    func run() async throws {
        guard name == "tokens" || name == "webhooks" else { throw ValidationError("the secrets are 'tokens' and 'webhooks'") }
        let configuration = try options.load()
        let folder = DataFolder(path: configuration.dataDir)
        let secret = try await withStore(configuration) { store in
            name == "tokens"
                ? try await configuration.tokenSecret(store: store, folder: folder)
                : try await configuration.inboundWebhooksConfiguration(store: store, folder: folder).secret
        }
        print(Data(secret).base64EncodedString())
    }
}
