import Testing
@testable import TernDNS

/// A resolver answering from a table; names not in it are NXDOMAIN.
struct TableResolver: DNSResolving {
    var answers: [String: [DNSRecordData]] = [:]
    var failures: [String: DNSError.Code] = [:]

    func lookup(_ name: DNSName, _ type: DNSRecordType) async throws(DNSError) -> DNSAnswer {
        let key = "\(name.canonical) \(type.description.lowercased())"
        if let code = failures[key] { throw DNSError(code, name: name.description, type: type) }
        guard let data = answers[key] else {
            if answers.keys.contains(where: { $0.hasPrefix(name.canonical + " ") }) {
                return DNSAnswer(question: DNSQuestion(name: name, type: type), canonicalName: name, records: [])
            }
            throw DNSError(.nameDoesNotExist, name: name.description, type: type)
        }
        return DNSAnswer(
            question: DNSQuestion(name: name, type: type), canonicalName: name,
            records: data.map { DNSResourceRecord(name: name, ttl: 60, data: $0) }
        )
    }
}

private func mx(_ preference: UInt16, _ host: String) -> MXRecord { MXRecord(preference: preference, exchange: name(host)) }

@Suite("MX selection (RFC 5321 §5.1, RFC 7505)")
struct MXSelectionTests {
    struct OrderCase: CustomTestStringConvertible, Sendable {
        var label: String
        var records: [MXRecord]
        /// Groups of hosts that must appear in this order, in any order within a group.
        var groups: [[String]]
        var testDescription: String { label }
    }

    static let orderCases: [OrderCase] = [
        OrderCase(label: "sorted by preference", records: [mx(20, "c"), mx(5, "a"), mx(10, "b")], groups: [["a"], ["b"], ["c"]]),
        OrderCase(label: "equal preferences grouped", records: [mx(10, "x"), mx(5, "a"), mx(10, "y"), mx(10, "z")], groups: [["a"], ["x", "y", "z"]]),
        OrderCase(label: "duplicate host keeps best", records: [mx(30, "a"), mx(10, "b"), mx(5, "A")], groups: [["a"], ["b"]]),
        OrderCase(label: "null MX beside real is ignored", records: [mx(0, "."), mx(10, "real")], groups: [["real"]]),
        OrderCase(label: "preference 0 and 65535", records: [mx(65535, "last"), mx(0, "first")], groups: [["first"], ["last"]]),
    ]

    @Test(arguments: orderCases)
    func orders(_ input: OrderCase) throws {
        for seed in 0..<20 as Range<UInt64> {
            var random = SeededGenerator(seed: seed)
            let hosts = try MXSelection.order(input.records, domain: name("example.com"), using: &random).map(\.host.canonical)
            var index = 0
            for group in input.groups {
                #expect(Set(hosts[index..<(index + group.count)]) == Set(group))
                index += group.count
            }
            #expect(hosts.count == index)
        }
    }

    @Test func shufflesEqualPreferencesDeterministically() throws {
        let records = (1...5).map { mx(10, "mx\($0).example") }
        var orders: Set<[String]> = []
        for seed in 0..<50 as Range<UInt64> {
            var random = SeededGenerator(seed: seed)
            orders.insert(try MXSelection.order(records, domain: name("example"), using: &random).map(\.host.description))
        }
        #expect(orders.count > 10)  // equal preferences really are spread
        var first = SeededGenerator(seed: 99), second = SeededGenerator(seed: 99)
        #expect(try MXSelection.order(records, domain: name("example"), using: &first) == MXSelection.order(records, domain: name("example"), using: &second))
    }

