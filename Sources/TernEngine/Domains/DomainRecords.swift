import DKIM
public import TernCore
public import TernDNS

/// The DNS records a sending domain needs, ready to paste into a zone, and what a lookup
/// found for each.
/// - SeeAlso: RFC 6376 §3.6.2 (DKIM key records), RFC 7208 (SPF), RFC 7489 §6.1 (DMARC),
///   RFC 5321 §5.1 (MX)
public struct DomainRecord: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable {
        case dkim
        case returnPathMX = "return_path_mx"
        case spf
        case dmarc
        case trackingCNAME = "tracking_cname"
    }

    public var kind: Kind
    /// Fully qualified, without the final dot.
    public var name: String
    /// `TXT`, `MX` or `CNAME`.
    public var type: String
    /// The value to publish (for MX: `preference exchange.`).
    public var value: String
    /// Needed for the domain to count as verified (DKIM and the return-path MX).
    public var required: Bool

    public init(kind: Kind, name: String, type: String, value: String, required: Bool) {
        self.kind = kind
        self.name = name
        self.type = type
        self.value = value
        self.required = required
    }

    /// The record as a zone-file line; long TXT values are split into 255-octet strings.
    public var zoneLine: String {
        switch type {
        case "TXT":
            return "\(name). IN TXT \(DKIMKeyRecord.zoneFileText(value))"
        default:
            return "\(name). IN \(type) \(value)"
        }
    }
}

/// Which records a domain needs, given where Tern runs.
public struct DomainRecordPlan: Sendable {
    /// The host name of Tern's MX (what the return-path MX must point at), and the host the
    /// SPF record names (`a:` mechanism: the address mail is sent from).
    public var mxHost: String
    public var sendingHost: String
    /// The host of `http.public_url`; it gets a CNAME when it lies in the customer's domain.
    public var trackingHost: String?
    public var returnPaths: ReturnPaths

    public init(mxHost: String, sendingHost: String, trackingHost: String?, returnPaths: ReturnPaths) {
        self.mxHost = mxHost.lowercased()
        self.sendingHost = sendingHost.lowercased()
        self.trackingHost = trackingHost?.lowercased()
        self.returnPaths = returnPaths
    }

    public func records(for domain: SendingDomain) -> [DomainRecord] {
        var records = domain.signingKeys.map { key in
            DomainRecord(kind: .dkim, name: "\(key.selector)._domainkey.\(domain.name)", type: "TXT", value: key.publicRecord, required: true)
        }
        let returnPath = domain.returnPathDomain ?? returnPaths.domain(forSendingDomain: domain.name)
        records.append(DomainRecord(kind: .returnPathMX, name: returnPath, type: "MX", value: "10 \(mxHost).", required: true))
        records.append(DomainRecord(kind: .spf, name: domain.name, type: "TXT", value: "v=spf1 a:\(sendingHost) ~all", required: false))
        records.append(DomainRecord(
            kind: .dmarc, name: "_dmarc.\(domain.name)", type: "TXT", value: "v=DMARC1; p=none; rua=mailto:dmarc@\(domain.name)",
            required: false))
        if let trackingHost, trackingHost == domain.name || trackingHost.hasSuffix("." + domain.name), trackingHost != sendingHost {
            records.append(DomainRecord(kind: .trackingCNAME, name: trackingHost, type: "CNAME", value: "\(sendingHost).", required: false))
        }
        return records
    }
}

/// What a lookup found for one record.
public struct RecordCheck: Sendable, Equatable, Codable {
    public enum Status: String, Sendable, Codable {
        case ok
        case missing
        case wrong
        /// The lookup failed (time-out, server failure): neither right nor wrong.
        case unknown
    }

    public var record: DomainRecord
    public var status: Status
    /// What the lookup returned, as text.
    public var found: [String]
    public var note: String?

    public init(record: DomainRecord, status: Status, found: [String], note: String? = nil) {
        self.record = record
        self.status = status
        self.found = found
        self.note = note
    }
}

