import Testing
@testable import TernDNS

@Suite("DNS cache (RFC 2308 negative caching, TTLs, LRU)")
struct DNSCacheTests {
    let t0 = ContinuousClock.now

    func answer(_ host: String, _ records: [DNSRecordData]) -> DNSCache.Outcome {
        .answer(DNSAnswer(question: DNSQuestion(name: name(host), type: .a), canonicalName: name(host), records: records.map {
            DNSResourceRecord(name: name(host), ttl: 1, data: $0)
        }))
    }

    func key(_ host: String) -> DNSCache.Key { DNSCache.Key(name: name(host), type: .a) }

    @Test(arguments: [
        // (ttl given, seconds later, still cached?)
        (UInt32(300), 299, true),
        (300, 300, false),
        (1, 0, true),
        (1, 1, false),
    ])
    func positiveEntriesExpireAtTheirTTL(_ ttl: UInt32, _ later: Int64, _ cached: Bool) {
        var cache = DNSCache()
        cache.insert(answer("a.test", [.a(IPv4Address(192, 0, 2, 1))]), for: key("a.test"), ttl: ttl, now: t0)
        #expect((cache.lookup(key("A.TEST"), now: t0 + .seconds(later)) != nil) == cached)
    }

    @Test func zeroTTLIsNotCached() {
        var cache = DNSCache()
        cache.insert(answer("a.test", [.a(IPv4Address(192, 0, 2, 1))]), for: key("a.test"), ttl: 0, now: t0)
        #expect(cache.count == 0)
    }

    @Test(arguments: [
        // NXDOMAIN and NODATA, TTL far above the cap: kept for the 1 h cap only.
        (DNSCache.Outcome.nameDoesNotExist, 3599, true),
        (.nameDoesNotExist, 3600, false),
        (.answer(DNSAnswer(question: DNSQuestion(name: DNSName(labels: ["n"]), type: .a), canonicalName: DNSName(labels: ["n"]), records: [])), 3599, true),
        (.answer(DNSAnswer(question: DNSQuestion(name: DNSName(labels: ["n"]), type: .a), canonicalName: DNSName(labels: ["n"]), records: [])), 3600, false),
    ])
    func negativeEntriesAreCapped(_ outcome: DNSCache.Outcome, _ later: Int64, _ cached: Bool) {
        var cache = DNSCache()
        cache.insert(outcome, for: key("n"), ttl: 86_400, now: t0)
        #expect((cache.lookup(key("n"), now: t0 + .seconds(later)) != nil) == cached)
    }

    @Test func positiveEntriesAreCapped() {
        var cache = DNSCache(maxTTL: .seconds(600))
        cache.insert(answer("a.test", [.a(IPv4Address(192, 0, 2, 1))]), for: key("a.test"), ttl: 604_800, now: t0)
        #expect(cache.lookup(key("a.test"), now: t0 + .seconds(599)) != nil)
        #expect(cache.lookup(key("a.test"), now: t0 + .seconds(600)) == nil)
    }

    @Test func evictsLeastRecentlyUsed() {
        var cache = DNSCache(capacity: 3)
        for host in ["a", "b", "c"] {
            cache.insert(answer(host, [.a(IPv4Address(192, 0, 2, 1))]), for: key(host), ttl: 300, now: t0)
        }
        _ = cache.lookup(key("a"), now: t0)  // b is now the least recently used
        cache.insert(answer("d", [.a(IPv4Address(192, 0, 2, 4))]), for: key("d"), ttl: 300, now: t0)
        #expect(cache.count == 3)
        #expect(cache.lookup(key("b"), now: t0) == nil)
        #expect(cache.lookup(key("a"), now: t0) != nil)
        #expect(cache.lookup(key("d"), now: t0) != nil)
    }

