/// What a response says about a question, pure (RFC 1035 §7.3, RFC 2308, RFC 2181 §10.1).
enum DNSResponseInterpretation {
    /// Longest CNAME chain followed within one response or across queries.
    static let maxCNAMEChain = 16

    enum Outcome: Hashable, Sendable {
        /// Records (possibly none: NODATA) and how long they may be cached; nil TTL: do not cache.
        case answer(DNSAnswer, ttl: UInt32?)
        /// NXDOMAIN for the final name of the chain (RFC 6604 §2).
        case nameDoesNotExist(ttl: UInt32?)
        /// The server stopped at a CNAME without the target's records; ask again for `target`.
        case followCNAME(target: DNSName, chain: [DNSResourceRecord])
        /// A failure RCODE.
        case failure(DNSError.Code, DNSResponseCode)
    }

    /// A response answers our query when it is a response, carries our id and echoes our question
    /// (names compared case-insensitively). Anything else is ignored as stray or spoofed (RFC 5452 §4.1).
    static func matches(_ response: DNSMessage, query: DNSMessage) -> Bool {
        response.header.isResponse && response.header.id == query.header.id && response.header.opcode == query.header.opcode
            && response.questions == query.questions
    }

    static func interpret(_ response: DNSMessage, question: DNSQuestion) -> Outcome {
        switch response.header.responseCode {
        case .noError, .nameError: break
        case .serverFailure: return .failure(.serverFailure, response.header.responseCode)
        case .refused: return .failure(.refused, response.header.responseCode)
        default: return .failure(.unexpectedResponse, response.header.responseCode)
        }
        var current = question.name
        var chain: [DNSResourceRecord] = []
        var seen: Set<DNSName> = [current]
        while true {
            let records = response.answers.filter {
                $0.name == current && $0.type == question.type && $0.recordClass == question.recordClass
            }
            if !records.isEmpty {
                let ttl = (records + chain).map(\.ttl).min()
                return .answer(DNSAnswer(question: question, canonicalName: current, records: records), ttl: ttl)
            }
            guard question.type != .cname,
                  let cname = response.answers.first(where: { $0.name == current && $0.type == .cname }),
                  case .cname(let target) = cname.data
            else { break }
            chain.append(cname)
            guard seen.insert(target).inserted, chain.count <= maxCNAMEChain else {
                return .failure(.malformedResponse, response.header.responseCode)
            }
            current = target
        }
        let negativeTTL = negativeCacheTTL(response)
        if response.header.responseCode == .nameError {
            return chain.isEmpty ? .nameDoesNotExist(ttl: negativeTTL) : .nameDoesNotExist(ttl: negativeTTL.map { min($0, chain.map(\.ttl).min() ?? $0) })
        }
        if !chain.isEmpty, negativeTTL == nil {
            return .followCNAME(target: current, chain: chain)
        }
        let ttl = negativeTTL.map { ttl in (chain.map(\.ttl) + [ttl]).min() ?? ttl }
        return .answer(DNSAnswer(question: question, canonicalName: current, records: []), ttl: ttl)
    }

    /// RFC 2308 §5: the negative TTL is the SOA record's TTL capped by its MINIMUM field.
    static func negativeCacheTTL(_ response: DNSMessage) -> UInt32? {
        for record in response.authorities {
            if case .soa(let soa) = record.data { return min(record.ttl, soa.minimum) }
        }
        return nil
    }
}
