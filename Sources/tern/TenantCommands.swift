import ArgumentParser
import Foundation
import TernCore
import TernHTTP

/// The tenant named `name` (nil: `default`), or a clear error naming the command that lists them.
func resolveTenant(_ name: String?, in store: any Store) async throws -> Tenant {
    let name = name ?? Tenant.defaultName
    guard let tenant = try await store.tenant(named: name) else {
        throw ValidationError("no tenant named '\(name)' (tern tenant list)")
    }
    return tenant
}

/// Every tenant's name by id, for listings that show whose each row is.
func tenantNames(in store: any Store) async throws -> [TenantID: String] {
    Dictionary(uniqueKeysWithValues: try await store.tenants().map { ($0.id, $0.name) })
}

/// `--tenant NAME` as the listing commands take it: the operator's view of one tenant.
struct TenantFilter: ParsableArguments {
    @Option(help: "Only this tenant's (default: every tenant's).") var tenant: String?

    func scope(in store: any Store) async throws -> TenantScope {
        guard let tenant else { return .all }
        return .tenant(try await resolveTenant(tenant, in: store).id)
    }
}

/// `--max-messages-per-hour` and the other limits, as `tenant add` and `tenant set` take them.
struct LimitOptions: ParsableArguments {
    @Option(help: "Messages it may submit per clock hour (UTC); 'none' for no limit.") var maxMessagesPerHour: String?
    @Option(help: "Messages it may submit per day (UTC); 'none' for no limit.") var maxMessagesPerDay: String?
    @Option(help: "Recipients one message may have; 'none' for no limit.") var maxRecipientsPerMessage: String?

    /// `limits` with the options given applied.
    func applied(to limits: TenantLimits) throws -> TenantLimits {
        var limits = limits
        func parse(_ text: String?, _ option: String, _ field: WritableKeyPath<TenantLimits, Int?>) throws {
            guard let text else { return }
            if text.lowercased() == "none" {
                limits[keyPath: field] = nil
            } else if let value = Int(text), value > 0 {
                limits[keyPath: field] = value
            } else {
                throw ValidationError("--\(option) must be a whole number above 0, or 'none'; got '\(text)'")
            }
        }
        try parse(maxMessagesPerHour, "max-messages-per-hour", \.maxMessagesPerHour)
        try parse(maxMessagesPerDay, "max-messages-per-day", \.maxMessagesPerDay)
        try parse(maxRecipientsPerMessage, "max-recipients-per-message", \.maxRecipientsPerMessage)
        return limits
    }

    var isEmpty: Bool { maxMessagesPerHour == nil && maxMessagesPerDay == nil && maxRecipientsPerMessage == nil }
}