    @Test func evictsExpiredBeforeLive() {
        var cache = DNSCache(capacity: 2)
        cache.insert(answer("short", [.a(IPv4Address(192, 0, 2, 1))]), for: key("short"), ttl: 5, now: t0)
        cache.insert(answer("long", [.a(IPv4Address(192, 0, 2, 2))]), for: key("long"), ttl: 500, now: t0)
        _ = cache.lookup(key("short"), now: t0)  // recently used, but about to expire
        cache.insert(answer("new", [.a(IPv4Address(192, 0, 2, 3))]), for: key("new"), ttl: 500, now: t0 + .seconds(10))
        #expect(cache.lookup(key("long"), now: t0 + .seconds(10)) != nil)
        #expect(cache.lookup(key("new"), now: t0 + .seconds(10)) != nil)
    }

    @Test func staysBounded() {
        var cache = DNSCache(capacity: 100)
        for index in 0..<10_000 {
            cache.insert(answer("h\(index)", [.a(IPv4Address(value: UInt32(index)))]), for: key("h\(index)"), ttl: 300, now: t0)
            #expect(cache.count <= 100)
        }
    }
}

@Suite("Response interpretation (RFC 1035 §7.3, RFC 2308, RFC 5452)")
struct DNSResponseInterpretationTests {
    static let question = DNSQuestion(name: DNSName(labels: ["www", "example", "com"]), type: .a)

    @Test func answerThroughCNAMEUsesTheSmallestTTL() throws {
        let response = try DNSMessage(decoding: buffer(Vectors.cname))
        guard case .answer(let answer, let ttl) = DNSResponseInterpretation.interpret(response, question: Self.question) else {
            Issue.record("expected an answer")
            return
        }
        #expect(answer.canonicalName == name("example.com"))
        #expect(answer.records.count == 1)
        #expect(ttl == 120)
    }

    @Test func nxdomainUsesSOAMinimum() throws {
        let response = try DNSMessage(decoding: buffer(Vectors.nxdomain))
        // SOA TTL 1800, MINIMUM 300: RFC 2308 §5 takes the smaller.
        #expect(DNSResponseInterpretation.interpret(response, question: DNSQuestion(name: name("nope.example.com"), type: .mx)) == .nameDoesNotExist(ttl: 300))
    }

    @Test func noDataWithoutSOAIsNotCached() {
        let response = DNSMessage(header: DNSHeader(id: 1, isResponse: true), questions: [Self.question])
        guard case .answer(let answer, let ttl) = DNSResponseInterpretation.interpret(response, question: Self.question) else {
            Issue.record("expected NODATA")
            return
        }
        #expect(answer.isNoData)
        #expect(ttl == nil)
    }

    @Test func danglingCNAMEIsFollowed() {
        let response = DNSMessage(
            header: DNSHeader(id: 1, isResponse: true), questions: [Self.question],
            answers: [DNSResourceRecord(name: Self.question.name, ttl: 60, data: .cname(name("elsewhere.test")))]
        )
        guard case .followCNAME(let target, _) = DNSResponseInterpretation.interpret(response, question: Self.question) else {
            Issue.record("expected a CNAME to follow")
            return
        }
        #expect(target == name("elsewhere.test"))
    }

    @Test func cnameLoopIsMalformed() {
        let response = DNSMessage(
            header: DNSHeader(id: 1, isResponse: true), questions: [Self.question],
            answers: [
                DNSResourceRecord(name: Self.question.name, ttl: 60, data: .cname(name("b.test"))),
                DNSResourceRecord(name: name("b.test"), ttl: 60, data: .cname(Self.question.name)),
            ]
        )
        #expect(DNSResponseInterpretation.interpret(response, question: Self.question) == .failure(.malformedResponse, .noError))
    }