    @Test func implicitMXWhenNoRecords() throws {
        var random = SeededGenerator(seed: 1)
        #expect(try MXSelection.order([], domain: name("example.org"), using: &random) == [
            MXCandidate(host: name("example.org"), preference: 0, isImplicit: true)
        ])
    }

    @Test(arguments: [[mx(0, ".")], [mx(10, ".")], [mx(0, "."), mx(0, ".")]])
    func nullMXIsPermanent(_ records: [MXRecord]) {
        var random = SeededGenerator(seed: 1)
        #expect {
            try MXSelection.order(records, domain: name("example.org"), using: &random)
        } throws: { error in
            let error = error as? MailRoutingError
            return error?.code == .nullMX && error?.enhancedStatus == "5.1.10" && error?.isPermanent == true
        }
    }

    @Test func capsHostCount() throws {
        var random = SeededGenerator(seed: 1)
        let records = (0..<30).map { mx(UInt16($0), "h\($0)") }
        #expect(try MXSelection.order(records, domain: name("e"), maxHosts: 3, using: &random).map(\.host.description) == ["h0", "h1", "h2"])
    }

    @Test(arguments: [
        ("192.0.2.7", "192.0.2.7"),
        ("[192.0.2.7]", "192.0.2.7"),
        ("[IPv6:2001:db8::25]", "2001:db8::25"),
    ])
    func acceptsAddressLiteralExchange(_ exchange: String, _ address: String) throws {
        var random = SeededGenerator(seed: 1)
        let ordered = try MXSelection.order([MXRecord(preference: 10, exchange: DNSName(labels: [exchange]))], domain: name("e"), using: &random)
        #expect(ordered.first?.literal?.description == address)
    }

    @Test(arguments: [
        (AddressPreference.ipv4First, ["192.0.2.1", "192.0.2.2", "2001:db8::1"]),
        (.ipv6First, ["2001:db8::1", "192.0.2.1", "192.0.2.2"]),
        (.ipv4Only, ["192.0.2.1", "192.0.2.2"]),
        (.ipv6Only, ["2001:db8::1"]),
    ])
    func arrangesAddresses(_ preference: AddressPreference, _ expected: [String]) {
        let arranged = MXSelection.arrange(
            v4: [IPv4Address(192, 0, 2, 1), IPv4Address(192, 0, 2, 2)], v6: [IPv6Address("2001:db8::1")!], preference: preference
        )
        #expect(arranged.map(\.description) == expected)
    }

    // MARK: - Through a resolver

    static let zone = TableResolver(
        answers: [
            "example.com mx": [.mx(mx(20, "backup.example.com")), .mx(mx(10, "mail.example.com")), .mx(mx(30, "gone.example.com"))],
            "mail.example.com a": [.a(IPv4Address(192, 0, 2, 10))],
            "mail.example.com aaaa": [.aaaa(IPv6Address("2001:db8::10")!)],
            "backup.example.com a": [.a(IPv4Address(192, 0, 2, 20))],
            "backup.example.com aaaa": [],
            "implicit.example a": [.a(IPv4Address(192, 0, 2, 30))],
            "implicit.example aaaa": [],
            "implicit.example mx": [],
            "nullmx.example mx": [.mx(mx(0, "."))],
            "noaddr.example mx": [],
            "noaddr.example txt": [],
            "flaky.example mx": [.mx(mx(10, "slow.flaky.example"))],
            "halfflaky.example mx": [.mx(mx(10, "slow.flaky.example")), .mx(mx(20, "mail.example.com"))],
        ],
        failures: [
            "servfail.example mx": .serverFailure,
            "timeout.example mx": .timeout,
            "slow.flaky.example a": .timeout,
            "slow.flaky.example aaaa": .timeout,
        ]
    )

    @Test func resolvesHostsInOrderWithAddresses() async throws {
        var random = SeededGenerator(seed: 3)
        let hosts = try await Self.zone.mailExchangers(for: "Example.com", using: &random)
        #expect(hosts == [
            MailExchanger(host: name("mail.example.com"), preference: 10, isImplicit: false, addresses: [.v4(IPv4Address(192, 0, 2, 10)), .v6(IPv6Address("2001:db8::10")!)]),
            MailExchanger(host: name("backup.example.com"), preference: 20, isImplicit: false, addresses: [.v4(IPv4Address(192, 0, 2, 20))]),
        ])  // gone.example.com is NXDOMAIN and left out
    }

    @Test func implicitMXResolvesTheDomain() async throws {
        var random = SeededGenerator(seed: 3)
        let hosts = try await Self.zone.mailExchangers(for: "implicit.example", using: &random)
        #expect(hosts == [MailExchanger(host: name("implicit.example"), preference: 0, isImplicit: true, addresses: [.v4(IPv4Address(192, 0, 2, 30))])])
    }

    @Test func skipsTemporarilyFailingHost() async throws {
        var random = SeededGenerator(seed: 3)
        let hosts = try await Self.zone.mailExchangers(for: "halfflaky.example", using: &random)
        #expect(hosts.map(\.host.description) == ["mail.example.com"])
    }

    @Test(arguments: [
        ("nullmx.example", "5.1.10", true),
        ("nonexistent.example", "5.1.2", true),
        ("noaddr.example", "5.4.4", true),
        ("servfail.example", "4.4.3", false),
        ("timeout.example", "4.4.3", false),
        ("flaky.example", "4.4.3", false),
        ("bad..name", "5.1.2", true),
    ])
    func routingFailures(_ domain: String, _ status: String, _ permanent: Bool) async {
        var random = SeededGenerator(seed: 3)
        do {
            let hosts = try await Self.zone.mailExchangers(for: domain, using: &random)
            Issue.record("expected \(status), got \(hosts)")
        } catch {
            #expect(error.enhancedStatus == status)
            #expect(error.isPermanent == permanent)
        }
    }

    @Test func addressLiteralDomainNeedsNoLookup() async throws {
        var random = SeededGenerator(seed: 3)
        let hosts = try await TableResolver().mailExchangers(for: "[192.0.2.9]", using: &random)
        #expect(hosts.first?.addresses == [.v4(IPv4Address(192, 0, 2, 9))])
    }
}
