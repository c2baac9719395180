import Foundation
import Logging
import NIOPosix
import Synchronization
import Testing
import TernCore
import TernDNS
import TernStoreSQLite
@testable import TernEngine

@Suite struct DestinationKeyTableTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func keysByDomainUntilTheLookupAnswers() {
        var table = DestinationKeyTable(lifetime: 60)
        #expect(table.key(forDomain: "A.example", now: t0) == .domain("a.example"))
        #expect(table.key(forDomain: "b.example", now: t0) == .domain("b.example"))
        #expect(table.takeWanted() == ["a.example", "b.example"])
        // In flight: not asked for twice.
        #expect(table.key(forDomain: "a.example", now: t0) == .domain("a.example"))
        #expect(table.takeWanted() == [])
        table.store(["a.example": "mx:mx1.host", "b.example": nil], now: t0)
        #expect(table.key(forDomain: "a.EXAMPLE", now: t0 + 1) == "mx:mx1.host")
        #expect(table.key(forDomain: "b.example", now: t0 + 1) == .domain("b.example"))
        #expect(table.takeWanted() == [])
    }

    @Test func anExpiredAnswerIsStillUsedWhileItIsLookedUpAgain() {
        var table = DestinationKeyTable(lifetime: 60)
        _ = table.key(forDomain: "a.example", now: t0)
        _ = table.takeWanted()
        table.store(["a.example": "mx:old"], now: t0)
        #expect(table.key(forDomain: "a.example", now: t0 + 61) == "mx:old")
        #expect(table.takeWanted() == ["a.example"])
        table.store(["a.example": "mx:new"], now: t0 + 62)
        #expect(table.key(forDomain: "a.example", now: t0 + 63) == "mx:new")
    }

    @Test func staysBounded() {
        var table = DestinationKeyTable(lifetime: 60, maxEntries: 10)
        for round in 0..<5 {
            let answers = Dictionary(uniqueKeysWithValues: (0..<8).map { ("d\(round)-\($0).example", DestinationKey?.some("mx:x")) })
            table.store(answers, now: t0 + Double(round) * 100)
        }
        // Only the newest round fits; older domains are looked up again.
        _ = table.key(forDomain: "d0-0.example", now: t0 + 401)
        _ = table.key(forDomain: "d4-0.example", now: t0 + 401)
        #expect(table.takeWanted() == ["d0-0.example"])
    }
}

/// Keys `a.test` and `b.test` to one host set and records each request's recipients.
final class SharedHostsTransport: DeliveryTransport {
    let requests = Mutex<[[String]]>([])
    let keyLookups = Mutex<[String]>([])

    func deliver(_ request: DeliveryRequest) async -> [RecipientID: TransportOutcome] {
        requests.withLock { $0.append(request.recipients.map(\.address).sorted()) }
        return Dictionary(uniqueKeysWithValues: request.recipients.map { ($0.id, TransportOutcome.sent(details: ["code": "250"])) })
    }

    /// Domains whose lookup has returned its key.
    func destinationKey(forDomain domain: String) async -> DestinationKey? {
        defer { keyLookups.withLock { $0.append(domain) } }
        return domain.hasSuffix(".test") ? "mx:mx.shared.test" : nil
    }
}

@Suite struct DestinationKeyServiceTests {
    @Test func domainsOnOneHostSetShareAJob() async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: path)
        func message(_ addresses: [String]) -> QueuedMessage {
            QueuedMessage(
                id: .random(), messageIDHeader: "<k@t>", mailFrom: "from@example.com",
                recipients: addresses.map { QueuedRecipient(id: .random(), address: $0) },
                content: Array("Subject: x\r\n\r\nbody\r\n".utf8), credential: nil, clientIP: nil, receivedAt: Date(),
                eightBitMIME: false, smtpUTF8: false)
        }
        let transport = SharedHostsTransport()
        let configuration = DeliveryService.Configuration(node: "test", pollInterval: .milliseconds(50))
        let service = DeliveryService(store: store, transport: transport, configuration: configuration, logger: Logger(label: "test"))

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            func waitFor(sent: Int) async throws {
                let deadline = ContinuousClock.now + .seconds(60)
                while ContinuousClock.now < deadline, try await store.counters(in: .allTime, scope: .all).sent < sent {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            // First sight of the domains: keyed by domain, so one request each; their keys are looked up.
            try await store.commitAndWait([message(["one@a.test", "two@b.test"])])
            try await waitFor(sent: 2)
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline, transport.keyLookups.withLock({ Set($0) }) != ["a.test", "b.test"] {
                try await Task.sleep(for: .milliseconds(20))
            }
            // Now both domains are one destination: one request for both. The service takes its
            // events in the order they end, so the keys (returned) are stored before the poll
            // that finds the next message.
            try await store.commitAndWait([message(["three@a.test", "four@b.test"])])
            try await waitFor(sent: 4)
            group.cancelAll()
        }
        let requests = transport.requests.withLock { $0 }
        #expect(requests.count == 3)
        #expect(requests.last == ["four@b.test", "three@a.test"])
        #expect(transport.keyLookups.withLock { $0.sorted() } == ["a.test", "b.test"])
        try await store.close()
    }
}

/// MX and A records for a few test domains; anything else is NXDOMAIN.
struct MXTable: DNSResolving {
    var mx: [String: [(UInt16, String)]]

    func lookup(_ name: DNSName, _ type: DNSRecordType) async throws(DNSError) -> DNSAnswer {
        let records: [DNSRecordData]
        switch type {
        case .mx:
            guard let found = mx[name.canonical] else { throw DNSError(.nameDoesNotExist, name: name.description, type: type) }
            records = found.compactMap { preference, host in
                (try? DNSName(host)).map { .mx(MXRecord(preference: preference, exchange: $0)) }
            }
        case .a:
            records = [.a(IPv4Address(127, 0, 0, 1))]
        default:
            records = []
        }
        return DNSAnswer(
            question: DNSQuestion(name: name, type: type), canonicalName: name,
            records: records.map { DNSResourceRecord(name: name, ttl: 60, data: $0) })
    }
}

@Suite struct SMTPTransportDestinationKeyTests {
    @Test func domainsWithTheSameMXHostsShareAKey() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let resolver = MXTable(mx: [
            "a.test": [(10, "mx1.shared.test"), (20, "MX2.shared.test")],
            "b.test": [(5, "mx2.shared.test"), (5, "mx1.shared.test")],
            "c.test": [(10, "mx1.shared.test")],
        ])
        let transport = SMTPTransport(
            configuration: SMTPTransport.Configuration(
                heloName: "client.test", routes: ["routed.test": DeliveryRoute(host: "relay.test", port: 2525)]),
            resolver: resolver, group: group, logger: Logger(label: "test"))
        let a = await transport.destinationKey(forDomain: "a.test")
        #expect(a != nil)
        #expect(await transport.destinationKey(forDomain: "b.test") == a)
        #expect(await transport.destinationKey(forDomain: "c.test") != a)
        #expect(await transport.destinationKey(forDomain: "routed.test") == "route:relay.test:2525")
        #expect(await transport.destinationKey(forDomain: "missing.test") == nil)
    }
}