    @Test(arguments: [
        (DNSResponseCode.serverFailure, DNSError.Code.serverFailure),
        (.refused, .refused),
        (.formatError, .unexpectedResponse),
        (.notImplemented, .unexpectedResponse),
    ])
    func failureCodes(_ rcode: DNSResponseCode, _ code: DNSError.Code) {
        let response = DNSMessage(header: DNSHeader(id: 1, isResponse: true, responseCode: rcode), questions: [Self.question])
        #expect(DNSResponseInterpretation.interpret(response, question: Self.question) == .failure(code, rcode))
        #expect(!DNSError(code, name: "x", type: .a).isPermanent)
    }

    @Test func matchesOnlyOurResponse() {
        let query = DNSMessage.query(id: 0x4242, name: Self.question.name, type: .a)
        var response = DNSMessage(header: DNSHeader(id: 0x4242, isResponse: true), questions: [DNSQuestion(name: name("WWW.example.COM"), type: .a)])
        #expect(DNSResponseInterpretation.matches(response, query: query))
        response.header.id = 0x4243
        #expect(!DNSResponseInterpretation.matches(response, query: query))
        response.header.id = 0x4242
        response.questions = [DNSQuestion(name: name("evil.test"), type: .a)]
        #expect(!DNSResponseInterpretation.matches(response, query: query))
        response.questions = [DNSQuestion(name: Self.question.name, type: .aaaa)]
        #expect(!DNSResponseInterpretation.matches(response, query: query))
        response.questions = [Self.question]
        response.header.isResponse = false
        #expect(!DNSResponseInterpretation.matches(response, query: query))
    }
}

@Suite("TCP framing (RFC 1035 §4.2.2) and configuration")
struct DNSTransportSupportTests {
    @Test func framesAndSplitsByteByByte() throws {
        let query = DNSMessage.query(id: 9, name: name("example.com"), type: .mx)
        var stream = DNSTCPFraming.frame(query)
        stream.writeImmutableBuffer(DNSTCPFraming.frame(query))
        let all = Array(buffer: stream)
        var incoming = buffer([])
        var frames: [DNSMessage] = []
        for byte in all {
            incoming.writeInteger(byte)
            let before = incoming.readerIndex
            if let frame = DNSTCPFraming.nextFrame(from: &incoming) {
                frames.append(try DNSMessage(decoding: frame))
            } else {
                #expect(incoming.readerIndex == before)  // short input leaves the reader index alone
            }
        }
        #expect(frames == [query, query])
    }

    @Test(arguments: [
        ("127.0.0.1", "127.0.0.1:53"),
        ("127.0.0.1:5353", "127.0.0.1:5353"),
        ("[::1]:53", "[::1]:53"),
        ("[::1]", "[::1]:53"),
        ("::1", "[::1]:53"),
        (" 10.0.0.1:1053 ", "10.0.0.1:1053"),
    ])
    func parsesServerAddresses(_ text: String, _ expected: String) {
        #expect(DNSServerAddress(text)?.description == expected)
    }

    @Test(arguments: ["", "localhost", "127.0.0.1:0", "127.0.0.1:70000", "[::1]x", "[::1]:", "1.2.3.4:53:53", "dns.google:53"])
    func rejectsServerAddresses(_ text: String) {
        #expect(DNSServerAddress(text) == nil)
    }

    @Test func readsResolvConf() {
        let conf = """
            # generated
            search example.com
            nameserver 10.255.255.53
            nameserver\t2001:db8::53
            nameserver fe80::1%eth0
            nameserver not-an-address
            options timeout:1 attempts:3
            ;nameserver 9.9.9.9
            """
        #expect(DNSServerAddress.parseResolvConf(conf).map(\.description) == ["10.255.255.53:53", "[2001:db8::53]:53", "[fe80::1]:53"])
    }

    @Test func configurationFromStrings() {
        #expect(DNSResolver.Configuration(servers: ["127.0.0.1:5353", "[::1]:53"])?.servers.count == 2)
        #expect(DNSResolver.Configuration(servers: ["127.0.0.1:5353", "nonsense"]) == nil)
    }
}
