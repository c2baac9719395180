import Foundation
import Testing
import TernCore

/// A message of `tenant` to `addresses`, from `shop.example`.
private func message(of tenant: TenantID, to addresses: [String], at date: Date = Date()) -> QueuedMessage {
    let id = MessageID.random()
    return QueuedMessage(
        id: id, messageIDHeader: "<\(id)@test>", mailFrom: "news@shop.example",
        recipients: addresses.map { QueuedRecipient(id: .random(), address: $0) },
        content: Array("Subject: hi\r\n\r\nbody\r\n".utf8), credential: "app", clientIP: "127.0.0.1",
        receivedAt: date, eightBitMIME: false, smtpUTF8: false, fromDomain: "shop.example", tenant: tenant)
}

/// Tenants and what each may see: every store scopes alike.
@Suite struct TenantStoreConformanceTests {
    @Test(arguments: StoreFactory.all)
    func tenantsAreAddedListedAndLimited(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            #expect(try await store.tenants().map(\.name) == ["default"])
            #expect(try await store.tenant(named: "default")?.id == .default)
            let limits = TenantLimits(maxMessagesPerHour: 100, maxMessagesPerDay: nil, maxRecipientsPerMessage: 5)
            let acme = try await store.addTenant(named: "acme", limits: limits, createdAt: Date(timeIntervalSince1970: 1_800_000_000))
            #expect(acme.id != .default)
            #expect(try await store.tenant(named: "acme") == acme)
            #expect(try await store.tenants().map(\.name) == ["acme", "default"])
            await #expect(throws: StoreError.self) {
                _ = try await store.addTenant(named: "acme", limits: .none, createdAt: Date())
            }
            try await store.setLimits(TenantLimits(maxMessagesPerDay: 1000), of: acme.id)
            #expect(try await store.tenant(named: "acme")?.limits == TenantLimits(maxMessagesPerDay: 1000))
            do {
                try await store.setLimits(.none, of: TenantID(rawValue: 999))
                Issue.record("limits of a missing tenant were set")
            } catch let error as StoreError {
                #expect(error.code == .notFound)
            }
        }
    }

    @Test(arguments: StoreFactory.all)
    func credentialsAndDomainsBelongToOneTenant(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let acme = try await store.addTenant(named: "acme", limits: .none, createdAt: Date())
            let (tenantCredential, _) = try Credential.issue(name: "acme-app", networks: [], scope: .tenant(acme.id), hasher: SecretHasher(rounds: 1 << 10))
            let (operatorCredential, _) = try Credential.issue(name: "ops", networks: [], scope: .all, hasher: SecretHasher(rounds: 1 << 10))
            try await store.addCredential(tenantCredential)
            try await store.addCredential(operatorCredential)
            #expect(try await store.credential(named: "acme-app")?.scope == .tenant(acme.id))
            #expect(try await store.credential(named: "ops")?.scope == .all)
            let (orphan, _) = try Credential.issue(name: "orphan", networks: [], scope: .tenant(TenantID(rawValue: 999)), hasher: SecretHasher(rounds: 1 << 10))
            do {
                try await store.addCredential(orphan)
                Issue.record("a credential of a missing tenant was added")
            } catch let error as StoreError {
                #expect(error.code == .notFound)
            }

            try await store.addDomain(SendingDomain(name: "acme.example", tenant: acme.id, createdAt: Date()))
            #expect(try await store.domain(named: "acme.example")?.tenant == acme.id)
            do {
                try await store.addDomain(SendingDomain(name: "acme.example", tenant: .default, createdAt: Date()))
                Issue.record("a domain was claimed by a second tenant")
            } catch let error as StoreError {
                #expect(error.code == .duplicate)
                #expect(error.message == "domain acme.example already belongs to tenant acme")
            }
        }
    }

    /// Counters, messages, queue and inbound of one tenant are invisible to another; the
    /// operator's scope sees all, and what belongs to no tenant.
    @Test(arguments: StoreFactory.all)
    func everyReadIsScopedByTenant(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let a = TenantID.default
            let b = try await store.addTenant(named: "b", limits: .none, createdAt: Date()).id
            let now = Date()
            let ofA = message(of: a, to: ["x@example.net", "y@example.net"], at: now)
            let ofB = message(of: b, to: ["x@example.net"], at: now)
            try await store.commitAndWait([ofA, ofB])
            #expect(try await store.counters(in: .allTime, scope: .tenant(a)).outbound == 2)
            #expect(try await store.counters(in: .allTime, scope: .tenant(b)).outbound == 1)
            #expect(try await store.counters(in: .allTime, scope: .all).outbound == 3)
            #expect(try await store.message(ofA.id, scope: .tenant(a))?.tenant == a)
            #expect(try await store.message(ofA.id, scope: .tenant(b)) == nil)
            #expect(try await store.message(ofB.id, scope: .all)?.tenant == b)
            #expect(try await store.queueEntries(limit: 10, scope: .tenant(b)).map(\.messageID) == [ofB.id.description])
            #expect(try await store.queueEntries(limit: 10, scope: .all).count == 3)

            // Delivery outcomes and engagement count for the message's tenant.
            try await store.record([
                RecipientOutcome(recipientID: ofA.recipients[0].id, messageID: ofA.id, kind: .sent, at: now),
                RecipientOutcome(recipientID: ofB.recipients[0].id, messageID: ofB.id, kind: .failed, at: now),
            ])
            try await store.recordEngagement([
                EngagementEvent(type: .open, messageID: ofB.id, recipientID: ofB.recipients[0].id, at: now),
                EngagementEvent(type: .click, messageID: ofA.id, recipientID: ofA.recipients[1].id, at: now),
            ])
            let countersA = try await store.counters(in: .allTime, scope: .tenant(a))
            let countersB = try await store.counters(in: .allTime, scope: .tenant(b))
            #expect((countersA.sent, countersA.failed, countersA.opens, countersA.clicks) == (1, 0, 0, 1))
            #expect((countersB.sent, countersB.failed, countersB.opens, countersB.clicks) == (0, 1, 1, 0))
            #expect(try await store.recipientSummary(ofB.recipients[0].id)?.tenant == b)

            // Inbound mail is its route's tenant's; a report is nobody's, and its events the
            // tenant's of the recipient they match.
            let inboundB = InboundMessage(
                id: .next(), receivedAt: now, clientIP: nil, heloName: "mx", mailFrom: "u@example.org", recipients: ["help@b.example"],
                purpose: .inbound, webhookURL: nil, content: Array("x\r\n".utf8), tenant: b)
            let report = InboundMessage(
                id: .next(), receivedAt: now, clientIP: nil, heloName: "mx", mailFrom: "", recipients: ["b-x@bounces.shop.example"],
                purpose: .report, webhookURL: nil, content: Array("x\r\n".utf8))
            try await store.commitInbound([inboundB, report])
            #expect(try await store.inboundMessages(limit: 10, scope: .tenant(b)).map(\.id) == [inboundB.id.description])
            #expect(try await store.inboundMessages(limit: 10, scope: .tenant(a)).isEmpty)
            #expect(try await store.inboundMessages(limit: 10, scope: .all).count == 2)
            try await store.completeReport(
                report.id,
                outcome: ReportOutcome(
                    kind: "complaint",
                    events: [
                        ReportEvent(type: .complaint, messageID: ofA.id, recipientID: ofA.recipients[1].id, at: now, details: [:]),
                        ReportEvent(type: .unmatchedReport, messageID: nil, recipientID: nil, at: now, details: ["reason": "x"]),
                    ],
                    suppressions: []))
            #expect(try await store.counters(in: .allTime, scope: .tenant(a)).complaints == 1)
            #expect(try await store.counters(in: .allTime, scope: .tenant(b)).complaints == 0)
            #expect(try await store.counters(in: .allTime, scope: .tenant(a)).unmatchedReports == 0)
            #expect(try await store.counters(in: .allTime, scope: .all).unmatchedReports == 1)
            #expect(try await store.counters(in: .allTime, scope: .tenant(b)).inbound == 1)
            #expect(try await store.counters(in: .allTime, scope: .tenant(a)).inbound == 0)
            // The report, read and matched to A's message, is now listed for A (and only A).
            #expect(try await store.inboundMessages(limit: 10, scope: .tenant(a)).map(\.id) == [report.id.description])
            #expect(try await store.inboundMessages(limit: 10, scope: .tenant(b)).map(\.id) == [inboundB.id.description])
            let unmatched = InboundMessage(
                id: .next(), receivedAt: now, clientIP: nil, heloName: "mx", mailFrom: "", recipients: ["postmaster@bounces.shop.example"],
                purpose: .report, webhookURL: nil, content: Array("x\r\n".utf8))
            try await store.commitInbound([unmatched])
            try await store.completeReport(
                unmatched.id,
                outcome: ReportOutcome(
                    kind: "unknown",
                    events: [ReportEvent(type: .unmatchedReport, messageID: nil, recipientID: nil, at: now, details: [:])],
                    suppressions: []))
            #expect(try await store.inboundMessages(limit: 10, scope: .all).first?.tenant == nil)
            #expect(try await store.inboundMessages(limit: 10, scope: .tenant(a)).count == 1)
        }
    }

    /// A tenant's suppression stops only its own mail; an installation-wide one everyone's.
    @Test(arguments: StoreFactory.all)
    func suppressionsArePerTenant(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let a = TenantID.default
            let b = try await store.addTenant(named: "b", limits: .none, createdAt: Date()).id
            let now = Date()
            try await store.addSuppression(Suppression(address: "X@Example.net", tenant: a, reason: "hard bounce", createdAt: now))
            try await store.addSuppression(Suppression(address: "all@example.net", tenant: nil, reason: "operator", createdAt: now))
            func due(_ address: String, of tenant: TenantID) -> DueRecipient {
                DueRecipient(
                    id: .random(), messageID: .random(), address: address, mailFrom: "news@shop.example", attempts: 0, queuedAt: now,
                    nextAttemptAt: now, eightBitMIME: false, smtpUTF8: false, size: 1, fromDomain: "shop.example", tenant: tenant)
            }
            let recipients = [due("x@example.net", of: a), due("x@example.net", of: b), due("all@example.net", of: a), due("all@example.net", of: b)]
            let suppressed = try await store.suppressed(recipients)
            #expect(suppressed == [recipients[0].id, recipients[2].id, recipients[3].id])
            #expect(try await store.suppressions(scope: .tenant(b)).map(\.address) == ["all@example.net"])
            #expect(Set(try await store.suppressions(scope: .tenant(a)).map(\.address)) == ["x@example.net", "all@example.net"])
            #expect(try await store.suppressions(scope: .all).count == 2)
            // Removing B's entry for the address removes nothing of A's.
            #expect(try await store.removeSuppression(address: "x@example.net", domain: nil, tenant: b) == 0)
            #expect(try await store.removeSuppression(address: "x@example.net", domain: nil, tenant: a) == 1)
            #expect(try await store.removeSuppression(address: "all@example.net", domain: nil, tenant: nil) == 1)
            #expect(try await store.suppressions(scope: .all).isEmpty)

            // An unsubscribe suppresses for the recipient's tenant and sending domain only.
            let ofB = message(of: b, to: ["u@example.net"], at: now)
            try await store.commitAndWait([ofB])
            try await store.recordEngagement([EngagementEvent(type: .unsubscribe, messageID: ofB.id, recipientID: ofB.recipients[0].id, at: now)])
            let entries = try await store.suppressions(scope: .all)
            #expect(entries.map { "\($0.address)|\($0.domain)|\($0.tenant == b)" } == ["u@example.net|shop.example|true"])
            #expect(try await store.suppressed([due("u@example.net", of: a)]).isEmpty)
        }
    }

    @Test(arguments: StoreFactory.all)
    func aTenantIsRemovedOnlyWithoutMailUnlessForced(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let b = try await store.addTenant(named: "b", limits: .none, createdAt: Date()).id
            let (credential, _) = try Credential.issue(name: "b-app", networks: [], scope: .tenant(b), hasher: SecretHasher(rounds: 1 << 10))
            try await store.addCredential(credential)
            try await store.addDomain(SendingDomain(name: "b.example", tenant: b, createdAt: Date()))
            try await store.addSuppression(Suppression(address: "x@example.net", tenant: b, reason: "manual", createdAt: Date()))
            let ofB = message(of: b, to: ["x@example.net", "y@example.net"])
            let ofDefault = message(of: .default, to: ["z@example.net"])
            try await store.commitAndWait([ofB, ofDefault])
            do {
                _ = try await store.removeTenant(b, force: false)
                Issue.record("a tenant that owns mail was removed without --force")
            } catch let error as StoreError {
                #expect(error.code == .conflict)
            }
            #expect(try await store.tenant(named: "b") != nil)
            let removal = try await store.removeTenant(b, force: true)
            #expect(removal == TenantRemoval(messages: 1, credentials: 1, domains: 1, suppressions: 1, inboundMessages: 0))
            #expect(try await store.tenant(named: "b") == nil)
            #expect(try await store.credential(named: "b-app") == nil)
            #expect(try await store.domain(named: "b.example") == nil)
            #expect(try await store.message(ofB.id, scope: .all) == nil)
            #expect(try await store.message(ofDefault.id, scope: .all) != nil)
            #expect(try await store.counters(in: .allTime, scope: .all).outbound == 1)
            #expect(try await store.queueEntries(limit: 10, scope: .all).count == 1)
            do {
                _ = try await store.removeTenant(.default, force: true)
                Issue.record("the default tenant was removed")
            } catch let error as StoreError {
                #expect(error.code == .conflict)
            }
        }
    }
}

