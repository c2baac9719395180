import ArgumentParser
import Foundation
import Logging
import TernCore
import TernHTTP

@main
struct Tern: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tern",
        abstract: "Tern: email delivery — SMTP submission, durable queue, delivery and tracking.",
        subcommands: [
            Serve.self, TenantCommand.self, CredentialCommand.self, Stats.self, MessageCommand.self, QueueCommand.self, SuppressionCommand.self,
            InboundCommand.self, ReportCommand.self, DomainCommand.self, NodesCommand.self, SecretCommand.self,
        ]
    )
}

/// `--config` as every command takes it.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Path to tern.yaml (TERN_… environment variables override it).")
    var config: String?

    func load() throws -> TernConfiguration {
        try TernConfiguration.load(path: config)
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the counters: outbound, sent, failed (of which async), suppressed, deferred, delayed, complaints, opens, clicks, unsubscribes, inbound, auto-replies, unmatched reports; unique and human opens and clicks.")

    @OptionGroup var options: ConfigOption
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "Start of the period (ISO 8601, inclusive).") var from: String?
    @Option(help: "End of the period (ISO 8601, exclusive).") var to: String?
    @OptionGroup var filter: TenantFilter

    func run() async throws {
        let configuration = try options.load()
        let range = TimeRange(from: try from.map { try parseDate($0, option: "--from") }, to: try to.map { try parseDate($0, option: "--to") })
        let counters = try await withStore(configuration) { store in
            try await store.counters(in: range, scope: try await filter.scope(in: store))
        }
        if json {
            try printJSON(StatsResponse(counters: counters, range: range))
        } else {
            if range.from != nil || range.to != nil {
                print("period: \(range.from.map { ISO8601.format($0) } ?? "start") .. \(range.to.map { ISO8601.format($0) } ?? "now")")
            }
            for (name, value) in counters.values {
                print("\(name.padding(toLength: 13, withPad: " ", startingAt: 0)) \(value)")
            }
        }
    }

    func parseDate(_ text: String, option: String) throws -> Date {
        guard let date = ISO8601.parse(text) else {
            throw ValidationError("\(option) must be an ISO 8601 date or date-time, got '\(text)'")
        }
        return date
    }
}

struct CredentialCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credential",
        abstract: "Manage credentials: SMTP username/password, API key, client networks.",
        subcommands: [Add.self, List.self, Remove.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a credential and print its SMTP password and API key (shown once).")

        @OptionGroup var options: ConfigOption
        @Argument(help: "The credential's name, also its SMTP username.") var name: String
        @Option(name: .customLong("network"), help: "A client network (CIDR) that may submit without AUTH; repeatable.")
        var networks: [String] = []
        @Option(name: .customLong("domain"), help: "A sending domain it may use (and its subdomains); repeatable. Default: any of its tenant's.")
        var domains: [String] = []
        @Option(help: "The tenant it sends for (default: default).") var tenant: String?
        @Flag(help: "An operator credential: an API key that sees every tenant; it cannot send mail.") var `operator` = false
        @Flag(help: "Print JSON: {\"username\":…,\"password\":…,\"api_key\":…}.") var json = false

        func run() async throws {
            guard Credential.isValidName(name) else {
                throw ValidationError("a credential name is 1-64 characters of letters, digits, '-', '_', '.', '@'")
            }
            if `operator`, tenant != nil || !networks.isEmpty || !domains.isEmpty {
                throw ValidationError("--operator takes none of --tenant, --network, --domain: an operator credential sends no mail")
            }
            let parsed = try networks.map { text in
                guard let network = IPNetwork(text) else { throw ValidationError("--network '\(text)' is not an IP network (e.g. 10.0.0.0/8)") }
                return network
            }
            let configuration = try options.load()
            for domain in domains where !domain.contains(".") || domain.contains("@") || domain.contains(" ") {
                throw ValidationError("--domain '\(domain)' is not a domain name (e.g. example.com)")
            }
            let credential: Credential
            let issued: IssuedCredential
            do {
                (credential, issued) = try await withStore(configuration) { store in
                    let scope: TenantScope = `operator` ? .all : .tenant(try await resolveTenant(tenant, in: store).id)
                    let (credential, issued) = try Credential.issue(name: name, networks: parsed, domains: domains, scope: scope)
                    try await store.addCredential(credential)
                    return (credential, issued)
                }
            } catch let error as StoreError where error.code == .duplicate {
                throw ValidationError(error.message)
            }
            if json {
                try printJSON(issued)
            } else {
                print("username: \(issued.username)")
                print("password: \(issued.password)")
                print("api_key:  \(issued.apiKey)")
                print("tenant:   \(`operator` ? "every tenant (operator: API only, sends no mail)" : tenant ?? Tenant.defaultName)")
                if !parsed.isEmpty { print("networks: \(parsed.map(\.description).joined(separator: ", ")) (may submit without AUTH)") }
                if !domains.isEmpty { print("domains:  \(credential.domains.joined(separator: ", ")) (the only sending domains it may use)") }
                print("Keep these now: Tern stores only salted hashes of the password and key.")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List credentials (never their secrets).")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Print JSON.") var json = false

        struct Row: Encodable {
            var name: String
            /// The tenant's name; null for an operator credential.
            var tenant: String?
            var `operator`: Bool
            var networks: [String]
            var domains: [String]
            var created_at: String
        }

        func run() async throws {
            let (credentials, names) = try await withStore(try options.load()) { store in
                (try await store.credentials(), try await tenantNames(in: store))
            }
            let rows = credentials.map {
                Row(
                    name: $0.name, tenant: $0.scope.tenant.map { names[$0] ?? $0.description }, operator: $0.scope == .all,
                    networks: $0.networks.map(\.description), domains: $0.domains, created_at: ISO8601.format($0.createdAt))
            }
            if json {
                try printJSON(rows)
            } else {
                for row in rows {
                    print(
                        "\(row.name)\t\(row.tenant ?? "(operator)")\t\(row.networks.isEmpty ? "-" : row.networks.joined(separator: ","))"
                            + "\t\(row.domains.isEmpty ? "any domain" : row.domains.joined(separator: ","))\t\(row.created_at)")
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a credential.")
        @OptionGroup var options: ConfigOption
        @Argument var name: String

        func run() async throws {
            let removed = try await withStore(try options.load()) { store in try await store.removeCredential(named: name) }
            guard removed else { throw ValidationError("no credential named \(name)") }
            print("removed \(name)")
        }
    }
}
