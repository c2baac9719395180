import Foundation
import Testing
import TernCore
@testable import TernEngine

@Suite struct SenderPolicyTests {
    static let verified = SendingDomain(name: "shop.example", createdAt: Date(), verifiedAt: Date())
    static let unverified = SendingDomain(name: "new.example", createdAt: Date())
    static let restricted = Credential(
        name: "shop-only", passwordHash: "", apiKeyID: "k", apiKeyHash: "", networks: [], domains: ["Shop.Example"], createdAt: Date())
    static let open = Credential(name: "any", passwordHash: "", apiKeyID: "k2", apiKeyHash: "", networks: [], createdAt: Date())

    /// (domain, sender, owner, unverified allowed, expected reply text or nil for allowed)
    @Test(arguments: [
        ("shop.example", SenderPolicy.Sender.credential(restricted), verified, false, nil),
        ("mail.SHOP.example", .credential(restricted), verified, false, nil),
        ("shop.example.evil", .credential(restricted), nil, true, "not one credential shop-only may send for"),
        ("new.example", .credential(open), unverified, false, "new.example is not verified yet"),
        ("new.example", .credential(open), unverified, true, nil),
        ("nowhere.example", .credential(open), nil, false, "not a sending domain of this server"),
        ("nowhere.example", .anonymous, nil, true, nil),
        ("shop.example", .unknownCredential("gone"), verified, true, "credential gone no longer exists"),
    ] as [(String, SenderPolicy.Sender, SendingDomain?, Bool, String?)])
    func decides(domain: String, sender: SenderPolicy.Sender, owner: SendingDomain?, allowUnverified: Bool, expected: String?) {
        let reply = SenderPolicy(allowUnverifiedDomains: allowUnverified).refusal(domain: domain, what: "Sender", credential: sender, owner: owner)
        if let expected {
            #expect(reply?.code == 550 && reply?.enhancedStatusCode?.description == "5.7.1")
            #expect(reply?.lines.joined().contains(expected) == true, "\(reply?.lines ?? [])")
        } else {
            #expect(reply == nil, "\(reply?.lines ?? [])")
        }
    }
}