/// What tenants' limits are counted from.
@Suite struct TenantUsageConformanceTests {
    @Test(arguments: StoreFactory.all)
    func commitsCountEachRecipientInItsTenantsHour(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let b = try await store.addTenant(named: "b", limits: .none, createdAt: Date()).id
            // 2027-01-15 08:00:00 UTC, the start of an hour.
            let hour = Date(millisecondsSince1970: 1_800_000_000_000)
            try await store.commitAndWait([
                message(of: .default, to: ["a@example.net", "b@example.net"], at: hour.addingTimeInterval(10)),
                message(of: b, to: ["c@example.net"], at: hour.addingTimeInterval(20)),
            ])
            try await store.commitAndWait([message(of: .default, to: ["d@example.net"], at: hour.addingTimeInterval(3_599))])
            try await store.commitAndWait([message(of: .default, to: ["e@example.net"], at: hour.addingTimeInterval(3_600))])
            try await store.addThrottled([b: 2, .default: 0], at: hour.addingTimeInterval(30))
            try await store.addThrottled([b: 1], at: hour.addingTimeInterval(40))
            let usage = try await store.tenantUsage(since: hour.addingTimeInterval(1_000))
            #expect(usage == [
                TenantUsage(tenant: .default, hour: hour, messages: 3, throttled: 0),
                TenantUsage(tenant: .default, hour: hour.addingTimeInterval(3_600), messages: 1, throttled: 0),
                TenantUsage(tenant: b, hour: hour, messages: 1, throttled: 3),
            ])
            #expect(try await store.tenantUsage(since: hour.addingTimeInterval(3_600)).map(\.messages) == [1])
            // Throttled messages count in the hours that start within the period.
            #expect(try await store.counters(in: .allTime, scope: .tenant(b)).throttled == 3)
            #expect(try await store.counters(in: .allTime, scope: .tenant(.default)).throttled == 0)
            #expect(try await store.counters(in: .allTime, scope: .all).throttled == 3)
            #expect(try await store.counters(in: TimeRange(from: hour.addingTimeInterval(1)), scope: .all).throttled == 0)
        }
    }
}

