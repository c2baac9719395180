import ArgumentParser
import DKIM
import Foundation
import NIOPosix
import TernCore
import TernEngine
import TernHTTP

/// `tern domain …`: sending domains, their DKIM keys and the DNS records to publish.
struct DomainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "domain",
        abstract: "Manage sending domains: DKIM keys, the DNS records to publish, and their verification.",
        subcommands: [Add.self, List.self, Remove.self, RotateDKIM.self, Verify.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a sending domain with a new DKIM key (RSA 2048; --ed25519 adds an Ed25519 key too) and print the DNS records to publish.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The domain, e.g. example.com.") var name: String
        @Flag(help: "Also an Ed25519 key, for dual signing (RFC 8463).") var ed25519 = false
        @Option(help: "Where bounces come back (default: bounces.<domain>).") var returnPathDomain: String?
        @Option(help: "What is tracked for mail from it: opens,clicks,unsubscribe | all | none.") var track: String?
        @Option(help: "Where inbound mail for it is posted: an http(s) URL, or 'store'.") var inboundRoute: String?
        @Option(help: "The tenant that sends from it (default: default); a domain belongs to one tenant.") var tenant: String?
        @Flag(help: "Print the domain and its records as JSON.") var json = false

        func run() async throws {
            let name = try DomainCommand.validated(name)
            if let track, TrackingFeatures(list: track) == nil {
                throw ValidationError("--track must list opens, clicks, unsubscribe (or be all or none)")
            }
            if let route = inboundRoute, route.lowercased() != "store" {
                guard let url = URL(string: route), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
                    throw ValidationError("--inbound-route must be an http(s) URL or 'store'")
                }
            }
            let configuration = try options.load()
            let now = Date()
            var domain = SendingDomain(
                name: name, returnPathDomain: try returnPathDomain.map(DomainCommand.validated), track: track, inboundRoute: inboundRoute,
                createdAt: now, keys: try DomainCommand.newKeys(ed25519: ed25519, at: now, taken: []))
            do {
                domain = try await withStore(configuration) { store in
                    var domain = domain
                    domain.tenant = try await resolveTenant(tenant, in: store).id
                    try await store.addDomain(domain)
                    return domain
                }
            } catch let error as StoreError where error.code == .duplicate {
                throw ValidationError(error.message)
            }
            try DomainCommand.printRecords(of: domain, configuration: configuration, json: json)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List sending domains.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var filter: TenantFilter

        func run() async throws {
            let configuration = try options.load()
            let (domains, names) = try await withStore(configuration) { store in
                let scope = try await filter.scope(in: store)
                return (try await store.domains().filter { scope.includes($0.tenant) }, try await tenantNames(in: store))
            }
            if json {
                try printJSON(domains.map {
                    var view = DomainView($0, records: configuration.domainRecordPlan().records(for: $0))
                    view.tenant = names[$0.tenant]
                    return view
                })
                return
            }
            if domains.isEmpty { print("no sending domains (tern domain add example.com)") }
            for domain in domains {
                let keys = domain.signingKeys.map { "\($0.selector) (\($0.algorithm))" }.joined(separator: ", ")
                print("\(domain.name)\t\(names[domain.tenant] ?? "?")\t\(domain.verifiedAt.map { "verified \(ISO8601.format($0))" } ?? "not verified")\tsigning: \(keys.isEmpty ? "-" : keys)")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a sending domain and its keys.")
        @OptionGroup var options: ConfigOption
        @Argument var name: String

        func run() async throws {
            let removed = try await withStore(try options.load()) { store in try await store.removeDomain(named: name) }
            guard removed else { throw ValidationError("no sending domain \(name)") }
            print("removed \(name.lowercased())")
        }
    }

    struct RotateDKIM: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-dkim",
            abstract: "Give a domain new DKIM keys under new selectors. The old keys stop signing at once; keep their records published for a week or two, until mail signed with them has been checked.")
        @OptionGroup var options: ConfigOption
        @Argument var name: String
        @Flag(help: "An Ed25519 key too (default: as the domain has now).") var ed25519 = false
        @Flag(help: "Print the domain and its records as JSON.") var json = false

        func run() async throws {
            let configuration = try options.load()
            let (domain, rotated) = try await withStore(configuration) { store in
                let domain = try await DomainCommand.domain(name, in: store)
                let now = Date()
                let dual = ed25519 || domain.signingKeys.contains { $0.algorithm == "ed25519" }
                let keys = try DomainCommand.newKeys(ed25519: dual, at: now, taken: Set(domain.keys.map(\.selector)))
                try await store.rotateKeys(of: domain.name, to: keys, at: now)
                try await store.setVerified(domain.name, at: nil)
                return (domain, try await store.domain(named: domain.name) ?? domain)
            }
            try DomainCommand.printRecords(of: rotated, configuration: configuration, json: json)
            if !json {
                let retired = domain.signingKeys.map(\.selector).joined(separator: ", ")
                print("\nretired (no longer signing; keep published for a while): \(retired)")
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Look a domain's records up (through delivery.dns_servers) and report each as ok, missing, wrong or unknown. The domain is verified when its DKIM records and return-path MX are right.")
        @OptionGroup var options: ConfigOption
        @Argument var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let configuration = try options.load()
            let resolver = try configuration.dnsResolver(group: MultiThreadedEventLoopGroup.singleton)
            let (domain, checks, verified) = try await withStore(configuration) { store in
                let domain = try await DomainCommand.domain(name, in: store)
                let checks = await DomainVerifier(resolver: resolver).check(configuration.domainRecordPlan().records(for: domain))
                let verified = DomainVerifier.isVerified(checks)
                try await store.setVerified(domain.name, at: verified ? Date() : nil)
                return (domain, checks, verified)
            }
            if json {
                try printJSON(VerificationView(domain: domain.name, verified: verified, records: checks))
            } else {
                for check in checks {
                    var line = "\(check.status.rawValue)\t\(check.record.kind.rawValue)\t\(check.record.name) \(check.record.type)"
                    if check.status != .ok {
                        line += "\n\twant:  \(check.record.value)"
                        if !check.found.isEmpty { line += "\n\tfound: \(check.found.joined(separator: " | "))" }
                    }
                    if let note = check.note { line += "\n\t(\(note))" }
                    print(line)
                }
                print(verified ? "\(domain.name) is verified" : "\(domain.name) is not verified: its DKIM record(s) and return-path MX must be right")
            }
            if !verified { throw ExitCode(2) }
        }
    }

    /// The sending domain `name` in the store; a usage error when there is none.
    static func domain(_ name: String, in store: any Store) async throws -> SendingDomain {
        guard let domain = try await store.domain(named: name) else {
            throw ValidationError("no sending domain \(name)")
        }
        return domain
    }

    /// A lower-case domain name with at least one dot, or a usage error.
    static func validated(_ text: String) throws -> String {
        let name = text.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: ". "))
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, labels.allSatisfy({ label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" }
        }) else {
            throw ValidationError("'\(text)' is not a domain name (e.g. example.com)")
        }
        return name
    }

    /// New keys with dated selectors (`t20261129`, and `t20261129e` for Ed25519), unique among `taken`.
    static func newKeys(ed25519: Bool, at date: Date, taken: Set<String>) throws -> [DomainKey] {
        var components = DateComponents()
        let calendar = Calendar(identifier: .gregorian)
        var utc = calendar
        utc.timeZone = TimeZone(identifier: "UTC") ?? .current
        components = utc.dateComponents([.year, .month, .day], from: date)
        let stamp = String(format: "t%04d%02d%02d", components.year ?? 0, components.month ?? 0, components.day ?? 0)
        var base = stamp
        var counter = 1
        while taken.contains(base) || taken.contains(base + "e") {
            counter += 1
            base = "\(stamp)-\(counter)"
        }
        var keys: [DomainKey] = []
        let rsa = try DKIMPrivateKey.generateRSA()
        keys.append(DomainKey(selector: base, algorithm: "rsa", privateKeyPEM: rsa.pemRepresentation, publicRecord: rsa.dnsRecordValue, createdAt: date))
        if ed25519 {
            let key = DKIMPrivateKey.generateEd25519()
            keys.append(DomainKey(selector: base + "e", algorithm: "ed25519", privateKeyPEM: key.pemRepresentation, publicRecord: key.dnsRecordValue, createdAt: date))
        }
        return keys
    }

    static func printRecords(of domain: SendingDomain, configuration: TernConfiguration, json: Bool) throws {
        let records = configuration.domainRecordPlan().records(for: domain)
        if json {
            try printJSON(DomainView(domain, records: records))
            return
        }
        print("\(domain.name): publish these records, then run `tern domain verify \(domain.name)`:\n")
        for record in records {
            print("; \(record.kind.rawValue)\(record.required ? " (required)" : " (suggested)")")
            print(record.zoneLine)
        }
    }
}

