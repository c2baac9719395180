/// One host to try, in order, when delivering to a domain (RFC 5321 §5.1).
public struct MXCandidate: Hashable, Sendable {
    /// The exchange name (or the domain itself for an implicit MX).
    public var host: DNSName
    /// The MX preference; 0 for an implicit MX.
    public var preference: UInt16
    /// True when the domain has no MX and its own address records are used (RFC 5321 §5.1).
    public var isImplicit: Bool
    /// Set when the exchange is an IP address literal rather than a name (not allowed by RFC 5321, but seen
    /// and accepted, as Postfix does); no address lookup is needed.
    public var literal: IPAddress?

    public init(host: DNSName, preference: UInt16, isImplicit: Bool = false, literal: IPAddress? = nil) {
        self.host = host
        self.preference = preference
        self.isImplicit = isImplicit
        self.literal = literal
    }
}

/// A host to connect to, with its addresses in the order to try them.
public struct MailExchanger: Hashable, Sendable {
    public var host: DNSName
    public var preference: UInt16
    public var isImplicit: Bool
    public var addresses: [IPAddress]

    public init(host: DNSName, preference: UInt16, isImplicit: Bool, addresses: [IPAddress]) {
        self.host = host
        self.preference = preference
        self.isImplicit = isImplicit
        self.addresses = addresses
    }
}

/// Why a domain has no host to deliver to, with the enhanced status code (RFC 3463) delivery reports.
public struct MailRoutingError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        /// A null MX: the domain accepts no mail (RFC 7505 §3). 5.1.10, permanent.
        public static let nullMX = Code(name: "nullMX")
        /// NXDOMAIN for the domain (RFC 3463 §3.2, X.1.2). 5.1.2, permanent.
        public static let domainNotFound = Code(name: "domainNotFound")
        /// Every host (or the domain itself) exists but has no A/AAAA, or does not exist. 5.4.4, permanent.
        public static let noAddress = Code(name: "noAddress")
        /// The DNS could not answer now (timeout, SERVFAIL, …). 4.4.3, a deferral.
        public static let temporaryFailure = Code(name: "temporaryFailure")
    }

    public var code: Code
    public var domain: String
    public var detail: String

    public init(_ code: Code, domain: String, detail: String) {
        self.code = code
        self.domain = domain
        self.detail = detail
    }

    /// True when delivery should bounce; false when it should defer and retry.
    public var isPermanent: Bool { code != .temporaryFailure }

    /// RFC 3463 enhanced status code: 5.1.10 (RFC 7505 §4.2), 5.1.2, 5.4.4 or 4.4.3.
    public var enhancedStatus: String {
        switch code {
        case .nullMX: "5.1.10"
        case .domainNotFound: "5.1.2"
        case .noAddress: "5.4.4"
        default: "4.4.3"
        }
    }

    public var description: String { "\(enhancedStatus) \(domain): \(detail)" }
}

/// Which address family to try first for each host. Connection order within a host follows it.
public enum AddressPreference: Sendable, Hashable {
    /// IPv4 addresses, then IPv6. The default: many senders' IPv6 egress lacks the reverse DNS large receivers
    /// require, so IPv4 is the safer first try.
    case ipv4First
    case ipv6First
    case ipv4Only
    case ipv6Only
}

/// RFC 5321 §5.1 destination selection, pure.
public enum MXSelection {
    /// Most hosts returned, as Postfix's `smtp_mx_address_limit` bounds work per domain.
    public static let defaultMaxHosts = 10

    /// Orders an MX answer for delivery.
    ///
    /// - Sorts by preference and shuffles hosts of equal preference (RFC 5321 §5.1).
    /// - No MX records (NODATA): the domain itself is the single, implicit MX (RFC 5321 §5.1).
    /// - A null MX — `.` as the only exchange (RFC 7505 §3) — throws `.nullMX` (5.1.10). A `.` mixed with real
    ///   exchanges is ignored and the real ones are used.
    /// - A host listed twice keeps its best preference.
    public static func order(
        _ records: [MXRecord], domain: DNSName, maxHosts: Int = defaultMaxHosts, using random: inout some RandomNumberGenerator
    ) throws(MailRoutingError) -> [MXCandidate] {
        if records.isEmpty {
            return [MXCandidate(host: domain, preference: 0, isImplicit: true, literal: literal(domain))]
        }
        let real = records.filter { !$0.isNullMX }
        if real.isEmpty {
            throw MailRoutingError(.nullMX, domain: domain.description, detail: "domain does not accept mail (null MX)")
        }
        var best: [DNSName: UInt16] = [:]
        var firstSeen: [DNSName] = []
        for record in real {
            if let known = best[record.exchange] {
                best[record.exchange] = min(known, record.preference)
            } else {
                best[record.exchange] = record.preference
                firstSeen.append(record.exchange)
            }
        }
        var byPreference: [UInt16: [DNSName]] = [:]
        for host in firstSeen { byPreference[best[host] ?? 0, default: []].append(host) }
        var ordered: [MXCandidate] = []
        for preference in byPreference.keys.sorted() {
            for host in (byPreference[preference] ?? []).shuffled(using: &random) {
                ordered.append(MXCandidate(host: host, preference: preference, literal: literal(host)))
            }
        }
        return Array(ordered.prefix(max(1, maxHosts)))
    }

