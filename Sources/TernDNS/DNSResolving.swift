/// The records a lookup found, after following CNAMEs.
public struct DNSAnswer: Hashable, Sendable {
    public var question: DNSQuestion
    /// The name the records belong to: the question's name, or the end of its CNAME chain.
    public var canonicalName: DNSName
    /// Records of the asked type at `canonicalName`. Empty means NODATA: the name exists but has no such record
    /// (RFC 2308 §2.2).
    public var records: [DNSResourceRecord]

    public init(question: DNSQuestion, canonicalName: DNSName, records: [DNSResourceRecord]) {
        self.question = question
        self.canonicalName = canonicalName
        self.records = records
    }

    public var isNoData: Bool { records.isEmpty }
}

/// Asynchronous DNS lookups. `DNSResolver` implements it over the network; tests can substitute a table.
public protocol DNSResolving: Sendable {
    /// Looks up `type` records for `name`, following CNAMEs.
    /// - Returns: the answer; NODATA is an answer with no records.
    /// - Throws: `DNSError`; `.nameDoesNotExist` (NXDOMAIN) is the only permanent code a server can cause.
    func lookup(_ name: DNSName, _ type: DNSRecordType) async throws(DNSError) -> DNSAnswer
}

extension DNSResolving {
    /// MX records of `domain` as received (unsorted); `[]` for NODATA (RFC 1035 §3.3.9).
    /// Use `mailExchangers(for:)` for the RFC 5321 §5.1 delivery order.
    public func mx(_ domain: String) async throws(DNSError) -> [MXRecord] {
        try await lookup(parse(domain, .mx), .mx).records.compactMap {
            if case .mx(let mx) = $0.data { return mx }
            return nil
        }
    }

    /// IPv4 addresses of `host`; `[]` for NODATA.
    public func a(_ host: String) async throws(DNSError) -> [IPv4Address] {
        try await lookup(parse(host, .a), .a).records.compactMap {
            if case .a(let address) = $0.data { return address }
            return nil
        }
    }

    /// IPv6 addresses of `host`; `[]` for NODATA (RFC 3596).
    public func aaaa(_ host: String) async throws(DNSError) -> [IPv6Address] {
        try await lookup(parse(host, .aaaa), .aaaa).records.compactMap {
            if case .aaaa(let address) = $0.data { return address }
            return nil
        }
    }

    /// TXT records of `name`; `[]` for NODATA. `TXTRecord.text` gives the joined form SPF and DKIM read.
    public func txt(_ name: String) async throws(DNSError) -> [TXTRecord] {
        try await lookup(parse(name, .txt), .txt).records.compactMap {
            if case .txt(let txt) = $0.data { return txt }
            return nil
        }
    }

    private func parse(_ text: String, _ type: DNSRecordType) throws(DNSError) -> DNSName {
        do {
            return try DNSName(text)
        } catch {
            throw DNSError(.invalidName, name: text, type: type, detail: error.hint)
        }
    }
}