/// A domain as `--json` prints it (never its private keys).
struct DomainView: Encodable {
    var name: String
    /// The tenant's name, where the command knows it.
    var tenant: String?
    var returnPathDomain: String?
    var track: String?
    var inboundRoute: String?
    var createdAt: String
    var verifiedAt: String?
    var keys: [Key]
    var records: [DomainRecord]

    struct Key: Encodable {
        var selector: String
        var algorithm: String
        var createdAt: String
        var retiredAt: String?

        enum CodingKeys: String, CodingKey {
            case selector, algorithm
            case createdAt = "created_at"
            case retiredAt = "retired_at"
        }
    }

    init(_ domain: SendingDomain, records: [DomainRecord]) {
        name = domain.name
        returnPathDomain = domain.returnPathDomain
        track = domain.track
        inboundRoute = domain.inboundRoute
        createdAt = ISO8601.format(domain.createdAt)
        verifiedAt = domain.verifiedAt.map { ISO8601.format($0) }
        keys = domain.keys.map {
            Key(selector: $0.selector, algorithm: $0.algorithm, createdAt: ISO8601.format($0.createdAt), retiredAt: $0.retiredAt.map { ISO8601.format($0) })
        }
        self.records = records
    }

    enum CodingKeys: String, CodingKey {
        case name, tenant, track, keys, records
        case returnPathDomain = "return_path_domain"
        case inboundRoute = "inbound_route"
        case createdAt = "created_at"
        case verifiedAt = "verified_at"
    }
}

struct VerificationView: Encodable {
    var domain: String
    var verified: Bool
    var records: [RecordCheck]
}

extension TernConfiguration {
    /// The records of a domain: its return-path MX points at `smtp.mx.hostname` (or
    /// `hostname`), SPF names `hostname`, and the tracking host gets a CNAME when it lies in
    /// the domain.
    func domainRecordPlan() -> DomainRecordPlan {
        DomainRecordPlan(
            mxHost: mx.hostname ?? hostname, sendingHost: hostname, trackingHost: URL(string: http.publicURL)?.host,
            returnPaths: returnPaths())
    }
}
