import Foundation
import Testing
import TernCore

/// `DomainStoreTests` of TernStoreSQLite, on every store.
@Suite struct DomainStoreConformanceTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func key(_ selector: String, _ algorithm: String = "rsa", at date: Date) -> DomainKey {
        DomainKey(
            selector: selector, algorithm: algorithm, privateKeyPEM: "-----BEGIN PRIVATE KEY-----\n\(selector)\n-----END PRIVATE KEY-----\n",
            publicRecord: "v=DKIM1; k=\(algorithm); p=\(selector)", createdAt: date)
    }

    @Test(arguments: StoreFactory.all)
    func domainsKeepTheirKeysSettingsAndVerification(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let domain = SendingDomain(
                name: "Example.COM", returnPathDomain: "RP.example.com", track: "opens,clicks", inboundRoute: "store",
                createdAt: t0, keys: [key("t2026a", at: t0), key("t2026a-ed", "ed25519", at: t0)])
            try await store.addDomain(domain)
            await #expect(throws: StoreError.self) { try await store.addDomain(SendingDomain(name: "example.com", createdAt: t0)) }
            try await store.addDomain(SendingDomain(name: "another.example", createdAt: t0))

            let stored = try #require(try await store.domain(named: "EXAMPLE.com"))
            #expect(stored.name == "example.com" && stored.returnPathDomain == "rp.example.com")
            #expect(stored.track == "opens,clicks" && stored.inboundRoute == "store" && stored.verifiedAt == nil)
            #expect(Set(stored.keys.map(\.selector)) == ["t2026a", "t2026a-ed"] && stored.signingKeys.count == 2)
            #expect(stored.keys.first { $0.selector == "t2026a-ed" } == key("t2026a-ed", "ed25519", at: t0))
            #expect(try await store.domains().map(\.name) == ["another.example", "example.com"])

            try await store.setVerified("example.com", at: t0.addingTimeInterval(10))
            #expect(try await store.domain(named: "example.com")?.verifiedAt == t0.addingTimeInterval(10))
            try await store.setVerified("example.com", at: nil)
            #expect(try await store.domain(named: "example.com")?.verifiedAt == nil)

            // A rotation: the new key signs, the old ones are kept, retired.
            let later = t0.addingTimeInterval(86_400)
            try await store.rotateKeys(of: "example.com", to: [key("t2026b", at: later)], at: later)
            let rotated = try #require(try await store.domain(named: "example.com"))
            #expect(rotated.keys.map(\.selector) == ["t2026b", "t2026a", "t2026a-ed"])
            #expect(rotated.signingKeys.map(\.selector) == ["t2026b"])
            #expect(rotated.keys.filter { $0.retiredAt == later }.count == 2)
            await #expect(throws: StoreError.self) { try await store.rotateKeys(of: "example.com", to: [key("t2026b", at: later)], at: later) }
            await #expect(throws: StoreError.self) { try await store.rotateKeys(of: "missing.example", to: [key("x", at: later)], at: later) }

            #expect(try await store.removeDomain(named: "example.com"))
            #expect(try await store.removeDomain(named: "example.com") == false)
            #expect(try await store.domain(named: "example.com") == nil)
            // Its keys went with it: the name can be added again with the same selector.
            try await store.addDomain(SendingDomain(name: "example.com", createdAt: later, keys: [key("t2026b", at: later)]))
        }
    }
}