/// Looks a domain's records up (through the delivery resolver) and says, for each, whether
/// it is there and right. The domain is verified when every required record is.
public struct DomainVerifier: Sendable {
    private let resolver: any DNSResolving

    public init(resolver: any DNSResolving) {
        self.resolver = resolver
    }

    public func check(_ records: [DomainRecord]) async -> [RecordCheck] {
        var checks: [RecordCheck] = []
        for record in records { checks.append(await check(record)) }
        return checks
    }

    public static func isVerified(_ checks: [RecordCheck]) -> Bool {
        checks.allSatisfy { !$0.record.required || $0.status == .ok }
    }

    func check(_ record: DomainRecord) async -> RecordCheck {
        do {
            switch record.kind {
            case .dkim:
                let found = try await resolver.txt(record.name).map(\.text)
                let wanted = Self.tag("p", in: record.value)
                if found.contains(where: { Self.tag("p", in: $0) == wanted && wanted != nil }) {
                    return RecordCheck(record: record, status: .ok, found: found)
                }
                let keys = found.filter { $0.contains("p=") }
                return RecordCheck(
                    record: record, status: keys.isEmpty ? .missing : .wrong, found: found,
                    note: keys.isEmpty ? nil : "the published key is not this selector's key")
            case .returnPathMX:
                let found = try await resolver.mx(record.name).map { "\($0.preference) \($0.exchange)." }
                let wanted = Self.host(record.value.split(separator: " ").last.map(String.init) ?? "")
                if found.contains(where: { Self.host($0.split(separator: " ").last.map(String.init) ?? "") == wanted }) {
                    return RecordCheck(record: record, status: .ok, found: found)
                }
                return RecordCheck(
                    record: record, status: found.isEmpty ? .missing : .wrong, found: found,
                    note: found.isEmpty ? nil : "bounces would not reach Tern's MX (\(wanted))")
            case .spf:
                let found = try await resolver.txt(record.name).map(\.text).filter { $0.lowercased().hasPrefix("v=spf1") }
                guard let spf = found.first else { return RecordCheck(record: record, status: .missing, found: []) }
                if found.count > 1 {
                    return RecordCheck(record: record, status: .wrong, found: found, note: "more than one SPF record (RFC 7208 §4.5: permerror)")
                }
                let mechanism = record.value.split(separator: " ").first { $0.hasPrefix("a:") }.map { $0.lowercased() } ?? ""
                let covers = spf.lowercased().split(separator: " ").contains { $0.lowercased() == mechanism }
                return RecordCheck(
                    record: record, status: covers ? .ok : .wrong, found: found,
                    note: covers ? nil : "it does not name \(mechanism); fine if an include or ip4 covers Tern's address")
            case .dmarc:
                let found = try await resolver.txt(record.name).map(\.text).filter { $0.hasPrefix("v=DMARC1") }
                return RecordCheck(record: record, status: found.isEmpty ? .missing : .ok, found: found)
            case .trackingCNAME:
                let answer = try await resolver.lookup(try DNSName(record.name), .a)
                let target = Self.host(record.value)
                let canonical = Self.host(answer.canonicalName.description)
                return RecordCheck(
                    record: record, status: canonical == target ? .ok : (canonical == Self.host(record.name) ? .missing : .wrong),
                    found: canonical == Self.host(record.name) ? [] : [canonical + "."])
            }
        } catch let error as DNSError where error.code == .nameDoesNotExist {
            return RecordCheck(record: record, status: .missing, found: [], note: "no such name (NXDOMAIN)")
        } catch {
            return RecordCheck(record: record, status: .unknown, found: [], note: "lookup failed: \(error)")
        }
    }

    /// A tag's value in a `tag=value; …` list (RFC 6376 §3.2), with white space removed.
    static func tag(_ name: String, in text: String) -> String? {
        for part in text.split(separator: ";") {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces) == name else { continue }
            return String(pair[1].filter { !$0.isWhitespace })
        }
        return nil
    }

    static func host(_ text: String) -> String {
        var host = text.lowercased()
        while host.hasSuffix(".") { host.removeLast() }
        return host
    }
}