/// `tern tenant …`: the senders this installation serves.
struct TenantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant",
        abstract: "Manage tenants: the senders Tern serves, each seeing only its own mail and counters.",
        subcommands: [Add.self, List.self, Show.self, SetLimits.self, Remove.self]
    )

    /// A tenant as the CLI prints it in JSON.
    struct Row: Encodable {
        var name: String
        var created_at: String
        var limits: TenantLimits

        init(_ tenant: Tenant) {
            name = tenant.name
            created_at = ISO8601.format(tenant.createdAt)
            limits = tenant.limits
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a tenant.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "1-64 lower-case letters, digits, '-', '_', '.'.") var name: String
        @OptionGroup var limits: LimitOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            guard Tenant.isValidName(name) else {
                throw ValidationError("a tenant name is 1-64 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit")
            }
            let limits = try self.limits.applied(to: .none)
            let tenant: Tenant
            do {
                tenant = try await withStore(try options.load()) { store in
                    try await store.addTenant(named: name, limits: limits, createdAt: Date())
                }
            } catch let error as StoreError where error.code == .duplicate {
                throw ValidationError(error.message)
            }
            if json {
                try printJSON(Row(tenant))
            } else {
                print("added tenant \(tenant.name)")
                print("next: tern credential add NAME --tenant \(tenant.name); tern domain add DOMAIN --tenant \(tenant.name)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tenants.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let tenants = try await withStore(try options.load()) { store in try await store.tenants() }
            if json {
                try printJSON(tenants.map(Row.init))
                return
            }
            for tenant in tenants {
                print("\(tenant.name)\t\(TenantCommand.describe(tenant.limits))\t\(ISO8601.format(tenant.createdAt))")
            }
        }
    }

    static func describe(_ limits: TenantLimits) -> String {
        var parts: [String] = []
        if let value = limits.maxMessagesPerHour { parts.append("\(value)/hour") }
        if let value = limits.maxMessagesPerDay { parts.append("\(value)/day") }
        if let value = limits.maxRecipientsPerMessage { parts.append("\(value) recipients/message") }
        return parts.isEmpty ? "no limits" : parts.joined(separator: ", ")
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a tenant: its credentials, domains, limits and counters.")
        @OptionGroup var options: ConfigOption
        @Argument var name: String
        @Flag(help: "Print JSON.") var json = false

        struct Details: Encodable {
            var name: String
            var created_at: String
            var limits: TenantLimits
            var credentials: [String]
            var domains: [String]
            var counters: Counters
        }

        func run() async throws {
            let details = try await withStore(try options.load()) { store in
                let tenant = try await resolveTenant(name, in: store)
                return Details(
                    name: tenant.name, created_at: ISO8601.format(tenant.createdAt), limits: tenant.limits,
                    credentials: try await store.credentials().filter { $0.scope == .tenant(tenant.id) }.map(\.name),
                    domains: try await store.domains().filter { $0.tenant == tenant.id }.map(\.name),
                    counters: try await store.counters(in: .allTime, scope: .tenant(tenant.id)))
            }
            if json {
                try printJSON(details)
                return
            }
            print("tenant \(details.name)  created \(details.created_at)")
            print("limits:      \(TenantCommand.describe(details.limits))")
            print("credentials: \(details.credentials.isEmpty ? "-" : details.credentials.joined(separator: ", "))")
            print("domains:     \(details.domains.isEmpty ? "-" : details.domains.joined(separator: ", "))")
            for (name, value) in details.counters.values {
                print("\(name.padding(toLength: 13, withPad: " ", startingAt: 0)) \(value)")
            }
        }
    }

    struct SetLimits: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Change a tenant's limits (at once, on running servers too).")
        @OptionGroup var options: ConfigOption
        @Argument var name: String
        @OptionGroup var limits: LimitOptions

        func run() async throws {
            guard !limits.isEmpty else {
                throw ValidationError("give at least one of --max-messages-per-hour, --max-messages-per-day, --max-recipients-per-message")
            }
            let updated = try await withStore(try options.load()) { store in
                let tenant = try await resolveTenant(name, in: store)
                let updated = try limits.applied(to: tenant.limits)
                try await store.setLimits(updated, of: tenant.id)
                return updated
            }
            print("\(name): \(TenantCommand.describe(updated))")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a tenant with its credentials, domains and suppressions; refused while it owns mail, unless --force.")
        @OptionGroup var options: ConfigOption
        @Argument var name: String
        @Flag(help: "Also delete its messages (with their recipients and events) and inbound messages.") var force = false

        func run() async throws {
            let removal: TenantRemoval
            do {
                removal = try await withStore(try options.load()) { store in
                    let tenant = try await resolveTenant(name, in: store)
                    return try await store.removeTenant(tenant.id, force: force)
                }
            } catch let error as StoreError where error.code == .conflict {
                throw ValidationError("\(name): \(error.message)" + (force ? "" : "; --force deletes them with the tenant"))
            }
            print(
                "removed tenant \(name): \(removal.messages) messages, \(removal.inboundMessages) inbound messages, "
                    + "\(removal.credentials) credentials, \(removal.domains) domains, \(removal.suppressions) suppressions")
        }
    }
}