/// What tells running servers to reload.
@Suite struct ConfigurationGenerationConformanceTests {
    /// Every change to a tenant, credential, domain or key grows the generation; mail does not.
    @Test(arguments: StoreFactory.all)
    func everyConfigurationChangeGrowsTheGeneration(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            var last = try await store.configurationGeneration()
            func expectGrew(_ what: String) async throws {
                let now = try await store.configurationGeneration()
                #expect(now > last, "\(what) did not grow the generation")
                last = now
            }
            let acme = try await store.addTenant(named: "acme", limits: .none, createdAt: Date())
            try await expectGrew("tern tenant add")
            try await store.setLimits(TenantLimits(maxMessagesPerHour: 5), of: acme.id)
            try await expectGrew("tern tenant set")
            let (credential, _) = try Credential.issue(name: "acme-app", networks: [], scope: .tenant(acme.id), hasher: SecretHasher(rounds: 1 << 10))
            try await store.addCredential(credential)
            try await expectGrew("tern credential add")
            try await store.addDomain(SendingDomain(name: "acme.example", tenant: acme.id, createdAt: Date()))
            try await expectGrew("tern domain add")
            try await store.setVerified("acme.example", at: Date())
            try await expectGrew("tern domain verify")
            try await store.commitAndWait([message(of: acme.id, to: ["x@example.net"])])
            #expect(try await store.configurationGeneration() == last, "mail must not make servers reload")
            #expect(try await store.removeCredential(named: "acme-app"))
            try await expectGrew("tern credential remove")
            #expect(try await store.removeDomain(named: "acme.example"))
            try await expectGrew("tern domain remove")
            _ = try await store.removeTenant(acme.id, force: true)
            try await expectGrew("tern tenant remove")
        }
    }
}