    /// An exchange written as an address: `192.0.2.1`, `[192.0.2.1]`, `[IPv6:2001:db8::1]`.
    static func literal(_ host: DNSName) -> IPAddress? {
        var text = host.description
        if text.hasPrefix("["), text.hasSuffix("]") {
            text = String(text.dropFirst().dropLast())
            if text.lowercased().hasPrefix("ipv6:") { text = String(text.dropFirst(5)) }
        }
        return IPAddress(text)
    }

    /// Orders a host's addresses by family preference, keeping each family's DNS order.
    public static func arrange(v4: [IPv4Address], v6: [IPv6Address], preference: AddressPreference) -> [IPAddress] {
        let four = v4.map(IPAddress.v4)
        let six = v6.map(IPAddress.v6)
        switch preference {
        case .ipv4First: return four + six
        case .ipv6First: return six + four
        case .ipv4Only: return four
        case .ipv6Only: return six
        }
    }
}

extension DNSResolving {
    /// The hosts to deliver `domain`'s mail to, in order, each with its addresses (RFC 5321 §5.1).
    ///
    /// Trying the next host or address on connection failure is the caller's job. Hosts whose addresses cannot be
    /// found are left out; if none remains, the error is temporary (4.4.3) when any lookup failed temporarily, and
    /// permanent (5.4.4) otherwise. Exchanges that are CNAMEs are followed although RFC 2181 §10.3 forbids them,
    /// as Postfix does.
    public func mailExchangers(
        for domain: String,
        addressPreference: AddressPreference = .ipv4First,
        maxHosts: Int = MXSelection.defaultMaxHosts,
        using random: inout some RandomNumberGenerator
    ) async throws(MailRoutingError) -> [MailExchanger] {
        let domainName: DNSName
        do {
            domainName = try DNSName(domain)
        } catch {
            throw MailRoutingError(.domainNotFound, domain: domain, detail: "invalid domain name: \(error.hint)")
        }
        if let literal = MXSelection.literal(domainName) {
            return [MailExchanger(host: domainName, preference: 0, isImplicit: true, addresses: [literal])]
        }
        let records: [MXRecord]
        do {
            records = try await mx(domainName.description)
        } catch {
            if error.code == .nameDoesNotExist {
                throw MailRoutingError(.domainNotFound, domain: domain, detail: "domain does not exist")
            }
            if error.isPermanent { throw MailRoutingError(.domainNotFound, domain: domain, detail: error.description) }
            throw MailRoutingError(.temporaryFailure, domain: domain, detail: error.description)
        }
        let candidates = try MXSelection.order(records, domain: domainName, maxHosts: maxHosts, using: &random)

        var exchangers: [MailExchanger] = []
        var lastTemporary: DNSError? = nil
        var lastPermanent: String? = nil
        for candidate in candidates {
            if let literal = candidate.literal {
                exchangers.append(
                    MailExchanger(host: candidate.host, preference: candidate.preference, isImplicit: candidate.isImplicit, addresses: [literal])
                )
                continue
            }
            var v4: [IPv4Address] = []
            var v6: [IPv6Address] = []
            if addressPreference != .ipv6Only {
                do { v4 = try await a(candidate.host.description) } catch {
                    if error.isPermanent { lastPermanent = error.description } else { lastTemporary = error }
                }
            }
            if addressPreference != .ipv4Only {
                do { v6 = try await aaaa(candidate.host.description) } catch {
                    if error.isPermanent { lastPermanent = error.description } else { lastTemporary = error }
                }
            }
            let addresses = MXSelection.arrange(v4: v4, v6: v6, preference: addressPreference)
            if addresses.isEmpty {
                if lastPermanent == nil, lastTemporary == nil { lastPermanent = "\(candidate.host) has no address record" }
                continue
            }
            exchangers.append(
                MailExchanger(host: candidate.host, preference: candidate.preference, isImplicit: candidate.isImplicit, addresses: addresses)
            )
        }
        if exchangers.isEmpty {
            if let lastTemporary {
                throw MailRoutingError(.temporaryFailure, domain: domain, detail: lastTemporary.description)
            }
            throw MailRoutingError(.noAddress, domain: domain, detail: lastPermanent ?? "no address for any mail exchanger")
        }
        return exchangers
    }
}
