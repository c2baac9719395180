import ArgumentParser
import Foundation
import TernCore
import TernHTTP

/// Parses a message or recipient id as printed by Tern (16 hex digits).
func parseQueueID(_ text: String) throws -> Int64 {
    if let message = MessageID(text) { return message.rawValue }
    throw ValidationError("'\(text)' is not a message or recipient id (16 hex digits, as `tern queue` prints them)")
}

struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Show what is waiting for delivery and why; retry or drop it.",
        subcommands: [List.self, Retry.self, Drop.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List queued and deferred recipients, oldest first.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Print JSON.") var json = false
        @Option(help: "Show at most this many.") var limit = 1000
        @OptionGroup var filter: TenantFilter

        func run() async throws {
            let entries = try await withStore(try options.load()) { store in
                try await store.queueEntries(limit: limit, scope: try await filter.scope(in: store))
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                encoder.dateEncodingStrategy = .iso8601
                print(String(decoding: try encoder.encode(entries), as: UTF8.self))
                return
            }
            if entries.isEmpty {
                print("queue is empty")
                return
            }
            for entry in entries {
                print(
                    "\(entry.recipientID) msg \(entry.messageID) <\(entry.mailFrom)> -> <\(entry.address)> "
                        + "attempts \(entry.attempts) next \(ISO8601.format(entry.nextAttemptAt))"
                        + (entry.lastReason.map { " (\($0))" } ?? ""))
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a recipient, or every queued recipient of a message, due now.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "A recipient id or a message id.") var id: String

        func run() async throws {
            let raw = try parseQueueID(id)
            let count = try await withStore(try options.load()) { store in try await store.retryNow(raw, now: Date()) }
            guard count > 0 else { throw ValidationError("nothing queued with id \(id)") }
            print("\(count) recipient(s) due now")
        }
    }

    struct Drop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a recipient, or every queued recipient of a message, from the queue (recorded as failed).")
        @OptionGroup var options: ConfigOption
        @Argument(help: "A recipient id or a message id.") var id: String

        func run() async throws {
            let raw = try parseQueueID(id)
            let count = try await withStore(try options.load()) { store in try await store.drop(raw, now: Date()) }
            guard count > 0 else { throw ValidationError("nothing queued with id \(id)") }
            print("\(count) recipient(s) dropped")
        }
    }
}

struct SuppressionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suppression",
        abstract: "Addresses Tern will not deliver to (they get a 'suppressed' event instead).",
        subcommands: [Add.self, Remove.self, List.self]
    )

    /// Whose entry: one tenant's (`--tenant`, default `default`) or everyone's (`--global`).
    struct Owner: ParsableArguments {
        @Option(help: "The tenant whose mail it stops (default: default).") var tenant: String?
        @Flag(help: "Stop everyone's mail to it: an installation-wide entry.") var global = false

        func resolve(in store: any Store) async throws -> TenantID? {
            if global {
                guard tenant == nil else { throw ValidationError("--global and --tenant exclude each other") }
                return nil
            }
            return try await resolveTenant(tenant, in: store).id
        }

        var description: String { global ? "every tenant" : "tenant \(tenant ?? Tenant.defaultName)" }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Suppress an address.")
        @OptionGroup var options: ConfigOption
        @Argument var address: String
        @Option(help: "Why (shown in the list).") var reason = "manual"
        @Option(help: "Only for mail from this sending (From) domain; default: from every domain.") var domain: String?
        @OptionGroup var owner: Owner

        func run() async throws {
            guard address.contains("@"), !address.contains(where: { $0 == " " || $0 == "<" || $0 == ">" }) else {
                throw ValidationError("'\(address)' is not an email address")
            }
            try await withStore(try options.load()) { store in
                let suppression = Suppression(
                    address: address, domain: domain ?? "", tenant: try await owner.resolve(in: store), reason: reason, createdAt: Date())
                try await store.addSuppression(suppression)
            }
            print("suppressed \(address.lowercased()) for \(owner.description)" + (domain.map { ", mail from \($0.lowercased())" } ?? ""))
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop suppressing an address.")
        @OptionGroup var options: ConfigOption
        @Argument var address: String
        @Option(help: "Only the entry for this sending domain; default: every entry of the address.") var domain: String?
        @OptionGroup var owner: Owner

        func run() async throws {
            let removed = try await withStore(try options.load()) { store in
                try await store.removeSuppression(address: address, domain: domain, tenant: try await owner.resolve(in: store))
            }
            guard removed > 0 else { throw ValidationError("\(address) is not suppressed" + (domain.map { " for \($0)" } ?? "")) }
            print("removed \(address.lowercased())" + (removed > 1 ? " (\(removed) entries)" : ""))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List suppressed addresses.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var filter: TenantFilter

        struct Row: Encodable {
            var address: String
            /// The tenant's name; null for an installation-wide entry.
            var tenant: String?
            var domain: String
            var reason: String
            var created_at: String
        }

        func run() async throws {
            let (list, names) = try await withStore(try options.load()) { store in
                (try await store.suppressions(scope: try await filter.scope(in: store)), try await tenantNames(in: store))
            }
            let rows = list.map {
                Row(
                    address: $0.address, tenant: $0.tenant.map { names[$0] ?? $0.description }, domain: $0.domain, reason: $0.reason,
                    created_at: ISO8601.format($0.createdAt))
            }
            if json {
                try printJSON(rows)
            } else {
                for row in rows {
                    print("\(row.address)\t\(row.tenant ?? "(global)")\t\(row.domain.isEmpty ? "*" : row.domain)\t\(row.reason)\t\(row.created_at)")
                }
            }
        }
    }
}
