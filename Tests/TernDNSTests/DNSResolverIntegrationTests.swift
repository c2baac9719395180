import Foundation
import Testing
@testable import TernDNS

/// The resolver against a real DNS server (dnslib) on 127.0.0.1.
/// Skipped when python3/dnslib is missing, unless `CI` is set, in which case it fails with instructions.
@Suite("DNSResolver against a dnslib server", .enabled(if: DNSTestServer.shouldRun, "needs python3 with dnslib (pip install dnslib)"))
struct DNSResolverIntegrationTests {
    /// A resolver for `server`; the default timeout leaves a loaded machine time to answer.
    func resolver(_ server: DNSTestServer, timeout: Duration = .seconds(10), attempts: Int = 1) throws -> DNSResolver {
        var configuration = try #require(DNSResolver.Configuration(servers: [server.address]))
        configuration.timeout = timeout
        configuration.attempts = attempts
        return DNSResolver(configuration: configuration)
    }

    @Test func resolvesMXATXT() async throws {
        try await DNSTestServer.with { server in
            let dns = try resolver(server)
            let mx = try await dns.mx("example.test")
            #expect(Set(mx) == [
                MXRecord(preference: 10, exchange: name("mx1.example.test")),
                MXRecord(preference: 10, exchange: name("mx2.example.test")),
                MXRecord(preference: 20, exchange: name("mx3.example.test")),
            ])
            #expect(try await dns.a("mx1.example.test") == [IPv4Address(127, 0, 0, 2)])
            #expect(try await dns.aaaa("mx1.example.test") == [IPv6Address("::1")!])
            #expect(try await dns.aaaa("mx2.example.test") == [])  // NODATA
            let txt = try await dns.txt("example.test").map(\.text)
            #expect(txt == ["v=spf1 ip4:127.0.0.0/8 -all", "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3"])
        }
    }

    @Test func nxdomainIsPermanent() async throws {
        try await DNSTestServer.with { server in
            let dns = try resolver(server)
            await #expect {
                try await dns.mx("nope.test")
            } throws: { error in
                (error as? DNSError)?.code == .nameDoesNotExist && (error as? DNSError)?.isPermanent == true
            }
        }
    }

    @Test func servfailAndSilenceAreTemporary() async throws {
        try await DNSTestServer.with { server in
            // SERVFAIL with time to answer (a loaded machine may take more than 300 ms).
            await #expect {
                try await resolver(server, attempts: 2).a("servfail.test")
            } throws: { error in
                (error as? DNSError)?.code == .serverFailure && (error as? DNSError)?.isPermanent == false
            }
            let dns = try resolver(server, timeout: .milliseconds(300), attempts: 2)
            let start = ContinuousClock.now
            await #expect {
                try await dns.a("drop.test")
            } throws: { error in
                (error as? DNSError)?.code == .timeout && (error as? DNSError)?.isPermanent == false
            }
            let elapsed = ContinuousClock.now - start
            // Two attempts of 300 ms, as the server counted; not the default timeout's wait (2 × 3 s).
            #expect(elapsed >= .milliseconds(550))
            #expect(elapsed < DNSResolver.Configuration.defaultTimeout * DNSResolver.Configuration.defaultAttempts)
            #expect(try await queryCounts(resolver(server))["drop.test."] == 2)
        }
    }

    @Test func truncatedAnswerFallsBackToTCP() async throws {
        try await DNSTestServer.with { server in
            let records = try await resolver(server).txt("big.test")
            #expect(records.count == 40)
            #expect(records.first?.text.hasPrefix("record 00 ") == true)
        }
    }

    @Test func ignoresForgedAnswerWithWrongID() async throws {
        try await DNSTestServer.with { server in
            let addresses = try await resolver(server).a("spoof.test")
            #expect(addresses == [IPv4Address(127, 0, 0, 66)])
        }
    }

    @Test func followsCNAME() async throws {
        try await DNSTestServer.with { server in
            let answer = try await resolver(server).lookup(name("alias.test"), .a)
            #expect(answer.canonicalName == name("mx1.example.test"))
            #expect(answer.records.map(\.data) == [.a(IPv4Address(127, 0, 0, 2))])
        }
    }

    @Test func failsOverToTheNextServer() async throws {
        try await DNSTestServer.with { server in
            // A closed port first: the UDP query times out (or is refused), then the real server answers.
            var configuration = try #require(DNSResolver.Configuration(servers: ["127.0.0.1:9", server.address]))
            configuration.timeout = .seconds(5)
            configuration.attempts = 1
            #expect(try await DNSResolver(configuration: configuration).a("mx2.example.test") == [IPv4Address(127, 0, 0, 3)])
        }
    }

    @Test func mailExchangersEndToEnd() async throws {
        try await DNSTestServer.with { server in
            let dns = try resolver(server)
            var random = SeededGenerator(seed: 5)
            let hosts = try await dns.mailExchangers(for: "example.test", using: &random)
            #expect(Set(hosts.prefix(2).map(\.host.description)) == ["mx1.example.test", "mx2.example.test"])
            #expect(hosts.last?.host == name("mx3.example.test"))
            #expect(hosts.first(where: { $0.host == name("mx1.example.test") })?.addresses == [.v4(IPv4Address(127, 0, 0, 2)), .v6(IPv6Address("::1")!)])

            let implicit = try await dns.mailExchangers(for: "implicit.test", using: &random)
            #expect(implicit == [MailExchanger(host: name("implicit.test"), preference: 0, isImplicit: true, addresses: [.v4(IPv4Address(127, 0, 0, 9))])])

            let viaCNAME = try await dns.mailExchangers(for: "cnamemx.test", using: &random)
            #expect(viaCNAME.first?.addresses.first == .v4(IPv4Address(127, 0, 0, 2)))

            for (domain, status) in [("nullmx.test", "5.1.10"), ("nope.test", "5.1.2"), ("servfail.test", "4.4.3")] {
                do {
                    _ = try await dns.mailExchangers(for: domain, using: &random)
                    Issue.record("\(domain) should fail")
                } catch let error as MailRoutingError {
                    #expect(error.enhancedStatus == status, "\(domain)")
                }
            }
        }
    }

    @Test func cachesPositiveAndNegativeAnswers() async throws {
        try await DNSTestServer.with { server in
            let clock = ManualClock()
            var configuration = try #require(DNSResolver.Configuration(servers: [server.address]))
            configuration.timeout = .seconds(10)
            let dns = DNSResolver(configuration: configuration, now: { clock.now })
            for _ in 0..<3 { _ = try await dns.a("ttl.test") }
            for _ in 0..<3 { _ = try? await dns.a("gone.test") }
            #expect(try await queryCounts(dns)["ttl.test."] == 1)
            #expect(try await queryCounts(dns)["gone.test."] == 1)
            clock.advance(by: .seconds(61))  // past the SOA minimum (60), within the A TTL (120)
            _ = try? await dns.a("gone.test")
            _ = try await dns.a("ttl.test")
            #expect(try await queryCounts(dns)["gone.test."] == 2)
            #expect(try await queryCounts(dns)["ttl.test."] == 1)
            clock.advance(by: .seconds(60))
            _ = try await dns.a("ttl.test")
            #expect(try await queryCounts(dns)["ttl.test."] == 2)
        }
    }

    /// The server's per-name query counts (its `count.test` TXT record has TTL 0, so it is never cached).
    func queryCounts(_ dns: DNSResolver) async throws -> [String: Int] {
        let text = try await dns.txt("count.test").first?.text ?? ""
        var counts: [String: Int] = [:]
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=")
            if parts.count == 2, let count = Int(parts[1]) { counts[String(parts[0])] = count }
        }
        return counts
    }
}

/// A settable clock for cache tests.
final class ManualClock: Sendable {
    private let state = LockedInstant(ContinuousClock.now)
    var now: ContinuousClock.Instant { state.value }
    func advance(by duration: Duration) { state.value = state.value + duration }
}

final class LockedInstant: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: ContinuousClock.Instant
    init(_ value: ContinuousClock.Instant) { _value = value }
    var value: ContinuousClock.Instant {
        get { lock.withLock { _value } }
        set { lock.withLock { _value = newValue } }
    }
}
