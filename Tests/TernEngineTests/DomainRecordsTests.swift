import Foundation
import Testing
import TernCore
import TernDNS
@testable import TernEngine

/// TXT, MX and CNAME data for a few names; anything else is NXDOMAIN.
struct ZoneTable: DNSResolving {
    var txt: [String: [String]] = [:]
    var mx: [String: [(UInt16, String)]] = [:]
    var cname: [String: String] = [:]
    var failing: Set<String> = []

    func lookup(_ name: DNSName, _ type: DNSRecordType) async throws(DNSError) -> DNSAnswer {
        let key = name.canonical
        if failing.contains(key) { throw DNSError(.timeout, name: name.description, type: type) }
        var canonical = name
        var records: [DNSRecordData] = []
        switch type {
        case .txt:
            guard let found = txt[key] else { throw DNSError(.nameDoesNotExist, name: name.description, type: type) }
            records = found.map { .txt(TXTRecord($0)) }
        case .mx:
            guard let found = mx[key] else { throw DNSError(.nameDoesNotExist, name: name.description, type: type) }
            records = found.compactMap { preference, host in (try? DNSName(host)).map { .mx(MXRecord(preference: preference, exchange: $0)) } }
        case .a:
            if let target = cname[key], let targetName = try? DNSName(target) { canonical = targetName }
            records = [.a(IPv4Address(192, 0, 2, 25))]
        default:
            break
        }
        return DNSAnswer(
            question: DNSQuestion(name: name, type: type), canonicalName: canonical,
            records: records.map { DNSResourceRecord(name: canonical, ttl: 60, data: $0) })
    }
}

@Suite struct DomainRecordsTests {
    let plan = DomainRecordPlan(
        mxHost: "MX.Tern.Example", sendingHost: "mx.tern.example", trackingHost: "t.shop.example", returnPaths: ReturnPaths())
    let domain = SendingDomain(
        name: "shop.example", createdAt: Date(),
        keys: [
            DomainKey(selector: "t2026b", algorithm: "rsa", privateKeyPEM: "", publicRecord: "v=DKIM1; k=rsa; p=NEWKEY", createdAt: Date()),
            DomainKey(
                selector: "t2026a", algorithm: "rsa", privateKeyPEM: "", publicRecord: "v=DKIM1; k=rsa; p=OLDKEY", createdAt: Date(),
                retiredAt: Date()),
        ])

    @Test func recordsToPublish() {
        let records = plan.records(for: domain)
        #expect(records.map(\.kind) == [.dkim, .returnPathMX, .spf, .dmarc, .trackingCNAME])
        #expect(records.map(\.name) == ["t2026b._domainkey.shop.example", "bounces.shop.example", "shop.example", "_dmarc.shop.example", "t.shop.example"])
        #expect(records.map(\.value) == [
            "v=DKIM1; k=rsa; p=NEWKEY", "10 mx.tern.example.", "v=spf1 a:mx.tern.example ~all",
            "v=DMARC1; p=none; rua=mailto:dmarc@shop.example", "mx.tern.example.",
        ])
        #expect(records.map(\.required) == [true, true, false, false, false])
        #expect(records[1].zoneLine == "bounces.shop.example. IN MX 10 mx.tern.example.")
        // A long TXT value is split into 255-octet strings.
        let long = DomainRecord(kind: .dkim, name: "s._domainkey.x.example", type: "TXT", value: String(repeating: "a", count: 300), required: true)
        #expect(long.zoneLine == "s._domainkey.x.example. IN TXT \"\(String(repeating: "a", count: 255))\" \"\(String(repeating: "a", count: 45))\"")
        // A configured return-path domain, and no CNAME when the tracking host is elsewhere.
        var own = domain
        own.returnPathDomain = "rp.shop.example"
        let elsewhere = DomainRecordPlan(mxHost: "mx.tern.example", sendingHost: "mx.tern.example", trackingHost: "t.tern.example", returnPaths: ReturnPaths())
        #expect(elsewhere.records(for: own).map(\.name) == ["t2026b._domainkey.shop.example", "rp.shop.example", "shop.example", "_dmarc.shop.example"])
    }

    @Test func verificationSaysOkMissingWrongOrUnknown() async {
        let records = plan.records(for: domain)
        let right = ZoneTable(
            txt: ["t2026b._domainkey.shop.example": ["v=DKIM1; k=rsa; p=NEW KEY"], "shop.example": ["v=spf1 a:mx.tern.example -all", "other"],
                  "_dmarc.shop.example": ["v=DMARC1; p=reject"]],
            mx: ["bounces.shop.example": [(5, "MX.TERN.EXAMPLE")]], cname: ["t.shop.example": "mx.tern.example"])
        let ok = await DomainVerifier(resolver: right).check(records)
        #expect(ok.map(\.status) == [.ok, .ok, .ok, .ok, .ok])
        #expect(DomainVerifier.isVerified(ok))

        let wrong = ZoneTable(
            txt: ["t2026b._domainkey.shop.example": ["v=DKIM1; k=rsa; p=OLDKEY"], "shop.example": ["v=spf1 include:other.example ~all"]],
            mx: ["bounces.shop.example": [(10, "mx.other.example")]], cname: ["t.shop.example": "elsewhere.example"])
        let bad = await DomainVerifier(resolver: wrong).check(records)
        #expect(bad.map(\.status) == [.wrong, .wrong, .wrong, .missing, .wrong])
        #expect(bad[1].found == ["10 mx.other.example."])
        #expect(!DomainVerifier.isVerified(bad))

        let nothing = await DomainVerifier(resolver: ZoneTable()).check(records)
        #expect(nothing.map(\.status) == [.missing, .missing, .missing, .missing, .missing])
        let failing = await DomainVerifier(resolver: ZoneTable(failing: ["bounces.shop.example"])).check(records)
        #expect(failing[1].status == .unknown && !DomainVerifier.isVerified(failing))
        // Only the required records decide.
        let requiredOnly = ZoneTable(
            txt: ["t2026b._domainkey.shop.example": ["v=DKIM1; k=rsa; p=NEWKEY"]], mx: ["bounces.shop.example": [(10, "mx.tern.example.")]])
        #expect(DomainVerifier.isVerified(await DomainVerifier(resolver: requiredOnly).check(records)))
    }
}
