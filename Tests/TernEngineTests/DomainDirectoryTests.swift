import DKIM
import Foundation
import Logging
import Testing
import TernCore
import TernStoreSQLite
@testable import TernEngine

/// The in-memory view of the store's sending domains that intake, tracking, VERP and the MX use.
@Suite struct DomainDirectoryTests {
    @Test func ownersSignersReturnPathsTrackingAndRoutesComeFromTheStore() async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: path)
        let key = DKIMPrivateKey.generateEd25519()
        try await store.addDomain(SendingDomain(
            name: "shop.example", returnPathDomain: "rp.shop.example", track: "opens", inboundRoute: "https://app.example/in",
            createdAt: Date(),
            keys: [DomainKey(selector: "s1", algorithm: "ed25519", privateKeyPEM: key.pemRepresentation, publicRecord: key.dnsRecordValue, createdAt: Date())]))
        try await store.addDomain(SendingDomain(name: "plain.example", inboundRoute: "store", createdAt: Date()))
        let directory = DomainDirectory(store: store, logger: Logger(label: "test"))
        #expect(directory.owner(of: "shop.example") == nil)  // nothing until the first load
        await directory.reload()

        #expect(directory.owner(of: "News.Shop.Example")?.name == "shop.example")
        #expect(directory.owner(of: "shop.example.evil") == nil && directory.owner(of: "example") == nil)
        #expect(directory.signers(for: "mail.shop.example").map { "\($0.domain) \($0.selector)" } == ["shop.example s1"])
        #expect(directory.signers(for: "plain.example").isEmpty)
        #expect(directory.returnPathDomain(for: "shop.example") == "rp.shop.example")
        #expect(directory.isReturnPathDomain("RP.shop.example") && directory.isReturnPathDomain("bounces.plain.example"))
        #expect(!directory.isReturnPathDomain("bounces.shop.example"))
        #expect(directory.trackingFeatures(for: "shop.example") == .opens && directory.trackingFeatures(for: "plain.example") == nil)
        #expect(directory.inboundRoute(for: "shop.example")?.webhookURL == "https://app.example/in")
        #expect(directory.inboundRoute(for: "plain.example") == InboundAddressBook.InboundRoute(pattern: "plain.example", webhookURL: nil))

        // Wired as tern serve wires them.
        let paths = ReturnPaths(lookup: { directory.returnPathDomain(for: $0) })
        #expect(paths.domain(forSendingDomain: "shop.example") == "rp.shop.example")
        #expect(paths.domain(forSendingDomain: "other.example") == "bounces.other.example")
        let keys = try TrackingKeys(secrets: [[UInt8](repeating: 1, count: 32)])
        let book = InboundAddressBook(
            keys: keys, returnPathDomains: [], feedbackAddresses: [], routes: [],
            isReturnPathDomain: { directory.isReturnPathDomain($0) }, storedRoute: { directory.inboundRoute(for: $0) })
        #expect(book.destination(of: "postmaster@rp.shop.example") == .bounce(nil))
        #expect(book.destination(of: "fbl@rp.shop.example") == .feedback)
        #expect(book.destination(of: "sales@plain.example") == .inbound(.init(pattern: "plain.example", webhookURL: nil)))
        #expect(book.destination(of: "x@bounces.shop.example") == nil)

        // A domain removed in another process is gone after the next load.
        #expect(try await store.removeDomain(named: "shop.example"))
        await directory.reload()
        #expect(directory.owner(of: "shop.example") == nil && directory.signers(for: "shop.example").isEmpty)
        try await store.close()
    }
}
